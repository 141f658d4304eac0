"""Hollow scale bars (a thin frame around an inside of the ground's shade): the detector measures
the inside or one edge of the frame, 2–9 % short of the frame on real figures (tune 934d76aaf2,
782d7f752d, 893215335a), so the reader measures the frame's outside (a drawn rectangle's length)
and refuses when that cannot be measured consistently; an outlined *filled* bar (tune 2e5dab1969)
and a plain bar are read as before."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, locate, read_scale_bar
from napari_nanocrystal.scalebar.hollow import hollow_bar

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
    found_hollow = hollow_bar(planes[found.plane], found.bar)
    reason = None if found_hollow is None else found_hollow.reason
    assert (reason is not None) == hollow, reason
    if hollow:
        assert reason.startswith("hollow scale bar: its length is ambiguous")


@pytest.mark.parametrize("bar", ["hollow", "slit"])
def test_the_outside_of_a_frame_is_measured(bar):
    """The frame spans columns 40–139: its outside is pixel edges 40.0 to 140.0."""
    image = _crop(bar, label=False)
    planes = locate._planes(image)
    found = locate._candidates(planes)[0]
    outer = hollow_bar(planes[found.plane], found.bar).outer
    assert outer is not None and abs(outer[0] - 40.0) <= 0.5 and abs(outer[1] - 140.0) <= 0.5, outer


def test_a_particle_on_one_edge_of_a_frame_does_not_lengthen_it():
    """A bright disc touching the frame's bottom edge beyond its left end lengthens that edge alone:
    the top edge and the sides (the rows between) agree, and their measurement is kept."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(_crop("hollow", label=False).astype(np.uint8))
    ImageDraw.Draw(canvas).ellipse((30, 64, 42, 72), fill=240)
    planes = locate._planes(np.asarray(canvas).astype(float))
    found = locate._candidates(planes)[0]
    outer = hollow_bar(planes[found.plane], found.bar).outer
    assert outer is not None and abs(outer[0] - 40.0) <= 0.5 and abs(outer[1] - 140.0) <= 0.5, outer


def test_a_frame_too_near_the_edge_to_measure_is_refused(reader):
    """Cut 4 px left of the frame, there is no ground beyond its left end to measure against."""
    image = _crop("hollow")[:, 36:]
    planes = locate._planes(image)
    found = locate._candidates(planes)[0]
    assert hollow_bar(planes[found.plane], found.bar).outer is None
    with pytest.raises(ScaleBarError, match="hollow scale bar: .*outside was not measured consistently") as caught:
        read_scale_bar(image, reader=reader)
    assert caught.value.bar is None  # no length to type the label's value over: the inside is not the bar


def test_a_hollow_bar_is_read_over_its_outside(reader):
    """Before the fourth pass: "10 nm" over the 96 px inside, 0.104 nm/px (4 % too large); then refused."""
    result = read_scale_bar(_crop("hollow"), reader=reader)
    assert (result.value, result.unit) == (10.0, "nm")
    assert abs(result.bar_length_px - 100.0) <= 0.5 and abs(result.nm_per_px - 0.1) <= 0.001
    assert "outside" in result.detail


@pytest.mark.parametrize("bar", ["outlined", "plain"])
def test_filled_bars_are_still_read(reader, bar):
    result = read_scale_bar(_crop(bar), reader=reader)
    assert (result.value, result.unit) == (10.0, "nm") and abs(result.bar_length_px - 100) <= 1


def test_a_plain_bar_on_a_noisy_ground_of_its_own_shade_is_not_a_frame(reader):
    """Generated seed 21088 (found by the benchmark, not scored on): a white 51×10 px bar on a white,
    noisy ground.  The ground around the bar is far enough from the bar's shade to pass for a ring,
    and a noise dip ended it 7 px out: the bar was taken for the inside of a 7 px frame and the
    reading refused.  A frame is the other shade on both of its sides; this ground is the same
    beyond the "ring" as in it."""
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((512, 512), rng=21088)
    image = np.asarray(sample.image).astype(float)
    planes = locate._planes(image)
    found = locate._candidates(planes)[0]
    assert found.bar.bar_box == sample.scale_bar.bar_box
    assert hollow_bar(planes[found.plane], found.bar) is None
    result = read_scale_bar(image, reader=reader)
    assert (result.value, result.unit) == (2.0, "nm")
    assert abs(result.bar_length_px - sample.scale_bar.bar_length_px) <= 1


