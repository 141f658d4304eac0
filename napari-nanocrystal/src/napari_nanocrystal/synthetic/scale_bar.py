"""Drawing a scale bar into a synthetic image, and its ground truth.

:class:`ScaleBarTruth` records what was drawn (value, unit, text, bar and label boxes,
position, polarity, panel).  The private helpers lay out bar, TrueType label (matplotlib's
bundled DejaVu fonts, rendered with Pillow), end ticks and panel in a chosen corner and paint
them into a float display image in [0, 1] (gray, or RGB for coloured bars); boxes are
``(row0, col0, row1, col1)`` with exclusive ends.  Used by :mod:`.tem` and
:mod:`.scale_bar_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np

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


@dataclass(frozen=True)
class ScaleBarTruth:
    """Ground truth of a drawn scale bar.

    ``bar_box`` is the horizontal bar without end ticks and ``bar_length_px`` its
    length in pixels (``bar_box[3] - bar_box[1]``); ``text_box`` bounds the label's ink.
    """

    value: float
    unit: str
    text: str
    bar_length_px: float  # whole px as drawn, fractional after print_shrunk
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


@cache
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
        (H, W),
        style["bar_length_px"],
        style["thickness_px"],
        (tw, th),
        rng,
        position=style["position"],
        text_side=style["text_side"],
        align=style["align"],
        panel=style["panel"],
        ticks=style["ticks"],
        margin_px=style["margin_px"],
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
