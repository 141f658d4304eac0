"""The default segmentation on the EMPS publication-grouped validation split, broken down.

    python benchmarks/emps_grouped.py [--model default] [--datasets DIR] [--threads 2]

Every image of the held-out fifth of the EMPS publications (``emps_split``: no publication on both
sides) is segmented twice with :func:`napari_nanocrystal.segment`: with the defaults a user gets
(``diameter_px="auto"``, the model's size model) and, as an *oracle* line, with the image's true
median diameter.  Reports pooled AP50/AP75 (cellpose definition, ``evaluate``), the same per band
of true particle diameter (the issue's ~8-150 px band and the very large objects outside it), the
images that lose the most matches, and the time per image.  With ``--misses``, why each particle the
defaults miss is missed (:func:`miss_causes`; the same pass run twice more without one filter each).
Writes ``benchmarks/results/emps_grouped.md`` / ``.json``.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: Bands of true median particle diameter (px) the results are broken down by.
BANDS = ((0.0, 8.0), (8.0, 150.0), (150.0, 300.0), (300.0, float("inf")))
#: Why a true particle is missed (:func:`miss_causes`), in the order they are tested.
MISS_CAUSES = ("no seed", "flow QC", "confidence", "merged", "outline")


def _found(pred, true):
    """Per true particle (labels 1..n): matched by a prediction at IoU ≥ 0.5 (cellpose's matching)."""
    from cellpose import metrics

    return metrics.mask_ious(true, pred)[0] >= 0.5 if pred.max() else np.zeros(int(true.max()), bool)


def miss_causes(image, labels, result, net) -> dict:
    """Why each true particle that ``result`` (the defaults) misses at IoU 0.5 is missed, first cause that holds:

    *no seed*: under half its pixels have seed probability above ``segment``'s seed threshold; *flow QC*: found when the same pass
    (same diameter) runs without the flow-error check; *confidence*: found without the confidence
    filter; *merged*: a predicted object holds ≥ 50 % of it and of another true particle; *outline*:
    seeded, but no object reaches IoU 0.5 (split, or drawn too small or too large).
    """
    import inspect

    from napari_nanocrystal.segmentation import segment
    from napari_nanocrystal.segmentation.evaluation import merged_pairs
    from scipy import ndimage
    from skimage.segmentation import relabel_sequential

    seed_threshold = inspect.signature(segment).parameters["seed_threshold"].default

    labels = relabel_sequential(np.asarray(labels))[0]
    found = _found(result.labels, labels)
    missed = np.flatnonzero(~found)
    causes = dict.fromkeys(MISS_CAUSES, 0)
    if not missed.size:
        return causes
    seeded = ndimage.mean(result.seed_prob > seed_threshold, labels, index=missed + 1) >= 0.5
    causes["no seed"] = int((~seeded).sum())
    missed = missed[seeded]
    if not missed.size:  # the passes without a filter cannot tell anything more
        return causes
    d = result.diameter_px
    no_qc = _found(segment(image, net, diameter_px=d, flow_threshold=None).labels, labels)
    no_confidence = _found(segment(image, net, diameter_px=d, confidence_threshold=None).labels, labels)
    merged = set(merged_pairs(result.labels, labels)[1].tolist())
    for i in missed:
        if no_qc[i]:
            causes["flow QC"] += 1
        elif no_confidence[i]:
            causes["confidence"] += 1
        elif i + 1 in merged:
            causes["merged"] += 1
        else:
            causes["outline"] += 1
    return causes


def _pooled(rows: list, mode: str) -> dict:
    tp = sum(r[mode]["tp50"] for r in rows)
    fp = sum(r[mode]["fp50"] for r in rows)
    fn = sum(r[mode]["fn50"] for r in rows)
    tp75 = sum(r[mode]["tp75"] for r in rows)
    fp75 = sum(r[mode]["fp75"] for r in rows)
    fn75 = sum(r[mode]["fn75"] for r in rows)
    return {
        "images": len(rows),
        "particles": sum(r["n_true"] for r in rows),
        "ap50": tp / max(1, tp + fp + fn),
        "ap75": tp75 / max(1, tp75 + fp75 + fn75),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def run(model: str, datasets: Path, misses: bool = False) -> dict:
    from napari_nanocrystal.segmentation import segment
    from napari_nanocrystal.segmentation.data import emps_split, load_emps_pair
    from napari_nanocrystal.segmentation.evaluation import count_merges, evaluate
    from napari_nanocrystal.segmentation.network import resolve_model
    from napari_nanocrystal.segmentation.targets import median_diameter_px

    root = datasets / "emps-train"
    _train, val = emps_split(root)
    net = resolve_model(model)
    rows = []
    for name in val:
        image, labels = load_emps_pair(root, name)
        true_d = median_diameter_px(labels)
        row = {"name": name, "n_true": int(len(set(labels.ravel().tolist())) - 1), "true_px": true_d}
        for mode, diameter in (("auto", "auto"), ("oracle", true_d)):
            start = time.perf_counter()
            result = segment(image, net, diameter_px=diameter)
            seconds = time.perf_counter() - start
            scores = evaluate([result.labels], [labels], thresholds=(0.5, 0.75))
            row[mode] = {
                "tp50": int(scores["tp"][0]),
                "fp50": int(scores["fp"][0]),
                "fn50": int(scores["fn"][0]),
                "tp75": int(scores["tp"][1]),
                "fp75": int(scores["fp"][1]),
                "fn75": int(scores["fn"][1]),
                "n_pred": int(result.labels.max()),
                "merged": int(count_merges(result.labels, labels)),
                "used_px": result.diameter_px,
                "estimate_px": result.diameter_estimate_px,
                "passes": result.passes,
                "seconds": seconds,
            }
            if misses and mode == "auto":
                row["misses"] = miss_causes(image, labels, result, net)
        rows.append(row)
        print(
            f"{name}: {row['n_true']} true, {true_d:.0f} px; auto {row['auto']['tp50']}/{row['auto']['n_pred']} "
            f"oracle {row['oracle']['tp50']}/{row['oracle']['n_pred']}",
            flush=True,
        )
    summary = {mode: {"all": _pooled(rows, mode)} for mode in ("auto", "oracle")}
    for mode in ("auto", "oracle"):
        for lo, hi in BANDS:
            band = [r for r in rows if lo <= r["true_px"] < hi]
            if band:
                summary[mode][f"{lo:g}-{hi:g} px"] = _pooled(band, mode)
    return {"rows": rows, "summary": summary}


def _markdown(report: dict, command: str, meta: dict) -> str:
    rows, summary = report["rows"], report["summary"]
    lines = [
        "# Default segmentation on the EMPS publication-grouped validation split",
        "",
        f"Command: `{command}`  ",
        f"Date: {meta['date']}  ",
        f"Machine: {meta['machine']}  ",
        f"Model: {meta['model']}; wall time {meta['wall_s']:.0f} s",
        "",
        "AP = sum TP / (sum TP + sum FP + sum FN) over the images (cellpose definition, pooled). *auto*: the",
        "defaults a user gets (`segment(image)`: the size model estimates the diameter); *oracle*: the image's",
        "true median diameter given (no user has it).",
        "",
        "| images by true median diameter | images | particles | AP50 auto | AP75 auto | AP50 *oracle* | AP75 *oracle* | TP / FP / FN auto |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in summary["auto"]:
        a, o = summary["auto"][key], summary["oracle"][key]
        lines.append(
            f"| {key} | {a['images']} | {a['particles']} | **{a['ap50']:.3f}** | {a['ap75']:.3f} | "
            f"*{o['ap50']:.3f}* | *{o['ap75']:.3f}* | {a['tp']} / {a['fp']} / {a['fn']} |"
        )
    seconds = sorted(r["auto"]["seconds"] for r in rows)
    lines += [
        "",
        f"Time per image (auto, incl. the size estimate): median {seconds[len(seconds) // 2]:.2f} s, "
        f"max {seconds[-1]:.2f} s; merged instances (one prediction holding ≥ 2 true particles): "
        f"{sum(r['auto']['merged'] for r in rows)} auto, {sum(r['oracle']['merged'] for r in rows)} oracle.",
        "",
        "Images losing the most matches with the defaults (FP + FN at IoU 0.5):",
        "",
        "| image | true particles | true px | estimate px | used px | passes | TP / FP / FN auto | TP / FP / FN *oracle* |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    worst = sorted(rows, key=lambda r: -(r["auto"]["fp50"] + r["auto"]["fn50"]))[:12]
    for r in worst:
        a, o = r["auto"], r["oracle"]
        est = f"{a['estimate_px']:.0f}" if a["estimate_px"] else "–"
        used = f"{a['used_px']:.0f}" if a["used_px"] else "native"
        lines.append(
            f"| `{r['name']}` | {r['n_true']} | {r['true_px']:.0f} | {est} | {used} | {a['passes']} | "
            f"{a['tp50']} / {a['fp50']} / {a['fn50']} | {o['tp50']} / {o['fp50']} / {o['fn50']} |"
        )
    if all("misses" in r for r in rows):
        lines += _misses_markdown(rows)
    return "\n".join(lines) + "\n"


def _misses_markdown(rows: list) -> list[str]:
    total = {cause: sum(r["misses"][cause] for r in rows) for cause in MISS_CAUSES}
    lines = [
        "",
        f"Why the defaults miss {sum(total.values())} particles (`--misses`, `miss_causes`: the first cause that holds; "
        "*flow QC* and *confidence*: found by the same pass without that filter, which would also add false objects):",
        "",
        "| " + " | ".join(MISS_CAUSES) + " |",
        "|" + "---:|" * len(MISS_CAUSES),
        "| " + " | ".join(str(total[cause]) for cause in MISS_CAUSES) + " |",
        "",
        "| image | true particles | missed | " + " | ".join(MISS_CAUSES) + " |",
        "|---|---:|---:|" + "---:|" * len(MISS_CAUSES),
    ]
    for r in sorted(rows, key=lambda r: -sum(r["misses"].values()))[:12]:
        m = r["misses"]
        lines.append(f"| `{r['name']}` | {r['n_true']} | {sum(m.values())} | " + " | ".join(str(m[cause]) for cause in MISS_CAUSES) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "emps_grouped.md")
    parser.add_argument("--misses", action="store_true", help="also why each missed particle is missed (two more passes per image)")
    args = parser.parse_args(argv)
    import torch
    from nc_synthmodel.files import atomic_write_text

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    report = run(args.model, args.datasets, misses=args.misses)
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with {args.threads} thread(s)",
        "model": args.model,
        "wall_s": time.perf_counter() - start,
    }
    command = "python benchmarks/emps_grouped.py " + " ".join(sys.argv[1:] if argv is None else argv)
    atomic_write_text(args.out, _markdown(report, command.strip(), meta))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({**report, "meta": meta}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
