"""A read ``n`` becomes ``µ`` only when the glyph count sees the descender too.

Generated seed 39088 (noisy white monospace ``10 nm``, its ``n`` beside a dark particle): every OCR
reading said ``10 nm``, but the descender test (:func:`~napari_nanocrystal.scalebar.glyphs._has_descender`,
three Otsu classes) took the noise under the ``n`` for a µ's tail and the unit became µm — a silent
×1000.  The glyph layout of the same line (:func:`~napari_nanocrystal.scalebar.glyphs.glyph_layout`)
counted no descender; when the two disagree the line is refused.  When no glyph layout can be built
(too little or too much ink, glyphs under 6 px) the descender test alone does not make the µ either: refused."""

from __future__ import annotations

import numpy as np
import pytest
from _scalebar_helpers import assert_read_right_or_refused
from napari_nanocrystal.scalebar import ocr

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _line(text: str, size: int = 30) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A black DejaVu Sans ``text`` on a light ground and the box of its ink."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), size)
    canvas = Image.new("L", (30 + size * len(text), 2 * size + 20), 200)
    ImageDraw.Draw(canvas).text((15, 12), text, font=font, fill=10)
    crop = np.asarray(canvas)
    rows, cols = np.nonzero((crop < 100).any(axis=1))[0], np.nonzero((crop < 100).any(axis=0))[0]
    return crop, (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def test_a_descender_the_glyph_count_does_not_see_refuses_the_line(reader, monkeypatch):
    crop, box = _line("10 nm")
    layout = ocr._layout(crop, box, "dark")
    assert layout is not None and layout.descenders == 0  # the n as drawn: no descender counted
    assert ocr._check_line(reader, crop, box, "dark")[0][:2] == (10.0, "nm")
    monkeypatch.setattr(ocr, "_has_descender", lambda *args, **kwargs: True)  # noise under the n, as in seed 39088
    result, notes = ocr._check_line(reader, crop, box, "dark")
    assert result is None  # before: 10 µm
    assert "glyph count does not see" in notes[-1]


def test_a_descender_with_no_glyph_count_to_confirm_it_refuses_the_line(reader, monkeypatch):
    crop, box = _line("10 nm")
    monkeypatch.setattr(ocr, "_has_descender", lambda *args, **kwargs: True)  # noise under the n, as in seed 39088
    monkeypatch.setattr(ocr, "_layout", lambda *args, **kwargs: None)  # no glyph layout could be built
    result, notes = ocr._check_line(reader, crop, box, "dark")
    assert result is None  # before: 10 µm on the descender test alone
    assert "no glyph count to confirm it" in notes[-1]


def test_generated_seed_39088_is_not_read_ten_micrometres(reader):
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((512, 512), rng=39088)
    assert (sample.scale_bar.value, sample.scale_bar.unit) == (10.0, "nm")
    assert_read_right_or_refused(sample.image, reader, 10.0, "nm")  # before: 10 µm


class _Says:
    """Stands in for EasyOCR's recogniser: ``text`` at every text height, confidence 0.95."""

    def __init__(self, text: str):
        self.text = text

    def recognize(self, image, **kwargs):
        return [([[0, 0], [1, 0], [1, 1], [0, 1]], self.text, 0.95)]


@pytest.mark.parametrize("layout", ["none", "drawn"])
def test_an_unread_glyph_before_m_is_no_mu_on_the_descender_test_alone(layout, monkeypatch):
    """OCR leaves the glyph before the ``m`` unread ("10 m"): a µ needs the glyph count or the u shape, not the
    descender test alone (fifteenth pass, rule M; before: 10 µm from a drawn ``10 nm`` with noise under its n)."""
    crop, box = _line("10 nm")
    monkeypatch.setattr(ocr, "_has_descender", lambda *args, **kwargs: True)  # noise under the n
    if layout == "none":
        monkeypatch.setattr(ocr, "_layout", lambda *args, **kwargs: None)  # no glyph layout could be built
    else:
        assert ocr._layout(crop, box, "dark").descenders == 0  # the drawn n: no descender counted
    result, notes = ocr._check_line(_Says("10 m"), crop, box, "dark")
    assert result is None
    assert "not confirmed by the glyph count" in notes[-1]


def test_an_unread_mu_the_glyph_count_sees_is_still_read():
    crop, box = _line("10 µm")
    assert ocr._layout(crop, box, "dark").descenders == 1
    result, _ = ocr._check_line(_Says("10 m"), crop, box, "dark")
    assert result is not None and result[:2] == (10.0, "µm")
