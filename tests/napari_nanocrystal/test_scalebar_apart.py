"""Scale bars, issue 16's eighth pass: a label's number read apart from its unit word when OCR
reads the line as the unit alone (``scalebar/apart.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import apart, ocr

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
]


def _drawn(text: str, size: int = 28, family: str = "DejaVu Sans") -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A dark label on a light ground, and its ink box."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (30 + size * len(text), 2 * size + 20), 200)
    ImageDraw.Draw(canvas).text((15, 12), text, font=ImageFont.truetype(font_manager.findfont(family), size), fill=10)
    crop = np.asarray(canvas).astype(float)
    rows, cols = np.nonzero((crop < 100).any(axis=1))[0], np.nonzero((crop < 100).any(axis=0))[0]
    return crop, (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def _gaps(crop: np.ndarray, box) -> list[tuple[int, int]]:
    """(first, last + 1) columns of the blank gaps between the glyphs of a drawn line."""
    inked = (crop[box[0] : box[2], box[1] : box[3]] < 100).any(axis=0)
    edges = np.flatnonzero(np.diff(inked.astype(np.int8)))
    return [(box[1] + int(a) + 1, box[1] + int(b) + 1) for a, b in zip(edges[::2], edges[1::2])]


class _SplitReader:
    """Stands in for EasyOCR's recogniser: ``unit`` for a wide image (a whole line), ``number`` for
    a narrow one (the number cut out: under 1.6 times as wide as high); ``number`` may be a list,
    one reading per call, in turn."""

    def __init__(self, unit: str, number, confidence: float = 0.95):
        self.unit, self.number, self.confidence, self.calls = unit, number, confidence, 0

    def recognize(self, image, **kwargs):
        height, width = image.shape[:2]
        if width >= 1.6 * height:
            text = self.unit
        else:
            text = self.number if isinstance(self.number, str) else self.number[self.calls % len(self.number)]
            self.calls += 1
        return [([[0, 0], [1, 0], [1, 1], [0, 1]], text, self.confidence)]


@pytest.mark.parametrize("text, tall", [("1 um", 1), ("50 nm", 2), ("200nm", 3), ("0.5 um", 2)])
def test_the_number_ends_between_its_last_digit_and_the_unit(text, tall):
    crop, box = _drawn(text)
    end = apart.number_end(crop, box, "dark")
    assert end is not None and end[1] == tall
    last_digit_gap = _gaps(crop, box)[len(text.split()[0]) - 1 if " " in text else 2]
    assert last_digit_gap[0] <= end[0] <= last_digit_gap[1]
    bright = apart.number_end(255.0 - crop, box, "bright")  # a bright label: the same split
    assert bright is not None and abs(bright[0] - end[0]) <= 1


def test_a_unit_word_alone_has_no_number_end():
    crop, box = _drawn("nm")
    assert apart.number_end(crop, box, "dark") is None


def test_a_number_dropped_by_ocr_is_read_apart():
    """Tune af2a275342: a bold serif ``1um`` read ``um`` at every text height; before the eighth
    pass refused (no number)."""
    crop, box = _drawn("1 um")
    reading, notes = ocr._check_line(_SplitReader("um", "1"), crop, box, "dark")
    assert reading is not None and reading[:2] == (1.0, "µm") and "number read apart: '1'" in notes


@pytest.mark.parametrize(
    "drawn, number, why",
    [
        ("10 um", "1", "the ink has two digit-height glyphs, the number one digit"),
        ("1 um", ["1", "7"], "the readings of the number disagree"),
        ("1 um", "1 n", "no number"),
        ("50 nm", "5.0", "a decimal point the ink does not show"),
    ],
)
def test_a_number_read_apart_must_agree_with_itself_and_the_ink(drawn, number, why):
    crop, box = _drawn(drawn)
    unit = drawn.split()[1]
    reading, _ = ocr._check_line(_SplitReader(unit, number), crop, box, "dark")
    assert reading is None, why


def test_only_a_unit_word_read_alone_is_read_apart():
    assert apart.unit_only([("um", 0.9), ("u m", 0.8)]) == "um"
    assert apart.unit_only([("nm", 0.9)]) is None  # one reading: nothing agrees
    assert apart.unit_only([("um", 0.9), ("nm", 0.8)]) is None
    assert apart.unit_only([("A", 0.9), ("A", 0.8)]) is None  # a capital: as tall as a digit
    assert apart.unit_only([("1 um", 0.9), ("1 um", 0.8)]) is None


# A number with a garbled unit word ("1umn") asks for the binarised readings, and votes on the number


class _SequenceReader:
    """Stands in for EasyOCR's recogniser: the given readings in the order they are asked for
    (:func:`~napari_nanocrystal.scalebar.ocr._readings`: gray at 40 and 56 px, gray at 32, 48 and
    64 px, binarised at 32, 48 and 64 px), the last one repeated."""

    def __init__(self, texts: list[str], confidence: float = 0.8):
        self.texts, self.confidence, self.calls = texts, confidence, 0

    def recognize(self, image, **kwargs):
        text = self.texts[min(self.calls, len(self.texts) - 1)]
        self.calls += 1
        return [([[0, 0], [1, 0], [1, 1], [0, 1]], text, self.confidence)]


@pytest.mark.parametrize(
    "text, number",
    [("1umn", 1.0), ("100 n", 100.0), ("1,0 umn", 1.0), ("2.9 mu", 2.9), ("100 nm", None), ("100 m", None), ("A0", None), ("um", None)],
)
def test_a_garbled_unit_word_keeps_its_number(text, number):
    from napari_nanocrystal.scalebar.votes import _garbled_number

    assert _garbled_number(text) == number


def test_a_garbled_unit_word_asks_for_the_binarised_readings():
    """Tune 245e1a4826: a small ``1 µm`` in an SEM data strip, ``1umn`` at every gray text height,
    ``1um`` binarised; before the eighth pass the two first readings ended it (refused)."""
    crop, box = _drawn("1 um")
    reader = _SequenceReader(["1umn"] * 5 + ["1um"] * 3)
    reading, _ = ocr._check_line(reader, crop, box, "dark")
    assert reading is not None and reading[:2] == (1.0, "µm") and reader.calls == 8
    nothing = _SequenceReader(["A0"] * 8)  # no number: two readings, as before
    assert ocr._check_line(nothing, crop, box, "dark")[0] is None and nothing.calls == 2


def test_a_garbled_reading_with_another_number_refuses():
    crop, box = _drawn("1 um")
    reading, notes = ocr._check_line(_SequenceReader(["10umn"] * 5 + ["1um"] * 3), crop, box, "dark")
    assert reading is None and any("other readings have the number 10" in note for note in notes)
