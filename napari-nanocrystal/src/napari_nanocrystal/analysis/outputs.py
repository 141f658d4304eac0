"""Output files of an analysis: the overlay, and the four files of :func:`write_outputs`.

Per image (``<stem>``: the file's stem, or the name given): ``<stem>_particles.csv``,
``<stem>_labels.tif`` (:func:`napari_nanocrystal.label_files.label_tiff_bytes`, calibrated in nm),
``<stem>_overlay.png`` (:func:`render_overlay`) and ``<stem>_outcome.json``; written beside their
targets and renamed into place together (:func:`write_together`).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
from nc_synthmodel.files import atomic_path, check_output

from ..label_files import label_tiff_bytes, png_bytes
from ..scalebar import ScaleBar
from .single import ImageAnalysis

__all__ = ["OUTPUT_SUFFIXES", "output_paths", "render_overlay", "write_outputs", "write_together"]

#: Per-image output files: kind → suffix appended to the output stem.
OUTPUT_SUFFIXES: dict[str, str] = {
    "particles": "_particles.csv",
    "labels": "_labels.tif",
    "overlay": "_overlay.png",
    "outcome": "_outcome.json",
}

_OUTLINE_RGB = (0, 230, 0)
_EXCLUDED_RGB = (230, 40, 40)
_SCALE_BAR_RGB = (255, 0, 255)


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
        "labels": label_tiff_bytes(analysis.labels, nm_per_px=analysis.nm_per_px),
        "overlay": png_bytes(overlay),
        "outcome": (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
    }
    write_together({paths[kind]: data for kind, data in contents.items()})
    return paths


def write_together(contents: dict[Path, bytes]) -> None:
    """Write every file beside its target, then rename all into place (none if any write fails)."""
    with contextlib.ExitStack() as stack:
        for path, data in contents.items():
            tmp = stack.enter_context(atomic_path(path))
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
