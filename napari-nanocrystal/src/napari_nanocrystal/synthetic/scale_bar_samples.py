"""Scale-bar test images: a TEM-like image with a widely varied scale bar and its truth.

:func:`make_scale_bar_sample` varies fonts, sizes, colours, corners, panels, end ticks,
outlines, units (nm/µm/Å), noise and JPEG artefacts, for testing and benchmarking
:mod:`napari_nanocrystal.scalebar`; it returns a :class:`ScaleBarSample` (uint8 image, gray or
RGB, its :class:`~.scale_bar.ScaleBarTruth` and the drawing parameters).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .scale_bar import _COLOURS, _FONTS, _UNIT_NM, POSITIONS, ScaleBarTruth, _draw_scale_bar
from .tem import _check_shape, make_tem_image


@dataclass
class ScaleBarSample:
    """A scale-bar test image: ``image`` (uint8, gray or RGB), its ``scale_bar`` truth and the drawing ``params``."""

    image: np.ndarray
    scale_bar: ScaleBarTruth
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def nm_per_px(self) -> float:
        return self.scale_bar.nm_per_px


_UNIT_VALUES = {"nm": (2, 5, 10, 20, 50, 100, 200, 500), "µm": (0.1, 0.2, 0.5, 1, 2, 5, 10), "Å": (5, 10, 20, 50)}


def make_scale_bar_sample(
    shape: tuple[int, int] = (512, 512),
    *,
    rng: np.random.Generator | int | None = None,
    unit: str | None = None,
    value: float | None = None,
    bar_length_px: int | None = None,
    position: str | None = None,
    colour: str | None = None,
    panel: bool | None = None,
    ticks: bool | None = None,
    outline: bool | None = None,
    font: str | None = None,
    font_px: int | None = None,
    thickness_px: int | None = None,
    text_side: str | None = None,
    noise: float | None = None,
    jpeg_quality: int | None = None,
    sized_for: tuple[int, int] | None = None,
) -> ScaleBarSample:
    """A TEM-like image with a randomly styled scale bar and its truth.

    Every style argument left as None is drawn at random from ``rng``.

    Parameters
    ----------
    shape : (rows, columns)
    unit : {"nm", "µm", "Å"}
    value : float, the label's number (default: from a 1-2-5 series for the unit)
    bar_length_px : int, default 10–30 % of the width
    position : one of "bottom-left", "bottom-right", "top-left", "top-right", "bottom-center", "top-center"
    colour : {"black", "white", "yellow"}; yellow makes an RGB image
    panel : solid panel of the opposite shade behind bar and label
    ticks : vertical end ticks
    outline : 1-px contrasting outline around bar and label
    font : {"sans", "sans-bold", "sans-oblique", "serif", "mono"} (matplotlib's DejaVu fonts)
    font_px, thickness_px : label font size and bar thickness in px
    text_side : {"above", "below", "left", "right"} of the bar
    noise : standard deviation of Gaussian noise added after drawing (fraction of full scale)
    jpeg_quality : 0 = none, else a PIL JPEG round trip at that quality
    sized_for : (rows, columns) whose shorter side the random font size and bar thickness are drawn for
        (default ``shape``): a figure drawn at ``shape`` and printed at ``sized_for`` then has small print

    Returns
    -------
    ScaleBarSample with a uint8 image (gray, or RGB for a yellow bar).
    """
    H, W = _check_shape(shape)
    rng = np.random.default_rng(rng)
    side = min(H, W)
    print_side = min(_check_shape(sized_for)) if sized_for is not None else side
    unit = unit or str(rng.choice(["nm", "nm", "nm", "µm", "Å"]))
    if unit not in _UNIT_VALUES:
        raise ValueError(f"unit must be one of {list(_UNIT_VALUES)}, not {unit!r}")
    value = float(value if value is not None else rng.choice(_UNIT_VALUES[unit]))
    if bar_length_px is None:
        bar_length_px = int(rng.integers(int(0.10 * W), int(0.30 * W) + 1))
    nm_per_px = value * _UNIT_NM[unit] / bar_length_px
    panel = bool(rng.random() < 0.4) if panel is None else bool(panel)
    params = {
        "position": position or str(rng.choice(POSITIONS)),
        "colour": colour or str(rng.choice(["black", "white", "white", "yellow"])),
        "panel": panel,
        "ticks": bool(rng.random() < 0.3) if ticks is None else bool(ticks),
        "outline": bool(rng.random() < 0.25) if outline is None else bool(outline),
        "font": font or str(rng.choice(list(_FONTS))),
        "font_px": int(font_px or max(12, round(rng.uniform(0.03, 0.06) * print_side))),
        "thickness_px": int(thickness_px or max(2, round(rng.uniform(0.006, 0.02) * print_side))),
        "text_side": text_side or str(rng.choice(["above", "above", "above", "below", "below", "right", "left"])),
        "align": str(rng.choice(["center", "left"])),
        "space": bool(rng.random() < 0.8),
        "decimal_comma": bool(rng.random() < 0.15),
        "margin_px": int(round(rng.uniform(0.0 if panel else 0.01, 0.05) * side)),
        "noise": float(rng.choice([0.0, rng.uniform(0.01, 0.06)])) if noise is None else float(noise),
        "jpeg_quality": int(rng.choice([0, rng.integers(35, 95)])) if jpeg_quality is None else int(jpeg_quality),
        "bar_length_px": int(bar_length_px),
    }
    if params["position"] not in POSITIONS:
        raise ValueError(f"position must be one of {POSITIONS}, not {params['position']!r}")
    if params["colour"] not in _COLOURS:
        raise ValueError(f"colour must be one of {list(_COLOURS)}, not {params['colour']!r}")
    display = _micrograph((H, W), nm_per_px, rng)
    if params["colour"] == "yellow":
        display = np.repeat(display[..., None], 3, axis=2)
    truth = _draw_scale_bar(display, value, unit, rng, **{k: params[k] for k in params if k not in ("noise", "jpeg_quality")})
    if params["noise"] > 0:
        display = display + rng.normal(0.0, params["noise"], display.shape)
    return ScaleBarSample(_to_uint8(display, params["jpeg_quality"]), truth, params)


def print_shrunk(sample: ScaleBarSample, factor: float, *, jpeg_quality: int = 0) -> ScaleBarSample:
    """``sample`` as a figure printed smaller: the image shrunk ``factor`` times by area averaging.

    Published figures are micrographs shrunk for the page: a 2-px bar becomes a grey 1-px line and a
    12-px label 5-px print.  The truth's boxes and bar length are scaled with the image (the length
    may then be fractional); ``jpeg_quality`` (0 = none) adds a JPEG round trip after shrinking, as a
    figure saved again.
    """
    if not factor >= 1.0:
        raise ValueError(f"factor must be >= 1 (a shrink), not {factor!r}")
    from PIL import Image

    H, W = sample.image.shape[:2]
    size = (max(1, round(W / factor)), max(1, round(H / factor)))
    image = np.asarray(Image.fromarray(sample.image).resize(size, Image.Resampling.BOX))
    fy, fx = size[1] / H, size[0] / W
    truth = sample.scale_bar

    def scaled(box):
        return (round(box[0] * fy), round(box[1] * fx), max(round(box[2] * fy), round(box[0] * fy) + 1), round(box[3] * fx))

    truth = replace(truth, bar_length_px=truth.bar_length_px * fx, bar_box=scaled(truth.bar_box), text_box=scaled(truth.text_box))
    image = _jpeg_round_trip(image, jpeg_quality) if jpeg_quality > 0 else image.copy()
    return ScaleBarSample(image, truth, {**sample.params, "printed": float(factor), "printed_jpeg_quality": int(jpeg_quality)})


def _micrograph(shape: tuple[int, int], nm_per_px: float, rng: np.random.Generator) -> np.ndarray:
    """A TEM-like image (float, [0, 1], figure-style display range) of random particles at ``nm_per_px``."""
    H, W = shape
    diameter_px = rng.uniform(8.0, 30.0)
    crowd = rng.uniform(0.05, 0.3)  # area fraction covered by particles
    n_particles = int(crowd * H * W / (math.pi * diameter_px**2 / 4))
    base = make_tem_image(
        (H, W),
        n_particles=min(n_particles, 150),
        shape_classes=tuple(rng.choice(["sphere", "cube", "hexagon", "triangle", "rod"], size=2)),
        diameter_nm=(diameter_px * nm_per_px, 0.15 * diameter_px * nm_per_px),
        nm_per_px=nm_per_px,
        background=rng.uniform(0.0, 0.3),
        dose=float(rng.uniform(50, 1000)),
        fringe=rng.uniform(-0.2, 0.5),
        scale_bar=False,
        dtype="float32",
        rng=rng,
    )
    display = base.image.astype(np.float64)
    return display / max(float(display.max()), 1e-6) * rng.uniform(0.75, 1.0)


def _to_uint8(display: np.ndarray, jpeg_quality: int) -> np.ndarray:
    """The display image ([0, 1]) as uint8, through a JPEG round trip at ``jpeg_quality`` unless 0."""
    image = np.round(np.clip(display, 0.0, 1.0) * 255).astype(np.uint8)
    return _jpeg_round_trip(image, jpeg_quality) if jpeg_quality > 0 else image


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer)).copy()
