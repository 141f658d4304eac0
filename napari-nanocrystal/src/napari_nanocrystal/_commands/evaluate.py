"""``nanocrystal evaluate``: AP50/75/90 and mean IoU of a segmentation model on labelled images.

Example::

    nanocrystal evaluate runs/default/model.safetensors /data/emps-train --split val --baseline
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from ._args import positive_int

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
    parser.add_argument("--split", choices=("val", "train", "all"), default="val", help="held-out images of the training split (default), the rest, or all")
    parser.add_argument(
        "--diameter",
        default="true",
        metavar="PX|true|auto|none",
        help="particle diameter for segment(): 'true' = each image's true median diameter (default), "
        "'auto' = estimated by the model, 'none' = native size, or px",
    )
    parser.add_argument("--max-images", type=positive_int, metavar="N", help="only N images, evenly spread")
    parser.add_argument("--confidence", type=float, metavar="P", help="confidence threshold of segment() (default 0.5)")
    parser.add_argument("--baseline", action="store_true", help="also score the Otsu + watershed baseline")
    parser.add_argument("--json", metavar="FILE", help="write the full report (per-image AP too) as JSON")
    parser.set_defaults(func=run)


def _diameter(text: str):
    if text in ("true", "auto"):
        return text
    if text.lower() == "none":
        return None
    value = float(text)
    if not value > 0:
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
        f"{'':16s}  {'AP50':>6s}  {'AP75':>6s}  {'AP90':>6s}  {'meanIoU':>7s}  {'n_pred':>7s}",
    ]
    for name, scores in rows:
        lines.append(
            f"{name:16s}  {_fmt(scores.get('ap50'))}  {_fmt(scores.get('ap75'))}  {_fmt(scores.get('ap90'))}  "
            f"{_fmt(scores.get('mean_iou_matched')):>7s}  {scores['n_pred']:7d}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from nc_synthmodel.io import atomic_write_text

    from napari_nanocrystal.segmentation.training import evaluate_model, json_safe

    try:
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
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model: {args.model}")
    print(format_table(report))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(report), indent=1) + "\n")
    return 0
