"""Score segmentation models the way a new default is chosen: the defaults a user gets, grouped data.

    python benchmarks/candidate_model.py MODEL [MODEL ...] [--tag NAME] [--threads 2]

For each MODEL ("default" or a ``.safetensors`` file with its ``.json``): AP50 on the EMPS
publication-grouped validation split with the defaults (the size model estimates the diameter)
and with each image's true median diameter (*oracle*), and the pixel agreement
(:func:`~napari_nanocrystal.segmentation.evaluation.weak_label_agreement`, and its object scores:
single particles matched at IoU 0.5, objects on the background; edges: the matched particles' area
over the weak label's and over the half-contrast extent) with the weak labels of the four
real TEM training images. The labelled PbSe crop and ``scalebar_5-0011`` are test
images and are not used here (``benchmarks/real_micrographs.py --model`` scores them once a model
is chosen). Writes ``benchmarks/results/candidate_model_<tag>.md`` / ``.json``.

The issue's selection split is the grouped validation split; a rule for adopting a candidate is
written down before its run (session note / BENCHMARKS.md), e.g. defaults AP50 at least 0.01 above
the shipped model, oracle within 0.005, weak-image recall within 0.02.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from napari_nanocrystal.segmentation.data import find_weak_pairs, read_image, read_weak_label
from napari_nanocrystal.segmentation.evaluation import weak_label_agreement
from napari_nanocrystal.segmentation.inference import segment
from napari_nanocrystal.segmentation.network import resolve_model
from napari_nanocrystal.segmentation.training import evaluate_model

REPO = Path(__file__).resolve().parents[1]


def weak_pairs(tem: Path) -> list:
    """The weakly labelled real TEM training images, as the training command names them."""
    return find_weak_pairs(tem / "weak_1-0001_image.png") + find_weak_pairs(tem / "unlabelled")


def score(model: str, datasets: Path) -> dict:
    net = resolve_model(model)
    emps = datasets / "emps-train"
    row = {"model": model}
    for diameter in ("auto", "true"):
        start = time.perf_counter()
        report = evaluate_model(net, emps, split="val", diameter=diameter)
        row[diameter] = {k: report["model"][k] for k in ("ap50", "ap75", "ap90", "n_true", "n_pred")}
        row[diameter]["seconds"] = time.perf_counter() - start
        print(model, diameter, f"AP50 {report['model']['ap50']:.3f}", flush=True)
    weak = []
    for pair in weak_pairs(datasets / "tem-examples"):
        image = read_image(pair.image)
        result = segment(image, net)
        agreement = weak_label_agreement(result.labels, read_weak_label(pair.labels), image=image)
        weak.append({"image": pair.image.name, "found": int(result.n_objects), **agreement})
    row["weak"] = weak
    row["weak_mean"] = {k: float(np.mean([w[k] for w in weak])) for k in ("recall", "precision", "object_recall")}
    row["weak_mean"]["false_objects"] = int(sum(w["false_objects"] for w in weak))
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--tag", default="latest")
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [score(model, args.datasets) for model in args.models]
    lines = [
        f"# Candidate segmentation models ({args.tag})",
        "",
        f"`python benchmarks/candidate_model.py {' '.join(args.models)} --tag {args.tag}` — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{args.threads} threads. EMPS publication-grouped validation split (AP50 pooled over images), defaults and *oracle*;",
        "weak = agreement with the weak labels of the real TEM training images: pixel recall / precision, object recall",
        "(the weak label's single particles matched at IoU 0.5) and objects lying mostly on its background.",
        "",
        "| model | AP50 defaults | AP75 | *AP50 oracle* | found / true (defaults) | weak recall | weak precision "
        "| weak object recall | objects on background | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a, t, w = r["auto"], r["true"], r["weak_mean"]
        minutes = (a["seconds"] + t["seconds"]) / 60
        lines.append(
            f"| `{r['model']}` | {a['ap50']:.3f} | {a['ap75']:.3f} | *{t['ap50']:.3f}* | {a['n_pred']} / {a['n_true']} "
            f"| {w['recall']:.3f} | {w['precision']:.3f} | {w['object_recall']:.3f} | {w['false_objects']} | {minutes:.0f} |"
        )
    lines += [
        "",
        "Edges: median area of the matched predicted particles over their weak label's (its band middle) and over their",
        "half-contrast extent (`half_contrast_areas`: past the level half-way between core and background).",
        "",
        "| model | weak image | found | recall | precision | object recall (of single particles) | objects on background "
        "| area / weak label | area / half-contrast |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{r['model']}` | `{w['image']}` | {w['found']} | {w['recall']:.3f} | {w['precision']:.3f} "
        f"| {w['object_recall']:.3f} (of {w['n_weak_particles']}) | {w['false_objects']} "
        f"| {w['weak_area_ratio']:.3f} | {w['contrast_area_ratio']:.3f} |"
        for r in rows
        for w in r["weak"]
    ]
    out = REPO / "benchmarks" / "results" / f"candidate_model_{args.tag}"
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
