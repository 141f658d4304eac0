"""Headless batch analysis of TEM micrographs: read → calibrate → segment → measure → name shapes → files.

For one image, :func:`iter_analyze_image` is a generator that yields ``(message, fraction)``
progress tuples and returns an :class:`ImageAnalysis` (napari's ``thread_worker`` runs it as
is); :func:`analyze_image` runs it and reports progress to an optional callback.  For files,
:func:`iter_analyze_paths` / :func:`analyze_paths` do the same over many images and write,
per image (``<stem>`` is the file's stem, made unique when two inputs share one):

* ``<stem>_particles.csv`` — the per-particle table (:data:`~nc_synthmodel.contract.PARTICLE_COLUMNS`,
  ``shape_class`` filled);
* ``<stem>_labels.tif`` — the instance label image (ImageJ TIFF calibrated in nm);
* ``<stem>_overlay.png`` — the image with the outlines of measured particles (green), of
  excluded ones (red: on the border or too small) and the boxes of the scale bar and its
  label that were read (magenta);
* ``<stem>_outcome.json`` — ``{"outcome": Outcome, "provenance": Provenance, "analysis": {...}}``
  with the contract models of :mod:`nc_synthmodel.contract` (the same fields a ``Recipe`` has);

and one ``summary.csv`` with a row per input (see :data:`SUMMARY_COLUMNS`).  A file that
cannot be analysed is reported (its path and the problem) and skipped; the others are
processed.  Nothing is overwritten unless ``overwrite=True``: existing outputs make the
whole batch refuse to start.  Every file is written atomically.

Calibration precedence: a manual ``nm_per_px`` > the pixel size stored in the file (TIFF
resolution, DigitalMicrograph calibration) > the burned-in scale bar read by OCR
(:func:`napari_nanocrystal.scalebar.read_scale_bar`).  Particles overlapping a scale bar or
label that was read are removed (segmentation often takes the bar and glyphs for particles).

Images are (rows, columns) gray or (rows, columns, 3|4) RGB(A) of any real dtype; labels are
integer images, 0 = background, 1..N = particles.  Images above :data:`MAX_PIXELS` pixels are
refused (from the file header, before their pixels are read) — crop or bin them first.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nc_synthmodel.contract import (
    SHAPE_CLASSES,
    Outcome,
    Provenance,
    outcome_from_particles,
)
from nc_synthmodel.io import atomic_write_bytes

from ._progress import ProgressCallback, drive
from .measure import measure_particles
from .scalebar import ScaleBar, ScaleBarError, read_image, read_scale_bar
from .shapes import assign_shape_classes

__all__ = [
    "AnalysisError",
    "ImageAnalysis",
    "ImageRecord",
    "BatchReport",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "SUMMARY_COLUMNS",
    "read_micrograph",
    "collect_images",
    "iter_analyze_image",
    "analyze_image",
    "render_overlay",
    "write_outputs",
    "iter_analyze_paths",
    "analyze_paths",
]

logger = logging.getLogger(__name__)

#: File types read (case-insensitive): TIFF, PNG, JPEG (Pillow) and DigitalMicrograph.
IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".dm3", ".dm4")

#: Largest image analysed, in pixels (8192²).  Segmentation needs ~60 bytes per pixel at its
#: peak (flow following on the whole image); larger micrographs should be cropped or binned.
MAX_PIXELS = 8192 * 8192

#: Per-image output files: kind → suffix appended to the output stem.
OUTPUT_SUFFIXES: dict[str, str] = {
    "particles": "_particles.csv",
    "labels": "_labels.tif",
    "overlay": "_overlay.png",
    "outcome": "_outcome.json",
}

#: Name of the batch summary written into the output folder.
SUMMARY_NAME = "summary.csv"


def _fraction_column(shape_class: str) -> str:
    return "fraction_" + shape_class.replace(" ", "_")


#: Columns of ``summary.csv``: one row per input, ``status`` "ok" or "failed" (then ``error``
#: says why and the measurement columns are empty).  ``size_nm`` is D, the mean equivalent
#: circle diameter; ``size_dispersion_pct`` is 100·σ/D; ``fraction_<class>`` the share of each
#: of the 11 shape classes among the measured particles.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "file",
    "status",
    "error",
    "output_stem",
    "size_nm",
    "size_dispersion_pct",
    "n_particles",
    "shape",
    *(_fraction_column(s) for s in SHAPE_CLASSES),
    "nm_per_px",
    "calibration_source",
    "segmented",
)

#: ``progress(message, fraction)``, fraction in [0, 1].

_OUTLINE_RGB = (0, 230, 0)
_EXCLUDED_RGB = (230, 40, 40)
_SCALE_BAR_RGB = (255, 0, 255)
_SCALE_BAR_MARGIN_PX = 3


class AnalysisError(ValueError):
    """An image (or its labels) cannot be analysed; the message names the file or the problem."""


# ----------------------------------------------------------------------------------------
# Input


def _check_max_pixels(shape: tuple[int, ...], max_pixels: int | None, what: str) -> None:
    if max_pixels is None or len(shape) < 2:
        return
    n = int(shape[0]) * int(shape[1])
    if n > max_pixels:
        raise AnalysisError(
            f"{what}: image too large: {shape[0]} × {shape[1]} = {n:,} pixels exceeds the limit of "
            f"{max_pixels:,} pixels (max_pixels); crop or bin it first"
        )


def _stored_shape(path: Path) -> tuple[int, ...] | None:
    """(rows, columns, ...) from the file header, without decoding pixels; None if unknown."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tuple(tif.pages[0].shape)
    if suffix in (".dm3", ".dm4"):
        return None  # DigitalMicrograph: checked after reading
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            return (im.size[1], im.size[0])


