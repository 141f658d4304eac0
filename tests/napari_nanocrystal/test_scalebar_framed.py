"""A label drawn inside a thin frame (a box around its text), found by the tenth pass's drawn stress labels.

The readers up to the ninth pass read such labels silently wrong: the frame, a component enclosing
the glyphs, was taken as a row of glyphs and read with them (``5 nm`` → ``6nm``), and an edge of
the frame, or the strip of ground inside it below the text, was taken as the bar when the frame
touched the real bar (``50 nm`` over 60 px instead of 154 px)."""

from __future__ import annotations

import numpy as np
import pytest
from _scalebar_helpers import assert_read_right_or_refused
from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar
from napari_nanocrystal.scalebar.lines import ink_lines
from napari_nanocrystal.scalebar.window import frames_label

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _framed(text: str, *, frame: bool = True, touching: bool = False, ticks: bool = False):
    """A white monospace ``text`` (20 px) over a white 120-px bar on a black panel in a grey image, with
    a 1-px white frame 4 px around the text (``touching``: its bottom edge on the bar's top row).
    Returns (image, bar box, text box) with boxes as (row0, col0, row1, col1), ends exclusive."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (360, 200), 150)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((90, 70, 290, 170), fill=0)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans Mono")), 20)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    bar_row = 140
    x = 190 - (right - left) / 2 - left
    y = bar_row - 8 - bottom
    draw.text((x, y), text, font=font, fill=255)
    draw.rectangle((130, bar_row, 249, bar_row + 4), fill=255)
    if ticks:
        draw.rectangle((130, bar_row - 12, 131, bar_row + 4), fill=255)
        draw.rectangle((248, bar_row - 12, 249, bar_row + 4), fill=255)
    text_box = (int(y + top), int(x + left), int(y + bottom), int(x + right))
    if frame:
        frame_bottom = bar_row if touching else text_box[2] + 3
        draw.rectangle((text_box[1] - 4, text_box[0] - 4, text_box[3] + 3, frame_bottom), outline=255, width=1)
    rng = np.random.default_rng(1)
    image = np.asarray(canvas).astype(float) + rng.normal(0.0, 3.0, (200, 360))
    return image, (bar_row, 130, bar_row + 5, 250), text_box


def test_a_frame_around_the_text_is_no_row_of_glyphs():
    image, _, text_box = _framed("5 nm")
    crop = image[60:180, 100:280]
    rows = [box for box, shade in ink_lines(crop) if shade == "bright"]
    assert rows, "the text's own row is found"
    frame_box = (text_box[0] - 4 - 60, text_box[1] - 4 - 100, text_box[2] + 4 - 60, text_box[3] + 4 - 100)
    assert all(box[0] > frame_box[0] + 1 and box[2] < frame_box[2] - 1 for box in rows)  # none is the frame's box


def test_a_bar_is_part_of_a_frame_only_when_the_frame_closes_on_it():
    image, bar, text_box = _framed("50 nm", touching=True)
    assert frames_label(image, bar, text_box)  # the frame's bottom edge lies on the bar: one closed shape
    top_edge = (text_box[0] - 4, text_box[1] - 4, text_box[0] - 3, text_box[3] + 4)
    assert frames_label(image, top_edge, text_box)
    image, bar, text_box = _framed("50 nm")
    assert not frames_label(image, bar, text_box)  # a frame apart from the bar
    image, bar, text_box = _framed("50 nm", frame=False, ticks=True)
    assert not frames_label(image, bar, text_box)  # end ticks leave the top open


def test_a_framed_label_apart_from_its_bar_is_read(reader):
    image, _, _ = _framed("5 nm")
    result = read_scale_bar(image, reader=reader)
    assert (result.value, result.unit) == (5.0, "nm")
    assert result.bar_length_px == pytest.approx(120.0, abs=1.0)


def test_a_frame_touching_the_bar_is_refused_not_read_over_its_edge(reader):
    image, _, _ = _framed("50 nm", touching=True)
    try:
        result = read_scale_bar(image, reader=reader)
    except ScaleBarError:
        return
    assert (result.value, result.unit) == (50.0, "nm")
    assert result.bar_length_px == pytest.approx(120.0, abs=1.0)


def test_a_glyph_with_one_blob_in_its_hole_is_no_frame():
    from napari_nanocrystal.scalebar.lines import _encloses_any

    frame = (0, 0, 30, 90)
    glyphs = [(6, 8, 24, 20), (6, 30, 24, 42), (10, 50, 24, 62)]
    assert _encloses_any(frame, [frame, *glyphs])
    assert not _encloses_any(frame, [frame, glyphs[0]])  # one box inside: the ground in a bold 0's hole
    assert not _encloses_any((0, 0, 30, 25), [(0, 0, 30, 25), (5, 3, 12, 10), (15, 3, 25, 10)])  # higher than wide


def test_generated_seed_29051_is_not_read_one_micrometre(reader):
    """Seed 29051 (667 × 1002, an outlined bold ``0.1 µm`` right of its bar) was read ``1 um`` while
    the frame rule dropped every component holding another one."""
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((667, 1002), rng=29051)
    assert sample.scale_bar.text == "0.1 µm"
    assert_read_right_or_refused(np.asarray(sample.image).astype(float), reader, 0.1, "µm")
