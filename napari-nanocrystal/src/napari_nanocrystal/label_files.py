"""Label and weak-label files: the one encoder per format and the training-pair file layout.

A torch-free leaf (numpy; tifffile and Pillow imported when a file is encoded) that the
analysis, the CLI commands, the widgets, the synthetic-image writer and the training data
code all use, so that every label file is written by one rule:

* instance labels (0 = background, 1..N = particles) → TIFF as **uint16 when the largest
  label fits (≤ 65,535), else uint32** (:func:`label_tiff_bytes`); with a pixel size, a
  uint16 file is an ImageJ TIFF calibrated in nm and a uint32 one (ImageJ has no uint32)
  carries the same pixel size in the standard resolution tags (px per cm).  Labels are
  never written as floats: every reader of this package takes them back as integers.
* instance labels → PNG (:func:`label_png_bytes`): 16-bit, so at most 65,535 labels; more
  is refused with an error that says to use TIFF.
* weak labels (:data:`BACKGROUND` 0, :data:`FOREGROUND` 1, :data:`UNCERTAIN` 255) → 8-bit
  PNG (:func:`png_bytes`).

Training pairs in the flat layout (what ``nanocrystal train``, the Train widget and
:func:`napari_nanocrystal.segmentation.data.find_labelled_pairs` /
:func:`~napari_nanocrystal.segmentation.data.find_weak_pairs` read): ``<name>_image.<ext>``
beside ``<name>_instances.tif`` (also ``_labels``, ``_masks``) or ``<name>_weak.png`` (also the
paper's ``_weaklabel_pair``); see :func:`weak_pair_paths`, :func:`labelled_pair_paths` and
:func:`weak_label_name`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

__all__ = [
    "BACKGROUND",
    "FOREGROUND",
    "UNCERTAIN",
    "IMAGE_ENDING",
    "LABEL_SUFFIXES",
    "WEAK_SUFFIXES",
    "file_stem",
    "label_dtype",
    "label_png_bytes",
    "label_tiff_bytes",
    "labelled_pair_paths",
    "png_bytes",
    "tiff_bytes",
    "weak_label_name",
    "weak_pair_paths",
]

#: Weak-label values: background (a loss term), particle (a loss term), uncertain (no loss).
BACKGROUND, FOREGROUND, UNCERTAIN = 0, 1, 255

#: Stem ending of the image of a flat-layout pair (``<name>_image.<ext>``).
IMAGE_ENDING = "_image"
#: Stem endings of instance-label files of a flat-layout pair (the first is the one written).
LABEL_SUFFIXES = ("_instances", "_labels", "_masks")
#: Stem endings of weak-label files of a flat-layout pair (the first is the one written).
WEAK_SUFFIXES = ("_weak", "_weaklabel_pair")

_UINT16_MAX = int(np.iinfo(np.uint16).max)


# ----------------------------------------------------------------------------------------
# encoders


def _integer_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"labels must be a 2-D integer image (0 = background); got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be non-negative (0 = background); found {labels.min()}")
    return labels


def label_dtype(labels) -> type:
    """uint16 when the largest label is at most 65,535, else uint32 (the one rule for label files)."""
    return np.uint16 if int(np.asarray(labels).max(initial=0)) <= _UINT16_MAX else np.uint32


def label_tiff_bytes(labels, *, nm_per_px: float | None = None) -> bytes:
    """TIFF bytes of an instance label image (zlib-compressed; dtype by :func:`label_dtype`).

    Parameters
    ----------
    labels : (rows, columns) non-negative integer array, 0 = background
    nm_per_px : float, optional
        Pixel size: an ImageJ calibration in nm (uint16), or the resolution tags in px per cm
        (uint32, which ImageJ files cannot hold).  Both are read back by
        :func:`napari_nanocrystal.images.read_image`.
    """
    import tifffile

    labels = _integer_labels(labels)
    data = labels.astype(label_dtype(labels))
    options: dict = {"compression": "zlib"}
    if nm_per_px is not None:
        if data.dtype == np.uint16:
            options.update(imagej=True, resolution=(1.0 / nm_per_px, 1.0 / nm_per_px), metadata={"unit": "nm"})
        else:
            px_per_cm = 1e7 / nm_per_px
            options.update(resolution=(px_per_cm, px_per_cm), resolutionunit="CENTIMETER", metadata=None)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **options)
    return buffer.getvalue()


def png_bytes(array) -> bytes:
    """PNG bytes of a uint8 (or uint16) gray, RGB or RGBA array, as given (weak labels, overlays)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def label_png_bytes(labels) -> bytes:
    """16-bit PNG bytes of an instance label image; more than 65,535 labels is refused (use TIFF)."""
    labels = _integer_labels(labels)
    if label_dtype(labels) is not np.uint16:
        raise ValueError(
            f"a PNG holds at most 65,535 labels; this image has labels up to {int(labels.max())}: write a TIFF (label_tiff_bytes)"
        )
    return png_bytes(labels.astype(np.uint16))


def tiff_bytes(image) -> bytes:
    """TIFF bytes of a micrograph as given: (rows, columns) gray or (rows, columns, 3|4) RGB(A)."""
    import tifffile

    image = np.asarray(image)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image, photometric="rgb" if image.ndim == 3 else "minisblack")
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------
# the flat training-pair layout


def file_stem(name: str) -> str:
    """A file-name-safe stem for a name (a layer name): runs of other characters become ``_``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return stem or "image"


def weak_pair_paths(folder, name: str) -> tuple[Path, Path]:
    """``(<stem>_image.tif, <stem>_weak.png)`` in ``folder``: an image and its weak label, as written for training."""
    stem = file_stem(name)
    folder = Path(folder)
    return folder / f"{stem}{IMAGE_ENDING}.tif", folder / f"{stem}{WEAK_SUFFIXES[0]}.png"


def labelled_pair_paths(folder, name: str, *, image_suffix: str = ".png") -> tuple[Path, Path]:
    """``(<name>_image<image_suffix>, <name>_instances.tif)`` in ``folder``: an image and its instance labels."""
    folder = Path(folder)
    return folder / f"{name}{IMAGE_ENDING}{image_suffix}", folder / f"{name}{LABEL_SUFFIXES[0]}.tif"


def weak_label_name(image) -> str:
    """``<name>_weak.png`` for an image file ``<name>[_image].<ext>`` (its weak label beside it)."""
    stem = Path(image).stem
    if stem.endswith(IMAGE_ENDING) and len(stem) > len(IMAGE_ENDING):
        stem = stem[: -len(IMAGE_ENDING)]
    return f"{stem}{WEAK_SUFFIXES[0]}.png"
