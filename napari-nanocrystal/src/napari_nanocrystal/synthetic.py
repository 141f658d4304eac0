"""Synthetic bright-field TEM images with per-particle and scale-bar ground truth.

:func:`make_tem_image` draws particles of the shape classes of
:data:`~nc_synthmodel.contract.SHAPE_CLASSES` (masks from
:func:`napari_nanocrystal.shapes.render_shape_mask` when it is available, else a small
built-in renderer) and images them the way a bright-field TEM does: dark particles on a
bright, unevenly illuminated carbon film (mass-thickness contrast), a Fresnel fringe at
the particle edges, defocus blur and shot noise at a given dose, then burns in a scale
bar with a TrueType label.  :func:`make_scale_bar_sample` varies the scale bar widely
(fonts, sizes, colours, corners, panels, end ticks, outlines, units nm/µm/Å, noise and
JPEG artefacts) for testing and benchmarking :mod:`napari_nanocrystal.scalebar`.

Conventions: images are (rows, columns) or (rows, columns, 3) for coloured scale bars;
labels are int32, 0 = background, overlapping particles keep the later (upper) one;
boxes are ``(row0, col0, row1, col1)`` with exclusive ends, like numpy slices.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nc_synthmodel.contract import SHAPE_CLASSES
from scipy import ndimage as ndi

__all__ = [
    "SyntheticTEM", "ScaleBarTruth", "ScaleBarSample", "make_tem_image", "make_scale_bar_sample", "random_tem_image",
    "write_training_set",
]

logger = logging.getLogger(__name__)

#: Length of one unit in nm, for the units the generator writes.
_UNIT_NM = {"nm": 1.0, "µm": 1000.0, "Å": 0.1}
#: Bar positions the generator knows.
POSITIONS: tuple[str, ...] = ("bottom-left", "bottom-right", "top-left", "top-right", "bottom-center", "top-center")
#: matplotlib's bundled DejaVu fonts: (family, weight, style).
_FONTS = {
    "sans": ("DejaVu Sans", "normal", "normal"),
    "sans-bold": ("DejaVu Sans", "bold", "normal"),
    "sans-oblique": ("DejaVu Sans", "normal", "oblique"),
    "serif": ("DejaVu Serif", "normal", "normal"),
    "mono": ("DejaVu Sans Mono", "normal", "normal"),
}
_COLOURS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "yellow": (1.0, 1.0, 0.0)}
_ROUNDED_PROFILE = {"sphere", "rod", "Irregular shape", "flower shape"}


@dataclass(frozen=True)
class ScaleBarTruth:
    """Ground truth of a drawn scale bar.

    ``bar_box`` is the horizontal bar without end ticks and ``bar_length_px`` its
    length in pixels (``bar_box[3] - bar_box[1]``); ``text_box`` bounds the label's ink.
    """

    value: float
    unit: str
    text: str
    bar_length_px: int
    bar_box: tuple[int, int, int, int]
    text_box: tuple[int, int, int, int]
    position: str
    polarity: str  # "dark" or "bright"
    panel: bool

    @property
    def value_nm(self) -> float:
        return self.value * _UNIT_NM[self.unit]

    @property
    def nm_per_px(self) -> float:
        """Calibration implied by the bar: value in nm / bar length in px."""
        return self.value_nm / self.bar_length_px


@dataclass
class SyntheticTEM:
    """A synthetic TEM image and its truth.

    Attributes
    ----------
    image : (rows, columns) array of the requested dtype
    labels : (rows, columns) int32 instance map, 0 = background
    nm_per_px : float, the image calibration
    particles : DataFrame, one row per particle (see :func:`make_tem_image`)
    scale_bar : ScaleBarTruth or None
    """

    image: np.ndarray
    labels: np.ndarray
    nm_per_px: float
    particles: pd.DataFrame
    scale_bar: ScaleBarTruth | None = None


@dataclass
class ScaleBarSample:
    """A scale-bar test image: ``image`` (uint8, gray or RGB), its ``scale_bar`` truth and the drawing ``params``."""

    image: np.ndarray
    scale_bar: ScaleBarTruth
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def nm_per_px(self) -> float:
        return self.scale_bar.nm_per_px


# ----------------------------------------------------------------------------------------
# Particle masks


def _fallback_mask(shape_class: str, diameter_px: float, rotation_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Polygon/ellipse mask (ECD ≈ ``diameter_px``) for the simple classes."""
    from skimage.draw import polygon as draw_polygon

    t = np.linspace(0.0, 2 * math.pi, 180, endpoint=False)
    if shape_class == "sphere":
        a = rng.uniform(1.0, 1.08)
        xy = np.column_stack([a * np.cos(t), np.sin(t)])
    elif shape_class == "rod":
        a = rng.uniform(3.0, 6.0)  # stadium: half-length a, half-width 1
        c = np.cos(t)
        xy = np.column_stack([np.sign(c) * (a - 1) + c, np.sin(t)])
    else:
        sides = {"cube": 4, "rectangle": 4, "rhombus": 4, "triangle": 3, "hexagon": 6}.get(shape_class)
        if sides is None:
            raise ValueError(f"the built-in renderer draws sphere, cube, rectangle, rhombus, rod, triangle and hexagon, not {shape_class!r}")
        phase = math.pi / 4 if sides == 4 else math.pi / 2
        v = np.arange(sides) * 2 * math.pi / sides + phase
        xy = np.column_stack([np.cos(v), np.sin(v)])
        if shape_class == "rectangle":
            xy[:, 0] *= rng.uniform(1.4, 2.2)
        elif shape_class == "rhombus":
            xy = np.column_stack([np.cos(v - phase) * rng.uniform(1.4, 1.9), np.sin(v - phase)])
    x, y = xy[:, 0], xy[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    xy *= (diameter_px / 2) / math.sqrt(area / math.pi)
    theta = math.radians(rotation_deg)
    x, y = (xy @ np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])).T
    rows, cols = -y - (-y).min() + 3, x - x.min() + 3
    mask = np.zeros((int(rows.max()) + 5, int(cols.max()) + 5), dtype=bool)
    mask[draw_polygon(rows, cols, mask.shape)] = True
    return mask


