"""The data layer: Fashionpedia-format annotations, images and datasets.

- ``ontology``: the 46 categories and 294 attributes; ``LabelSpace`` (what a model predicts)
- ``images``: ``read_image`` (RGB, EXIF orientation applied, any mode converted)
- ``annotations``: ``load_annotations``, ``check_annotations`` (``fashionseg data check``), subsetting
- ``dataset``: ``FashionpediaDataset`` and ``collate_fn`` (torchvision's detection contract + attributes)
- ``transforms``: ``Resize``, ``RandomHorizontalFlip``, ``Compose`` on image and target together
- ``synthetic``: the embedded dataset (``fashionseg data synth``, ``ensure_synthetic``)
- ``fetch``: the official files (``fashionseg data fetch``)

Submodules are imported explicitly (``from fashionseg.data.dataset import FashionpediaDataset``) so that
reading the ontology does not import torch.
"""
