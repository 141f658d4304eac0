"""One image: :func:`iter_analyze_image` (a progress generator) and :func:`analyze_image`.

The steps are those of :mod:`.steps`; the result is an :class:`ImageAnalysis`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from nc_synthmodel.contract import Outcome, Provenance, outcome_from_particles

from .. import validation
from .._progress import ProgressCallback, drive
from ..images import MAX_PIXELS
from ..measure import measure_particles
from ..scalebar import ScaleBar, ScaleBarError
from ..shapes import assign_shape_classes
from .steps import (
    AnalysisError,
    as_analysis_error,
    check_image,
    check_labels,
    check_options,
    drop_on_scale_bar,
    exclusions,
    iter_calibrate,
    scale_bar_boxes,
)

__all__ = ["ImageAnalysis", "analyze_image", "iter_analyze_image"]

logger = logging.getLogger(__name__)


@dataclass
class ImageAnalysis:
    """Result of :func:`analyze_image`.

    Attributes
    ----------
    name : str
        The image's name (file stem for files).
    image : np.ndarray
        The analysed image (gray or RGB(A), as given).
    labels : np.ndarray
        int32 (rows, columns) instances, 0 = background; particles on the scale bar removed,
        those on the border or below ``min_area_px`` kept (they are not in ``particles``).
    particles : pandas.DataFrame
        The measured particles (contract columns, ``shape_class`` filled).
    outcome : nc_synthmodel.contract.Outcome
        D, 100·σ/D, N, majority shape and shape fractions of ``particles``.
    calibration : napari_nanocrystal.scalebar.ScaleBar
        ``nm_per_px`` and its ``source`` ("manual", "metadata", "ocr"; bar and label boxes for OCR).
    segmented : bool
        True when ``labels`` come from the segmentation model, False when they were given.
    excluded : dict
        Counts of instances not measured: ``{"scale_bar": n, "border": n, "small": n}``.
    settings : dict
        The options used (model, exclude_border, min_area_px, diameter_nm).
    """

    name: str
    image: np.ndarray
    labels: np.ndarray
    particles: pd.DataFrame
    outcome: Outcome
    calibration: ScaleBar
    segmented: bool
    excluded: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def nm_per_px(self) -> float:
        return self.calibration.nm_per_px

    def provenance(self, source_images: list[str] | None = None) -> Provenance:
        """The contract :class:`~nc_synthmodel.contract.Provenance` of this measurement."""
        return Provenance(
            source_images=list(source_images) if source_images is not None else [self.name],
            nm_per_px=self.calibration.nm_per_px,
            calibration_source=self.calibration.source,
            size_from_segmentation=self.segmented,
        )


def model_name(model) -> str:
    """How a model is recorded in the outputs: its name or path, else its class name."""
    return os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__


def iter_analyze_image(
    image,
    *,
    name: str = "image",
    nm_per_px: float | None = None,
    metadata_nm_per_px: float | None = None,
    labels=None,
    model="default",
    diameter_nm: float | str | None = None,
    exclude_border: bool = True,
    min_area_px: float = 15,
    max_pixels: int | None = MAX_PIXELS,
    ocr_reader=None,
) -> Generator[tuple[str, float], None, ImageAnalysis]:
    """Analyse one image; a generator yielding ``(message, fraction)``, returning an :class:`ImageAnalysis`.

    Parameters
    ----------
    image : array_like
        (rows, columns) gray or (rows, columns, 3|4) RGB(A), any real dtype (uint8, uint16,
        float, …).  A trailing channel of 1 (gray) or 2 (gray + alpha) is reduced to gray.
    name : str
        Used in the results (and by :func:`write_outputs` as the default file stem).
    nm_per_px : float, optional
        Manual pixel size (nm); overrides everything else.
    metadata_nm_per_px : float, optional
        The pixel size stored in the file (see :func:`read_micrograph`); used when no manual
        value is given.  Without either, the scale bar is read by OCR.
    labels : (rows, columns) integer array, optional
        Existing instance labels (0 = background): skip segmentation and analyse these.
    model : "default", path or torch module
        Segmentation model (see :func:`napari_nanocrystal.segment`); unused with ``labels``.
    diameter_nm : float or "auto", optional
        Typical particle diameter; the image is rescaled so that particles have the model's
        training diameter.  None or "auto" (default): estimated by the model's size model.
    exclude_border : bool
        Do not measure particles touching the image border.
    min_area_px : float
        Do not measure particles smaller than this (pixels).
    max_pixels : int or None
        Refuse larger images (:data:`MAX_PIXELS`); None = no limit.
    ocr_reader : easyocr.Reader, optional
        For the scale bar; default the shared offline reader, loaded only when needed.

    Raises
    ------
    AnalysisError
        Bad image or labels, bad options, no particles (none found, or none left after
        the exclusions — the message gives the counts).
    ScaleBarError
        No calibration given and no readable scale bar.
    FileNotFoundError, ValueError
        From the segmentation model (no default model shipped yet, a bad model file).
    """
    image = check_image(image, max_pixels)
    manual, diameter, min_area = check_options(nm_per_px, diameter_nm, min_area_px)
    with as_analysis_error():
        metadata = validation.check_nm_per_px(metadata_nm_per_px, "metadata_nm_per_px")
    given = None if labels is None else check_labels(labels, image.shape)

    yield f"{name}: calibrating", 0.0
    try:
        calibration = drive(iter_calibrate(image, manual_nm_per_px=manual, metadata_nm_per_px=metadata, reader=ocr_reader))
    except ScaleBarError as error:
        raise ScaleBarError(f"{error}; give the pixel size instead (nm_per_px=…, CLI: --nm-per-px)") from error
    logger.info("%s: %.4g nm/px (%s)", name, calibration.nm_per_px, calibration.source)

    confidence = None
    if given is None:
        yield f"{name}: segmenting", 0.1
        from ..segmentation.inference import segment

        diameter_px = diameter / calibration.nm_per_px if isinstance(diameter, float) else "auto"
        result = segment(image, model, diameter_px=diameter_px)
        labels_out = result.labels
        confidence = result.confidence_by_label()
        if result.n_objects == 0:
            raise AnalysisError("no particles found: the segmentation model found none in this image")
    else:
        labels_out = given.astype(np.int32, copy=True)
        if not labels_out.any():
            raise AnalysisError("no particles: the label image is empty (all pixels 0 = background)")

    yield f"{name}: measuring", 0.8
    excluded = {"scale_bar": 0, "border": 0, "small": 0}
    on_bar = drop_on_scale_bar(labels_out, scale_bar_boxes(calibration))
    if on_bar.size:
        excluded["scale_bar"] = int(on_bar.size)
        logger.info("%s: removed %d instance(s) on the scale bar or its label", name, on_bar.size)
    border, small = exclusions(labels_out, exclude_border, min_area)
    excluded["border"], excluded["small"] = int(border.size), int(small.size)
    table = measure_particles(labels_out, calibration.nm_per_px, exclude_border=exclude_border, min_area_px=min_area, confidence=confidence)
    if table.empty:
        raise AnalysisError(
            "no particles left to measure: "
            f"{excluded['scale_bar']} on the scale bar, {excluded['border']} touching the border "
            f"(exclude_border={exclude_border}), {excluded['small']} smaller than min_area_px={min_area:g}"
        )
    yield f"{name}: naming shapes", 0.9
    table = assign_shape_classes(table, labels_out)
    outcome = outcome_from_particles(table)
    yield f"{name}: done ({len(table)} particles)", 1.0
    settings = {
        "model": None if given is not None else model_name(model),
        "exclude_border": bool(exclude_border),
        "min_area_px": min_area,
        "diameter_nm": diameter,
    }
    return ImageAnalysis(
        name=name,
        image=image,
        labels=labels_out,
        particles=table,
        outcome=outcome,
        calibration=calibration,
        segmented=given is None,
        excluded=excluded,
        settings=settings,
    )


def analyze_image(image, *, progress: ProgressCallback | None = None, **options) -> ImageAnalysis:
    """Analyse one image: :func:`iter_analyze_image` run to the end.

    ``progress(message, fraction)`` is called at every step; ``options`` are those of
    :func:`iter_analyze_image` (``nm_per_px``, ``labels``, ``model``, ``exclude_border``, …).

    Examples
    --------
    >>> result = analyze_image(image, nm_per_px=0.5, labels=labels)  # doctest: +SKIP
    >>> result.outcome.size_nm, result.particles["shape_class"].value_counts()  # doctest: +SKIP
    """
    return drive(iter_analyze_image(image, **options), progress)
