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

and one ``summary.csv`` with a row per input (see :data:`SUMMARY_COLUMNS`), merged into the
summary already in the folder (adding an image to a results folder keeps the earlier rows).
A file that cannot be analysed is reported (its path and the problem) and skipped; the
others are processed.  Nothing is overwritten unless ``overwrite=True``: existing outputs
make the whole batch refuse to start, and no output may replace an input.  An image's four
files are written beside their targets and swapped in together only when all are written;
with ``overwrite=True`` an image that now fails keeps its earlier outputs and summary row.
The output folder's writability is checked before the model is loaded.

Calibration precedence: a manual ``nm_per_px`` > the pixel size stored in the file (TIFF
resolution, DigitalMicrograph calibration) > the burned-in scale bar read by OCR
(:func:`napari_nanocrystal.scalebar.read_scale_bar`).  Particles overlapping a scale bar or
label that was read are removed (segmentation often takes the bar and glyphs for particles).

Images are (rows, columns) gray or (rows, columns, 3|4) RGB(A) of any real dtype; labels are
integer images, 0 = background, 1..N = particles.  Files are read by
:func:`napari_nanocrystal.images.read_image`; images above :data:`MAX_PIXELS` pixels are refused
(from the file header, before their pixels are read) — crop or bin them first; stacks need
``plane=``.  Inputs are checked by :mod:`napari_nanocrystal.validation`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
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
from nc_synthmodel.files import atomic_path, atomic_write_bytes, check_output, check_writable_dir, locked

from . import validation
from ._progress import ProgressCallback, drive
from .images import IMAGE_SUFFIXES, MAX_PIXELS, ImageReadError, read_image
from .measure import measure_particles
from .scalebar import ScaleBar, ScaleBarError, read_scale_bar
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


@contextlib.contextmanager
def _as_analysis_error():
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
    with _as_analysis_error():
        return read_image(path, plane=plane, max_pixels=max_pixels)


def _check_image(image, max_pixels: int | None) -> np.ndarray:
    with _as_analysis_error():
        return validation.check_image(image, max_pixels=max_pixels)


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


