"""``nanocrystal segment``: particle label images from TEM images.

Example::

    nanocrystal segment image.png --out image_labels.tif --model runs/default/model.safetensors --diameter 18
    nanocrystal segment a.png b.tif --out labels/          # one <stem>_labels.tif per image

Each label TIFF (uint16, or uint32 beyond 65535 particles; 0 = background) is written
atomically and gets a CSV beside it (same stem, ``.csv``) with one row per particle:
``label, confidence, area_px, centroid_y_px, centroid_x_px``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._args import diameter_or_auto

logger = logging.getLogger(__name__)

_TIFF_SUFFIXES = (".tif", ".tiff")



def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment particles into a label TIFF (+ per-particle confidence CSV)",
        description="Segment the particles of TEM images with a seed/flow model; write label TIFFs and confidence CSVs.",
    )
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, TIFF, JPEG, …)")
    parser.add_argument("--out", required=True, metavar="PATH", help="label TIFF for one image, or a folder for several")
    parser.add_argument("--model", default="default", metavar="default|FILE", help="'default', a shipped model name or a weight file")
    parser.add_argument(
        "--diameter", type=diameter_or_auto, metavar="PX|auto",
        help="typical particle diameter in px, or 'auto' to let the model estimate it (default: run at the image's size)",
    )
    parser.add_argument("--confidence", type=float, default=0.5, metavar="P", help="drop particles whose mean seed probability is below P (0: keep all)")
    parser.add_argument("--tile-size", type=int, default=512, metavar="PX", help="network tile size")
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


def write_labels(path: Path, labels) -> None:
    """Write an int label image as a TIFF, atomically (uint16 when it fits, else uint32)."""
    import numpy as np
    import tifffile

    labels = np.asarray(labels)
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    from nc_synthmodel.io import atomic_path

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib")


def particle_table(result):
    """One row per particle of a SegmentationResult: label, confidence, area_px, centroid_y_px, centroid_x_px."""
    import numpy as np
    import pandas as pd
    from scipy import ndimage

    n = result.n_objects
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(result.labels), result.labels, index) if n else np.zeros(0)
    centres = np.asarray(ndimage.center_of_mass(np.ones_like(result.labels), result.labels, index)).reshape(-1, 2) if n else np.zeros((0, 2))
    return pd.DataFrame(
        {
            "label": index.astype(int),
            "confidence": result.confidence.astype(float),
            "area_px": np.asarray(area, dtype=int),
            "centroid_y_px": centres[:, 0],
            "centroid_x_px": centres[:, 1],
        }
    )


def run(args: argparse.Namespace) -> int:
    from napari_nanocrystal.segmentation.data import read_image
    from napari_nanocrystal.segmentation.inference import segment
    from napari_nanocrystal.segmentation.network import resolve_model
    from nc_synthmodel.io import atomic_write_text

    images = [Path(p) for p in args.images]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        print(f"error: image not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        outputs = _outputs(images, Path(args.out))
        net = resolve_model(args.model)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for image_path, out_path in zip(images, outputs):
        try:
            image = read_image(image_path)
            result = segment(image, net, diameter_px=args.diameter, confidence_threshold=args.confidence or None, tile_size=args.tile_size)
        except (OSError, ValueError) as error:
            print(f"error: {image_path}: {error}", file=sys.stderr)
            return 2
        write_labels(out_path, result.labels)
        atomic_write_text(out_path.with_suffix(".csv"), particle_table(result).to_csv(index=False))
        print(f"{image_path}: {result.n_objects} particles -> {out_path}")
    return 0
