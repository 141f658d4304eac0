"""The default analysis on every real TEM image we have, as a new user runs it.

    python benchmarks/real_micrographs.py [--model default] [--datasets DIR] [--threads 2]

For each real TEM image of ``tem-examples/`` (the authors' micrographs: the labelled PbSe crop,
the weak-labelled image, the test image ``scalebar_5-0011.tif`` and ``unlabelled/*``), run
:func:`napari_nanocrystal.analyze_image` with the defaults of ``nanocrystal analyze`` (scale bar
read by OCR, no diameter: the model's size model estimates it) and record the particle count,
mean equivalent circle diameter, σ/D, the diameter the image was segmented at and the time.
Every image gets an overlay PNG (measured particles outlined green, excluded ones red, scale
bar magenta) under ``benchmarks/results/real_tem/`` (git-ignored: copies of the authors' images) — look at them.  On the labelled PbSe crop
the segmentation is also scored against the 323 particles of its instance map (AP50/AP75, count, merges: one
predicted object holding two or more true ones), with the defaults and, as an *oracle* line,
with the true median diameter given.  Writes ``benchmarks/results/real_micrographs.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The real TEM images, relative to ``tem-examples/``; the labelled one has ``_instances``.
IMAGES = (
    "pbse_1-0001_16_image.png",
    "weak_1-0001_image.png",
    "scalebar_5-0011.tif",
    "unlabelled/1-0007_7_image.png",
    "unlabelled/1-0021_9_v2_image.png",
    "unlabelled/2-0018_32_image.png",
)
LABELLED = "pbse_1-0001_16"


def _analyse(path: Path, model, reader) -> dict:
    import numpy as np
    from napari_nanocrystal.analysis import analyze_image, read_micrograph, render_overlay

    image, metadata_nm, _source = read_micrograph(path)
    start = time.perf_counter()
    result = analyze_image(image, name=path.stem, model=model, metadata_nm_per_px=metadata_nm, ocr_reader=reader)
    seconds = time.perf_counter() - start
    ecd = result.particles["ecd_nm"].to_numpy(float)
    overlay = render_overlay(image, result.labels, measured=result.particles["label"].tolist(), calibration=result.calibration)
    return {
        "image": str(path.relative_to(path.parents[1] if path.parent.name == "unlabelled" else path.parent)),
        "nm_per_px": result.nm_per_px,
        "calibration": result.calibration.source,
        "instances": int(result.labels.max()),
        "measured": len(ecd),
        "excluded": result.excluded,
        "mean_ecd_nm": float(ecd.mean()),
        "sigma_over_d_pct": float(100 * ecd.std() / ecd.mean()),
        "mean_confidence": float(np.nanmean(result.particles["confidence"])) if "confidence" in result.particles else None,
        "seconds": seconds,
        "labels": result.labels,
        "overlay": overlay,
    }


def _score_pbse(datasets: Path, model, labels_default) -> dict:
    from napari_nanocrystal import segment
    from napari_nanocrystal.analysis import read_micrograph
    from napari_nanocrystal.segmentation.data import read_labels
    from napari_nanocrystal.segmentation.evaluation import evaluate
    from napari_nanocrystal.segmentation.targets import median_diameter_px

    root = datasets / "tem-examples"
    image, _, _ = read_micrograph(root / f"{LABELLED}_image.png")
    truth = read_labels(root / f"{LABELLED}_instances.png")
    rows = {}
    start = time.perf_counter()
    default = segment(image, model)
    rows["default (segment, no diameter)"] = (evaluate(default.labels, truth), time.perf_counter() - start, default.diameter_px)
    rows["analyze defaults (scale-bar particles dropped)"] = (evaluate(labels_default, truth), None, None)
    true_d = median_diameter_px(truth)
    start = time.perf_counter()
    oracle = segment(image, model, diameter_px=true_d)
    rows[f"oracle: true median diameter {true_d:.1f} px"] = (evaluate(oracle.labels, truth), time.perf_counter() - start, true_d)
    return {
        name: {
            "ap50": r["ap50"],
            "ap75": r["ap75"],
            "n_pred": r["n_pred"],
            "n_true": r["n_true"],
            "n_merged": r["n_merged"],
            "mean_iou_matched": r["mean_iou_matched"],
            "seconds": t,
            "diameter_px": d,
        }
        for name, (r, t, d) in rows.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)

    import torch
    from napari_nanocrystal.scalebar import get_ocr_reader
    from napari_nanocrystal.segmentation.network import resolve_model
    from nc_synthmodel.io import atomic_path, atomic_write_text
    from PIL import Image

    torch.set_num_threads(args.threads)
    model = resolve_model(args.model)
    reader = get_ocr_reader()
    overlays = args.out / "real_tem"
    overlays.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, pbse_labels = [], None
    for relative in IMAGES:
        path = args.datasets / "tem-examples" / relative
        row = _analyse(path, model, reader)
        stem = path.stem.replace("_image", "")
        with atomic_path(overlays / f"{stem}.png") as tmp:
            Image.fromarray(row.pop("overlay")).save(tmp, format="PNG")
        labels = row.pop("labels")
        if stem == LABELLED:
            pbse_labels = labels
        row["overlay"] = f"real_tem/{stem}.png"
        rows.append(row)
        print(
            f"{relative}: {row['measured']} particles, D = {row['mean_ecd_nm']:.2f} nm, σ/D = {row['sigma_over_d_pct']:.1f} %, "
            f"{row['nm_per_px']:.4g} nm/px ({row['calibration']}), {row['seconds']:.1f} s",
            flush=True,
        )
    pbse = _score_pbse(args.datasets, model, pbse_labels)
    for name, score in pbse.items():
        print(
            f"PbSe crop, {name}: AP50 {score['ap50']:.3f}, AP75 {score['ap75']:.3f}, {score['n_pred']} found / {score['n_true']}, "
            f"{score['n_merged']} merged",
            flush=True,
        )

    report = {
        "command": "python benchmarks/real_micrographs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads",
        "model": str(args.model),
        "wall_s": time.perf_counter() - started,
        "images": rows,
        "pbse_crop": pbse,
    }
    atomic_write_text(args.out / "real_micrographs.json", json.dumps(report, indent=2) + "\n")
    lines = [
        "# Real TEM micrographs with the defaults a user gets",
        "",
        f"`{report['command']}` — {report['date']}, {report['machine']}, model `{report['model']}`, {report['wall_s']:.0f} s in all.",
        "",
        "| image | nm/px (source) | particles measured (instances) | mean ECD nm | σ/D % | time s | overlay |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['image']}` | {row['nm_per_px']:.4g} ({row['calibration']}) | {row['measured']} ({row['instances']}) | "
            f"{row['mean_ecd_nm']:.2f} | {row['sigma_over_d_pct']:.1f} | {row['seconds']:.1f} | [png]({row['overlay']}) |"
        )
    n_true = next(iter(pbse.values()))["n_true"]
    lines += [
        "",
        f"Labelled PbSe crop (`pbse_1-0001_16`, {n_true} true particles in its instance map):",
        "",
        "| run | AP50 | AP75 | found | merged | mean IoU matched | diameter px | time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in pbse.items():
        seconds = "" if s["seconds"] is None else f"{s['seconds']:.1f}"
        diameter = "" if s["diameter_px"] is None else f"{s['diameter_px']:.1f}"
        lines.append(
            f"| {name} | {s['ap50']:.3f} | {s['ap75']:.3f} | {s['n_pred']} | {s['n_merged']} | {s['mean_iou_matched']:.3f} | {diameter} | {seconds} |"
        )
    atomic_write_text(args.out / "real_micrographs.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