def _render_mask(shape_class: str, diameter_px: float, rotation_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Particle mask from ``shapes.render_shape_mask`` if present, else :func:`_fallback_mask`."""
    try:
        from napari_nanocrystal import shapes
    except ImportError:  # pragma: no cover - shapes is part of this package
        shapes = None
    render = getattr(shapes, "render_shape_mask", None)
    if render is None:
        return _fallback_mask(shape_class, diameter_px, rotation_deg, rng)
    return np.asarray(render(shape_class, diameter_px, rotation_deg=rotation_deg, rng=rng), dtype=bool)


def _thickness(mask: np.ndarray, shape_class: str) -> np.ndarray:
    """Projected thickness in [0, 1]: a dome for round classes, a plateau for faceted ones."""
    d = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r = max(float(d.max()), 1.0)
    if shape_class in _ROUNDED_PROFILE:
        return np.sqrt(np.clip(1.0 - (1.0 - d / r) ** 2, 0.0, 1.0)) * mask
    return np.clip(d / max(1.5, 0.25 * r), 0.0, 1.0)


# ----------------------------------------------------------------------------------------
# Scale bar layout and drawing


@lru_cache(maxsize=None)
def _font_path(name: str) -> str:
    from matplotlib import font_manager

    family, weight, style = _FONTS[name]
    props = font_manager.FontProperties(family=family, weight=weight, style=style)
    return font_manager.findfont(props, fallback_to_default=True)


@lru_cache(maxsize=64)
def _font(name: str, size_px: int):
    from PIL import ImageFont

    return ImageFont.truetype(_font_path(name), size_px)


def _format_value(value: float, decimal_comma: bool = False) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if decimal_comma else text


def _round_bar_values(width_px: int, nm_per_px: float) -> list[float]:
    """Values in nm from the 1-2-5 series whose bar is 10–30 % of ``width_px``."""
    out = []
    for exponent in range(-4, 8):
        for mantissa in (1, 2, 5):
            value_nm = mantissa * 10.0**exponent
            if 0.10 * width_px <= value_nm / nm_per_px <= 0.30 * width_px:
                out.append(float(f"{value_nm:.6g}"))
    return out


@dataclass
class _Layout:
    bar: tuple[int, int, int, int]
    text_origin: tuple[int, int]  # (row, col) of PIL's text anchor "lt"
    panel: tuple[int, int, int, int] | None
    ticks: list[tuple[int, int, int, int]]
    bbox: tuple[int, int, int, int]  # everything drawn


def _layout(shape, bar_length_px, thickness_px, text_wh, rng, *, position, text_side, align, panel, ticks, margin_px):
    """Place bar, label, ticks and panel; positions relative to the image corner chosen."""
    H, W = shape
    tw, th = text_wh
    L, t = bar_length_px, thickness_px
    gap = max(2, int(round(0.35 * th)))
    tick_h = int(round(t * rng.uniform(2.0, 3.5))) if ticks else 0
    tick_w = max(1, int(round(t * rng.uniform(0.4, 1.0)))) if ticks else 0
    # group geometry with the bar's top-left at (0, 0)
    extra = max(0, tick_h - t)  # ticks rise above the bar
    if text_side == "above":
        tr, tc = -extra - gap - th, (L - tw) // 2 if align == "center" else 0
    elif text_side == "below":
        tr, tc = t + gap, (L - tw) // 2 if align == "center" else 0
    elif text_side == "right":
        tr, tc = (t - th) // 2, L + gap + 2
    else:  # left
        tr, tc = (t - th) // 2, -gap - 2 - tw
    r0, c0 = min(0, tr, -extra), min(0, tc)
    r1, c1 = max(t, tr + th), max(L, tc + tw)
    pad = int(round(rng.uniform(0.3, 0.8) * th)) if panel else 0
    gh, gw = r1 - r0 + 2 * pad, c1 - c0 + 2 * pad
    if gh > H - 2 or gw > W - 2:
        raise ValueError(f"scale bar and label ({gh}×{gw} px) do not fit in a {H}×{W} image")
    vertical, horizontal = position.split("-")
    m = margin_px
    top = m if vertical == "top" else H - m - gh
    left = {"left": m, "right": W - m - gw, "center": (W - gw) // 2}[horizontal]
    top, left = int(np.clip(top, 0, H - gh)), int(np.clip(left, 0, W - gw))
    oy, ox = top + pad - r0, left + pad - c0  # image position of the bar's top-left
    bar = (oy, ox, oy + t, ox + L)
    tick_boxes = []
    if ticks:
        for col in (ox, ox + L - tick_w):
            tick_boxes.append((oy + t - tick_h, col, oy + t, col + tick_w))
    panel_box = (top, left, top + gh, left + gw) if panel else None
    return _Layout(bar, (oy + tr, ox + tc), panel_box, tick_boxes, (top, left, top + gh, left + gw))


def _text_alpha(text: str, font, stroke_px: int = 0) -> np.ndarray:
    """Antialiased coverage (0..1) of ``text``, cropped to its ink."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = font.getbbox(text, anchor="lt", stroke_width=stroke_px)
    canvas = Image.new("L", (x1 - x0 + 4, y1 - y0 + 4), 0)
    ImageDraw.Draw(canvas).text((2 - x0, 2 - y0), text, font=font, fill=255, anchor="lt", stroke_width=stroke_px, stroke_fill=255)
    alpha = np.asarray(canvas, dtype=np.float64) / 255.0
    rows, cols = np.nonzero(alpha > 0)
    return alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _paint(display: np.ndarray, box, colour, alpha=None) -> None:
    """Paint ``colour`` over ``box`` (clipped to the image), with coverage ``alpha`` if given."""
    r0, c0, r1, c1 = box
    H, W = display.shape[:2]
    if alpha is not None:
        alpha = alpha[max(0, -r0) : alpha.shape[0] - max(0, r1 - H), max(0, -c0) : alpha.shape[1] - max(0, c1 - W)]
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, H), min(c1, W)
    colour = np.asarray(colour, dtype=np.float64)
    region = display[r0:r1, c0:c1]
    if display.ndim == 2:
        colour = float(colour.mean()) if colour.ndim else float(colour)
    if alpha is None:
        region[...] = colour
        return
    a = alpha if display.ndim == 2 else alpha[..., None]
    region[...] = region * (1 - a) + colour * a


