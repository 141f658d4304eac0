"""Synthetic bright-field TEM images with per-particle and scale-bar ground truth.

:func:`make_tem_image` draws particles of the shape classes of
:data:`~nc_synthmodel.contract.SHAPE_CLASSES` (masks from
:func:`napari_nanocrystal.shapes.render_shape_mask`) and images them the way a bright-field
TEM does: dark particles on a bright, unevenly illuminated carbon film (mass-thickness
contrast), a Fresnel fringe at the particle edges, defocus blur and shot noise at a given
dose, then burns in a scale bar with a TrueType label.  :func:`make_scale_bar_sample` varies
the scale bar widely (fonts, sizes, colours, corners, panels, end ticks, outlines, units
nm/µm/Å, noise and JPEG artefacts) for testing and benchmarking
:mod:`napari_nanocrystal.scalebar`; :func:`make_strip_sample` puts the bar in a microscope's data
strip instead (a Hitachi-style tick ruler; Zeiss, FEI/Thermo and Philips field strips); :func:`print_shrunk` shrinks
either as a figure printed for the page.

Conventions: images are (rows, columns) or (rows, columns, 3) for coloured scale bars;
labels are int32, 0 = background, overlapping particles keep the later (upper) one;
boxes are ``(row0, col0, row1, col1)`` with exclusive ends, like numpy slices.

Modules: :mod:`.scale_bar` (drawing a bar and its truth), :mod:`.tem` (TEM images,
random styles, training sets), :mod:`.scale_bar_samples` (scale-bar test images),
:mod:`.instrument_strips` (scale bars in data strips).
"""

from __future__ import annotations

from .instrument_strips import STRIP_KINDS, make_strip_sample
from .scale_bar import POSITIONS, ScaleBarTruth
from .scale_bar_samples import ScaleBarSample, make_scale_bar_sample, print_shrunk
from .tem import SyntheticTEM, make_tem_image, random_tem_image, write_training_set

__all__ = [
    "SyntheticTEM",
    "ScaleBarTruth",
    "ScaleBarSample",
    "make_tem_image",
    "make_scale_bar_sample",
    "make_strip_sample",
    "print_shrunk",
    "STRIP_KINDS",
    "random_tem_image",
    "write_training_set",
]
