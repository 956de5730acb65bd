"""The reproduction check CI runs after ``make study``: exact on one CPU kind, weaker (and said) across."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fashionseg import precision, reproduction

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_reproduced.py"
AMX = {"model": "Intel Xeon", "capability": "AVX512", "native_bf16": True, "flags": ["avx512f", "amx_bf16"]}
EPYC = {"model": "AMD EPYC", "capability": "AVX512", "native_bf16": True, "flags": ["avx512f", "avx512_bf16"]}
HEADLINE = {"AP": 5.4, "AP50": 16.8, "AP75": 1.7}


def _write_run(root, arch, ap, loss, seconds, cpu=None, headline=None):
    run = root / arch
    run.mkdir(parents=True)
    coco = {"AP": ap, **(headline or {})}
    (run / "metrics.json").write_text(json.dumps({"bbox": {"coco": coco}, "speed": {"ms": seconds}}))
    lines = [{"iteration": 1, "loss": loss, "time": seconds}, {"iteration": 2, "loss": loss / 2, "time": 1.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if cpu is not None:
        (run / "env.json").write_text(json.dumps({"cpu": cpu, "cpu_threads": 2}))


def test_compare_results_names_each_difference_and_ignores_timings(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write_run(ref, "R50-FPN", ap=12.5, loss=3.0, seconds=0.5)
    _write_run(new, "R50-FPN", ap=12.5, loss=3.0, seconds=9.0)  # another machine's speed: not a difference
    assert reproduction.compare_results(ref, new, ("R50-FPN",)) == []
    _write_run(ref, "R50-C4", ap=10.0, loss=2.0, seconds=0.5)
    _write_run(new, "R50-C4", ap=10.25, loss=2.0001, seconds=0.5)
    problems = reproduction.compare_results(ref, new, ("R50-FPN", "R50-C4"))
    assert len(problems) == 3
    assert any("R50-C4/metrics.json: bbox.coco.AP = 10.25, reference 10.0" in p for p in problems)
    assert sum("R50-C4/metrics.jsonl" in p for p in problems) == 2  # both logged losses
    assert reproduction.compare_results(ref, new, ("R50-FPN", "R50-C4"), tolerance=0.3) == []
    problems = reproduction.compare_results(ref, new, ("R50-DC5",))
    assert problems == [f"{ref / 'R50-DC5' / 'metrics.json'}: missing from the reference results"]


def test_headline_only_compares_table_one_numbers_and_not_the_losses(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write_run(ref, "R50-FPN", ap=5.4, loss=3.0, seconds=0.5, headline={"AP50": 16.8, "AP75": 1.7})
    _write_run(new, "R50-FPN", ap=5.6, loss=2.9, seconds=0.5, headline={"AP50": 17.2, "AP75": 1.9})
    assert reproduction.compare_results(ref, new, ("R50-FPN",), tolerance=1.0, headline_only=True) == [
        # the test's files have no mask numbers: said, not skipped silently
        f"R50-FPN/metrics.json: {key} in neither"
        for key in reproduction.HEADLINE_METRICS
        if key.startswith("segm")
    ]
    problems = reproduction.compare_results(ref, new, ("R50-FPN",), tolerance=0.3, headline_only=True)
    assert any(p.startswith("R50-FPN/metrics.json: bbox.coco.AP50 = 17.2") for p in problems)
    assert not any("metrics.jsonl" in p for p in problems)


def test_cpu_kind_differences_name_both_kinds_and_unrecorded_ones(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write_run(ref, "R50-FPN", 1.0, 1.0, 1.0, cpu=EPYC)
    _write_run(new, "R50-FPN", 1.0, 1.0, 1.0, cpu=dict(EPYC))
    _write_run(ref, "R50-C4", 1.0, 1.0, 1.0, cpu=AMX)
    _write_run(new, "R50-C4", 1.0, 1.0, 1.0, cpu=EPYC)
    _write_run(ref, "R50-DC5", 1.0, 1.0, 1.0)  # results from before env.json recorded the CPU
    _write_run(new, "R50-DC5", 1.0, 1.0, 1.0, cpu=EPYC)
    assert reproduction.cpu_kind_differences(ref, new, ("R50-FPN",)) == []
    lines = reproduction.cpu_kind_differences(ref, new, ("R50-FPN", "R50-C4", "R50-DC5"))
    assert lines == [
        "R50-C4: the reference trained on Intel Xeon (avx512f, amx_bf16), this study on AMD EPYC "
        "(avx512f, avx512_bf16)",
        "R50-DC5: the reference trained on an unrecorded CPU kind, this study on AMD EPYC "
        "(avx512f, avx512_bf16)",
    ]


def test_cpu_kind_reads_the_model_and_the_rounding_flags_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
        "flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile amx_bf16 other\n\n"
        "processor\t: 1\nmodel name\t: ignored second core\nflags\t\t: fpu\n"
    )
    kind = precision.cpu_kind(cpuinfo)
    assert kind["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert kind["flags"] == ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert kind["native_bf16"] == precision.cpu_has_bf16()
    missing = precision.cpu_kind(tmp_path / "no such file")  # not Linux: still a kind, with no flags
    assert missing["flags"] == [] and isinstance(missing["model"], str)


def _check(ref, new, *args):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(ref), str(new), "--archs", "R50-FPN", *args],
        capture_output=True,
        text=True,
    )
    return done.returncode, done.stdout


def test_check_reproduced_is_exact_on_one_cpu_kind(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    _write_run(ref, "R50-FPN", 5.4, 3.0, 0.5, cpu=EPYC, headline=HEADLINE)
    _write_run(new, "R50-FPN", 5.4, 3.0, 0.7, cpu=EPYC, headline=HEADLINE)
    assert _check(ref, new) == (0, f"reproduced: R50-FPN match {ref} (tolerance 0.0)\n")
    (new / "R50-FPN" / "metrics.jsonl").write_text(json.dumps({"iteration": 1, "loss": 3.0000001}) + "\n")
    code, out = _check(ref, new)
    assert code == 1 and "R50-FPN/metrics.jsonl: 0.loss = 3.0000001, reference 3.0" in out


def test_check_reproduced_across_cpu_kinds_says_so_and_checks_the_headline_within_tolerance(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    segm = {"segm": {"coco": HEADLINE}}
    _write_run(ref, "R50-FPN", 5.4, 3.0, 0.5, cpu=AMX, headline=HEADLINE)
    _write_run(new, "R50-FPN", 5.6, 2.9, 0.5, cpu=EPYC, headline={"AP50": 17.2, "AP75": 1.9})
    for run in (ref, new):
        metrics = json.loads((run / "R50-FPN" / "metrics.json").read_text())
        (run / "R50-FPN" / "metrics.json").write_text(json.dumps({**metrics, **segm}))
    code, out = _check(ref, new)
    assert code == 0, out
    assert "R50-FPN: the reference trained on Intel Xeon (avx512f, amx_bf16)" in out
    assert "bit-equality with the committed results is not defined here" in out
    assert "a sanity check, not a reproduction" in out
    assert out.endswith("consistent (other CPU kind): R50-FPN's headline metrics are within 5.0\n")
    code, out = _check(ref, new, "--cross-kind-tolerance", "0.3")
    assert code == 1 and "bbox.coco.AP50 = 17.2, reference 16.8" in out
    code, out = _check(ref, new, "--same-kind")
    assert code == 1 and "sanity check" not in out