def _draw_scale_bar(display, value, unit, rng, **style) -> ScaleBarTruth:
    """Draw a scale bar into ``display`` (float, [0, 1], gray or RGB) in place; return its truth.

    ``style``: bar_length_px, thickness_px, font, font_px, position, text_side, align,
    panel, ticks, outline, colour, space, decimal_comma, margin_px.
    """
    H, W = display.shape[:2]
    text = _format_value(value, style["decimal_comma"]) + (" " if style["space"] else "") + unit
    font = _font(style["font"], int(style["font_px"]))
    stroke = 1 if style["outline"] else 0
    alpha = _text_alpha(text, font)
    halo = _text_alpha(text, font, stroke) if stroke else None
    th, tw = alpha.shape
    lay = _layout(
        (H, W), style["bar_length_px"], style["thickness_px"], (tw, th), rng,
        position=style["position"], text_side=style["text_side"], align=style["align"],
        panel=style["panel"], ticks=style["ticks"], margin_px=style["margin_px"],
    )
    colour = _COLOURS[style["colour"]]
    bright = float(np.mean(colour)) > 0.5
    back = _COLOURS["black"] if bright else _COLOURS["white"]
    if lay.panel is not None:
        _paint(display, lay.panel, back)
    rows, cols = lay.text_origin
    text_box = (rows, cols, rows + th, cols + tw)
    if stroke:
        s = (halo.shape[0] - th) // 2
        _paint(display, (rows - s, cols - s, rows - s + halo.shape[0], cols - s + halo.shape[1]), back, halo)
        for box in [lay.bar, *lay.ticks]:
            _paint(display, (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), back)
    for box in [lay.bar, *lay.ticks]:
        _paint(display, box, colour)
    _paint(display, text_box, colour, alpha)
    r0, c0, r1, c1 = lay.bar
    return ScaleBarTruth(
        value=float(value),
        unit=unit,
        text=text,
        bar_length_px=int(c1 - c0),
        bar_box=(int(r0), int(c0), int(r1), int(c1)),
        text_box=tuple(int(v) for v in text_box),
        position=style["position"],
        polarity="bright" if bright else "dark",
        panel=lay.panel is not None,
    )


