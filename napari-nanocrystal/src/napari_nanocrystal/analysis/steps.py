"""The steps of the analysis of one image, used by :mod:`.single`, the widgets and the CLI alike.

read (:func:`read_micrograph`) → calibrate (:func:`iter_calibrate`) → segment (the model,
:func:`napari_nanocrystal.segment`, or the baseline, :func:`segment_baseline`) → drop the particles on the scale bar
(:func:`drop_on_scale_bar`, :func:`renumber`) → measure (:func:`measure_particles`,
:func:`exclusions`) → name the shapes (:func:`assign_shape_classes`) → summarise
(:func:`size_summary`, :func:`~nc_synthmodel.contract.outcome_from_particles`).

Inputs are checked by :mod:`napari_nanocrystal.validation`; errors of the reader and the
checks come out as :class:`AnalysisError` with the same message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Generator, Iterable

import numpy as np
import pandas as pd

from .. import validation
from ..images import MAX_PIXELS, ImageReadError, read_image

__all__ = [
    "AnalysisError",
    "SCALE_BAR_MARGIN_PX",
    "drop_on_scale_bar",
    "exclusions",
    "iter_calibrate",
    "read_micrograph",
    "remove_scale_bar_particles",
    "renumber",
    "scale_bar_boxes",
    "segment_baseline",
    "size_summary",
]

logger = logging.getLogger(__name__)

#: Instances within this many pixels of the scale bar or its label are taken for bar or glyphs.
SCALE_BAR_MARGIN_PX = 3

#: Calibration sources the user can ask for: "auto" = the file's pixel size, else the scale bar.
CALIBRATION_MODES = ("auto", "ocr", "metadata", "manual")


class AnalysisError(ValueError):
    """An image (or its labels) cannot be analysed; the message names the file or the problem."""


# ----------------------------------------------------------------------------------------
# read and check


@contextlib.contextmanager
def as_analysis_error():
    """Errors of the reader and the validation layer, as :class:`AnalysisError` (same message)."""
    try:
        yield
    except (ImageReadError, validation.InputError) as error:
        raise AnalysisError(str(error)) from None


def read_micrograph(path, *, plane: int | None = None, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, float | None, str | None]:
    """Read an image file and its stored pixel size, with errors that name the file and the problem.

    :func:`napari_nanocrystal.images.read_image` (see there for ``plane`` and ``max_pixels``),
    raising :class:`AnalysisError` instead of ``ImageReadError``.

    Returns
    -------
    (array, nm_per_px or None, "metadata" or None)
        The pixels as stored (gray, RGB or RGBA), the file's calibration and its source.

    Raises
    ------
    FileNotFoundError
        ``no such image file: <path>``.
    AnalysisError
        Unsupported file type, a file that cannot be decoded (corrupt, truncated, wrong
        type), an image above ``max_pixels``, a stack without ``plane``.
    """
    with as_analysis_error():
        return read_image(path, plane=plane, max_pixels=max_pixels)


def check_image(image, max_pixels: int | None) -> np.ndarray:
    with as_analysis_error():
        return validation.check_image(image, max_pixels=max_pixels)


def check_labels(labels, image_shape: tuple[int, ...]) -> np.ndarray:
    """An instance label image matching ``image_shape``: 2-D, integer, non-negative."""
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        hint = " — label a boolean mask first (skimage.measure.label)" if labels.dtype == bool else ""
        raise AnalysisError(f"labels must be an integer label image (0 = background, 1..N = particles); got dtype {labels.dtype}{hint}")
    if labels.ndim != 2:
        raise AnalysisError(f"labels must be 2-D (rows, columns); got shape {labels.shape}")
    if labels.shape != tuple(image_shape[:2]):
        raise AnalysisError(f"labels shape {labels.shape} does not match the image shape {tuple(image_shape[:2])}")
    if labels.size and labels.min() < 0:
        raise AnalysisError(f"labels must be non-negative (0 = background); found {labels.min()}")
    return labels


def check_options(nm_per_px, diameter_nm, min_area_px) -> tuple[float | None, float | str | None, float]:
    """Manual pixel size (plausible range, nm/px), diameter (nm or "auto"), minimum area (px)."""
    with as_analysis_error():
        return (
            validation.check_nm_per_px(nm_per_px, "nm_per_px"),
            validation.check_diameter(diameter_nm, "diameter_nm"),
            validation.check_min_area(min_area_px, "min_area_px"),
        )


# ----------------------------------------------------------------------------------------
# calibrate


def iter_calibrate(
    image,
    mode: str = "auto",
    *,
    manual_nm_per_px: float | None = None,
    metadata_nm_per_px: float | None = None,
    source_path=None,
    reader=None,
) -> Generator[tuple[str, float], None, object]:
    """Calibrate an image; a generator yielding ``(message, fraction)``, returning a ``ScaleBar``.

    The order of the sources is :func:`~napari_nanocrystal.scalebar.read_scale_bar`'s (a typed
    value > the file's pixel size > the scale bar read by OCR); ``mode`` narrows it:

    * ``"auto"``: the typed value if any, else the file's, else the scale bar;
    * ``"manual"``: the typed value; ``"metadata"``: the file's (a ``ScaleBarError`` without);
      ``"ocr"``: the scale bar, whatever the file says.

    ``source_path`` (the image file) lets the file's calibration be named precisely (the tag
    it came from, :func:`~napari_nanocrystal.scalebar.read_file_calibration`) when it agrees
    with ``metadata_nm_per_px`` (or stands alone).
    """
    from ..scalebar import ScaleBarError, read_file_calibration, read_scale_bar

    if mode not in CALIBRATION_MODES:
        raise ValueError(f"unknown calibration mode {mode!r}; choose one of {', '.join(CALIBRATION_MODES)}")
    if mode == "manual" or (mode == "auto" and manual_nm_per_px is not None):
        yield "typed value", 0.5
        return read_scale_bar(image, manual_nm_per_px=manual_nm_per_px)
    detail = None
    if mode in ("auto", "metadata") and source_path and os.path.isfile(source_path):
        yield "reading the file's calibration", 0.1
        found = read_file_calibration(source_path)
        if found is not None and (metadata_nm_per_px is None or abs(found.nm_per_px / metadata_nm_per_px - 1) < 1e-6):
            metadata_nm_per_px, detail = found.nm_per_px, found.detail
    if mode == "metadata" and metadata_nm_per_px is None:
        raise ScaleBarError("no pixel size in the file metadata: read the scale bar or type the value")
    if mode in ("auto", "metadata") and metadata_nm_per_px is not None:
        return read_scale_bar(image, metadata_nm_per_px=metadata_nm_per_px, metadata_detail=detail or "the file's calibration")
    yield "reading the scale bar (OCR)", 0.2
    bar = read_scale_bar(image, reader=reader)
    yield f"read {bar.text!r}", 1.0
    return bar


# ----------------------------------------------------------------------------------------
# segment


def segment_baseline(image, *, diameter_px="auto", min_size_px: int = 15) -> tuple[np.ndarray, np.ndarray, float | None]:
    """The classical Otsu–watershed baseline (no model), shaped like a model's result.

    Returns ``(labels int32 (rows, columns), confidence float32 (N,) all NaN, diameter_px)``;
    markers are :func:`~napari_nanocrystal.segmentation.evaluation.otsu_min_distance_px` apart
    for the given diameter (px; "auto"/None: not known), which is returned (None if not known).
    """
    from ..segmentation.evaluation import otsu_min_distance_px, otsu_watershed

    known = diameter_px if diameter_px and diameter_px != "auto" else None
    labels = otsu_watershed(image, min_distance_px=otsu_min_distance_px(known), min_size_px=int(min_size_px))
    return labels, np.full(int(labels.max(initial=0)), np.nan, np.float32), known


# ----------------------------------------------------------------------------------------
# drop the particles on the scale bar


def scale_bar_boxes(calibration) -> list[tuple[int, int, int, int]]:
    """The ``(r0, c0, r1, c1)`` boxes of the bar and its label of a ``ScaleBar`` or its dict (none: [])."""
    if calibration is None:
        return []
    get = calibration.get if isinstance(calibration, dict) else lambda key: getattr(calibration, key, None)
    return [tuple(int(v) for v in box) for box in (get("bar_box"), get("text_box")) if box is not None]


def drop_on_scale_bar(labels: np.ndarray, boxes: Iterable, margin_px: int = SCALE_BAR_MARGIN_PX) -> np.ndarray:
    """Set to 0, in place, the instances overlapping the boxes (grown by ``margin_px``); returns their ids.

    Segmentation often takes the scale bar and the glyphs of its label for particles.
    """
    region = np.zeros(labels.shape, bool)
    for box in boxes:
        if box is None:
            continue
        r0, c0, r1, c1 = (int(v) for v in box)
        region[max(0, r0 - margin_px) : r1 + margin_px, max(0, c0 - margin_px) : c1 + margin_px] = True
    hit = np.unique(labels[region & (labels > 0)])
    if hit.size:
        labels[np.isin(labels, hit)] = 0
    return hit


def renumber(labels: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 1..N in their order (in place where possible, int32) and the confidences that follow them."""
    import fastremap

    labels, remap = fastremap.renumber(labels, in_place=True)
    kept = sorted((old, new) for old, new in remap.items() if old and new)
    confidence = np.asarray([confidence[old - 1] for old, _ in kept], np.float32)
    return labels.astype(np.int32, copy=False), confidence


