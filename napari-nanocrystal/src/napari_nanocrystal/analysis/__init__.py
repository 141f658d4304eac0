"""Headless batch analysis of TEM micrographs: read → calibrate → segment → measure → name shapes → files.

The package: :mod:`.steps` (the pipeline steps, each usable alone: read, calibrate, segment
with the baseline, drop the particles on the scale bar, measure, summarise — the widgets call
them too), :mod:`.single` (one image), :mod:`.outputs` (overlay and files), :mod:`.batch`
(many files and the summary).  Every name below is importable from here.

For one image, :func:`iter_analyze_image` is a generator that yields ``(message, fraction)``
progress tuples and returns an :class:`ImageAnalysis` (napari's ``thread_worker`` runs it as
is); :func:`analyze_image` runs it and reports progress to an optional callback.  For files,
:func:`iter_analyze_paths` / :func:`analyze_paths` do the same over many images and write,
per image (``<stem>`` is the file's stem, made unique when two inputs share one):

* ``<stem>_particles.csv`` — the per-particle table (:data:`~nc_synthmodel.contract.PARTICLE_COLUMNS`,
  ``shape_class`` filled);
* ``<stem>_labels.tif`` — the instance label image (:func:`napari_nanocrystal.label_files.label_tiff_bytes`:
  a uint16 ImageJ TIFF calibrated in nm; uint32 with the pixel size in its resolution tags beyond 65,535 particles);
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

from ..images import IMAGE_SUFFIXES, MAX_PIXELS
from .batch import SUMMARY_COLUMNS, SUMMARY_NAME, BatchReport, ImageRecord, analyze_paths, collect_images, iter_analyze_paths
from .outputs import OUTPUT_SUFFIXES, output_paths, render_overlay, write_outputs, write_together
from .single import ImageAnalysis, analyze_image, iter_analyze_image
from .steps import (
    AnalysisError,
    drop_on_scale_bar,
    iter_calibrate,
    read_micrograph,
    remove_scale_bar_particles,
    renumber,
    scale_bar_boxes,
    segment_baseline,
    size_summary,
)

__all__ = [
    "AnalysisError",
    "ImageAnalysis",
    "ImageRecord",
    "BatchReport",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "OUTPUT_SUFFIXES",
    "SUMMARY_COLUMNS",
    "SUMMARY_NAME",
    "read_micrograph",
    "collect_images",
    "iter_analyze_image",
    "analyze_image",
    "render_overlay",
    "output_paths",
    "write_outputs",
    "write_together",
    "iter_analyze_paths",
    "analyze_paths",
    "iter_calibrate",
    "segment_baseline",
    "scale_bar_boxes",
    "drop_on_scale_bar",
    "renumber",
    "remove_scale_bar_particles",
    "size_summary",
]