def _default_bar_style(shape, rng, *, position=None, polarity=None, panel=None) -> dict[str, Any]:
    H, W = shape
    side = min(H, W)
    return {
        "thickness_px": int(max(2, round(rng.uniform(0.008, 0.016) * side))),
        "font": "sans",
        "font_px": int(max(12, round(rng.uniform(0.035, 0.05) * side))),
        "position": position or str(rng.choice(POSITIONS[:4])),
        "text_side": "above",
        "align": "center",
        "panel": bool(rng.random() < 0.5) if panel is None else bool(panel),
        "ticks": False,
        "outline": False,
        "colour": {"dark": "black", "bright": "white", None: str(rng.choice(["black", "white"]))}[polarity],
        "space": True,
        "decimal_comma": False,
        "margin_px": int(round(0.03 * side)),
    }


# ----------------------------------------------------------------------------------------
# TEM image


def _check_shape(shape) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 32:
        raise ValueError(f"shape must be (rows, columns), each ≥ 32; got {shape!r}")
    return int(shape[0]), int(shape[1])


def _place(masks, labels, occupied, rng, touching, max_tries=60):
    """Place each mask: touching → in contact with (or slightly overlapping) an earlier
    particle; else free with a gap of ≥ 2 px. Returns the top-left corner of each or None."""
    H, W = labels.shape
    corners: list[tuple[int, int] | None] = []
    centres: list[tuple[float, float, float, int]] = []  # (row, col, radius, label) of placed particles
    for i, mask in enumerate(masks):
        h, w = mask.shape
        radius = math.sqrt(mask.sum() / math.pi)
        grown1 = ndi.binary_dilation(np.pad(mask, 1))
        grown2 = ndi.binary_dilation(np.pad(mask, 2), iterations=2)
        placed = None
        for _ in range(max_tries):
            if touching[i] and centres:
                k = int(rng.integers(len(centres)))
                pr, pc, prad, partner = centres[k]
                angle = rng.uniform(0, 2 * math.pi)
                for dist in np.arange(prad + radius + 3, 0.5 * (prad + radius), -0.5):
                    top = int(round(pr + dist * math.sin(angle) - h / 2))
                    left = int(round(pc + dist * math.cos(angle) - w / 2))
                    if top < 1 or left < 1 or top + h > H - 1 or left + w > W - 1:
                        break
                    hit = labels[top - 1 : top + h + 1, left - 1 : left + w + 1][grown1]
                    if np.any((hit != 0) & (hit != partner)) or occupied[top : top + h, left : left + w][mask].any():
                        break
                    if np.any(hit == partner):
                        overlap = int(rng.integers(0, max(1, int(0.12 * min(prad, radius))) + 1))
                        top = int(round(top - overlap * math.sin(angle)))
                        left = int(round(left - overlap * math.cos(angle)))
                        sub = labels[top : top + h, left : left + w][mask]
                        if not np.any((sub != 0) & (sub != partner)):
                            placed = (top, left)
                        break
            else:
                top = int(rng.integers(1, max(2, H - h - 1)))
                left = int(rng.integers(1, max(2, W - w - 1)))
                if top + h > H - 1 or left + w > W - 1:
                    continue
                window = labels[max(0, top - 2) : top + h + 2, max(0, left - 2) : left + w + 2]
                if window.shape == grown2.shape and not window[grown2].any() and not occupied[top : top + h, left : left + w][mask].any():
                    placed = (top, left)
            if placed is not None:
                break
        corners.append(placed)
        if placed is not None:
            top, left = placed
            labels[top : top + h, left : left + w][mask] = i + 1
            rows, cols = np.nonzero(mask)
            centres.append((top + rows.mean(), left + cols.mean(), radius, i + 1))
    return corners


