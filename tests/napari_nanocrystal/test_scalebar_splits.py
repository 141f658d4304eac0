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


@pytest.mark.parametrize("size", [24, 34])
def test_a_rod_ending_above_the_baseline_is_no_glyph_of_the_row(size):
    # tune 7f50b86c4b: a nanorod left of "200 nm", its bottom half a glyph height above the digits',
    # joined the row and was read as a leading 1 ("1200 nm", refused as no usual value)
    from napari_nanocrystal.scalebar.lines import ink_lines

    crop, (r0, c0, r1, c1) = _drawn("200 nm", "DejaVu Sans", size)
    crop = np.pad(crop, ((0, 0), (40, 0)), constant_values=200)
    c0, c1 = c0 + 40, c1 + 40
    h = r1 - r0
    crop[r0 - h // 6 : r1 - h // 2, c0 - 20 : c0 - 13] = 10  # the rod: from above the cap line to half-way down
    rows = [box for box, shade in ink_lines(crop) if shade == "dark"]
    assert rows and rows[0][1] >= c0 - 1 and abs(rows[0][3] - c1) <= 1 and rows[0][0] >= r0 - 1, rows


def test_a_glyph_joined_to_ground_past_the_bars_end_is_not_painted_out():
    # tune 85a5d4d8b9: the bold serif m of "0.5 µm" touches the bar near its right end and, through
    # bright noise, a bright patch past the end: the whole piece was painted out with the bar, and
    # the label was read "0.5 ," or "0.5 A" (refused)
    from napari_nanocrystal.scalebar.window import _bar_only
    from scipy import ndimage as ndi

    image = np.zeros((130, 300), bool)
    image[100:110, 50:250] = True  # the bar, columns 50-250
    for left in (200, 210, 220):  # an m: three stems and its top, standing on the bar
        image[75:100, left : left + 4] = True
    image[75:79, 200:224] = True
    image[90, 224:243] = True  # a thin bridge of noise to ...
    image[60:100, 243:275] = True  # ... a patch of ground in the bar's shade past its end
    comp, _ = ndi.label(image, structure=np.ones((3, 3)))
    kept = _bar_only(comp == comp[105, 100], (100, 50, 110, 250))
    assert not kept[75:99, 200:224].any()  # the m is left for OCR (its row next to the bar goes with it)
    assert kept[100:110, 50:250].all() and kept[60:100, 245:275].all()  # the bar and the patch are painted out


def test_only_a_component_standing_apart_is_trimmed_off_a_row():
    from napari_nanocrystal.scalebar.lines import _off_baseline_trimmed

    digits = [(20, 82, 46, 98), (20, 101, 46, 117), (20, 120, 46, 136), (27, 151, 46, 167), (27, 173, 46, 198)]
    # tune 7f50b86c4b's row: a rod 16 px left of "200 nm", its bottom 13 px above the baseline
    assert _off_baseline_trimmed([(16, 58, 33, 66), *digits]) == [20, 82, 46, 198, 26]
    # tune 6d0f510327's dark row, the ground between the glyphs of a bright "100 nm": its first
    # pieces end above the others but touch them; trimmed, the rest read "9 nm"
    ground = [(22, 84, 34, 93), (26, 94, 40, 100), (22, 102, 56, 135), (26, 112, 41, 118), (27, 140, 50, 157), (31, 158, 49, 167)]
    assert _off_baseline_trimmed(ground)[:4] == [22, 84, 56, 167]
