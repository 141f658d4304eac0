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


# A comma between the digits is no µ descender


def _ink_line(comma: bool = True, mu: bool = False) -> np.ndarray:
    """Binary ink of a drawn line: a ``1`` and a ``0`` (40 px, rows 20–59), between them a tall comma
    reaching below the baseline (a bold serif comma, as in tune ce41e4e56d's ``1,0 µm``), then an
    x-height ``n`` — or, with ``mu``, a ``µ``: an x-height stem reaching 16 px below the baseline — and an ``m``."""
    ink = np.zeros((100, 200), bool)
    ink[20:60, 10:18] = True  # 1
    if comma:
        ink[42:76, 26:34] = True
    ink[20:60, 42:66] = True  # 0
    ink[28:52, 50:58] = False
    ink[32:60, 80:102] = True  # n (or the u of a µ)
    ink[40:60, 88:94] = False
    if mu:
        ink[60:76, 80:86] = True
    ink[32:60, 110:150] = True  # m
    ink[40:60, 118:126] = ink[40:60, 134:142] = False
    return ink


@pytest.mark.parametrize("comma", [False, True])
@pytest.mark.parametrize("mu", [False, True])
def test_a_comma_between_the_digits_is_no_mu_descender(comma, mu):
    from napari_nanocrystal.scalebar.glyphs import glyph_layout

    layout = glyph_layout(_ink_line(comma, mu), 40.0)
    assert layout is not None and layout.tall == 2
    assert layout.descenders == int(mu)  # before the eighth pass the comma counted: 1 and 2


def test_a_serif_n_read_as_u_after_a_tall_comma_is_refused():
    """``1,0 nm`` read ``1,0 um``: the comma's descender must not confirm a µ (before the eighth pass
    it did: a silent 1.0 µm)."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_manager.findfont("DejaVu Serif"), 40)
    canvas = Image.new("L", (260, 100), 200)
    draw = ImageDraw.Draw(canvas)
    draw.text((15, 12), "1", font=font, fill=10)
    draw.text((60, 12), "0", font=font, fill=10)
    draw.text((110, 12), "nm", font=font, fill=10)
    ink = np.asarray(canvas) < 100
    rows = np.flatnonzero(ink.any(axis=1))
    draw.rectangle((44, rows[-1] - 14, 51, rows[-1] + 14), fill=10)  # a tall comma reaching below the baseline
    crop = np.asarray(canvas).astype(float)
    rows, cols = np.nonzero((crop < 100).any(axis=1))[0], np.nonzero((crop < 100).any(axis=0))[0]
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)

    class Fixed:
        def recognize(self, image, **kwargs):
            return [([[0, 0], [1, 0], [1, 1], [0, 1]], "1,0 um", 0.95)]

    reading, notes = ocr._check_line(Fixed(), crop, box, "dark")
    assert reading is None and any("'u'" in note for note in notes)
