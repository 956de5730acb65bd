"""The book's computations, one module per chapter or notebook: tables, figures and readings from the runs'
files (:class:`fashionseg.rundir.RunDir`), rendered through :mod:`fashionseg.report.render`.

- :mod:`~fashionseg.report.training`: one run (02_train_backbone)
- :mod:`~fashionseg.report.recipe`: the method chapter's recipe table
- :mod:`~fashionseg.report.pretraining`: the method chapter's pretraining section
- :mod:`~fashionseg.report.compare`: the results chapter (03_compare): Table I, attributes, the reading
- :mod:`~fashionseg.report.timing`: the results chapter's speed section
- :mod:`~fashionseg.report.qualitative`: the side-by-side images (04_qualitative)
- :mod:`~fashionseg.report.multiseed`: the seeds chapter (06_seeds)
- :mod:`~fashionseg.report.glue`: every glue key the notebooks write and the book reads

The trends chapter's findings live beside the planted design, in :mod:`fashionseg.trends.findings`.
"""
