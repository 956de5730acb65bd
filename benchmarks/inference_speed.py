"""Inference time of the study's trained backbones at the demo's proposal counts and at detectron2's.

The demo preset keeps 50 test proposals for R50-C4 and R50-DC5 (100 for R50-FPN) and at most 50 detections
an image; detectron2's defaults are 1000 proposals and 100 detections. R50-C4 runs its res5 stage once per
proposal, so its time grows with the proposal count far more than the others': the demo's counts flatter
it. This prints both, for the same trained models (``results/<preset>/<arch>/model_final.pt``, left by
``make study``) on the same validation images, with the batch size, threads, warm-up and precision stated.

    python benchmarks/inference_speed.py                          # results/demo, batch 1, all threads
    python benchmarks/inference_speed.py --batch 4 --threads 1 --images 20
    python benchmarks/inference_speed.py --out results/demo/inference_speed.json   # for 03_compare

Next to the time it prints each setting's arithmetic: the FLOPs of one image's forward pass
(``FlopCounterMode`` around a ``predict`` call on the first batch, matmuls and convolutions only; the count
follows the detections the mask head runs on, so it is one batch's, not an average), the GFLOP/s that makes
at the median time, and its share of this machine's matmul peak in the dtype the model ran in (fp32 or
bf16, measured at the start of the run by ``peak.py``, at the same thread count). The CPU kind and thread
count come first.

With ``--out`` the numbers and their conditions are also written as JSON, which ``03_compare`` reads into
the book's speed section (:func:`fashionseg.report.timing.inference_speed_text`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import peak
import torch
from PIL import Image

from fashionseg.config import ARCHITECTURES, ModelConfig, load_config
from fashionseg.data.images import read_image
from fashionseg.predict import Predictor
from fashionseg.rundir import RunDir


def counts_of(model: ModelConfig) -> dict[str, int]:
    """The test-time proposal counts and detection cap of a model configuration."""
    return {
        "pre_nms_top_n": model.rpn_pre_nms_top_n_test,
        "post_nms_top_n": model.rpn_post_nms_top_n_test,
        "detections_per_img": model.box_detections_per_img,
    }


# detectron2's defaults: the 1x preset keeps ModelConfig's, which are detectron2's
DETECTRON2_TEST = counts_of(load_config("1x").model)


def set_test_counts(
    predictor: Predictor, pre_nms_top_n: int, post_nms_top_n: int, detections_per_img: int
) -> None:
    """Set the RPN's test-time proposal counts and the detection cap of a loaded model."""
    rpn = predictor.model.rpn
    rpn._pre_nms_top_n["testing"] = pre_nms_top_n
    rpn._post_nms_top_n["testing"] = post_nms_top_n
    predictor.model.roi_heads.detections_per_img = detections_per_img


def flops_per_image(predictor: Predictor, images: list[Image.Image]) -> float:
    """FLOPs of one ``predict`` call on ``images`` (one batch), per image."""
    return peak.count_flops(lambda: predictor.predict(images, batch_size=len(images))) / len(images)


def time_predictor(predictor: Predictor, images: list, batch: int, warmup: int) -> tuple[float, float]:
    """Median milliseconds per image over the batches after ``warmup`` batches; mean detections an image."""
    batches = [images[i : i + batch] for i in range(0, len(images), batch)]
    for chunk in batches[:warmup]:
        predictor.predict(chunk, batch_size=batch)
    per_image, detections = [], []
    for chunk in batches[warmup:]:
        tic = time.perf_counter()
        preds = predictor.predict(chunk, batch_size=batch)
        per_image.append((time.perf_counter() - tic) * 1000 / len(chunk))
        detections += [len(p) for p in preds]
    return statistics.median(per_image), statistics.fmean(detections)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=Path("results/demo"))
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--images", type=int, default=24, help="validation images timed (after warm-up)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="batches run before timing")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, help="also write the numbers and conditions to this JSON file")
    peak.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = peak.machine()
    print(peak.machine_text(machine))
    peaks = peak.measure_peak(args)
    print(peak.peak_text(peaks), flush=True)

    rows = []
    for arch in args.arch:
        run = RunDir.of(args.results, arch)
        if not run.model_file.is_file():
            raise SystemExit(f"{run.model_file} does not exist: run `make study` first")
        cfg = run.config()
        gt = json.loads(cfg.data.path(cfg.data.val_annotations).read_text())
        files = [cfg.data.path(cfg.data.val_images) / im["file_name"] for im in gt["images"]]
        images = [read_image(f) for f in files[: args.images + args.warmup * args.batch]]
        predictor = Predictor.from_checkpoint(run.path, device="cpu")
        dtype = peak.precision_name(predictor.amp)
        demo = counts_of(cfg.model)
        for setting, counts in (("demo", demo), ("detectron2", DETECTRON2_TEST)):
            set_test_counts(predictor, **counts)
            flops = flops_per_image(predictor, images[: args.batch])
            ms, detections = time_predictor(predictor, images, args.batch, args.warmup)
            gflops = flops / 1e9 / (ms / 1000)
            rows.append(
                {
                    "arch": arch,
                    "setting": setting,
                    "proposals": counts["post_nms_top_n"],
                    "max_detections": counts["detections_per_img"],
                    "ms_per_image": ms,
                    "images_per_second": 1000 / ms,
                    "detections_per_image": detections,
                    "dtype": dtype,
                    "gflop_per_image": flops / 1e9,
                    "gflops": gflops,
                    "share_of_peak": gflops / peaks["gflops"][dtype],
                }
            )
            print(f"{arch} {setting}: {ms:.0f} ms/image, {gflops:.1f} GFLOP/s", flush=True)

    precision = "bf16 autocast where the CPU has it" if predictor.amp else "fp32"
    print(
        f"\nbatch {args.batch}, {args.threads} threads, {args.warmup} warm-up batches, median over "
        f"{args.images} validation images, {precision}, score threshold 0 (the model's box_score_thresh); "
        "GFLOP of the first batch (matmuls and convolutions); share: of the peak of the dtype it ran in"
    )
    header = ("proposals", "max det", "ms/image", "images/s", "det/image", "GFLOP/im", "GFLOP/s", "of peak")
    print("{:8} {:11} {:>9} {:>7} {:>9} {:>8} {:>9} {:>8} {:>8} {:>7}".format("arch", "setting", *header))
    for r in rows:
        print(
            f"{r['arch']:8} {r['setting']:11} {r['proposals']:9d} {r['max_detections']:7d} "
            f"{r['ms_per_image']:9.0f} {r['images_per_second']:8.2f} {r['detections_per_image']:9.1f} "
            f"{r['gflop_per_image']:8.1f} {r['gflops']:8.1f} {r['share_of_peak']:7.1%}"
        )
    if args.out:
        record = {
            "batch": args.batch,
            "threads": args.threads,
            "warmup_batches": args.warmup,
            "images": args.images,
            "precision": precision,
            "cpu": machine["cpu"]["model"] or platform.processor(),
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine,
            "peak": peaks,
            "rows": rows,
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
