"""Scale bars: the fine-tuning script's cut label lines (``benchmarks/scalebar_ocr_finetune.py lines --cut``).

A line cut between two glyphs is labelled with what is left (``100 nm`` -> ``00 nm``), so the cut must fall
in an ink-free column of the text as the generator draws it (twenty-second pass: PIL's single-glyph
``getbbox`` is the advance box, not the ink, and found no such column between most glyphs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from napari_nanocrystal.synthetic import make_scale_bar_sample, scale_bar

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scalebar_ocr_finetune as finetune  # noqa: E402


@pytest.mark.parametrize("font, font_px", [("sans", 24), ("mono", 24), ("sans-bold", 14)])
@pytest.mark.parametrize("side", ["lead", "trail"])
def test_cut_falls_between_two_glyphs(font, font_px, side):
    sample = make_scale_bar_sample((512, 512), rng=3, value=100, unit="nm", font=font, font_px=font_px, noise=0, jpeg_quality=0)
    text = sample.scale_bar.text
    assert text.replace(" ", "") == "100nm"
    t0, l0, t1, l1 = sample.scale_bar.text_box
    cut = finetune._cut_line(sample, (t0, l0, t1, l1), side)
    assert cut is not None
    column, left, right, label = cut
    alpha = scale_bar._text_alpha(text, scale_bar._font(font, font_px))  # the generator's glyph coverage, cropped as drawn
    assert alpha.shape[1] == l1 - l0
    at = column - l0
    assert alpha[:, at].max() < 0.1  # no glyph is cut through
    if side == "lead":
        assert label == text[1:] and alpha[:, :at].max() > 0.5 and alpha[:, at:].max() > 0.5
        assert at < left - l0 and right == l1
    else:
        assert label == text[:-1].rstrip() and label.endswith("n") and alpha[:, at:].max() > 0.5
        assert left == l0 and right - l0 <= at


@pytest.mark.parametrize("side", ["lead", "trail"])
def test_no_cut_between_touching_glyphs(side):
    """12-px DejaVu Sans Mono: ``1``/``0`` and ``n``/``m`` touch (no ink-free column): not cut, not mislabelled."""
    sample = make_scale_bar_sample((512, 512), rng=3, value=100, unit="nm", font="mono", font_px=12, noise=0, jpeg_quality=0)
    assert finetune._cut_line(sample, sample.scale_bar.text_box, side) is None
