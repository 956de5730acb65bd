"""The method chapter's recipe table (fashionseg.report.recipe), read from each run's config.yaml and
env.json."""

from __future__ import annotations

from support import run_folder

from fashionseg.config import load_config
from fashionseg.report import recipe


def test_recipe_table_reads_each_runs_config_and_env(tmp_path):
    for arch in ("R50-FPN", "R50-C4"):
        run_folder(tmp_path, arch)
    table = recipe.recipe_table(tmp_path, ["R50-FPN", "R50-C4", "R50-DC5"])  # R50-DC5: no run folder
    assert list(table.columns) == ["R50-FPN", "R50-C4"]
    assert table.index.name == "setting"
    # the demo preset's per-architecture values, as config.yaml holds them
    fpn, c4 = (load_config("demo", {"model.arch": arch}) for arch in ("R50-FPN", "R50-C4"))
    assert table.loc["RPN proposals, test (pre / post NMS)"].tolist() == [
        f"{c.model.rpn_pre_nms_top_n_test} / {c.model.rpn_post_nms_top_n_test}" for c in (fpn, c4)
    ]
    assert table.loc["RoIs sampled per training image / most foreground share"].tolist() == [
        f"{c.model.box_batch_size_per_image} / {c.model.box_positive_fraction:g}" for c in (fpn, c4)
    ]
    steps = ", ".join(map(str, fpn.solver.steps))
    assert table.loc["learning-rate decays at / factor", "R50-FPN"] == f"{steps} / {fpn.solver.gamma}"
    lr = f"{c4.solver.base_lr} / {c4.solver.reference_batch}"
    assert table.loc["base learning rate (for the reference batch)", "R50-C4"] == lr
    assert table.loc["CPU threads"].tolist() == ["2", "2"]
    assert table.loc["git commit", "R50-FPN"] == "0123456789"
    assert set(table.index) >= {label for label, _ in recipe.RECIPE_KEYS} | set(recipe.RECIPE_ENV)
