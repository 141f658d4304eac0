"""A text line diagonally off the bar is no label of it (:func:`~napari_nanocrystal.scalebar.window.off_diagonal`).

Generated seed 31044 (a bold white ``10nm`` right of its bar, on a grey image with dark particles)
was read ``7A`` by the ninth pass's reader: the real line was refused for low confidence, and the
grey ground between particles below and right of the label, read in the bright shade, gave 7 Å — a
silent 14-fold error.  A label is drawn beside its bar, above or below it or level with it."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, read_scale_bar
from napari_nanocrystal.scalebar.window import off_diagonal

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def test_lines_beside_the_bar_are_not_diagonal():
    bar = (100, 100, 106, 200)
    assert not off_diagonal((80, 120, 96, 180), bar)  # above, over its columns
    assert not off_diagonal((112, 60, 128, 110), bar)  # below, reaching its start
    assert not off_diagonal((96, 210, 112, 260), bar)  # right, level with it
    assert not off_diagonal((110, 210, 126, 260), bar)  # right, hanging below it by less than its height
    assert not off_diagonal((80, 214, 96, 260), bar)  # right and above: within a height of its rows


def test_a_line_below_and_right_of_the_bar_is_diagonal():
    bar = (100, 100, 106, 200)
    assert off_diagonal((125, 220, 138, 256), bar)  # seed 31044's "7A": 19 px below, 47 px right, 13 px high
    assert off_diagonal((60, 10, 76, 70), bar)  # above and left


def _bar_and_text(text: str, corner: tuple[int, int]) -> np.ndarray:
    """A black 120-px bar on a grey ground (170) and a black DejaVu Sans ``text`` (24 px) at ``corner``
    (row, column) of its drawing."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (420, 260), 170)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((60, 120, 179, 125), fill=0)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), 24)
    draw.text((corner[1], corner[0]), text, font=font, fill=0)
    rng = np.random.default_rng(0)
    return np.asarray(canvas).astype(float) + rng.normal(0.0, 3.0, (260, 420))


def test_text_level_with_the_bar_is_read(reader):
    result = read_scale_bar(_bar_and_text("20 nm", (110, 200)), reader=reader)
    assert (result.value, result.unit) == (20.0, "nm")
    assert result.bar_length_px == pytest.approx(120.0, abs=1.0)


def test_text_diagonally_off_the_bar_is_refused_not_read(reader):
    """The same line moved 40 px below the bar's bottom: no label of the bar (the ninth pass read it ``20 nm``).
    Since then the label windows no longer reach it, so the refusal comes before ``off_diagonal`` (tested on
    boxes above); a line read diagonally off its bar now refuses the image (sixteenth pass)."""
    image = _bar_and_text("20 nm", (166, 220))
    with pytest.raises(ScaleBarError):
        read_scale_bar(image, reader=reader)