def _check_options(nm_per_px, diameter_nm, min_area_px) -> tuple[float | None, float | str | None, float]:
    """Manual pixel size (plausible range, nm/px), diameter (nm or "auto"), minimum area (px)."""
    with _as_analysis_error():
        return (
            validation.check_nm_per_px(nm_per_px, "nm_per_px"),
            validation.check_diameter(diameter_nm, "diameter_nm"),
            validation.check_min_area(min_area_px, "min_area_px"),
        )


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
    image = _check_image(image, max_pixels)
    manual, diameter, min_area = _check_options(nm_per_px, diameter_nm, min_area_px)
    with _as_analysis_error():
        metadata = validation.check_nm_per_px(metadata_nm_per_px, "metadata_nm_per_px")
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

    The four files are written beside their targets first and renamed into place only when
    all of them are written: an error leaves the earlier files untouched.  No output may be
    ``source_file`` itself (``OutputError``, also with ``overwrite``).

    Returns
    -------
    dict kind → path, kinds as in :data:`OUTPUT_SUFFIXES`.
    """
    paths = output_paths(out_dir, stem or analysis.name)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output file(s) exist: {', '.join(map(str, existing))}; pass overwrite=True (--overwrite) to replace them")
    for path in paths.values():
        check_output(path, overwrite=True, inputs=[source_file] if source_file else [])
    measured = analysis.particles["label"].to_numpy()
    document = {
        "outcome": analysis.outcome.model_dump(mode="json"),
        "provenance": analysis.provenance([source_file or analysis.name]).model_dump(mode="json"),
        "analysis": {
            "image_shape": list(analysis.image.shape),
            "excluded": analysis.excluded,
            "settings": analysis.settings,
            "calibration": {"source": analysis.calibration.source, "detail": analysis.calibration.detail},
            "scale_bar": None
            if analysis.calibration.source != "ocr"
            else {
                "text": analysis.calibration.text,
                "bar_length_px": analysis.calibration.bar_length_px,
                "bar_box": analysis.calibration.bar_box,
                "text_box": analysis.calibration.text_box,
                "score": analysis.calibration.score,
                "confidence": analysis.calibration.confidence,
            },
        },
    }
    overlay = render_overlay(analysis.image, analysis.labels, measured=measured, calibration=analysis.calibration)
    contents = {
        "particles": analysis.particles.to_csv(index=False).encode("utf-8"),
        "labels": _labels_tiff_bytes(analysis.labels, analysis.nm_per_px),
        "overlay": _png_bytes(overlay),
        "outcome": (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    }
    _write_together({paths[kind]: data for kind, data in contents.items()})
    return paths


def _write_together(contents: dict[Path, bytes]) -> None:
    """Write every file beside its target, then rename all into place (none if any write fails)."""
    with contextlib.ExitStack() as stack:
        for path, data in contents.items():
            tmp = stack.enter_context(atomic_path(path))
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())


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


def _read_summary(path: Path) -> pd.DataFrame | None:
    """The summary already in the output folder (None if none); refuse a file that is not one."""
    if not path.exists():
        return None
    try:
        table = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""])
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise AnalysisError(f"{path}: cannot read the existing summary ({error}); move it away or choose another output folder") from None
    if list(table.columns) != list(SUMMARY_COLUMNS):
        raise AnalysisError(f"{path}: exists but is not a nanocrystal summary (other columns); move it away or choose another output folder")
    return table


def _summary_key(row: Mapping[str, Any]) -> str:
    stem = row.get("output_stem")
    return f"stem:{stem}" if isinstance(stem, str) and stem else f"file:{row.get('file')}"


def _merge_summary(old: pd.DataFrame | None, records: list[ImageRecord], kept: set[str]) -> pd.DataFrame:
    """Earlier rows, updated by this batch's rows (same output stem or file), then the new ones.

    Rows of ``kept`` keys (an image that failed now but kept its earlier outputs) keep their
    earlier row.
    """
    rows: dict[str, dict[str, Any]] = {}
    if old is not None:
        for row in old.to_dict("records"):
            rows[_summary_key(row)] = row
    for record in records:
        row = record.summary_row()
        key = _summary_key(row)
        if key in kept and key in rows:
            continue
        rows[key] = row
    return pd.DataFrame(list(rows.values()), columns=list(SUMMARY_COLUMNS))


def _check_outputs(out_dir: Path, images: list[Path], stems: list[str], overwrite: bool) -> None:
    """Before any work: the folder is writable, no output replaces an input, none exists (unless ``overwrite``)."""
    planned = [p for stem in stems for p in output_paths(out_dir, stem).values()]
    for path in planned:
        check_output(path, overwrite=True, inputs=images)
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        shown = ", ".join(p.name for p in existing[:5]) + (" …" if len(existing) > 5 else "")
        raise FileExistsError(
            f"{len(existing)} output file(s) already exist in {out_dir} ({shown}); "
            "pass overwrite=True (CLI: --overwrite) to replace them, or choose another output folder"
        )
    _read_summary(out_dir / SUMMARY_NAME)


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
    plane: int | None = None,
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
        Manual pixel size for every image (within the plausible range, nm/px); otherwise each
        file's metadata, else its scale bar.
    labels : mapping image path → label image (path or integer array), optional
        Existing labels for some images: those are not segmented.
    diameter_nm, exclude_border, min_area_px, max_pixels, ocr_reader
        As in :func:`iter_analyze_image`.
    overwrite : bool
        Replace existing outputs.  Otherwise the batch refuses to start if any output exists.
        An image that fails keeps the outputs (and summary row) of an earlier run.
    plane : int, optional
        Which image of multi-image files (TIFF stacks, see :func:`read_micrograph`); such a
        file without ``plane`` fails with the list of its axes.

    Raises
    ------
    AnalysisError
        Before any image is processed: bad options, labels given for an image that is not
        among the inputs, nothing to analyse (no image among ``paths``; the problems are
        listed), or a ``summary.csv`` in ``out_dir`` that is not a summary.
    FileExistsError
        Outputs exist and ``overwrite`` is False.
    OutputError
        An output would replace an input, or ``out_dir`` is not writable.
    FileNotFoundError, ValueError
        The segmentation model cannot be loaded (e.g. no default model is shipped yet).

    A file that cannot be analysed does not raise: its record in the report carries the
    error (path and problem), its summary row says "failed", and the batch goes on.
    """
    manual, diameter, min_area = _check_options(nm_per_px, diameter_nm, min_area_px)
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
    _check_outputs(out_dir, images, stems, overwrite)
    net = model
    if any(p.resolve() not in given_labels for p in images) and isinstance(model, (str, os.PathLike)):
        yield "loading the segmentation model", 0.0
        from .segmentation.network import resolve_model

        with _as_analysis_error():
            validation.check_model_file(model)
        net = resolve_model(model)
    check_writable_dir(out_dir)
    for record in problems:
        logger.info("skipped %s", record.error)

    records: list[ImageRecord] = list(problems)
    kept: set[str] = set()
    n = len(images)
    for index, (path, stem) in enumerate(zip(images, stems)):
        record = ImageRecord(path, output_stem=stem)
        records.append(record)
        try:
            yield f"{path.name}: reading", index / n
            data, file_nm_per_px, _ = read_micrograph(path, plane=plane, max_pixels=max_pixels)
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
            _record_failure(record, error, out_dir, kept)
        yield f"{path.name}: {'done' if record.ok else 'failed'}", (index + 1) / n

    report = BatchReport(out_dir=out_dir, records=records, summary_path=summary_path)
    with locked(summary_path):  # another batch may be merging into the same folder
        merged = _merge_summary(_read_summary(summary_path), records, kept)
        atomic_write_bytes(summary_path, merged.to_csv(index=False).encode("utf-8"))
    logger.info("analysed %d of %d inputs; summary: %s", len(report.succeeded), len(records), summary_path)
    return report


def _record_failure(record: ImageRecord, error: Exception, out_dir: Path, kept: set[str]) -> None:
    """Put the error (naming the file) on the record; earlier outputs of its stem are kept, and said so."""
    path = record.path
    message = str(error)
    record.error = message if str(path) in message else f"{path}: {message}"
    earlier = [p for p in output_paths(out_dir, record.output_stem).values() if p.exists()]
    if earlier:
        record.error += f" (the earlier outputs of {record.output_stem} are kept)"
        kept.add(_summary_key(record.summary_row()))
    if isinstance(error, (ValueError, OSError, ImportError)):  # a bad input: the report carries it
        logger.info("failed %s", record.error)
    else:  # not a known kind of bad input: keep the traceback
        logger.error("failed %s", record.error, exc_info=error)


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
