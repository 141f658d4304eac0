"""A line box made by a particle, holding tiny glyphs (:func:`~napari_nanocrystal.scalebar.particle.blob_made_box`).

Found by the tenth pass's drawn stress labels (``benchmarks/scalebar_stress.py``): a 10-px STIX ``200 nm``
(7-px digits) over a particle was read ``6 nm`` from a 22-px line box, its glyphs too small and thin to
be counted.  A first rule (any line whose tallest glyph at the ink's own level is small against its box)
refused generated seed 33085, a noisy 14-px ``5 Å`` whose glyphs break apart at that level; a glyph, not
a blob, made that line's box."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar.particle import blob_made_box

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _small_text_on_particle() -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A black 10-px STIX ``200 nm`` (7-px digits) on a grey ground (150) with a grey (100) disc under
    its right half reaching 17 px above it; returns the image, the box of text and disc (the line a
    text detector finds) and the box of the text alone."""
    import os

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (120, 60), 150)
    draw = ImageDraw.Draw(canvas)
    draw.ellipse((45, 18, 75, 48), fill=100)
    font = ImageFont.truetype(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", "STIXGeneral.ttf"), 10)
    draw.text((30, 35), "200 nm", font=font, fill=0)
    image = np.asarray(canvas).astype(float)
    rows, cols = np.flatnonzero((image < 40).any(axis=1)), np.flatnonzero((image < 40).any(axis=0))
    text = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return image, (18, text[1], text[2], 77), text


def test_tiny_glyphs_in_a_particles_line_box_are_refused():
    from napari_nanocrystal.scalebar import ocr

    image, merged, text = _small_text_on_particle()
    assert ocr._layout(image, merged, "dark").tall is None  # the glyphs cannot be counted
    assert blob_made_box(image, merged, "dark", "6 nm") is not None
    assert blob_made_box(image, text, "dark", "200 nm") is None


def test_noisy_thin_glyphs_that_break_apart_are_not_refused(reader):
    """Generated 33085: its glyphs break apart at the ink's own level (tallest 0.15 of the line), but the
    line's tallest ink at the usual threshold is a glyph: read ``5 Å``."""
    from napari_nanocrystal.scalebar import read_scale_bar
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((448, 640), rng=33085)
    result = read_scale_bar(sample.image, reader=reader)
    assert (result.value, result.unit) == (sample.scale_bar.value, sample.scale_bar.unit) == (5.0, "Å")
