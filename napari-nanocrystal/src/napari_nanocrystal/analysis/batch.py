"""Many files: :func:`iter_analyze_paths` / :func:`analyze_paths` write each image's outputs and one summary.

``summary.csv`` (:data:`SUMMARY_COLUMNS`) has a row per input and is merged into the summary
already in the folder.  A file that cannot be analysed is reported and skipped; nothing is
overwritten unless ``overwrite=True`` (see the package docstring).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nc_synthmodel.contract import SHAPE_CLASSES, Outcome
from nc_synthmodel.files import atomic_write_bytes, check_output, check_writable_dir, locked

from .. import validation
from .._progress import ProgressCallback, drive
from ..images import IMAGE_SUFFIXES, MAX_PIXELS
from .outputs import output_paths, write_outputs
from .single import ImageAnalysis, iter_analyze_image, model_name
from .steps import AnalysisError, as_analysis_error, check_options, read_micrograph

__all__ = ["SUMMARY_COLUMNS", "SUMMARY_NAME", "BatchReport", "ImageRecord", "analyze_paths", "collect_images", "iter_analyze_paths"]

logger = logging.getLogger(__name__)

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
                ImageRecord(
                    path, error=f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; supported: {', '.join(IMAGE_SUFFIXES)}"
                )
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
        raise AnalysisError(
            f"{path}: exists but is not a nanocrystal summary (other columns); move it away or choose another output folder"
        )
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
    manual, diameter, min_area = check_options(nm_per_px, diameter_nm, min_area_px)
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
        from ..segmentation.network import resolve_model

        with as_analysis_error():
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
                result.settings["model"] = model_name(model)
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
