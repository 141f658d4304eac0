"""Scale bars, issue 16 seventh pass: labels OCR reads in pieces — a decimal point read apart from
its digits (monospace print), a rod or particle beside a label read as a glyph."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ocr

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _drawn(text: str, family: str = "DejaVu Sans Mono", size: int = 30) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A dark label on a light ground, and its ink box."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    font = font_manager.findfont(font_manager.FontProperties(family=family))
    canvas = Image.new("L", (30 + size * len(text), 2 * size + 20), 200)
    ImageDraw.Draw(canvas).text((15, 12), text, font=ImageFont.truetype(font, size), fill=10)
    crop = np.asarray(canvas).astype(float)
    rows, cols = np.nonzero((crop < 100).any(axis=1))[0], np.nonzero((crop < 100).any(axis=0))[0]
    return crop, (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


class _Says:
    """A stand-in for the EasyOCR reader whose recogniser reads every line as ``text``."""

    def __init__(self, text: str):
        self.text = text

    def recognize(self, image, **_):
        return [([[0, 0], [image.shape[1], 0], [image.shape[1], image.shape[0]], [0, image.shape[0]]], self.text, 0.9)]


def test_a_decimal_point_read_apart_from_its_digits_is_joined():
    # generated 22003 / 22005: monospace "0.1 µm" read "0 . 1 um" at every height (refused before:
    # the point, touching no digit, was dropped as a speck and "0 1 um" did not parse)
    assert ocr._normalise("0 . 1 um") == ("0.1 um", False)
    assert ocr._normalise("0 , 2um") == ("0,2um", False)  # the parser takes the comma for a point
    assert ocr._spaced_point("0 . 1 um") and not ocr._spaced_point("0.1 um") and not ocr._spaced_point("1.0 , m")
    crop, box = _drawn("0.1 µm")
    reading, notes = ocr._check_line(_Says("0 . 1 um"), crop, box, "dark", bar_length_px=200)
    assert reading is not None and reading[:2] == (pytest.approx(0.1), "µm"), notes


def test_a_point_read_apart_from_its_digits_must_be_seen_in_the_ink():
    # a speck between the digits of "50 nm" read "5 . 0 nm" would be a silent 10x error
    crop, box = _drawn("50 nm")
    crop[box[2] - 4 : box[2] - 2, (box[1] + 18) : (box[1] + 19)] = 10  # a 2x1 px speck between 5 and 0
    reading, notes = ocr._check_line(_Says("5 . 0 nm"), crop, box, "dark", bar_length_px=200)
    assert reading is None and any("not seen in the ink" in note for note in notes), notes

