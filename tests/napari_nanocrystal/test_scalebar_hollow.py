"""Hollow scale bars (a thin frame around an inside of the ground's shade): the detector measures
the inside or one edge of the frame, 2–9 % short on real figures (tune 934d76aaf2, 782d7f752d,
893215335a), so the reader refuses them rather than return a wrong nm/px; an outlined *filled*
bar (tune 2e5dab1969) and a plain bar are read as before."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, locate, read_scale_bar
from napari_nanocrystal.scalebar.hollow import hollow_reason

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _crop(bar: str, label: bool = True) -> np.ndarray:
    """A dark ground with a white "10 nm" label over a 100 px bar at columns 40–139, rows 60–65:
    ``hollow`` (a 2 px white frame around a 2 px dark inside), ``slit`` (a white frame around a
    1 px grey slit), ``outlined`` (a white 7 px bar in a 1 px black outline on a grey ground) or
    ``plain`` (a white 6 px bar)."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    ground = 120 if bar == "outlined" else 40
    canvas = Image.new("L", (180, 90), ground)
    draw = ImageDraw.Draw(canvas)
    if label:
        font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), 22)
        draw.text((58, 20), "10 nm", font=font, fill=240)
    if bar == "outlined":
        draw.rectangle((39, 59, 140, 67), fill=0)
        draw.rectangle((40, 60, 139, 66), fill=240)
    else:
        draw.rectangle((40, 60, 139, 65), fill=240)
        if bar == "hollow":
            draw.rectangle((42, 62, 137, 63), fill=ground)
        elif bar == "slit":
            draw.rectangle((42, 62, 137, 62), fill=140)
    return np.asarray(canvas).astype(float)


@pytest.mark.parametrize(("bar", "hollow"), [("hollow", True), ("slit", True), ("outlined", False), ("plain", False)])
def test_hollow_bars_are_told_from_filled_ones(bar, hollow):
    image = _crop(bar, label=False)
    planes = locate._planes(image)
    found = locate._candidates(planes)[0]
    if bar == "hollow":
        assert found.bar.bar_length_px < 97  # the inside, not the frame: why it must be refused
    elif not hollow:
        assert abs(found.bar.bar_length_px - 100) <= 1
    reason = hollow_reason(planes[found.plane], found.bar)
    assert (reason is not None) == hollow, reason
    if hollow:
        assert reason.startswith("hollow scale bar: its length is ambiguous")


def test_a_hollow_bar_is_refused_not_read_short(reader):
    """Before: "10 nm" over the 96 px inside, 0.104 nm/px (4 % too large), returned silently."""
    with pytest.raises(ScaleBarError, match="hollow scale bar: its length is ambiguous") as caught:
        read_scale_bar(_crop("hollow"), reader=reader)
    assert caught.value.bar is None  # no length to type the label's value over: it is not the bar's


@pytest.mark.parametrize("bar", ["outlined", "plain"])
def test_filled_bars_are_still_read(reader, bar):
    result = read_scale_bar(_crop(bar), reader=reader)
    assert (result.value, result.unit) == (10.0, "nm") and abs(result.bar_length_px - 100) <= 1
