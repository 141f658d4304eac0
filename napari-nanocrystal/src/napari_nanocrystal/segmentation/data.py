"""EMPS dataset access, image/label readers and weak labels.

EMPS (Yildirim & Cole, J. Chem. Inf. Model. 2021; MIT licence), training split as laid out in
the shared datasets folder: ``emps-train/images/<name>.png`` (RGB figure crops),
``emps-train/segmaps/<name>.png`` (16-bit instance maps, 0 = background), ``train.csv`` (one
name per line, no header).  The datasets are read in place, never copied.

Fixed validation split (:func:`emps_split`): sort the names of ``train.csv``; the names at
positions 0, 5, 10, … (every 5th, starting with the first) are validation, the rest training.
For the 366 EMPS-train images that is 74 validation and 292 training images.  The split
depends only on the set of names, so it is the same on every machine and in every run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "VALIDATION_EVERY",
    "emps_names",
    "emps_split",
    "iter_emps",
    "load_emps_pair",
    "read_image",
    "read_labels",
    "weak_label_from_pair",
]

logger = logging.getLogger(__name__)

#: Every VALIDATION_EVERY-th name (sorted order, starting at index 0) is a validation image.
VALIDATION_EVERY = 5


def read_image(path) -> np.ndarray:
    """Read an image file as stored: (H, W) gray or (H, W, 3|4) RGB(A), original dtype.

    TIFF through ``tifffile``, everything else through Pillow (palette images are expanded to
    RGB/RGBA, gray + alpha to gray).
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    from PIL import Image

    with Image.open(path) as image:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "LA":
            image = image.convert("L")
        elif image.mode not in ("1", "L", "RGB", "RGBA", "I", "I;16", "I;16B", "I;16L", "F"):
            image = image.convert("RGB")
        return np.array(image)


def read_labels(path) -> np.ndarray:
    """Read an instance label image (0 = background) as int32 (H, W)."""
    labels = read_image(path)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: not a single-channel integer label image (shape {labels.shape}, dtype {labels.dtype})")
    return labels.astype(np.int32)


def emps_names(root) -> list[str]:
    """Sorted image names (without extension) listed in ``<root>/train.csv``."""
    listing = Path(root) / "train.csv"
    if not listing.is_file():
        raise FileNotFoundError(f"EMPS listing not found: {listing} (root should be the emps-train folder)")
    names = {line.strip().split(",")[0] for line in listing.read_text(encoding="utf-8").splitlines()}
    names.discard("")
    names.discard("name")  # tolerate a header line
    return sorted(names)


def emps_split(root) -> tuple[list[str], list[str]]:
    """Fixed train/validation split of EMPS-train: (train_names, val_names), both sorted.

    Validation = sorted names at indices 0, 5, 10, … (every :data:`VALIDATION_EVERY`-th).
    """
    names = emps_names(root)
    val = names[::VALIDATION_EVERY]
    val_set = set(val)
    return [n for n in names if n not in val_set], val


def load_emps_pair(root, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One EMPS example: (image uint8 (H, W, 3) RGB, labels int32 (H, W), 0 = background)."""
    root = Path(root)
    image = read_image(root / "images" / f"{name}.png")
    labels = read_labels(root / "segmaps" / f"{name}.png")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"EMPS {name}: image {image.shape} and labels {labels.shape} differ in size")
    return image, labels


def iter_emps(root, names: Sequence[str] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (image, labels) pairs of ``names`` (default: all of train.csv, sorted)."""
    for name in emps_names(root) if names is None else names:
        yield load_emps_pair(root, name)


def weak_label_from_pair(pair) -> np.ndarray:
    """Weak label (0 / 1 / 255) from the paper's side-by-side weak-label image.

    Parameters
    ----------
    pair : array_like, (H, 2·W) gray
        Left half: the uncertain boundary band (non-zero = uncertain); right half: the
        foreground (non-zero = particle), as in ``weak_1-0001_weaklabel_pair.png``.

    Returns
    -------
    np.ndarray
        uint8 (H, W): 0 = background, 1 = foreground, 255 = uncertain (excluded from the loss).
    """
    pair = np.asarray(pair)
    if pair.ndim == 3:
        pair = pair[..., 0]
    if pair.ndim != 2 or pair.shape[1] % 2:
        raise ValueError(f"weak-label pair must be (H, 2*W) gray; got shape {pair.shape}")
    width = pair.shape[1] // 2
    uncertain, foreground = pair[:, :width] > 0, pair[:, width:] > 0
    weak = foreground.astype(np.uint8)
    weak[uncertain] = 255
    return weak
