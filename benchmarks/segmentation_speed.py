"""Inference time on one 1024x1024 TEM image: our seed/flow model vs cellpose's default CPnet.

    python benchmarks/segmentation_speed.py [--model default] [--threads 2] [--repeats 3]

The image is a synthetic TEM image (``make_tem_image``, 1024², spheres of ~30 px, seed 7) so the
answer has ground truth: AP50/AP75 of each method are reported beside its time.  Ours: the
shipped default model through :func:`napari_nanocrystal.segment` (tiles of 512, flow following
and flow QC included), with its defaults (bfloat16 network pass where the CPU has it natively) and
with ``precision="float32"``.  Cellpose: ``cellpose.models.CellposeModel(pretrained_model=False)`` — cellpose's
default CPnet width [2, 32, 64, 128, 256] — through its own ``eval`` at diameter 30; no cellpose
weights can be downloaded here, so its time is that of an untrained net of the default size (its
AP is not meaningful and is reported only as a sanity value).  Median of ``--repeats`` runs after
one warm-up run.  Writes ``benchmarks/results/segmentation_speed.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, repeats: int):
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "segmentation_speed.md")
    args = parser.parse_args(argv)

    import torch
    from cellpose import models as cp_models
    from napari_nanocrystal import make_tem_image, segment
    from napari_nanocrystal.segmentation.evaluation import evaluate
    from nc_synthmodel.io import atomic_write_text

    torch.set_num_threads(args.threads)
    sample = make_tem_image((1024, 1024), n_particles=420, diameter_nm=(15.0, 1.5), nm_per_px=0.5, scale_bar=False, rng=7)
    image, truth = sample.image, sample.labels

    from napari_nanocrystal.analysis import read_micrograph
    from napari_nanocrystal.segmentation._image import prepare_image
    from napari_nanocrystal.segmentation.inference import bfloat16_supported
    from napari_nanocrystal.segmentation.network import resolve_model
    from napari_nanocrystal.segmentation.size_model import image_style

    net = resolve_model(args.model)
    ours_s, ours = _timed(lambda: segment(image, net).labels, args.repeats)
    native_s, native = _timed(lambda: segment(image, net, diameter_px=None).labels, args.repeats)
    fp32_s, fp32 = _timed(lambda: segment(image, net, precision="float32").labels, args.repeats)
    rows_extra = []
    if (getattr(net, "config", None) or {}).get("size_model") is not None:
        gray = prepare_image(image)
        style_s, _ = _timed(lambda: image_style(net, gray, bfloat16=bfloat16_supported()), args.repeats)
        rows_extra.append(f"| of which the size estimate (encoder on the central 512² px) | {style_s:.2f} | | | |")
    # a real TEM micrograph: the labelled PbSe crop (1002×667) mirrored out to 1024² (timing only)
    real_path = Path(args.datasets) / "tem-examples" / "pbse_1-0001_16_image.png"
    real_rows = []
    if real_path.is_file():
        import numpy as np

        real, _, _ = read_micrograph(real_path)
        real = np.pad(real, [(0, 1024 - real.shape[0]), (0, 1024 - real.shape[1])], mode="reflect")
        real_s, real_labels = _timed(lambda: segment(real, net), args.repeats)
        real_rows.append(
            f"| ours, defaults, on a real TEM image (PbSe crop mirrored to 1024²; {real_labels.passes} pass(es), "
            f"diameter {real_labels.diameter_px:.1f} px) | {real_s:.2f} | – | – | {real_labels.n_objects} |"
        )
    cellpose = cp_models.CellposeModel(gpu=False, pretrained_model=False, nchan=2)
    cp_s, cp_masks = _timed(lambda: cellpose.eval(image, diameter=30.0, channels=[0, 0])[0], args.repeats)

    default_name = "ours, defaults: size-model estimate + segmentation (network pass in " + (
        "bfloat16: this CPU has it natively)" if bfloat16_supported() else "float32: no native bfloat16 here)"
    )
    rows = []
    for name, seconds, labels in (
        (default_name, ours_s, ours),
        ("ours, no estimate (`diameter_px=None`: one pass at the input size)", native_s, native),
        ('ours, float32 network pass (`precision="float32"`)', fp32_s, fp32),
        ("cellpose CPnet, default width (untrained)", cp_s, cp_masks),
    ):
        scores = evaluate([labels], [truth])
        rows.append(f"| {name} | {seconds:.2f} | {scores['ap50']:.3f} | {scores['ap75']:.3f} | {int(labels.max())} |")
        if name == default_name:
            rows += rows_extra
    rows += real_rows
    text = "\n".join(
        [
            "## Segmentation inference time on a 1024×1024 image",
            "",
            f"Command: `python benchmarks/segmentation_speed.py --model {args.model} --threads {args.threads} --repeats {args.repeats}`  ",
            f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
            f"Machine: {platform.platform()}, {platform.machine()}, torch {torch.__version__} with {args.threads} thread(s), no GPU  ",
            f"Image: `make_tem_image((1024, 1024), n_particles=420, diameter_nm=(15, 1.5), nm_per_px=0.5, rng=7)`: "
            f"{int(truth.max())} particles of ~30 px (a generated image: AP here is a sanity value, the accuracy numbers are "
            "in real_micrographs.md and the EMPS evaluation).",
            "",
            f"| method | median s (of {args.repeats}, after warm-up) | AP50 | AP75 | instances |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"Ratio cellpose / ours: {cp_s / ours_s:.2f}× (the cellpose net is untrained: no weights can be downloaded here).",
            "",
        ]
    )
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
