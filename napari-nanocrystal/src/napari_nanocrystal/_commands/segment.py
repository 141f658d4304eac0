"""``nanocrystal segment``: particle label images from TEM images.

Example::

    nanocrystal segment image.png --out image_labels.tif --model runs/default/model.safetensors --diameter 18
    nanocrystal segment a.png b.tif --out labels/          # one <stem>_labels.tif per image

Each label TIFF (uint16, or uint32 beyond 65535 particles; 0 = background) gets a CSV beside it
(same stem, ``.csv``) with one row per particle: ``label, confidence, area_px, centroid_y_px,
centroid_x_px``; the two are written beside their targets and renamed into place together.
Images are read by :func:`napari_nanocrystal.images.read_image` (TIFF stacks need ``--plane``).
Before any work the command refuses outputs that exist (without ``--overwrite``) or that would
replace an input, and output folders it cannot write.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._args import PLANE_HELP, diameter_or_auto, fraction, plane_index, tile_size

logger = logging.getLogger(__name__)

_TIFF_SUFFIXES = (".tif", ".tiff")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment particles into a label TIFF (+ per-particle confidence CSV)",
        description="Segment the particles of TEM images with a seed/flow model; write label TIFFs and confidence CSVs. "
        "Existing outputs are never replaced without --overwrite, and an input is never replaced.",
        epilog="Exit status: 0 all images segmented, 1 some images failed (each named), 2 nothing done.",
    )
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (.tif .tiff .png .jpg .jpeg .bmp .dm3 .dm4)")
    parser.add_argument("--out", required=True, metavar="PATH", help="label TIFF for one image, or a folder for several")
    parser.add_argument("--model", default="default", metavar="default|FILE", help="'default', a shipped model name or a weight file")
    parser.add_argument(
        "--diameter",
        type=diameter_or_auto,
        default="auto",
        metavar="PX|auto",
        help="typical particle diameter in px (default 'auto': estimated by the model's size model)",
    )
    parser.add_argument(
        "--confidence",
        type=fraction,
        default=0.5,
        metavar="P",
        help="drop particles whose mean seed probability is below P, within [0, 1] (0: keep all)",
    )
    parser.add_argument("--tile-size", type=tile_size, default=512, metavar="PX", help="network tile size (≥ 16 px)")
    parser.add_argument("--plane", type=plane_index, default=None, metavar="K", help=PLANE_HELP)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files (never an input)")
    parser.set_defaults(func=run)


def _outputs(images: list[Path], out: Path) -> list[Path]:
    if len(images) == 1 and out.suffix.lower() in _TIFF_SUFFIXES:
        return [out]
    if out.suffix.lower() in _TIFF_SUFFIXES:
        raise ValueError(f"{len(images)} images need --out to be a folder, not the file {out}")
    stems = [p.stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise ValueError(f"several images share the name {duplicates[0]!r}: their outputs would collide in {out}")
    return [out / f"{p.stem}_labels.tif" for p in images]


def check_outputs(images: list[Path], outputs: list[Path], overwrite: bool) -> None:
    """Before any work: no label TIFF or CSV replaces an input, none exists (unless ``overwrite``), folders writable."""
    from nc_synthmodel.files import check_output, check_writable_dir

    for path in outputs:
        for target in (path, path.with_suffix(".csv")):
            check_output(target, overwrite=overwrite, inputs=images)
    for folder in sorted({p.parent for p in outputs}):
        check_writable_dir(folder)


def particle_table(result):
    """One row per particle of a SegmentationResult: label, confidence, area_px, centroid_y_px, centroid_x_px."""
    import numpy as np
    import pandas as pd
    from scipy import ndimage

    n = result.n_objects
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(result.labels), result.labels, index) if n else np.zeros(0)
    centres = (
        np.asarray(ndimage.center_of_mass(np.ones_like(result.labels), result.labels, index)).reshape(-1, 2) if n else np.zeros((0, 2))
    )
    return pd.DataFrame(
        {
            "label": index.astype(int),
            "confidence": result.confidence.astype(float),
            "area_px": np.asarray(area, dtype=int),
            "centroid_y_px": centres[:, 0],
            "centroid_x_px": centres[:, 1],
        }
    )


def _segment_one(image_path: Path, out_path: Path, net, args: argparse.Namespace) -> int:
    """Segment one image and write its label TIFF and CSV together; return the number of particles."""
    from napari_nanocrystal.analysis import write_together
    from napari_nanocrystal.images import read_image
    from napari_nanocrystal.label_files import label_tiff_bytes
    from napari_nanocrystal.segmentation.inference import segment

    image, _, _ = read_image(image_path, plane=args.plane)
    result = segment(image, net, diameter_px=args.diameter, confidence_threshold=args.confidence or None, tile_size=args.tile_size)
    write_together(
        {
            out_path: label_tiff_bytes(result.labels),
            out_path.with_suffix(".csv"): particle_table(result).to_csv(index=False).encode("utf-8"),
        }
    )
    return result.n_objects


def run(args: argparse.Namespace) -> int:
    from napari_nanocrystal.segmentation.network import resolve_model
    from napari_nanocrystal.validation import check_model_file

    images = [Path(p) for p in args.images]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        print(f"nanocrystal segment: error: image not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        outputs = _outputs(images, Path(args.out))
        check_outputs(images, outputs, args.overwrite)
        check_model_file(args.model)
        net = resolve_model(args.model)
    except (FileNotFoundError, ValueError, TypeError, OSError) as error:
        print(f"nanocrystal segment: error: {error}", file=sys.stderr)
        return 2
    failed = 0
    for image_path, out_path in zip(images, outputs):
        try:
            n = _segment_one(image_path, out_path, net, args)
        except (OSError, ValueError, ImportError, RuntimeError, MemoryError) as error:
            failed += 1
            message = str(error)
            print(f"FAILED {message if str(image_path) in message else f'{image_path}: {message}'}", file=sys.stderr)
            continue
        print(f"{image_path}: {n} particles -> {out_path}")
    if failed == len(images):
        return 2 if len(images) == 1 else 1
    return 1 if failed else 0