def read_micrograph(path, *, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, float | None, str | None]:
    """Read an image file and its stored pixel size, with errors that name the file and the problem.

    Parameters
    ----------
    path : str or Path
        A TIFF, PNG, JPEG, DM3 or DM4 file (:data:`IMAGE_SUFFIXES`).
    max_pixels : int or None
        Refuse images with more pixels (checked from the header for TIFF/PNG/JPEG, before the
        pixels are decoded); None = no limit.

    Returns
    -------
    (array, nm_per_px or None, "metadata" or None)
        As :func:`napari_nanocrystal.scalebar.read_image`: the pixels as stored (gray, RGB or
        RGBA), the file's calibration and its source.

    Raises
    ------
    FileNotFoundError
        ``no such image file: <path>``.
    AnalysisError
        Unsupported file type, a file that cannot be decoded (corrupt, truncated, wrong
        type), an image above ``max_pixels``.
    """
    path = Path(path)
    if path.is_dir():
        raise AnalysisError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise AnalysisError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; supported: {', '.join(IMAGE_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise AnalysisError(f"{path}: cannot read the image: the file is empty (0 bytes)")
    try:
        shape = _stored_shape(path)
        if shape is not None:
            _check_max_pixels(shape, max_pixels, str(path))
        data, nm_per_px, source = read_image(path)
    except (AnalysisError, ImportError):
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise anything on a bad file
        if type(error).__name__ == "DecompressionBombError":
            raise AnalysisError(f"{path}: image too large: {error}") from error
        raise AnalysisError(
            f"{path}: cannot read the image ({type(error).__name__}: {error}); "
            f"the file is corrupt, truncated or not a {suffix[1:].upper()} image"
        ) from error
    _check_max_pixels(np.shape(data), max_pixels, str(path))
    return data, nm_per_px, source


def _check_image(image, max_pixels: int | None) -> np.ndarray:
    """(rows, columns) or (rows, columns, 3|4), real dtype, finite, within ``max_pixels``."""
    image = np.asarray(image)
    if image.dtype.names is not None or image.dtype.kind not in "biuf":
        raise AnalysisError(f"image must be real-valued (bool, int, uint or float), not {image.dtype}")
    if image.size == 0:
        raise AnalysisError(f"image is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[-1] in (1, 2):  # gray, gray + alpha
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise AnalysisError(f"image must be 2-D gray (rows, columns) or RGB/RGBA (rows, columns, 3|4); got shape {image.shape}")
    _check_max_pixels(image.shape, max_pixels, "image")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise AnalysisError("image contains NaN or infinite values")
    return image


def _check_labels(labels, image_shape: tuple[int, ...]) -> np.ndarray:
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


def _check_positive(value, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnalysisError(f"{name} must be a number, not {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise AnalysisError(f"{name} must be a finite positive number, not {value!r}")
    return number


def _check_diameter(diameter_nm) -> float | str | None:
    """A positive diameter in nm, "auto" (estimated by the model) or None."""
    return "auto" if isinstance(diameter_nm, str) and diameter_nm == "auto" else _check_positive(diameter_nm, "diameter_nm")


def _check_min_area(min_area_px) -> float:
    try:
        value = float(min_area_px)
    except (TypeError, ValueError):
        raise AnalysisError(f"min_area_px must be a number, not {min_area_px!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise AnalysisError(f"min_area_px must be a finite number ≥ 0, not {min_area_px!r}")
    return value


# ----------------------------------------------------------------------------------------
# One image


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


def _scale_bar_region(calibration: ScaleBar, shape: tuple[int, int]) -> np.ndarray | None:
    boxes = [b for b in (calibration.bar_box, calibration.text_box) if b is not None]
    if not boxes:
        return None
    region = np.zeros(shape, dtype=bool)
    m = _SCALE_BAR_MARGIN_PX
    for r0, c0, r1, c1 in boxes:
        region[max(0, r0 - m) : r1 + m, max(0, c0 - m) : c1 + m] = True
    return region


def _exclusions(labels: np.ndarray, exclude_border: bool, min_area_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Label ids touching the border (if excluded) and the remaining ones below ``min_area_px``."""
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = np.unique(edge[edge > 0]) if exclude_border else np.zeros(0, labels.dtype)
    areas = np.bincount(labels.ravel())
    small = np.flatnonzero((areas > 0) & (areas < min_area_px))
    small = small[(small > 0) & ~np.isin(small, border)]
    return border, small


def _model_name(model) -> str:
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
        training diameter (none: run at the input size; "auto": estimated by the model).
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
    image = _check_image(image, max_pixels)
    manual = _check_positive(nm_per_px, "nm_per_px")
    metadata = _check_positive(metadata_nm_per_px, "metadata_nm_per_px")
    diameter = _check_diameter(diameter_nm)
    min_area = _check_min_area(min_area_px)
    given = None if labels is None else _check_labels(labels, image.shape)

    yield f"{name}: calibrating", 0.0
    try:
        calibration = read_scale_bar(image, reader=ocr_reader, manual_nm_per_px=manual, metadata_nm_per_px=metadata)
    except ScaleBarError as error:
        raise ScaleBarError(f"{error}; give the pixel size instead (nm_per_px=…, CLI: --nm-per-px)") from error
    logger.info("%s: %.4g nm/px (%s)", name, calibration.nm_per_px, calibration.source)

    confidence = None
    if given is None:
        yield f"{name}: segmenting", 0.1
        from .segmentation.inference import segment

        diameter_px = diameter / calibration.nm_per_px if isinstance(diameter, float) else diameter
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
    region = _scale_bar_region(calibration, labels_out.shape)
    if region is not None:
        on_bar = np.unique(labels_out[region & (labels_out > 0)])
        if on_bar.size:
            labels_out[np.isin(labels_out, on_bar)] = 0
            excluded["scale_bar"] = int(on_bar.size)
            logger.info("%s: removed %d instance(s) on the scale bar or its label", name, on_bar.size)
    border, small = _exclusions(labels_out, exclude_border, min_area)
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
        "model": None if given is not None else _model_name(model),
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


# ----------------------------------------------------------------------------------------
# Output files


def _display_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (rows, columns, 3) for display: 0.5–99.5 percentile stretch, alpha dropped."""
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 3:
        data = data[..., :3]
    lo, hi = np.percentile(data, (0.5, 99.5))
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    scaled = np.zeros_like(data) if hi <= lo else np.clip((data - lo) / (hi - lo), 0.0, 1.0)
    rgb = np.round(scaled * 255).astype(np.uint8)
    return np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb


def _draw_box(rgb: np.ndarray, box: tuple[int, int, int, int], colour, width: int = 2) -> None:
    rows, cols = rgb.shape[:2]
    r0, c0, r1, c1 = box
    r0, c0 = max(0, r0 - width), max(0, c0 - width)
    r1, c1 = min(rows, r1 + width), min(cols, c1 + width)
    rgb[r0 : r0 + width, c0:c1] = colour
    rgb[max(r0, r1 - width) : r1, c0:c1] = colour
    rgb[r0:r1, c0 : c0 + width] = colour
    rgb[r0:r1, max(c0, c1 - width) : c1] = colour


def render_overlay(image, labels, *, measured=None, calibration: ScaleBar | None = None) -> np.ndarray:
    """The image with particle outlines and the scale-bar boxes, as uint8 (rows, columns, 3).

    Parameters
    ----------
    image : (rows, columns) or (rows, columns, 3|4) array, any real dtype
    labels : (rows, columns) integer array, 0 = background
    measured : iterable of int, optional
        Labels that were measured: outlined green, the others red.  Default: all green.
    calibration : ScaleBar, optional
        Its ``bar_box`` and ``text_box`` (OCR calibrations) are framed in magenta.
    """
    from skimage.segmentation import find_boundaries

    rgb = _display_rgb(image)
    labels = np.asarray(labels)
    edges = find_boundaries(labels, mode="inner") & (labels > 0)
    if measured is None:
        rgb[edges] = _OUTLINE_RGB
    else:
        good = np.isin(labels, np.fromiter(measured, dtype=np.int64))
        rgb[edges & good] = _OUTLINE_RGB
        rgb[edges & ~good] = _EXCLUDED_RGB
    if calibration is not None:
        for box in (calibration.bar_box, calibration.text_box):
            if box is not None:
                _draw_box(rgb, box, _SCALE_BAR_RGB)
    return rgb


def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _labels_tiff_bytes(labels: np.ndarray, nm_per_px: float) -> bytes:
    import tifffile

    data = labels.astype(np.uint16) if labels.max(initial=0) < 2**16 else labels.astype(np.float32)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, imagej=True, resolution=(1.0 / nm_per_px, 1.0 / nm_per_px), metadata={"unit": "nm"})
    return buffer.getvalue()


def output_paths(out_dir, stem: str) -> dict[str, Path]:
    """The files :func:`write_outputs` writes for ``stem``: kind → path."""
    out_dir = Path(out_dir)
    return {kind: out_dir / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def write_outputs(
    analysis: ImageAnalysis,
    out_dir,
    stem: str | None = None,
    *,
    source_file: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the particle CSV, label TIFF, overlay PNG and outcome JSON of one analysis.

    Parameters
    ----------
    analysis : ImageAnalysis
    out_dir : folder (created if missing)
    stem : file stem; default ``analysis.name``
    source_file : recorded as the provenance's source image; default ``analysis.name``
    overwrite : replace existing files; otherwise raise ``FileExistsError`` before writing any

    Returns
    -------
    dict kind → path, kinds as in :data:`OUTPUT_SUFFIXES`.
    """
    paths = output_paths(out_dir, stem or analysis.name)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output file(s) exist: {', '.join(map(str, existing))}; pass overwrite=True (--overwrite) to replace them")
    measured = analysis.particles["label"].to_numpy()
    document = {
        "outcome": analysis.outcome.model_dump(mode="json"),
        "provenance": analysis.provenance([source_file or analysis.name]).model_dump(mode="json"),
        "analysis": {
            "image_shape": list(analysis.image.shape),
            "excluded": analysis.excluded,
            "settings": analysis.settings,
            "scale_bar": None
            if analysis.calibration.source != "ocr"
            else {
                "text": analysis.calibration.text,
                "bar_length_px": analysis.calibration.bar_length_px,
                "bar_box": analysis.calibration.bar_box,
                "text_box": analysis.calibration.text_box,
                "score": analysis.calibration.score,
            },
        },
    }
    atomic_write_bytes(paths["particles"], analysis.particles.to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(paths["labels"], _labels_tiff_bytes(analysis.labels, analysis.nm_per_px))
    overlay = render_overlay(analysis.image, analysis.labels, measured=measured, calibration=analysis.calibration)
    atomic_write_bytes(paths["overlay"], _png_bytes(overlay))
    atomic_write_bytes(paths["outcome"], (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return paths


# ----------------------------------------------------------------------------------------
# Many files


@dataclass
class ImageRecord:
    """What happened to one input of a batch: ``error`` is None for a success."""

    path: Path
    output_stem: str | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    outcome: Outcome | None = None
    nm_per_px: float | None = None
    calibration_source: str | None = None
    segmented: bool | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary_row(self) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
        row.update(file=str(self.path), status="ok" if self.ok else "failed", error=self.error, output_stem=self.output_stem)
        row.update(nm_per_px=self.nm_per_px, calibration_source=self.calibration_source, segmented=self.segmented)
        if self.outcome is not None:
            row.update(
                size_nm=self.outcome.size_nm,
                size_dispersion_pct=self.outcome.size_dispersion_pct,
                n_particles=self.outcome.n_particles,
                shape=self.outcome.shape,
            )
            for shape_class in SHAPE_CLASSES:
                row[_fraction_column(shape_class)] = self.outcome.shape_fractions.get(shape_class, 0.0)
        return row


@dataclass
class BatchReport:
    """Result of :func:`analyze_paths`: one :class:`ImageRecord` per input, and the summary file."""

    out_dir: Path
    records: list[ImageRecord]
    summary_path: Path

    @property
    def failed(self) -> list[ImageRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def succeeded(self) -> list[ImageRecord]:
        return [r for r in self.records if r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> pd.DataFrame:
        """The summary table (:data:`SUMMARY_COLUMNS`), one row per input."""
        return pd.DataFrame([r.summary_row() for r in self.records], columns=list(SUMMARY_COLUMNS))


def collect_images(paths: Iterable, *, skip_dir=None) -> tuple[list[Path], list[ImageRecord]]:
    """Expand files and folders (not recursively) into image files, in the given order.

    Returns ``(images, problems)``: the image files (folders contribute their files with a
    suffix of :data:`IMAGE_SUFFIXES`, sorted; duplicates removed) and one failed
    :class:`ImageRecord` per input that is missing, of an unsupported type, or a folder
    without images.  Files inside ``skip_dir`` (the output folder) are not collected from
    folders.
    """
    images: list[Path] = []
    problems: list[ImageRecord] = []
    seen: set[Path] = set()
    skip = Path(skip_dir).resolve() if skip_dir is not None else None

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            images.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if skip is not None and path.resolve() == skip:
                problems.append(ImageRecord(path, error=f"{path}: is the output folder; not read as input"))
                continue
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(ImageRecord(path, error=f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder"))
            for p in found:
                add(p)
        elif not path.exists():
            problems.append(ImageRecord(path, error=f"no such image file: {path}"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(
                ImageRecord(path, error=f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; supported: {', '.join(IMAGE_SUFFIXES)}")
            )
        else:
            add(path)
    return images, problems


def _unique_stems(images: list[Path]) -> list[str]:
    """Output stems: the file stem; ``stem_ext`` when stems clash, then ``_2``, ``_3``… if still needed."""
    counts: dict[str, int] = {}
    for p in images:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    stems, used = [], set()
    for p in images:
        stem = p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}"
        candidate, k = stem, 2
        while candidate in used:
            candidate, k = f"{stem}_{k}", k + 1
        used.add(candidate)
        stems.append(candidate)
    return stems


def _labels_by_image(labels: Mapping | None) -> dict[Path, Any]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a mapping image path → label image (path or array), not {type(labels).__name__}")
    return {Path(k).resolve(): v for k, v in labels.items()}


def _read_labels(value, max_pixels: int | None) -> np.ndarray:
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            data, _, _ = read_micrograph(path, max_pixels=max_pixels)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such label file: {path}") from None
        except AnalysisError as error:
            raise AnalysisError(f"label file unreadable: {error}") from error
        if data.ndim == 3 and data.shape[-1] in (3, 4):
            raise AnalysisError(f"label file unreadable: {path}: an RGB image, not an integer label image")
        return data
    return np.asarray(value)


def iter_analyze_paths(
    paths: Iterable,
    out_dir,
    *,
    model="default",
    nm_per_px: float | None = None,
    labels: Mapping | None = None,
    diameter_nm: float | str | None = None,
    exclude_border: bool = True,
    min_area_px: float = 15,
    overwrite: bool = False,
    max_pixels: int | None = MAX_PIXELS,
    ocr_reader=None,
) -> Generator[tuple[str, float], None, BatchReport]:
    """Analyse image files into ``out_dir``; a generator yielding ``(message, fraction)``, returning a :class:`BatchReport`.

    Parameters
    ----------
    paths : iterable of str or Path
        Image files and/or folders of images (see :func:`collect_images`).
    out_dir : str or Path
        Output folder (created if missing); see the module docstring for the files.
    model : "default", path or torch module
        Segmentation model, loaded once (only if some image has no ``labels``).
    nm_per_px : float, optional
        Manual pixel size for every image; otherwise each file's metadata, else its scale bar.
    labels : mapping image path → label image (path or integer array), optional
        Existing labels for some images: those are not segmented.
    diameter_nm, exclude_border, min_area_px, max_pixels, ocr_reader
        As in :func:`iter_analyze_image`.
    overwrite : bool
        Replace existing outputs.  Otherwise the batch refuses to start if any output exists.

    Raises
    ------
    AnalysisError
        Before any image is processed: bad options, labels given for an image that is not
        among the inputs, or nothing to analyse (no image among ``paths``; the problems are listed).
    FileExistsError
        Outputs exist and ``overwrite`` is False.
    FileNotFoundError, ValueError
        The segmentation model cannot be loaded (e.g. no default model is shipped yet).

    A file that cannot be analysed does not raise: its record in the report carries the
    error (path and problem), its summary row says "failed", and the batch goes on.
    """
    manual = _check_positive(nm_per_px, "nm_per_px")
    diameter = _check_diameter(diameter_nm)
    min_area = _check_min_area(min_area_px)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AnalysisError(f"output folder {out_dir} is an existing file")
    given_labels = _labels_by_image(labels)
    images, problems = collect_images(paths, skip_dir=out_dir)
    if not images:
        detail = "; ".join(r.error for r in problems) or "no paths given"
        raise AnalysisError(f"nothing to analyse: {detail}")
    stray = sorted(str(k) for k in set(given_labels) - {p.resolve() for p in images})
    if stray:
        raise AnalysisError(f"labels given for image(s) that are not among the inputs: {', '.join(stray)}")
    stems = _unique_stems(images)
    summary_path = out_dir / SUMMARY_NAME
    planned = [summary_path] + [p for stem in stems for p in output_paths(out_dir, stem).values()]
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(p.name for p in existing[:5]) + (" …" if len(existing) > 5 else "")
        raise FileExistsError(
            f"{len(existing)} output file(s) already exist in {out_dir} ({shown}); "
            "pass overwrite=True (CLI: --overwrite) to replace them, or choose another output folder"
        )
    net = model
    if any(p.resolve() not in given_labels for p in images) and isinstance(model, (str, os.PathLike)):
        yield "loading the segmentation model", 0.0
        from .segmentation.network import resolve_model

        net = resolve_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    for record in problems:
        logger.info("skipped %s", record.error)

    records: list[ImageRecord] = list(problems)
    n = len(images)
    for index, (path, stem) in enumerate(zip(images, stems)):
        record = ImageRecord(path, output_stem=stem)
        records.append(record)
        try:
            yield f"{path.name}: reading", index / n
            data, file_nm_per_px, _ = read_micrograph(path, max_pixels=max_pixels)
            label_image = None
            if path.resolve() in given_labels:
                label_image = _read_labels(given_labels[path.resolve()], max_pixels)
            steps = iter_analyze_image(
                data,
                name=stem,
                nm_per_px=manual,
                metadata_nm_per_px=file_nm_per_px,
                labels=label_image,
                model=net,
                diameter_nm=diameter,
                exclude_border=exclude_border,
                min_area_px=min_area,
                max_pixels=max_pixels,
                ocr_reader=ocr_reader,
            )
            while True:
                try:
                    message, fraction = next(steps)
                except StopIteration as stop:
                    result: ImageAnalysis = stop.value
                    break
                yield message, (index + 0.05 + 0.9 * fraction) / n
            if result.segmented:  # the model was loaded once: record what the user named
                result.settings["model"] = _model_name(model)
            record.outputs = write_outputs(result, out_dir, stem, source_file=str(path), overwrite=overwrite)
            record.outcome = result.outcome
            record.nm_per_px = result.nm_per_px
            record.calibration_source = result.calibration.source
            record.segmented = result.segmented
        except Exception as error:  # noqa: BLE001 - one bad file must not stop the batch
            message = str(error)
            record.error = message if str(path) in message else f"{path}: {message}"
            if isinstance(error, (ValueError, OSError, ImportError)):  # a bad input: the report carries it
                logger.info("failed %s", record.error)
            else:  # not a known kind of bad input: keep the traceback
                logger.error("failed %s", record.error, exc_info=error)
            if overwrite:  # outputs of an earlier run would now be stale
                for stale in output_paths(out_dir, stem).values():
                    if stale.exists():
                        stale.unlink()
                        logger.info("removed stale output %s", stale)
        yield f"{path.name}: {'done' if record.ok else 'failed'}", (index + 1) / n

    report = BatchReport(out_dir=out_dir, records=records, summary_path=summary_path)
    atomic_write_bytes(summary_path, report.summary().to_csv(index=False).encode("utf-8"))
    logger.info("analysed %d of %d inputs; summary: %s", len(report.succeeded), len(records), summary_path)
    return report


def analyze_paths(paths: Iterable, out_dir, *, progress: ProgressCallback | None = None, **options) -> BatchReport:
    """Analyse image files into ``out_dir``: :func:`iter_analyze_paths` run to the end.

    ``progress(message, fraction)`` is called at every step.  Check ``report.ok`` (or
    ``report.failed``): files that could not be analysed do not raise.

    Examples
    --------
    >>> report = analyze_paths(["tem/"], "results", model="my_model.safetensors")  # doctest: +SKIP
    >>> report.summary()[["file", "size_nm", "n_particles"]]                       # doctest: +SKIP
    """
    return drive(iter_analyze_paths(paths, out_dir, **options), progress)