def test_a_frame_on_a_brighter_ground_is_still_a_frame():
    """Beyond a frame the ground may be a lighter patch of the micrograph (tune 782d7f752d: a white
    frame, 0.9 of the way from the inside's shade, on a ground at 0.56 beyond its left side): the
    ring still stands out from it by a fifth of its contrast with the inside."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(_crop("hollow", label=False).astype(np.uint8))
    ImageDraw.Draw(canvas).rectangle((0, 0, 39, 89), fill=150)  # grey ground up to the frame's left side
    planes = locate._planes(np.asarray(canvas).astype(float))
    found = locate._candidates(planes)[0]
    hollow = hollow_bar(planes[found.plane], found.bar)
    assert hollow is not None and "inside of a 2 px frame" in hollow.reason
    assert hollow.outer is not None and abs(hollow.outer[0] - 40.0) <= 0.5 and abs(hollow.outer[1] - 140.0) <= 0.5, hollow.outer


def _haloed(label: bool = False) -> np.ndarray:
    """A grey ground with a black 100 × 4 px bar (columns 40–139, rows 60–63) in a 2 px white outline,
    and, with ``label``, a black "10 nm" above it: a thin bar of its label's shade, drawn with a halo
    (generated seed 24014)."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (180, 90), 130)
    draw = ImageDraw.Draw(canvas)
    if label:
        from PIL import ImageFont

        font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), 22)
        draw.text((58, 20), "10 nm", font=font, fill=0)
    draw.rectangle((38, 58, 141, 65), fill=250)
    draw.rectangle((40, 60, 139, 63), fill=0)
    return np.asarray(canvas).astype(float)


def test_a_bar_of_its_labels_shade_in_a_ring_is_no_frames_inside():
    """A frame is drawn in its label's shade; a ring around a bar of the label's own shade is its
    outline or the margin of its panel.  Without the label's shade the haloed bar is a frame's inside."""
    planes = locate._planes(_haloed())
    found = locate._candidates(planes)[0]
    assert found.bar.polarity == "dark" and abs(found.bar.bar_length_px - 100) <= 1
    assert hollow_bar(planes[found.plane], found.bar) is not None  # the label's shade unknown: a frame's inside
    assert hollow_bar(planes[found.plane], found.bar, label="bright") is not None
    assert hollow_bar(planes[found.plane], found.bar, label="dark") is None
    white = locate._planes(_crop("hollow", label=False))  # a white frame: its inside is dark, its label white
    inside = locate._candidates(white)[0]
    assert hollow_bar(white[inside.plane], inside.bar, label="bright") is not None


def test_a_haloed_bar_is_read_over_its_own_length(reader):
    """Before the eighth pass: "10 nm" over the halo's outside, 104 px."""
    result = read_scale_bar(_haloed(label=True), reader=reader)
    assert (result.value, result.unit) == (10.0, "nm") and abs(result.bar_length_px - 100) <= 1


@pytest.mark.parametrize("seed", [24014, 24083])
def test_bars_in_a_halo_or_on_a_panel_are_read_over_their_own_length(reader, seed):
    """Generated seeds 24014 (a black 4-px bar with a white outline, read over the outline's outside:
    136.2 px for 134) and 24083 (a black bar 6 px from the edges of its white panel, read over the
    panel's margin: 156.0 px for 144), silently wrong with the readers of the fifth to seventh passes;
    found by the eighth pass's run on these fresh seeds (so no longer unseen ones)."""
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    shape = {24014: (600, 480), 24083: (667, 1002)}[seed]
    sample = make_scale_bar_sample(shape, rng=seed)
    result = read_scale_bar(np.asarray(sample.image).astype(float), reader=reader)
    assert (result.value, result.unit) == (sample.scale_bar.value, sample.scale_bar.unit)
    assert abs(result.bar_length_px - sample.scale_bar.bar_length_px) <= 1
