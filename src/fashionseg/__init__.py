"""fashionseg: Attribute-Mask R-CNN for clothing on the Fashionpedia ontology, built with torchvision."""

__version__ = "0.1.0"
