"""``nanocrystal evaluate``: AP50/75/90 and mean IoU of a segmentation model on labelled images.

Example::

    nanocrystal evaluate runs/default/model.safetensors /data/emps-train --split val --baseline
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys

from ._args import fraction, positive_int

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a segmentation model on labelled images (AP50/75/90, mean IoU)",
        description=(
            "Segment labelled images with MODEL and score them against the instance maps (cellpose's AP = "
            "TP / (TP + FP + FN), pooled over images).  DATA: an EMPS-layout folder (images/ + segmaps/, train.csv), "
            "a folder of <name>_image + <name>_instances files, or one *_image file."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="'default', a shipped model name or a weight file (.safetensors)")
    parser.add_argument("data", metavar="DATA", nargs="+", help="labelled folder(s) or *_image file(s)")
    parser.add_argument(
        "--split", choices=("val", "train", "all"), default="val", help="held-out images of the training split (default), the rest, or all"
    )
    parser.add_argument(
        "--diameter",
        default="auto",
        metavar="PX|auto|true|none",
        help="particle diameter for segment(): 'auto' = estimated by the model (default, what a user gets), "
        "'true' = each image's true median diameter (an oracle), 'none' = native size, or px",
    )
    parser.add_argument("--max-images", type=positive_int, metavar="N", help="only N images, evenly spread")
    parser.add_argument("--confidence", type=fraction, metavar="P", help="confidence threshold of segment(), within [0, 1] (default 0.5)")
    parser.add_argument("--baseline", action="store_true", help="also score the Otsu + watershed baseline")
    parser.add_argument("--json", metavar="FILE", help="write the full report (per-image AP too) as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file (never an input)")
    parser.set_defaults(func=run)


def _diameter(text: str):
    if text in ("true", "auto"):
        return text
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--diameter must be a number of px, 'true', 'auto' or 'none', not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"--diameter must be positive, 'true', 'auto' or 'none', not {text}")
    return value


def _fmt(value) -> str:
    return "   n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.3f}"


def format_table(report: dict) -> str:
    """The AP50/75/90 + mean IoU table of an :func:`evaluate_model` report."""
    rows = [("model", report["model"])] + ([("otsu+watershed", report["otsu"])] if "otsu" in report else [])
    first = report["model"]
    lines = [
        f"{first['n_images']} images ({report['split']}), {first['n_true']} true particles; diameter: {report['diameter']}",
        f"{'':16s}  {'AP50':>6s}  {'AP75':>6s}  {'AP90':>6s}  {'meanIoU':>7s}  {'n_pred':>7s}  {'merged':>6s}",
    ]
    for name, scores in rows:
        lines.append(
            f"{name:16s}  {_fmt(scores.get('ap50'))}  {_fmt(scores.get('ap75'))}  {_fmt(scores.get('ap90'))}  "
            f"{_fmt(scores.get('mean_iou_matched')):>7s}  {scores['n_pred']:7d}  {scores.get('n_merged', 0):6d}"
        )
    size = report.get("size_estimate")
    if size:
        lines.append(
            f"size model on {size['images']} images: median |log(estimate / true median)| {size['median_abs_log_error']:.3f}, "
            f"within 1.5x {100 * size['within_1.5x']:.0f} %, within 2x {100 * size['within_2x']:.0f} %"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from nc_synthmodel.files import atomic_write_text, check_output, check_writable_dir

    from napari_nanocrystal.segmentation.training import evaluate_model, json_safe
    from napari_nanocrystal.validation import check_model_file

    try:
        if args.json:  # before the evaluation, not after it
            check_output(args.json, overwrite=args.overwrite, inputs=[args.model, *args.data])
            check_writable_dir(os.path.dirname(os.path.abspath(args.json)))
        check_model_file(args.model)
        diameter = _diameter(args.diameter)
        options = {} if args.confidence is None else {"confidence_threshold": args.confidence}
        report = evaluate_model(
            args.model,
            list(args.data),
            split=args.split,
            diameter=diameter,
            max_images=args.max_images,
            baseline=args.baseline,
            segment_options=options,
        )
    except (FileNotFoundError, ValueError, TypeError, OSError) as error:
        print(f"nanocrystal evaluate: error: {error}", file=sys.stderr)
        return 2
    print(f"model: {args.model}")
    print(format_table(report))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(report), indent=1) + "\n")
    return 0
