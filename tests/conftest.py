"""Shared data fixtures (session-scoped, so the small synthetic dataset is generated once per test run).

- ``synthetic_root``: a :class:`pathlib.Path` holding a tiny synthetic dataset in DataConfig's default
  layout: ``images/{train,val}/*.png`` and ``annotations/instances_attributes_{train,val}.json``, with
  ``SYNTH_TRAIN`` (16) training and ``SYNTH_VAL`` (8) validation images of ``SYNTH_SIZE`` (128) pixels,
  seed ``SYNTH_SEED`` (0). Treat it as read-only; copy it to ``tmp_path`` to modify it.
- ``synthetic_data_config``: a :class:`fashionseg.config.DataConfig` pointing at ``synthetic_root`` with
  matching ``synth_*`` values (so ``ensure_synthetic`` finds it current and writes nothing) and
  ``min_size``/``max_size`` equal to the image size (the resize is the identity).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fashionseg.config import DataConfig
from fashionseg.data.synthetic import generate

SYNTH_TRAIN, SYNTH_VAL, SYNTH_SIZE, SYNTH_SEED = 16, 8, 128, 0

# The property-based tests' budget, fixed so that CI time is bounded and every run tries the same inputs
# (derandomize): FUZZ_EXAMPLES generated inputs per property test. HYPOTHESIS_PROFILE=deep tries ten times as
# many, with random seeds, when hunting for new failures by hand (a failure prints the input to replay).
FUZZ_EXAMPLES = 40
settings.register_profile(
    "ci",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "deep",
    max_examples=10 * FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, train=SYNTH_TRAIN, val=SYNTH_VAL, size=SYNTH_SIZE, seed=SYNTH_SEED, show_progress=False)
    return root


@pytest.fixture(scope="session")
def synthetic_data_config(synthetic_root: Path) -> DataConfig:
    return DataConfig(
        root=str(synthetic_root),
        synth_train=SYNTH_TRAIN,
        synth_val=SYNTH_VAL,
        synth_size=SYNTH_SIZE,
        synth_seed=SYNTH_SEED,
        min_size=SYNTH_SIZE,
        max_size=SYNTH_SIZE,
    )


@pytest.fixture(scope="session")
def tiny_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with ``model_final.pt`` of an R50-FPN trained 2 iterations on ``synthetic_root``.

    The weights are meaningless; tests use it for the plumbing (loading, prediction formats, files).
    """
    from fashionseg.config import load_config
    from fashionseg.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = load_config(
        "demo",
        {
            "output_dir": str(out),
            "data.root": str(synthetic_root),
            "data.synthetic": False,
            "data.min_size": SYNTH_SIZE,
            "data.max_size": SYNTH_SIZE,
            "model.rpn_post_nms_top_n_train": 50,
            "model.box_batch_size_per_image": 16,
            "solver.ims_per_batch": 2,
            "solver.max_iter": 2,
            "solver.warmup_iters": 1,
            "solver.steps": [],
        },
    )
    return train(cfg, show_progress=False)