def make_tem_image(
    shape: tuple[int, int] = (512, 512),
    *,
    n_particles: int = 60,
    shape_classes: Sequence[str] = ("sphere",),
    diameter_nm: tuple[float, float] = (8.0, 1.0),
    nm_per_px: float = 0.5,
    touching_fraction: float = 0.2,
    contrast: tuple[float, float] = (0.4, 0.9),
    background: float = 0.15,
    film: float = 0.04,
    fringe: float = 0.3,
    blur_px: float = 0.8,
    dose: float | None = 300.0,
    scale_bar: bool = True,
    bar_position: str | None = None,
    bar_polarity: str | None = None,
    bar_panel: bool | None = None,
    dtype: str | np.dtype = "uint8",
    rng: np.random.Generator | int | None = None,
) -> SyntheticTEM:
    """A synthetic bright-field TEM image of nanocrystals with ground truth.

    Parameters
    ----------
    shape : (rows, columns)
    n_particles : int
        Particles requested; fewer are placed when the field is too crowded (logged).
    shape_classes : sequence of str
        Classes of :data:`SHAPE_CLASSES` drawn uniformly at random per particle.
    diameter_nm : (mean, sd)
        Normal distribution of the equivalent circle diameters, truncated at 30 % of the mean.
    nm_per_px : float
        Image calibration.
    touching_fraction : float in [0, 1]
        Fraction of particles put in contact with, or slightly overlapping, an earlier one
        (pairs, chains and clusters).
    contrast : (low, high)
        Range of the particles' mass-thickness absorption (transmission exp(-a) at the centre).
    background : float
        Amplitude of the uneven illumination (low-frequency field plus a gradient).
    film : float
        Relative amplitude of the fine amorphous-carbon texture.
    fringe : float
        Strength of the Fresnel fringe; > 0 (underfocus) gives a bright halo outside the
        edge and a dark rim inside, < 0 the opposite.
    blur_px : float
        Gaussian defocus blur (sigma, px).
    dose : float or None
        Electrons per pixel of the background for Poisson shot noise; None = noise-free.
    scale_bar : bool
        Burn in a scale bar with a "50 nm"-style label (DejaVu Sans): a 1-2-5 value whose bar is
        10–30 % of the width.
    bar_position : {"bottom-left", "bottom-right", "top-left", "top-right"} or None (random)
    bar_polarity : {"dark", "bright"} or None (random)
    bar_panel : bool or None (random)
        Draw the bar on a solid panel of the opposite colour, or directly over the image.
    dtype : {"uint8", "uint16", "float32"}
        Output type; float32 images are in [0, 1].
    rng : numpy Generator, int seed or None

    Returns
    -------
    SyntheticTEM
        ``particles`` has one row per placed particle: ``label``, ``shape_class``,
        ``ecd_nm`` (of the whole particle, occluded parts included), ``area_px``,
        ``centroid_y_px``, ``centroid_x_px``, ``rotation_deg`` and ``touching``.
    """
    H, W = _check_shape(shape)
    rng = np.random.default_rng(rng)
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ValueError(f"dtype must be uint8, uint16 or float32, not {dtype}")
    unknown = [s for s in shape_classes if s not in SHAPE_CLASSES]
    if unknown or not len(shape_classes):
        raise ValueError(f"unknown shape class(es) {unknown}; expected some of {list(SHAPE_CLASSES)}")
    mean_nm, sd_nm = (float(v) for v in diameter_nm)
    if not (nm_per_px > 0 and mean_nm > 0 and sd_nm >= 0):
        raise ValueError(f"need nm_per_px > 0, diameter mean > 0 and sd ≥ 0; got {nm_per_px}, {diameter_nm}")
    if not 0.0 <= touching_fraction <= 1.0:
        raise ValueError(f"touching_fraction must be within [0, 1], not {touching_fraction}")
    if bar_polarity not in (None, "dark", "bright"):
        raise ValueError(f"bar_polarity must be 'dark', 'bright' or None, not {bar_polarity!r}")
    if bar_position is not None and bar_position not in POSITIONS:
        raise ValueError(f"bar_position must be one of {POSITIONS}, not {bar_position!r}")

    # scale bar first, so that no particle hides under it
    occupied = np.zeros((H, W), dtype=bool)
    bar_args = None
    if scale_bar:
        values = _round_bar_values(W, nm_per_px)
        value_nm = float(rng.choice(values))
        style = _default_bar_style((H, W), rng, position=bar_position, polarity=bar_polarity, panel=bar_panel)
        style["bar_length_px"] = int(round(value_nm / nm_per_px))
        value, unit = (value_nm / 1000.0, "µm") if value_nm >= 1000 else (value_nm, "nm")
        probe = np.zeros((H, W))
        truth = _draw_scale_bar(probe, value, unit, np.random.default_rng(0), **style)
        r0, c0, r1, c1 = _extent(probe != 0, truth)
        occupied[max(0, r0 - 3) : r1 + 3, max(0, c0 - 3) : c1 + 3] = True
        bar_args = (value, unit, style)

    # particles
    diam_px = np.clip(rng.normal(mean_nm, sd_nm, n_particles), 0.3 * mean_nm, None) / nm_per_px
    diam_px = np.maximum(diam_px, 3.0)
    classes = [str(c) for c in rng.choice(list(shape_classes), n_particles)]
    rotations = rng.uniform(0.0, 360.0, n_particles)
    masks = [_render_mask(c, d, r, rng) for c, d, r in zip(classes, diam_px, rotations)]
    touching = rng.random(n_particles) < touching_fraction
    labels = np.zeros((H, W), dtype=np.int32)
    corners = _place(masks, labels, occupied, rng, touching)

    thickness = np.zeros((H, W))
    union = np.zeros((H, W))
    rows_out = []
    next_label = 0
    relabel = np.zeros(n_particles + 1, dtype=np.int32)
    for i, (mask, corner) in enumerate(zip(masks, corners)):
        if corner is None:
            continue
        next_label += 1
        relabel[i + 1] = next_label
        top, left = corner
        h, w = mask.shape
        thickness[top : top + h, left : left + w] += rng.uniform(*contrast) * _thickness(mask, classes[i])
        union[top : top + h, left : left + w] = np.maximum(union[top : top + h, left : left + w], mask)
        rr, cc = np.nonzero(mask)
        rows_out.append(
            {
                "label": next_label,
                "shape_class": classes[i],
                "ecd_nm": math.sqrt(4 * len(rr) / math.pi) * nm_per_px,
                "area_px": float(len(rr)),
                "centroid_y_px": top + rr.mean(),
                "centroid_x_px": left + cc.mean(),
                "rotation_deg": float(rotations[i]),
                "touching": bool(touching[i]),
            }
        )
    if next_label < n_particles:
        logger.info("placed %d of %d particles (the field is crowded)", next_label, n_particles)
    labels = relabel[labels]
    particles = pd.DataFrame(rows_out, columns=["label", "shape_class", "ecd_nm", "area_px", "centroid_y_px", "centroid_x_px", "rotation_deg", "touching"])

    # image formation: illumination × (transmission + Fresnel fringe) × film, blur, shot noise
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    coarse = rng.normal(size=(5, 5))  # low-frequency field: a smooth interpolation of a 5×5 grid
    field_lf = ndi.map_coordinates(coarse, [yy * 4.0 * max(H, W) / H, xx * 4.0 * max(H, W) / W], order=3, mode="nearest")
    field_lf /= np.abs(field_lf).max() + 1e-12
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (yy * math.sin(angle) + xx * math.cos(angle)) - 0.5
    illumination = 1.0 + background * (0.7 * field_lf + 0.6 * ramp)
    rim = union - ndi.gaussian_filter(union, 1.5)
    texture = ndi.gaussian_filter(rng.normal(size=(H, W)), 0.8)
    texture /= texture.std() + 1e-12
    intensity = illumination * (np.exp(-thickness) - fringe * rim) * (1.0 + film * texture)
    intensity = ndi.gaussian_filter(np.clip(intensity, 0.0, None), blur_px) if blur_px > 0 else np.clip(intensity, 0, None)
    if dose is not None:
        intensity = rng.poisson(intensity * dose) / float(dose)
    display = np.clip(0.62 * intensity, 0.0, 1.0)

    truth = None
    if bar_args is not None:
        value, unit, style = bar_args
        truth = _draw_scale_bar(display, value, unit, np.random.default_rng(0), **style)
    return SyntheticTEM(_to_dtype(display, dtype), labels, float(nm_per_px), particles, truth)


