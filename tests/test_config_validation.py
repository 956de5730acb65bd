"""Every configuration value is checked as it is loaded: ranges, choices, rules between keys; the error names
the key, the value, what is valid and where the value came from. Fuzzed: ``-p`` overrides and preset YAML."""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fashionseg import cli
from fashionseg.config import (
    ARCHITECTURES,
    PRESET_DIR,
    RANGES,
    ConfigError,
    RunConfig,
    file_label,
    flatten,
    list_presets,
    load_config,
    read_config,
    save_config,
    to_dict,
    validate,
)

KEYS = [key for key, _ in flatten(to_dict(RunConfig()))]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("preset", list_presets())
def test_every_shipped_preset_validates_for_every_architecture(preset: str, arch: str) -> None:
    cfg = load_config(preset, {"model.arch": arch})  # per_arch adjustments included
    validate(cfg)
    assert cfg.model.arch == arch


def _train_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one-line error ``fashionseg train`` prints (exit code 2), checked to come before any work."""
    assert cli.main(["train", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no configuration printed, nothing trained
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("solver.max_iter=-5", "solver.max_iter=-5 (from -p): must be an integer >= 1"),
        ("data.min_size=0", "data.min_size=0 (from -p): must be an integer in [32, 10000]"),
        ("solver.base_lr=abc", "solver.base_lr='abc' (from -p): expected a number"),
        ("model.arch=R99", "model.arch='R99' (from -p): not one of R50-FPN, R50-C4, R50-DC5"),
    ],
)
def test_the_reported_defects_stop_at_loading_with_key_value_range_and_origin(
    capsys: pytest.CaptureFixture[str], override: str, expected: str
) -> None:
    assert _train_error(capsys, "-p", override, "--print-config") == f"error: {expected}"
    assert _train_error(capsys, "-p", override, "--no-eval") == f"error: {expected}"


def test_a_bad_value_in_a_preset_file_names_the_file(tmp_path: Path) -> None:
    preset = tmp_path / "mine.yaml"
    preset.write_text("solver: {max_iter: 10, steps: [4, 12]}\n")
    with pytest.raises(ConfigError, match=r"solver\.steps=\[4, 12\] \(from .*mine\.yaml\): .*max_iter=10"):
        load_config(preset)
    tree = yaml.safe_load((PRESET_DIR / "demo.yaml").read_text())
    tree["per_arch"]["R50-C4"] = {"model": {"norm": "group"}}
    preset.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError, match=r"model\.norm='group' \(from .*mine\.yaml, per_arch\.R50-C4\)"):
        load_config(preset, {"model.arch": "R50-C4"})


def test_preset_files_are_named_relative_to_the_project() -> None:
    assert file_label(PRESET_DIR / "demo.yaml") == "presets/demo.yaml"
    assert file_label(Path(__file__)) == "tests/test_config_validation.py"
    with pytest.raises(ConfigError) as error:
        load_config("demo", ["data.max_size=100"])  # min_size 128 stays the preset's
    assert str(error.value) == (
        "data.min_size=128 (from presets/demo.yaml): must be at most data.max_size=100 (from -p)"
    )


def test_overrides_say_where_they_came_from() -> None:
    with pytest.raises(ConfigError, match=r"solver\.ims_per_batch=0 \(from the override\)"):
        load_config("demo", {"solver.ims_per_batch": 0})
    with pytest.raises(ConfigError, match=r"solver\.ims_per_batch=0 \(from the notebook parameter\)"):
        load_config("demo", {"solver.ims_per_batch": 0}, override_origin="the notebook parameter")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"solver.steps": [50, 40]},
            r"solver\.steps=\[50, 40\] \(from the override\): must be strictly increasing",
        ),
        (
            {"solver.steps": [10**6]},
            r"solver\.steps=\[1000000\] .*below solver\.max_iter=\d+ \(from presets/demo",
        ),
        ({"data.min_size": 200}, r"data\.min_size=200 .*at most data\.max_size=160"),
        (
            {"model.weights": "coco", "model.arch": "R50-C4"},
            r"model\.weights='coco' .*only for model\.arch=R50-FPN",
        ),
        ({"model.weights": "imagenet", "model.norm": "gn"}, r"model\.norm=gn .*cannot start from them"),
        ({"model.weights": "imagnet"}, r"model\.weights='imagnet' .*not one of none, trunk, imagenet, coco"),
        ({"device": "gpu"}, r"device='gpu' .*not one of auto, cpu, cuda, cuda:N"),
        ({"model.norm": "batch"}, r"model\.norm='batch' .*not one of auto, frozen_bn, bn, gn"),
        ({"data.hflip_prob": 1.5}, r"data\.hflip_prob=1\.5 .*in \[0, 1\]"),
        ({"model.attribute_prior": 0}, r"model\.attribute_prior=0\.0 .*in \(0, 1\)"),
        ({"solver.base_lr": float("nan")}, r"solver\.base_lr=nan .*finite number > 0"),
        ({"model.anchor_sizes": [32, 64]}, r"model\.anchor_sizes=\[32, 64\] .*five sizes"),
        ({"data.categories": []}, r"data\.categories=\[\] .*at least one"),
        ({"name": "../elsewhere"}, r"name='\.\./elsewhere' .*one folder name"),
        ({"data.root": ""}, r"data\.root='' .*not be empty"),
        ({"seed": -1}, r"seed=-1 .*in \[0, 4294967295\]"),
        ({"solver.max_iter": True}, r"solver\.max_iter=True .*expected an integer"),
        ({"output_dir": [1, 2]}, r"output_dir=\[1, 2\] .*expected a text value"),
        (
            {"model.pretext_archs": ["R50-FPN", "R50-C5"], "solver.eval_period": 0},
            r"model\.pretext_archs=\['R50-FPN', 'R50-C5'\] \(from the override\): each value must be one of "
            r"R50-FPN, R50-C4, R50-DC5",
        ),
        (
            {"model.pretext_archs": "R50-C4,R50-C4", "solver.eval_period": 0},
            r"model\.pretext_archs=\['R50-C4', 'R50-C4'\] .*lists a design twice",
        ),
        (
            {"model.pretext_archs": ["R50-FPN", "R50-C4"]},
            r"model\.pretext_archs=.*no learning curve; set solver\.eval_period=0 \(now 150, from presets/",
        ),
    ],
)
def test_each_rule_names_key_value_and_what_is_valid(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("demo", overrides)


def test_all_problems_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_config("demo", ["solver.max_iter=0", "data.min_size=5"])
    lines = str(error.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert [line.split("=")[0].strip() for line in lines[1:]] == ["data.min_size", "solver.max_iter"]


def test_a_preset_schedule_cut_short_by_an_override_keeps_working() -> None:
    # demo's steps are never reached in fewer iterations, as in detectron2; the study's
    # `-p iterations=100` relies on it
    steps = load_config("demo").solver.steps
    assert min(steps) > 100
    assert load_config("demo", ["solver.max_iter=100"]).solver.steps == steps
    with pytest.raises(ConfigError, match=rf"solver\.steps=\[{steps[0]}\] \(from -p\)"):
        load_config("demo", ["solver.max_iter=100", f"solver.steps=[{steps[0]}]"])


def test_the_batch_must_divide_among_the_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(
        ConfigError, match=r"solver\.ims_per_batch=2 .*divisible by the number of processes \(4\)"
    ):
        load_config("demo")
    assert load_config("demo", ["solver.ims_per_batch=8"]).solver.ims_per_batch == 8


def test_a_stored_config_is_validated_naming_its_file(tmp_path: Path) -> None:
    cfg = load_config("demo", {"model.arch": "R50-C4"})
    path = tmp_path / "config.yaml"
    save_config(
        dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, weights="gone/model_final.pt")), path
    )
    assert read_config(path).model.weights == "gone/model_final.pt"  # a finished run's file may be gone
    save_config(dataclasses.replace(cfg, solver=dataclasses.replace(cfg.solver, max_iter=-1)), path)
    with pytest.raises(ConfigError, match=rf"solver\.max_iter=-1 \(from {tmp_path}/config\.yaml\)"):
        read_config(path)
    path.write_text("[1, 2")
    with pytest.raises(ConfigError, match="config.yaml: cannot be read as a configuration"):
        read_config(path)


# --- fuzzed: -p overrides and preset YAML ----------------------------------------------------------------

_SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["R50-C4", "gn", "none", "trunk", "cpu", "cuda:1", "auto", "", " ", "~", "null", "[1"]),
    st.text(alphabet=string.printable, max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=string.ascii_lowercase + "._", min_size=1, max_size=8), inner, max_size=3
        )
    ),
    max_leaves=8,
)
_KEYS = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(["solver", "model", "per_arch", "solver.max_iter.x", "", ".", "data..root", "x.y"]),
    st.text(alphabet=string.ascii_lowercase + "._-", max_size=16),
)
_RAW = st.one_of(
    st.text(alphabet=string.printable, max_size=20),
    _VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()),
)


def _named(message: str, key: str) -> bool:
    """Whether an error names the key, or the part of it that is unknown (`x` of `x.y`)."""
    parts = [p for p in key.split(".") if p]
    # an empty key ('', '.') is named as the unknown key '' among the valid ones
    return key in message or any(p in message for p in parts) or not parts


def _check_loaded(cfg: RunConfig, tmp_path: Path) -> None:
    validate(cfg)
    save_config(cfg, tmp_path / "config.yaml")
    assert read_config(tmp_path / "config.yaml") == cfg


@given(pairs=st.lists(st.tuples(_KEYS, _RAW), min_size=1, max_size=3))
def test_fuzzed_p_overrides_load_or_name_the_key(pairs: list[tuple[str, str]], tmp_path: Path) -> None:
    overrides = [f"{key}={raw}" for key, raw in pairs]
    try:
        cfg = load_config("demo", overrides)
    except ConfigError as exc:
        assert any(_named(str(exc), key) for key, _ in pairs), str(exc)
        return
    _check_loaded(cfg, tmp_path)


@given(values=st.dictionaries(st.sampled_from(KEYS), _VALUES, min_size=1, max_size=4))
def test_fuzzed_typed_overrides_load_or_name_the_key(values: dict, tmp_path: Path) -> None:
    try:
        cfg = load_config("demo", values, override_origin="the notebook parameter")
    except ConfigError as exc:
        assert "from the notebook parameter" in str(exc) or "presets/demo.yaml" in str(exc), str(exc)
        assert any(key in str(exc) for key in values) or "presets/demo.yaml" in str(exc), str(exc)
        return
    _check_loaded(cfg, tmp_path)


_SECTIONS = {"data", "model", "solver"}
_PRESET_TREES = st.dictionaries(
    st.sampled_from(sorted({k.split(".")[0] for k in KEYS} | {"per_arch", "junk"})),
    st.one_of(
        _VALUES,
        st.dictionaries(st.sampled_from(sorted({k.split(".", 1)[-1] for k in KEYS if "." in k})), _VALUES),
        st.dictionaries(
            st.sampled_from([*ARCHITECTURES, "R99"]),
            st.dictionaries(
                st.sampled_from(sorted(_SECTIONS)), st.dictionaries(st.sampled_from(sorted(RANGES)), _VALUES)
            ),
        ),
    ),
    max_size=5,
)


@given(
    document=st.one_of(
        _PRESET_TREES.map(yaml.safe_dump),
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    )
)
def test_fuzzed_preset_files_load_or_name_the_file_or_key(document: str, tmp_path: Path) -> None:
    preset = tmp_path / "fuzzed.yaml"
    preset.write_bytes(document.encode("utf-8", errors="surrogateescape"))
    try:
        cfg = load_config(preset)
    except ConfigError as exc:
        assert "fuzzed.yaml" in str(exc), str(exc)
        return
    _check_loaded(cfg, tmp_path)
