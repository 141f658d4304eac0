"""Thin grey lines (scalebar/thin.py): bars of a figure shrunk for the page, found on row pairs and read."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import get_ocr_reader, read_scale_bar
from napari_nanocrystal.scalebar.locate import _candidates, _planes
from napari_nanocrystal.scalebar.thin import _line_ink, _row_pair_plane, thin_candidates
from napari_nanocrystal.synthetic import make_strip_sample, print_shrunk

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def test_a_line_split_over_two_rows_has_its_whole_ink_on_the_row_pair_plane():
    image = np.full((60, 200), 1.0)
    image[0, 0] = 0.0  # the image's range is 0-1
    image[30, 40:160] = 0.6  # a dark line of 0.9 px, 40 % in one row and 50 % in the next
    image[31, 40:160] = 0.5
    dark = _row_pair_plane("dark", _line_ink(image)["dark"])
    assert dark[30, 50:150] == pytest.approx(0.1) and dark[10, 50:150] == pytest.approx(1.0)
    bar = max(thin_candidates(image), key=lambda item: item.bar.score).bar
    assert bar.polarity == "dark" and bar.bar_box[0] <= 30 < bar.bar_box[2] and bar.bar_length_px == pytest.approx(120.0, abs=0.5)


def test_a_shrunk_bar_no_threshold_sees_is_found_and_read():
    """Zeiss strip, drawn 2.6x larger and shrunk: a 0.8 px grey bar with grey end ticks."""
    factor = 2.6
    sample = print_shrunk(make_strip_sample((round(448 * factor), round(640 * factor)), rng=53007, kind="zeiss"), factor)
    truth = sample.scale_bar
    gray = _planes(sample.image)[0]
    usual = _candidates(_planes(sample.image)) + _candidates(_planes(sample.image), block=True)
    assert not any(abs(item.bar.bar_box[0] - truth.bar_box[0]) <= 2 for item in usual)  # no threshold sees it
    lines = [item.bar for item in thin_candidates(gray) if abs(item.bar.bar_box[0] - truth.bar_box[0]) <= 2]
    assert lines and lines[0].bar_length_px == pytest.approx(truth.bar_length_px, abs=1.0)  # its end ticks' grey counted once
    result = read_scale_bar(sample.image, reader=get_ocr_reader())
    assert (result.value, result.unit) == (truth.value, truth.unit)
    assert result.bar_length_px == pytest.approx(truth.bar_length_px, abs=1.0)


def test_thin_lines_are_not_read_where_a_bar_was_found():
    """A bar whose label is refused is not replaced by a thin line elsewhere (a label frame's edge, say).

    The bar here is a thick block (no thin line of its own on the row-pair plane): only the gate keeps
    the labelled grey line from being read."""
    from napari_nanocrystal.scalebar import ScaleBarError
    from napari_nanocrystal.synthetic.scale_bar import _font, _paint, _text_alpha

    image = np.full((300, 400), 0.6)
    image[240:260, 30:150] = 0.0  # a black block bar, no label
    image[60, 200:330] = 0.45  # a grey line of 0.9 px over two rows, labelled
    image[61, 200:330] = 0.35
    alpha = _text_alpha("50 nm", _font("sans", 18))
    _paint(image, (38, 240, 38 + alpha.shape[0], 240 + alpha.shape[1]), (0.0,), alpha)
    assert thin_candidates(image)  # the line is there to be found
    with pytest.raises(ScaleBarError, match="unreadable") as refused:
        read_scale_bar((image * 255).astype(np.uint8), reader=get_ocr_reader())
    assert refused.value.bar.bar_box[0] >= 240  # the block, for the user to type its value over
