"""Per-particle measurements of a label image, in the :data:`PARTICLE_COLUMNS` schema.

scikit-image's ``regionprops`` does the geometry (area, moments, centroid, convex
hull); this module adds what it lacks: calibrated sizes, the equivalent circle diameter,
circularity and convexity with a perimeter estimator that is accurate for both round
and straight-edged particles, and the table contract of :mod:`nc_synthmodel.contract`.

Perimeter estimator
-------------------
Circularity 4πA/P² is only meaningful if P is unbiased.  On pixel masks the common
estimators are not: skimage ``perimeter`` (4-neighbourhood) overestimates the perimeter
of a disc by ~5 % (circularity ≈ 0.91 for r = 80 px), the 8-neighbourhood one by ~25 %
(≈ 0.63), and ``perimeter_crofton`` (4 directions), exact for discs (≈ 1.00), under-
estimates axis-aligned edges by ~6 % (an upright square gets 0.88 instead of π/4 = 0.785).
We therefore measure P as the length of the sub-pixel iso-contour at level 0.5
(``find_contours``, marching squares) simplified with Douglas–Peucker at a tolerance of
1 px (``approximate_polygon``), which removes the pixel staircase but keeps real corners:
disc 0.98–1.00, square (any rotation) 0.78–0.83, 2:1 ellipse within 1 % of the analytic
value.  The same estimator gives the convex perimeter for the convexity P_convex / P.
Area A is the pixel count.  Both ratios are clipped to [0, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from nc_synthmodel.contract import PARTICLE_COLUMNS, empty_particle_table, validate_particle_table
from skimage.measure import approximate_polygon, find_contours, regionprops

__all__ = ["measure_particles"]

logger = logging.getLogger(__name__)

#: Douglas–Peucker tolerance (px) used to remove the pixel staircase from contours.
PERIMETER_TOLERANCE_PX = 1.0


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D integer image (rows, columns); got ndim={labels.ndim}, shape={labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be an integer label image (0 = background, 1..N = particles); got dtype {labels.dtype}"
            + (" — use skimage.measure.label(mask) to label a boolean mask" if labels.dtype == bool else "")
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be non-negative (0 = background); found {labels.min()}")
    return labels


def _check_nm_per_px(nm_per_px) -> float | None:
    """None, or a pixel size in the plausible range (the one validation layer: :mod:`.validation`)."""
    from .validation import check_nm_per_px

    return check_nm_per_px(nm_per_px, "nm_per_px")


def _polygon_perimeter_px(mask: np.ndarray, tolerance_px: float = PERIMETER_TOLERANCE_PX) -> float:
    """Perimeter (px) of a binary mask: length of its 0.5 iso-contours after Douglas–Peucker.

    Sums all contours (outer boundary and holes).  0 for an empty mask.
    """
    padded = np.pad(np.asarray(mask, dtype=float), 1)
    total = 0.0
    for contour in find_contours(padded, 0.5):
        if len(contour) < 2:
            continue
        polygon = approximate_polygon(contour, tolerance_px) if len(contour) > 3 else contour
        if len(polygon) < 3:  # a tiny object collapsed to a segment: keep the raw contour
            polygon = contour
        total += float(np.hypot(*np.diff(polygon, axis=0).T).sum())
    return total


def _confidence_lookup(confidence, labels_present: np.ndarray) -> np.ndarray:
    out = np.full(len(labels_present), np.nan)
    if confidence is None:
        return out
    if isinstance(confidence, Mapping):
        for i, lab in enumerate(labels_present):
            value = confidence.get(int(lab), confidence.get(lab, np.nan))
            out[i] = np.nan if value is None else float(value)
        return out
    scores = np.asarray(confidence, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"confidence must be a mapping label → score or a 1-D array indexed by label; got ndim={scores.ndim}")
    if len(labels_present) and scores.shape[0] <= labels_present.max():
        raise ValueError(f"confidence array has {scores.shape[0]} entries but is indexed by label up to {int(labels_present.max())}")
    return scores[labels_present] if len(labels_present) else out


def measure_particles(
    labels,
    nm_per_px: float | None = None,
    *,
    exclude_border: bool = False,
    min_area_px: float = 0,
    confidence=None,
) -> pd.DataFrame:
    """Measure every particle of a label image.

    Parameters
    ----------
    labels : (rows, columns) integer array
        Instance labels, 0 = background, 1..N = particles.
    nm_per_px : float, optional
        Pixel size in nm.  ``None`` (uncalibrated) leaves ``area_nm2`` and ``ecd_nm`` NaN.
    exclude_border : bool
        Drop particles that touch the image border (they are cut and would bias sizes).
    min_area_px : float
        Drop particles smaller than this many pixels.
    confidence : mapping label → score, or 1-D array indexed by label, optional
        Per-particle confidence (e.g. mean seed probability); NaN where unknown.

    Returns
    -------
    pandas.DataFrame
        One row per kept particle, in label order, with exactly the columns of
        :data:`nc_synthmodel.contract.PARTICLE_COLUMNS`; ``shape_cluster`` is -1 and
        ``shape_class`` None (filled later by :mod:`napari_nanocrystal.shapes`).
    """
    labels = _check_labels(labels)
    scale = _check_nm_per_px(nm_per_px)
    if not (np.isfinite(min_area_px) and min_area_px >= 0):
        raise ValueError(f"min_area_px must be a non-negative number, not {min_area_px!r}")

    rows = []
    n_border = n_small = 0
    n_rows, n_cols = labels.shape
    for region in regionprops(labels):
        r0, c0, r1, c1 = region.bbox
        if exclude_border and (r0 == 0 or c0 == 0 or r1 == n_rows or c1 == n_cols):
            n_border += 1
            continue
        area_px = float(region.area)
        if area_px < min_area_px:
            n_small += 1
            continue
        perimeter = _polygon_perimeter_px(region.image)
        convex_perimeter = _polygon_perimeter_px(region.image_convex)
        circularity = min(4.0 * math.pi * area_px / perimeter**2, 1.0) if perimeter > 0 else np.nan
        convexity = min(convex_perimeter / perimeter, 1.0) if perimeter > 0 else np.nan
        major, minor = float(region.axis_major_length), float(region.axis_minor_length)
        aspect = major / minor if minor > 0 else np.nan  # a 1-px-thin line has no minor axis
        ecd_px = math.sqrt(4.0 * area_px / math.pi)
        cy, cx = region.centroid
        rows.append(
            {
                "label": int(region.label),
                "area_px": area_px,
                "area_nm2": area_px * scale**2 if scale else np.nan,
                "ecd_nm": ecd_px * scale if scale else np.nan,
                "circularity": circularity,
                "solidity": float(region.solidity),
                "convexity": convexity,
                "eccentricity": float(region.eccentricity),
                "aspect_ratio": aspect,
                "centroid_y_px": float(cy),
                "centroid_x_px": float(cx),
                "confidence": np.nan,
                "shape_cluster": -1,
                "shape_class": None,
            }
        )
    logger.debug("measured %d particles (%d on the border, %d below %s px dropped)", len(rows), n_border, n_small, min_area_px)
    if not rows:
        return validate_particle_table(empty_particle_table())
    table = pd.DataFrame(rows, columns=list(PARTICLE_COLUMNS))
    table["confidence"] = _confidence_lookup(confidence, table["label"].to_numpy())
    table["shape_class"] = table["shape_class"].astype(object)
    return validate_particle_table(table)
