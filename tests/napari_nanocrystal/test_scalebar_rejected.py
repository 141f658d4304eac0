"""A label reading refused after OCR refuses the image; no other stroke's text is read in its place.

Two checks refuse a bar's reading after OCR: a line diagonally off the bar
(:func:`~napari_nanocrystal.scalebar.window.off_diagonal`) and a calibration outside
:data:`~napari_nanocrystal.scalebar.OCR_NM_PER_PX`.  Until the sixteenth pass both moved on to the next candidate
bar, whose "label" may be any text of the figure: in the fifteenth pass a rule that skipped a bar this way
(generated seed 42066, ``20 nm`` right of its bar) had the next candidate read ``4 A``, a silent wrong number.
Below, the best bar's label reads ``500 µm`` over 120 px (4170 nm/px: a misreading, or no label of a micrograph),
and a second stroke with ``5 nm`` drawn over it was taken as the scale bar (0.0556 nm/px)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _figure(label: str | None, other: str | None) -> np.ndarray:
    """A grey figure (170, noise σ 3) with a black 120-px bar at rows 200-205, ``label`` over it, and a
    black 90-px stroke at rows 40-44 with ``other`` over it (DejaVu Sans, 24 px, each when given)."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (420, 260), 170)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), 24)
    draw.rectangle((60, 200, 179, 205), fill=0)
    if label is not None:
        draw.text((95, 165), label, font=font, fill=0)
    draw.rectangle((280, 40, 369, 44), fill=0)
    if other is not None:
        draw.text((290, 5), other, font=font, fill=0)
    return np.asarray(canvas).astype(float) + np.random.default_rng(0).normal(0.0, 3.0, (260, 420))


def test_a_refused_reading_of_the_best_bar_is_not_replaced_by_another_strokes_text(reader):
    with pytest.raises(ScaleBarError, match="no other stroke's text is read") as caught:  # before: 5 nm, the stroke
        read_scale_bar(_figure("500 µm", "5 nm"), reader=reader)
    assert "500 um" in str(caught.value) and "nm/px, outside" in str(caught.value)  # the reading and why
    assert caught.value.bar is not None and caught.value.bar.bar_box == (200, 60, 206, 180)  # the bar to type a value for


def test_the_other_stroke_is_still_read_when_the_best_bar_has_no_label(reader):
    result = read_scale_bar(_figure(None, "5 nm"), reader=reader)  # nothing was read and refused: the next bar is read
    assert (result.value, result.unit) == (5.0, "nm")
    assert result.bar_length_px == pytest.approx(90.0, abs=1.0)


def test_the_best_bar_is_read_when_its_label_reads(reader):
    result = read_scale_bar(_figure("20 nm", "5 nm"), reader=reader)
    assert (result.value, result.unit) == (20.0, "nm")
    assert result.bar_length_px == pytest.approx(120.0, abs=1.0)
