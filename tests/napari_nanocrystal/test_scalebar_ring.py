"""An ``Å`` label whose ring sets the cap line is recounted at the ink's own level
(:func:`~napari_nanocrystal.scalebar.particle.ring_shortfall`).

Generated seed 37037 (an oblique ``50Å``, JPEG quality 37) was read ``750A``: a grey triangle left of
the label joined the 5 and the 0 into one component too wide for a glyph, the ring set the cap line,
and only the ``Å`` was counted — the ring case that :func:`~napari_nanocrystal.scalebar.votes._glyph_mismatch`
leaves alone.  At the tight threshold the triangle drops out and two digits show: the leading 7 was
invented, and the image is refused (another line, two triangles below, read ``7A``)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_nanocrystal.scalebar import ScaleBarError, ocr, read_scale_bar
from napari_nanocrystal.scalebar.particle import ring_shortfall

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.ao.quantization is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"),
    pytest.mark.filterwarnings("ignore:'pin_memory' argument is set:UserWarning"),
]


def _angstrom_line(triangle: bool) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A black oblique DejaVu Sans ``50Å`` (24 px) on a grey ground (175), slightly blurred, with a grey
    (90) triangle touching its 5 from the left (or none), and the line's box."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    canvas = Image.new("L", (120, 50), 175)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", style="oblique")), 24)
    c0, r0, c1, r1 = draw.textbbox((40, 10), "50Å", font=font)
    if triangle:
        draw.polygon([(c0 - 16, r0 + 4), (c0 + 3, r0 + 8), (c0 - 4, r1 + 2)], fill=90)
    draw.text((40, 10), "50Å", font=font, fill=0)
    return np.asarray(canvas.filter(ImageFilter.GaussianBlur(0.6))), (r0 - 1, c0 - 17, r1 + 2, c1 + 1)


def test_a_triangle_joined_to_the_digits_leaves_only_the_ring_counted():
    image, box = _angstrom_line(triangle=True)
    layout = ocr._layout(image, box, "dark")
    assert layout.tall == 1  # the Å alone: the ring case
    assert ocr._glyph_mismatch(layout, "750 A", "Å") is None  # which the usual count leaves alone


def test_the_tight_recount_refuses_an_invented_digit_only():
    image, box = _angstrom_line(triangle=True)
    assert ring_shortfall(image, box, "dark", "750 A") is not None  # two digits before the Å, three read
    assert ring_shortfall(image, box, "dark", "50 A") is None
    clean, box = _angstrom_line(triangle=False)
    assert ring_shortfall(clean, box, "dark", "50 A") is None


def test_generated_seed_37037_is_refused_with_its_bar(reader):
    from napari_nanocrystal.synthetic import make_scale_bar_sample

    sample = make_scale_bar_sample((448, 640), rng=37037)
    assert (sample.scale_bar.value, sample.scale_bar.unit) == (50.0, "Å")
    with pytest.raises(ScaleBarError, match="misread") as refused:
        read_scale_bar(sample.image, reader=reader)
    assert refused.value.bar is not None  # the bar a user types the value for
    assert refused.value.bar.bar_length_px == pytest.approx(sample.scale_bar.bar_length_px, abs=1.5)