def remove_scale_bar_particles(labels: np.ndarray, confidence: np.ndarray, boxes: Iterable) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop the instances on the scale bar (:func:`drop_on_scale_bar`) and renumber the rest 1..N.

    Returns ``(labels int32, confidence float32 (N,), how many were dropped)``; with nothing
    dropped, the inputs as they were.
    """
    dropped = drop_on_scale_bar(labels, boxes)
    if not dropped.size:
        return labels, confidence, 0
    labels, confidence = renumber(labels, confidence)
    return labels, confidence, int(dropped.size)


# ----------------------------------------------------------------------------------------
# measure


def exclusions(labels: np.ndarray, exclude_border: bool, min_area_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Label ids touching the border (if excluded) and the remaining ones below ``min_area_px``."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = np.unique(edge[edge > 0]) if exclude_border else np.zeros(0, labels.dtype)
    areas = np.bincount(labels.ravel())
    small = np.flatnonzero((areas > 0) & (areas < min_area_px))
    small = small[(small > 0) & ~np.isin(small, border)]
    return border, small


def size_summary(table: pd.DataFrame) -> tuple[np.ndarray, str, str]:
    """``(diameters, unit, "D = …, σ/D = …, N = …")`` of a particle table (contract columns).

    D and σ/D are :func:`~nc_synthmodel.contract.outcome_from_particles`'s; an uncalibrated
    table (``ecd_nm`` missing) is summarised in px, from ``area_px``.
    """
    from nc_synthmodel.contract import outcome_from_particles

    diameters = table["ecd_nm"].to_numpy(dtype=float)
    unit = "nm"
    if len(diameters) == 0 or np.isnan(diameters).any():
        diameters = np.sqrt(4.0 * table["area_px"].to_numpy(dtype=float) / math.pi)
        unit = "px"
    if len(diameters) == 0:
        return diameters, unit, "N = 0"
    outcome = outcome_from_particles(table.assign(ecd_nm=diameters))
    return diameters, unit, f"D = {outcome.size_nm:.3g} {unit}, σ/D = {outcome.size_dispersion_pct:.1f} %, N = {outcome.n_particles}"