def _extent(drawn: np.ndarray, truth: ScaleBarTruth) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(drawn)
    if rows.size == 0:
        return truth.bar_box
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def _to_dtype(display: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.float32:
        return display.astype(np.float32)
    top = np.iinfo(dtype).max
    return np.round(display * top).astype(dtype)


# ----------------------------------------------------------------------------------------
# Scale-bar samples


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

    Returns
    -------
    ScaleBarSample with a uint8 image (gray, or RGB for a yellow bar).
    """
    H, W = _check_shape(shape)
    rng = np.random.default_rng(rng)
    side = min(H, W)
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
        "font_px": int(font_px or max(12, round(rng.uniform(0.03, 0.06) * side))),
        "thickness_px": int(thickness_px or max(2, round(rng.uniform(0.006, 0.02) * side))),
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
    display = display / max(float(display.max()), 1e-6) * rng.uniform(0.75, 1.0)  # figure-style display range
    if params["colour"] == "yellow":
        display = np.repeat(display[..., None], 3, axis=2)
    truth = _draw_scale_bar(display, value, unit, rng, **{k: params[k] for k in params if k not in ("noise", "jpeg_quality")})
    if params["noise"] > 0:
        display = display + rng.normal(0.0, params["noise"], display.shape)
    image = np.round(np.clip(display, 0.0, 1.0) * 255).astype(np.uint8)
    if params["jpeg_quality"] > 0:
        image = _jpeg_round_trip(image, params["jpeg_quality"])
    return ScaleBarSample(image, truth, params)


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer)).copy()


def random_tem_image(shape: tuple[int, int] = (512, 512), *, rng: np.random.Generator | int | None = None) -> SyntheticTEM:
    """A :func:`make_tem_image` with every style drawn at random: training data for segmentation.

    One to three shape classes (spheres in half of the images), a median particle of 12–60 px
    at 0.1–2 nm/px, 10–45 % of the field covered, 0–50 % of the particles touching, varied
    contrast, illumination, Fresnel fringe, blur and dose, and a random scale bar.
    """
    rng = np.random.default_rng(rng)
    rows, cols = _check_shape(shape)
    if rng.random() < 0.5:
        classes = ("sphere",)
    else:
        classes = tuple(rng.choice(SHAPE_CLASSES, size=int(rng.integers(1, 4)), replace=False).tolist())
    diameter_px = float(np.exp(rng.uniform(math.log(12.0), math.log(60.0))))
    nm_per_px = float(np.exp(rng.uniform(math.log(0.1), math.log(2.0))))
    coverage = rng.uniform(0.10, 0.45)
    n_particles = max(3, int(round(coverage * rows * cols / (math.pi / 4.0 * diameter_px**2))))
    low = rng.uniform(0.25, 0.7)
    return make_tem_image(
        (rows, cols),
        n_particles=n_particles,
        shape_classes=classes,
        diameter_nm=(diameter_px * nm_per_px, rng.uniform(0.04, 0.15) * diameter_px * nm_per_px),
        nm_per_px=nm_per_px,
        touching_fraction=rng.uniform(0.0, 0.5),
        contrast=(low, min(1.5, low + rng.uniform(0.1, 0.6))),
        background=rng.uniform(0.03, 0.3),
        film=rng.uniform(0.0, 0.08),
        fringe=rng.uniform(0.0, 0.5),
        blur_px=rng.uniform(0.4, 1.6),
        dose=None if rng.random() < 0.15 else float(np.exp(rng.uniform(math.log(80.0), math.log(2000.0)))),
        rng=rng,
    )


def write_training_set(out_dir, n_images: int, *, shape: tuple[int, int] = (512, 512), seed: int = 0,
                       overwrite: bool = False, progress=None) -> list[tuple[Path, Path]]:
    """Write ``n_images`` :func:`random_tem_image` pairs for ``nanocrystal train --labeled``.

    Files: ``synthetic-<seed>-<i>_image.png`` (8-bit gray) and ``..._instances.tif`` (uint16
    instance map), each written atomically; image ``i`` is drawn with seed ``(seed, i)``, so a
    set is reproducible and can be extended.  Existing files are an error unless ``overwrite``.
    ``progress(message, fraction)`` is called after each pair.  Returns the (image, instances) paths.
    """
    import tifffile
    from nc_synthmodel.io import atomic_path
    from PIL import Image

    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    out = Path(out_dir)
    names = [f"synthetic-{int(seed)}-{i:04d}" for i in range(n_images)]
    paths = [(out / f"{name}_image.png", out / f"{name}_instances.tif") for name in names]
    existing = [str(p) for pair in paths for p in pair if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{len(existing)} files exist already (e.g. {existing[0]}); pass overwrite=True / --overwrite to replace them")
    out.mkdir(parents=True, exist_ok=True)
    for i, (image_path, labels_path) in enumerate(paths):
        sample = random_tem_image(shape, rng=np.random.default_rng([int(seed), i]))
        if sample.labels.max() > np.iinfo(np.uint16).max:
            raise ValueError(f"{image_path.name}: more than 65535 particles")
        with atomic_path(image_path) as tmp:
            Image.fromarray(np.asarray(sample.image, dtype=np.uint8)).save(tmp, format="PNG")
        with atomic_path(labels_path) as tmp:
            tifffile.imwrite(tmp, sample.labels.astype(np.uint16), compression="zlib")
        if progress is not None:
            progress(f"{image_path.name}: {int(sample.labels.max())} particles", (i + 1) / n_images)
    return paths
