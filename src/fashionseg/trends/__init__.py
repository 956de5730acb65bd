"""Fashion-trend statistics over a photo collection (``fashionseg trends``, notebook 05_trends).

- :mod:`~fashionseg.trends.collection`: image folder + metadata CSV, checked; synthetic collection with
  planted trends and its ground truth as a predictions table;
- :mod:`~fashionseg.trends.inference`: batched DataLoader inference into a resumable Parquet table, sharded
  under ``torchrun``;
- :mod:`~fashionseg.trends.stats`: prevalence, co-occurrence and change along a metadata column (cluster
  bootstrap CIs, permutation tests, risers and fallers);
- :mod:`~fashionseg.trends.calibration`: simulations checking that the tests and intervals keep their
  nominal rates (what the book reports);
- :mod:`~fashionseg.trends.plots`: seaborn trend lines and heatmaps;
- :mod:`~fashionseg.trends.pipeline`: the pipeline, :func:`~fashionseg.trends.pipeline.predict_and_analyse`
  (photos to statistics) and :func:`~fashionseg.trends.pipeline.analyse` (a predictions table to statistics);
- :mod:`~fashionseg.trends.cli`: the command.
"""
