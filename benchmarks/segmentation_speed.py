"""Inference time on 1024x1024 TEM images, each pass's cost, against cellpose's default CPnet.

    python benchmarks/segmentation_speed.py [--model default] [--also fast] [--threads 2] [--repeats 3]

Images: a generated TEM image (``make_tem_image``, 1024², spheres of ~30 px, seed 7: the answer has
ground truth, AP50/AP75 reported beside the time) and two real micrographs mirrored out to 1024² (timing
only): the labelled PbSe crop (~18 px particles) and ``unlabelled/1-0021_9_v2`` (~15 px particles).
Ours: the shipped default model through :func:`napari_nanocrystal.segment` with its defaults (size
estimate, tiles of 512, flow following and flow QC included; bfloat16 network pass where the CPU has it
natively), and for comparison the same with the speed paths of ``"auto"`` off (``PROBE_FIRST_PASS`` and
``MASKS_AT_INPUT_SCALE`` False: the whole first pass, masks at the network's scale), with
``diameter_px=None``, with ``precision="float32"`` and with ``precision="int8"`` (the int8 network; its
one-off build time is reported below the table; only for a model with an int8 calibration), and
each ``--also`` model (e.g. the shipped ``fast`` one) with its defaults.  Each stage's cost is the median over the repeats of
``SegmentationResult.timings``.  Cellpose: ``cellpose.models.CellposeModel(pretrained_model=False)`` —
cellpose's default CPnet width [2, 32, 64, 128, 256] — through its own ``eval`` at diameter 30; no
cellpose weights can be downloaded here, so its time is that of an untrained net of the default size
(its AP is not meaningful).  Median of ``--repeats`` runs after one warm-up run; the variants of an
image are interleaved, so load from other jobs falls on all of them alike.  The load average is
reported.  Writes ``benchmarks/results/segmentation_speed.md`` and, beside it, the seconds as JSON
(``segmentation_speed.json``: ``segmentation_headline.py`` reads it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _interleaved(calls: dict, repeats: int) -> dict:
    """{name: (median s, last result, [results])}: each call once to warm up, then ``repeats`` rounds."""
    for fn in calls.values():
        fn()
    times = {name: [] for name in calls}
    results = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            results[name].append(fn())
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name][-1], results[name]) for name in calls}


def _stage_rows(results: list) -> list[str]:
    """Median seconds of each stage over the runs (a stage missing in a run counts 0)."""
    keys = list(dict.fromkeys(key for result in results for key in result.timings))
    return [f"| &nbsp;&nbsp;{key} | {statistics.median(r.timings.get(key, 0.0) for r in results):.3f} | | | |" for key in keys]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--also", action="append", default=[], metavar="MODEL", help="another model timed with its defaults beside (repeatable)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "segmentation_speed.md")
    parser.add_argument("--no-cellpose", action="store_true", help="skip cellpose's CPnet (the slowest row)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from napari_nanocrystal import make_tem_image, segment
    from napari_nanocrystal.analysis import read_micrograph
    from napari_nanocrystal.segmentation import inference, quantize
    from napari_nanocrystal.segmentation.evaluation import evaluate
    from napari_nanocrystal.segmentation.inference import bfloat16_supported
    from napari_nanocrystal.segmentation.network import resolve_model
    from nc_synthmodel.io import atomic_write_text

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    net = resolve_model(args.model)
    others = {name: resolve_model(name) for name in args.also}
    has_int8 = quantize.calibration_path(net.weights_path).is_file() if getattr(net, "weights_path", None) else False

    def with_speed_paths(image, on: bool, **kwargs):
        def run():
            saved = inference.PROBE_FIRST_PASS, inference.MASKS_AT_INPUT_SCALE
            inference.PROBE_FIRST_PASS = inference.MASKS_AT_INPUT_SCALE = on
            try:
                return segment(image, net, **kwargs)
            finally:
                inference.PROBE_FIRST_PASS, inference.MASKS_AT_INPUT_SCALE = saved

        return run

    sample = make_tem_image((1024, 1024), n_particles=420, diameter_nm=(15.0, 1.5), nm_per_px=0.5, scale_bar=False, rng=7)
    image, truth = sample.image, sample.labels
    default_name = "ours, defaults (network pass in " + (
        "bfloat16: this CPU has it natively)" if bfloat16_supported() else "float32: no native bfloat16 on this CPU)"
    )
    generated = _interleaved(
        {
            "defaults": with_speed_paths(image, True),
            "off": with_speed_paths(image, False),
            "none": with_speed_paths(image, True, diameter_px=None),
            "float32": with_speed_paths(image, True, precision="float32"),
            **({"int8": with_speed_paths(image, True, precision="int8")} if has_int8 else {}),
            **{f"also {name}": (lambda other=other: segment(image, other)) for name, other in others.items()},
        },
        args.repeats,
    )
    rows, timed_s = [], {}
    for key, name in (
        ("defaults", default_name),
        ("off", "ours, defaults with the speed paths off (whole first pass, masks at the network's scale)"),
        ("none", "ours, no estimate (`diameter_px=None`: one pass at the input size)"),
        ("float32", 'ours, float32 network pass (`precision="float32"`)'),
        ("int8", 'ours, int8 network pass (`precision="int8"`; size estimate float32)'),
        *((f"also {name}", f"ours, the `{name}` model with its defaults") for name in others),
    ):
        if key not in generated:
            continue
        seconds, result, results = generated[key]
        timed_s[f"generated {key}"] = seconds
        scores = evaluate([result.labels], [truth])
        rows.append(f"| {name} | {seconds:.2f} | {scores['ap50']:.3f} | {scores['ap75']:.3f} | {result.n_objects} |")
        if key not in ("off", "none", "float32"):
            rows += _stage_rows(results)
    int8_line = f"`{args.model}` has no int8 calibration: no int8 rows."
    if has_int8:
        quantize._BUILT.clear()
        start = time.perf_counter()
        quantize.int8_network(net)
        int8_line = (
            f'The int8 network (`precision="int8"`) is built from the float weights and '
            f"`{quantize.calibration_path(net.weights_path).name}` once per model "
            f"and process (not in the rows above: the warm-up run builds it): {time.perf_counter() - start:.2f} s."
        )

    real_rows = []
    for stem, label in (
        ("pbse_1-0001_16_image.png", "the labelled PbSe crop (~18 px particles)"),
        ("unlabelled/1-0021_9_v2_image.png", "`1-0021_9_v2` (~15 px particles)"),
    ):
        path = Path(args.datasets) / "tem-examples" / stem
        if not path.is_file():
            real_rows.append(f"| {label}: not found under {path.parent} | – | – | – | – |")
            continue
        real, _, _ = read_micrograph(path)
        mirrored = np.pad(real, [(0, max(0, 1024 - real.shape[0])), (0, max(0, 1024 - real.shape[1]))], mode="reflect")[:1024, :1024]
        timed = _interleaved(
            {
                "defaults": with_speed_paths(mirrored, True),
                "off": with_speed_paths(mirrored, False),
                **({"int8": with_speed_paths(mirrored, True, precision="int8")} if has_int8 else {}),
                **{f"also {name}": (lambda other=other: segment(mirrored, other)) for name, other in others.items()},
            },
            args.repeats,
        )
        for key, what in (
            ("defaults", "defaults"),
            ("off", "defaults with the speed paths off"),
            ("int8", 'int8 network pass (`precision="int8"`)'),
            *((f"also {name}", f"the `{name}` model with its defaults") for name in others),
        ):
            if key not in timed:
                continue
            seconds, result, results = timed[key]
            timed_s[f"{Path(stem).stem.removesuffix('_image')} {key}"] = seconds
            real_rows.append(
                f"| ours, {what}, real TEM: {label} mirrored to 1024²; {result.passes} pass(es), "
                f"estimate {result.diameter_estimate_px:.1f} px, segmented at {result.diameter_px:.1f} px | {seconds:.2f} | – | – | {result.n_objects} |"
            )
            if key != "off":
                real_rows += _stage_rows(results)

    cellpose_line = ""
    if not args.no_cellpose:
        from cellpose import models as cp_models

        cellpose = cp_models.CellposeModel(gpu=False, pretrained_model=False, nchan=2)
        cp = _interleaved({"cellpose": lambda: cellpose.eval(image, diameter=30.0, channels=[0, 0])[0]}, args.repeats)
        cp_s, cp_masks, _ = cp["cellpose"]
        scores = evaluate([cp_masks], [truth])
        rows.append(
            f"| cellpose CPnet, default width (untrained) | {cp_s:.2f} | {scores['ap50']:.3f} | {scores['ap75']:.3f} | {int(cp_masks.max())} |"
        )
        cellpose_line = f"Ratio cellpose / ours on the generated image: {cp_s / generated['defaults'][0]:.2f}× (the cellpose net is untrained: no weights can be downloaded here)."
    load_after = os.getloadavg()
    text = "\n".join(
        [
            "## Segmentation inference time on a 1024×1024 image",
            "",
            f"Command: `python benchmarks/segmentation_speed.py --model {args.model}"
            + "".join(f" --also {name}" for name in args.also)
            + f" --threads {args.threads} --repeats {args.repeats}"
            + (" --no-cellpose" if args.no_cellpose else "")
            + "`  ",
            f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
            f"Machine: {_cpu_name()}, {os.cpu_count()} cores, {platform.platform()}, torch {torch.__version__} with {args.threads} thread(s), "
            f"no GPU; native bfloat16: {'yes' if bfloat16_supported() else 'no'}  ",
            f"Load average (1 min) at the start / end: {load_before[0]:.2f} / {load_after[0]:.2f} (other jobs on the same cores slow every row)  ",
            f"Generated image: `make_tem_image((1024, 1024), n_particles=420, diameter_nm=(15, 1.5), nm_per_px=0.5, rng=7)`: "
            f"{int(truth.max())} particles of ~30 px (AP here is a sanity value; the accuracy numbers are in real_micrographs.md "
            "and emps_grouped.md).  Indented rows: the seconds of each stage of the row above (median over the runs).",
            "",
            f"| method | median s (of {args.repeats}, after warm-up) | AP50 | AP75 | instances |",
            "|---|---:|---:|---:|---:|",
            *rows,
            *real_rows,
            "",
            cellpose_line,
            "",
            int8_line,
            "",
        ]
    )
    atomic_write_text(args.out, text)
    atomic_write_text(
        args.out.with_suffix(".json"), json.dumps({"model": args.model, "threads": args.threads, "seconds": timed_s}, indent=1) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
