"""Presets load into typed config; overrides are checked against the dataclasses."""

import pytest

from fashionseg.config import ConfigError, list_presets, load_config, read_config, save_config


def test_presets_exist_and_load():
    assert {"demo", "seed", "1x"} <= set(list_presets())
    for name in list_presets():
        cfg = load_config(name)
        assert cfg.model.arch in ("R50-FPN", "R50-C4", "R50-DC5")


def test_1x_preset_is_detectron2_schedule():
    cfg = load_config("1x")
    assert (cfg.solver.max_iter, cfg.solver.steps, cfg.solver.base_lr) == (90000, (60000, 80000), 0.02)
    assert cfg.solver.lr == pytest.approx(0.02)


def test_lr_scales_linearly_with_batch():
    cfg = load_config("1x", {"solver.ims_per_batch": 8})
    assert cfg.solver.lr == pytest.approx(0.01)


def test_dotted_overrides_are_typed():
    cfg = load_config("demo", ["solver.max_iter=7", "solver.steps=[3,5]", "data.categories=[1,6]", "seed=3"])
    assert cfg.solver.max_iter == 7
    assert cfg.solver.steps == (3, 5)
    assert cfg.data.categories == (1, 6)
    assert cfg.seed == 3


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"solver\.max_iters.*max_iter"):
        load_config("demo", {"solver.max_iters": 5})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"solver\.max_iter.*'many'"):
        load_config("demo", {"solver.max_iter": "many"})


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="demo"):
        load_config("nope")


def test_round_trip(tmp_path):
    cfg = load_config("demo", {"model.arch": "R50-C4"})
    save_config(cfg, tmp_path / "config.yaml")
    assert read_config(tmp_path / "config.yaml") == cfg


def test_per_arch_adjustments_apply_only_to_their_arch_and_yield_to_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text(
        "model: {arch: R50-FPN, box_batch_size_per_image: 64}\n"
        "per_arch:\n  R50-C4:\n    model: {box_batch_size_per_image: 16}\n"
    )
    assert load_config(preset).model.box_batch_size_per_image == 64
    assert load_config(preset, {"model.arch": "R50-C4"}).model.box_batch_size_per_image == 16
    explicit = load_config(preset, {"model.arch": "R50-C4", "model.box_batch_size_per_image": 8})
    assert explicit.model.box_batch_size_per_image == 8


@pytest.mark.parametrize("arch", ["R50-FPN", "R50-C4", "R50-DC5"])
def test_run_is_named_after_its_architecture(arch):
    # the README's `-p key=value` habit: model.arch alone must not train into another arch's folder; a joint
    # pretext run (pretrain_joint) is named after the designs it trains together
    for preset in list_presets():
        cfg = load_config(preset, {"model.arch": arch})
        expected = "+".join(cfg.model.pretext_archs) or arch
        assert cfg.name == expected
        assert cfg.run_dir.name == expected
    assert load_config("pretrain_joint").name == "R50-FPN+R50-C4+R50-DC5"


def test_a_name_of_another_architecture_is_refused(tmp_path):
    preset = tmp_path / "old.yaml"
    preset.write_text("name: R50-FPN\nmodel: {arch: R50-FPN}\n")
    assert load_config(preset).run_dir.name == "R50-FPN"
    with pytest.raises(ConfigError, match=r"name='R50-FPN'.*model\.arch='R50-C4'"):
        load_config(preset, {"model.arch": "R50-C4"})
    assert load_config(preset, {"model.arch": "R50-C4", "name": "c4-lr0.04"}).run_dir.name == "c4-lr0.04"
