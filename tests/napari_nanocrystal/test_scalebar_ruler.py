"""Tick rulers (Hitachi data strips): found without a solid bar, read last, refused with the ruler to type a value over."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, get_ocr_reader, read_scale_bar
from napari_nanocrystal.scalebar.locate import _to_gray
from napari_nanocrystal.scalebar.ruler import find_tick_rulers
from napari_nanocrystal.synthetic import make_scale_bar_sample, make_strip_sample, print_shrunk

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def test_rulers_are_found_where_drawn_and_nowhere_else():
    for seed in range(52000, 52008):
        sample = make_strip_sample((448, 640), rng=seed, kind="hitachi")
        rulers = find_tick_rulers(_to_gray(sample.image))
        assert rulers and rulers[0].box == sample.scale_bar.bar_box and rulers[0].ticks == 11
        assert rulers[0].length_px == pytest.approx(sample.scale_bar.bar_length_px, abs=0.05) and rulers[0].polarity == "bright"
    for seed in range(100, 130):  # solid bars, end ticks, panels, particles: no ruler
        assert find_tick_rulers(_to_gray(make_scale_bar_sample((512, 512), rng=seed).image)) == []


def test_rulers_of_a_figure_printed_smaller_are_found_to_a_pixel():
    """Shrunk 1.6-3.2x, the ticks are grey one-pixel strokes and the label's glyphs touch the ticks above them."""
    for seed in range(53000, 53012):
        factor = 1.6 + 1.6 * (seed % 7) / 6
        drawn = make_strip_sample((round(448 * factor), round(640 * factor)), rng=seed, kind="hitachi")
        sample = print_shrunk(drawn, factor, jpeg_quality=80 * (seed % 2))
        rulers = find_tick_rulers(_to_gray(sample.image))
        assert rulers and rulers[0].ticks == 11, (seed, rulers)
        assert rulers[0].length_px == pytest.approx(sample.scale_bar.bar_length_px, abs=1.0), seed


def test_a_tick_joined_to_its_label_still_counts():
    image = np.full((200, 300), 0.8)
    for col in range(40, 241, 20):  # eleven ticks, rows 180-187
        image[180:188, col] = 0.0
    image[188:196, 218:226] = 0.0  # a glyph under the tenth tick, touching it
    rulers = find_tick_rulers(image)
    assert rulers[0].ticks == 11 and rulers[0].length_px == pytest.approx(201.0)


def test_a_ruler_split_by_one_grey_tick_is_one_ruler():
    # printed Hitachi strip 57003: a grey tick the half-range test misses split the ticks into a run of two and a
    # run of eight; the eight were tried as a ruler of their own, and its label over them read 5 µm over 184 px of 263
    image = np.full((200, 300), 0.0)
    for col in range(40, 241, 20):  # eleven white ticks on a black strip, rows 180-187
        image[180:188, col] = 1.0
    image[180:188, 80] = 0.45  # the third one grey: under half the range, but it stands out of its row
    rulers = find_tick_rulers(image)
    assert [(r.ticks, r.box[1], r.box[3]) for r in rulers] == [(11, 40, 241)]


def test_unevenly_spaced_strokes_are_no_ruler():
    image = np.full((200, 300), 0.8)
    for col in (20, 30, 40, 50, 60, 70, 80, 90):  # eight even ticks: a ruler
        image[180:188, col] = 0.0
    assert [r.ticks for r in find_tick_rulers(image)] == [8]
    image[180:188, 20:91] = 0.8
    for col in (20, 27, 40, 44, 60, 75, 79, 95):  # as many strokes, spaced at random: none
        image[180:188, col] = 0.0
    assert find_tick_rulers(image) == []


def test_a_ruler_is_read_when_no_bar_is_found():
    sample = make_strip_sample((448, 640), rng=52003, kind="hitachi", jpeg_quality=0)
    truth = sample.scale_bar
    result = read_scale_bar(sample.image, reader=get_ocr_reader())
    assert (result.value, result.unit) == (truth.value, truth.unit) and result.bar_box == truth.bar_box
    assert result.nm_per_px == pytest.approx(truth.nm_per_px) and "tick ruler of 11 ticks" in result.detail


def test_a_ruler_without_a_label_is_refused_with_the_ruler():
    image = np.full((240, 320), 200, dtype=np.uint8)
    image[200:] = 0  # a black strip with a white ruler and no label
    for k in range(11):
        image[206:213, 100 + 20 * k] = 255
    with pytest.raises(ScaleBarError, match="label unreadable") as caught:
        read_scale_bar(image, reader=get_ocr_reader())
    assert caught.value.bar.bar_box == (206, 100, 213, 301)


def test_the_label_of_a_printed_ruler_may_touch_its_ticks():
    """Shrunk 2.7x, the label's top row touches the ticks over it: the window's edge at the ruler is no cut."""
    drawn = make_strip_sample((round(448 * 2.7), round(640 * 2.7)), rng=53003, kind="hitachi")
    sample = print_shrunk(drawn, 2.7)
    truth = sample.scale_bar
    result = read_scale_bar(sample.image, reader=get_ocr_reader())
    assert (result.value, result.unit) == (truth.value, truth.unit)
    assert result.bar_length_px == pytest.approx(truth.bar_length_px, abs=1.0)
