"""npe2 reader: TEM micrographs (TIFF, PNG, JPEG, DM3, DM4) as image layers scaled in nm.

The pixel size stored in the file (TIFF resolution tags or ImageJ calibration, the
DigitalMicrograph x-axis calibration; see :func:`napari_nanocrystal.images.read_image`, the one
reader every entry point uses)
becomes the layer's ``scale`` with ``units="nm"``.  Files without one open at scale (1, 1)
in pixels, marked ``"calibrated": False`` in the layer metadata (their scale bar can be read
later; the reader does not run OCR).  Pixels are kept as stored; RGB/RGBA images open as
``rgb=True`` layers.  No Qt or napari import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analysis import read_micrograph
from .images import IMAGE_SUFFIXES

__all__ = ["napari_get_reader", "read_micrographs"]

logger = logging.getLogger(__name__)

LayerDataTuple = tuple[Any, dict[str, Any], str]


def _as_paths(path) -> list[str] | None:
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    if isinstance(path, Sequence) and path and all(isinstance(p, (str, os.PathLike)) for p in path):
        return [os.fspath(p) for p in path]
    return None


def napari_get_reader(path) -> Callable[[Any], list[LayerDataTuple]] | None:
    """The reader function for ``path`` (a path or a list of paths), or None if not ours.

    Accepted: existing-or-not files whose suffix is one of
    :data:`~napari_nanocrystal.images.IMAGE_SUFFIXES` (case-insensitive); folders and
    other types are declined (None).  Read errors are raised by the returned function.
    """
    paths = _as_paths(path)
    if paths is None:
        return None
    for p in paths:
        if Path(p).suffix.lower() not in IMAGE_SUFFIXES or os.path.isdir(p):
            return None
    return read_micrographs


def _layer(path: Path) -> LayerDataTuple:
    data, nm_per_px, source = read_micrograph(path, max_pixels=None)
    calibrated = nm_per_px is not None
    scale = (nm_per_px, nm_per_px) if calibrated else (1.0, 1.0)
    kwargs: dict[str, Any] = {
        "name": path.stem,
        "scale": scale,
        "units": ("nm", "nm") if calibrated else ("pixel", "pixel"),
        "metadata": {
            "nm_per_px": nm_per_px,
            "calibration_source": source,
            "calibrated": calibrated,
            "source_path": str(path),
        },
    }
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        kwargs["rgb"] = True
    logger.info("read %s: shape %s, %s", path.name, data.shape, f"{nm_per_px:.4g} nm/px" if calibrated else "not calibrated")
    return data, kwargs, "image"


def read_micrographs(path) -> list[LayerDataTuple]:
    """Read one or more micrographs: one ``(data, kwargs, "image")`` tuple each.

    ``kwargs``: ``name`` (file stem), ``scale`` (nm/px, nm/px) or (1, 1), ``units``,
    ``metadata`` {``nm_per_px``, ``calibration_source`` ("metadata" or None), ``calibrated``,
    ``source_path``} and ``rgb=True`` for (rows, columns, 3|4) data.

    Raises ``FileNotFoundError`` or :class:`~napari_nanocrystal.analysis.AnalysisError`
    naming the file and the problem (unsupported, corrupt or truncated file; a stack or
    multi-channel TIFF, named with its axes — napari opens no plane of it silently).
    """
    paths = _as_paths(path)
    if paths is None:
        raise TypeError(f"expected a path or a list of paths, not {type(path).__name__}")
    return [_layer(Path(p)) for p in paths]
