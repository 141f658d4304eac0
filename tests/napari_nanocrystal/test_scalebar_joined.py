"""A particle joined to a glyph: the line is read again without it, and another number refuses the image.

Generated seed 45021 (a black mono ``10 nm`` left of its bar) was read ``40 nm`` (nm/px +300 %): a dark rod
touches the ``1``, and at the usual threshold the pair is one digit-height component too wide for a glyph,
which :func:`~napari_nanocrystal.scalebar.glyphs.glyph_layout` counts neither as a glyph nor as a blob, so no
particle check ran.  At the ink's own level the rod drops out
(:func:`~napari_nanocrystal.scalebar.particle.joined_particle`); that component alone is cleaned, the line is
read again, and a reading with another number refuses the image (eighteenth pass of issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar
from napari_nanocrystal.scalebar.ocr import _cleaned_verdict
from napari_nanocrystal.scalebar.particle import _JOINED_SHRINK, joined_particle

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _line(rod: bool) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A black DejaVu Sans Mono ``10 nm`` (28 px) on grey 170 (noise σ 3) and, with ``rod``, a grey (80) rod
    5 px thick touching the ``1`` at its lower left; the line box holds all ink darker than half-way."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (260, 80), 170)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans Mono")), 28)
    draw.text((70, 20), "10 nm", font=font, fill=0)
    if rod:
        draw.line((34, 56, 76, 42), fill=80, width=5)
    image = np.asarray(canvas).astype(float) + np.random.default_rng(3).normal(0.0, 3.0, (80, 260))
    rows, cols = np.nonzero(image < 85)
    return image, (int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)


def _glyph_columns(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero((image < 42).any(axis=0))


def test_a_rod_joined_to_the_1_is_cleaned_and_nothing_else():
    image, box = _line(rod=True)
    joined = joined_particle(image, box, "dark")
    assert joined is not None
    assert joined.width > 0.9 * joined.height and joined.width - joined.narrow > _JOINED_SHRINK * joined.height
    changed = np.flatnonzero((joined.crop != image).any(axis=0))
    one_right = _glyph_columns(image[:, 70:90])[-1] + 70  # the 1's last column
    assert changed.size and changed.min() < 60 and changed.max() <= one_right + 2  # the rod (and the 1's rim) only
    assert not (joined.crop[:, 40:60] < 120).any()  # the rod is gone, its rim too
    assert (joined.crop[:, one_right + 3 :] == image[:, one_right + 3 :]).all()  # the 0 and the unit untouched


def test_a_line_without_a_particle_is_not_cleaned():
    image, box = _line(rod=False)
    assert joined_particle(image, box, "dark") is None


def test_another_number_read_more_often_refuses_a_tie_or_no_number_does_not():
    assert _cleaned_verdict("40   nm", [("110   nm", 0.6), ("110   nm", 0.7)]) is not None
    assert _cleaned_verdict("40 nm", [("10 nm", 0.6), ("10 nm", 0.7), ("40 nm", 0.5)]) is not None
    assert _cleaned_verdict("40 nm", [("10 nm", 0.6), ("40 nm", 0.7)]) is None  # a tie keeps the reading
    assert _cleaned_verdict("40 nm", [("nm", 0.6), ("", 0.0)]) is None  # no number read: nothing to compare
    assert _cleaned_verdict("0,1 um", [("0.1 32", 0.6), ("0.1 um", 0.7)]) is None  # the number only, not the unit
    assert _cleaned_verdict("50 nm", [("5.0 nm", 0.6), ("5.0 nm", 0.7)]) is not None  # a decimal mark is the number's


def test_generated_seed_45021_is_refused_not_read_40_nm(reader):
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((448, 640), rng=45021)
    assert (sample.scale_bar.value, sample.scale_bar.unit) == (10.0, "nm")
    with pytest.raises(ScaleBarError, match="particle joined to a glyph") as refused:  # before: 40 nm, silently
        read_scale_bar(sample.image, reader=reader)
    assert str(refused.value).startswith("scale bar label unreadable")
    assert refused.value.bar is not None  # the bar a user types the value for
    assert refused.value.bar.bar_length_px == pytest.approx(sample.scale_bar.bar_length_px, abs=1.5)
