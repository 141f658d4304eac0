"""A bar whose threshold runs stop short of its end is measured to its end
(:func:`~napari_nanocrystal.scalebar.locate._ends`).

Generated seed 41058 (a yellow bar with upward end ticks and a thin dark outline, JPEG quality 39): the
colour (chroma) plane, stored at half resolution, dips beside the left tick's dark inner outline, so the
bar's threshold runs started 9 px inside the bar.  The profile then reached only 6 px past the run, its
walk never left the bar, and the run's start was taken for the bar's end: 83.8 px for 93, a silent 11 %
error.  Such an end is now walked again on a profile reaching a quarter of the bar's length further."""

from __future__ import annotations

import numpy as np
import pytest
from _scalebar_helpers import assert_read_right_or_refused
from napari_nanocrystal.scalebar import locate

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _bar_with_dip() -> np.ndarray:
    """A dark bar (rows 10–13, columns 20–119, level 0.05) on a light ground (0.9) with an end tick at each
    end and a lighter stretch (0.3, under the half level) just inside the left tick, like 41058's colour dip."""
    v = np.full((30, 160), 0.9)
    v[10:13, 20:120] = 0.05
    v[4:13, 20:23] = 0.05  # the end ticks
    v[4:13, 117:120] = 0.05
    v[10:13, 24:29] = 0.3
    return v


def test_an_end_past_the_window_is_walked_to():
    v = _bar_with_dip()
    box = (10, 30, 13, 120)  # runs that start past the dip, 10 px inside the bar (margin 6 px)
    left, right = locate._ends(v, box, 0.9, sharp=False)  # a colour plane's bar (a grey one takes the dip for a particle)
    assert left == pytest.approx(20.0, abs=0.5)  # before: 30.0, the run's start
    assert right == pytest.approx(120.0, abs=0.5)


def test_an_end_inside_the_window_is_measured_as_before():
    v = _bar_with_dip()
    v[10:13, 24:29] = 0.05  # no dip: the run starts at the bar's end
    left, right = locate._ends(v, (10, 20, 13, 120), 0.9, sharp=False)
    assert (left, right) == pytest.approx((20.0, 120.0), abs=0.5)


def test_generated_seed_41058_bar_with_ticks_is_measured_whole(reader):
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((600, 480), rng=41058)
    truth = sample.scale_bar
    assert (truth.value, truth.unit, truth.bar_length_px) == (20.0, "Å", 93)
    assert locate.find_scale_bar(sample.image).bar_length_px == pytest.approx(93, abs=1.0)  # before: 83.8
    assert_read_right_or_refused(sample.image, reader, 20.0, "Å", bar_px=93)
