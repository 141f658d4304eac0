"""Scale bars in a microscope's data strip: the info bar that SEM/TEM software burns in under the image.

Kinds that published figures often keep (issue 16's fresh real-label half: 9 of 55 labels are
tick rulers, 10 are in data strips, and the reader finds almost none of them):

* ``"hitachi"``: a black strip with the instrument line (``S-4800 15.0kV 8.9mm x40.0k SE(U)``) and
  a **tick ruler** — eleven short ticks, no solid bar — whose label (``1.00um``, ``500nm``) sits under
  its right end; the ruler's length, first tick to last, is the label's value;
* ``"zeiss"``: a white strip of ``EHT = …``, ``WD = …``, ``Mag = …`` fields with a short bar with end
  ticks under its label at the left;
* ``"fei"``: a black strip of FEI/Thermo xT cells (``HV``, ``mag``, ``WD``, ``det``, ``HFW``, ``spot``
  over their values; ``HFW`` holds a length in µm) with the label centred over a bar with end ticks
  at the right;
* ``"philips"``: a black Philips XL strip of two text rows (``Acc.V Spot Magn Det WD Exp`` over their
  values) with a bar with end ticks in the upper row and the label right of it (``2 µm``).

:func:`make_strip_sample` returns a :class:`~.scale_bar_samples.ScaleBarSample` like
:func:`~.scale_bar_samples.make_scale_bar_sample` (``bar_box`` spans the ruler's ticks or the bar
without its end ticks).
"""

from __future__ import annotations

import numpy as np

from .scale_bar import _UNIT_NM, ScaleBarTruth, _font, _format_value, _paint, _text_alpha
from .scale_bar_samples import _UNIT_VALUES, ScaleBarSample, _micrograph, _to_uint8
from .tem import _check_shape

#: The data-strip kinds :func:`make_strip_sample` draws.
STRIP_KINDS: tuple[str, ...] = ("hitachi", "zeiss", "fei", "philips")


#: Strip height as a fraction of the figure's (low, high) and its least px, per kind.
_STRIP_HEIGHT = {"hitachi": (0.05, 0.075, 16), "zeiss": (0.1, 0.14, 30), "fei": (0.08, 0.11, 24), "philips": (0.07, 0.1, 22)}
#: The bar's length as a fraction of the figure's width, per kind.
_BAR_FRACTION = {"hitachi": (0.2, 0.35), "zeiss": (0.06, 0.15), "fei": (0.1, 0.2), "philips": (0.12, 0.25)}


def hitachi_label(value: float, unit: str) -> str:
    """A label as Hitachi software writes it: three digits in µm (``1.00um``, ``10.0um``), whole nm (``500nm``)."""
    if unit == "µm":
        return f"{value:.2f}um" if value < 10 else f"{value:.1f}um"
    return f"{value:g}{unit}"


def make_strip_sample(
    shape: tuple[int, int] = (512, 512),
    *,
    rng: np.random.Generator | int | None = None,
    kind: str | None = None,
    unit: str | None = None,
    value: float | None = None,
    noise: float | None = None,
    jpeg_quality: int | None = None,
) -> ScaleBarSample:
    """A TEM-like image above a data strip of ``kind`` (default: at random from :data:`STRIP_KINDS`).

    ``shape`` is the whole figure, strip included; ``unit`` one of nm / µm (default at random),
    ``value`` the label's number (default from a 1-2-5 series); ``noise`` (fraction of full scale)
    is added to the micrograph only, ``jpeg_quality`` (0 = none) to the whole figure.
    """
    H, W = _check_shape(shape)
    rng = np.random.default_rng(rng)
    kind = kind or str(rng.choice(STRIP_KINDS))
    if kind not in STRIP_KINDS:
        raise ValueError(f"kind must be one of {list(STRIP_KINDS)}, not {kind!r}")
    unit = unit or str(rng.choice(["nm", "µm"]))
    if unit not in ("nm", "µm"):
        raise ValueError(f"unit must be 'nm' or 'µm' in a data strip, not {unit!r}")
    value = float(value if value is not None else rng.choice(_UNIT_VALUES[unit]))
    if unit == "µm" and value < 1:  # both write sub-micrometre bars in nm
        value, unit = float(f"{value * 1000:g}"), "nm"
    low, high, least = _STRIP_HEIGHT[kind]
    strip_h = int(max(least, round(rng.uniform(low, high) * H)))
    fraction = rng.uniform(*_BAR_FRACTION[kind])
    bar_length_px = int(round(fraction * W))
    nm_per_px = value * _UNIT_NM[unit] / bar_length_px
    params = {"kind": kind, "strip_px": strip_h, "bar_length_px": bar_length_px, "font": str(rng.choice(["sans", "mono"]))}
    params["noise"] = float(rng.choice([0.0, rng.uniform(0.01, 0.05)])) if noise is None else float(noise)
    params["jpeg_quality"] = int(rng.choice([0, rng.integers(50, 95)])) if jpeg_quality is None else int(jpeg_quality)
    display = np.zeros((H, W), dtype=np.float64)
    micrograph = _micrograph((H - strip_h, W), nm_per_px, rng)
    if params["noise"] > 0:
        micrograph = micrograph + rng.normal(0.0, params["noise"], micrograph.shape)
    display[: H - strip_h] = micrograph
    draw = {"hitachi": _draw_hitachi, "zeiss": _draw_zeiss, "fei": _draw_fei, "philips": _draw_philips}[kind]
    truth = draw(display, H - strip_h, value, unit, bar_length_px, params["font"], rng)
    return ScaleBarSample(_to_uint8(display, params["jpeg_quality"]), truth, params)


def _strip(display, strip_top: int, shade: float, font_name: str, font_share, least_font_px, margin_share, least_margin_px):
    """Fill the data strip from ``strip_top`` down with ``shade``: its height, its font (``font_share`` of
    the height) and its margin (``margin_share`` of the width), each at least the least px given."""
    strip_h = display.shape[0] - strip_top
    display[strip_top:] = shade
    font = _font(font_name, int(max(least_font_px, round(font_share * strip_h))))
    return strip_h, font, int(max(least_margin_px, round(margin_share * display.shape[1])))


def _text(display, text: str, font, top: int, left: int, colour: float) -> tuple[int, int, int, int]:
    """Paint ``text`` with its ink's top-left at (top, left); its ink box."""
    alpha = _text_alpha(text, font)
    box = (top, left, top + alpha.shape[0], left + alpha.shape[1])
    _paint(display, box, (colour,) * 3, alpha)
    return box


def _draw_hitachi(display, strip_top: int, value, unit, length: int, font_name: str, rng) -> ScaleBarTruth:
    """Black strip, instrument line at the left, a tick ruler at the right with its label under its right end."""
    H, W = display.shape
    strip_h, font, margin = _strip(display, strip_top, 0.0, font_name, 0.42, 9, 0.01, 3)
    kv, wd, mag = rng.choice([1.0, 3.0, 5.0, 10.0, 15.0]), rng.uniform(3.0, 15.0), rng.choice([10.0, 20.0, 30.0, 40.0, 100.0])
    info = f"S-4800 {kv:.1f}kV {wd:.1f}mm x{mag:.1f}k SE(U)"
    tick_h, tick_w = int(max(3, round(0.28 * strip_h))), 1 if W < 900 else 2
    right = W - margin
    first = right - length
    tick_top = strip_top + int(max(1, round(0.1 * strip_h)))
    for k in range(11):
        col = first + int(round(k * (length - tick_w) / 10))
        _paint(display, (tick_top, col, tick_top + tick_h, col + tick_w), (1.0, 1.0, 1.0))
    text = hitachi_label(value, unit)
    alpha = _text_alpha(text, font)
    text_top = min(H - alpha.shape[0] - 1, tick_top + tick_h + 2)
    text_box = _text(display, text, font, text_top, right - alpha.shape[1], 1.0)
    info_alpha = _text_alpha(info, font)
    if margin + info_alpha.shape[1] < first - 2 * margin:  # the instrument line, where it fits left of the ruler
        _text(display, info, font, strip_top + (strip_h - info_alpha.shape[0]) // 2, margin, 1.0)
    bar_box = (tick_top, first, tick_top + tick_h, right)
    return ScaleBarTruth(value, unit, text, length, bar_box, text_box, "bottom-right", "bright", True)


def _draw_zeiss(display, strip_top: int, value, unit, length: int, font_name: str, rng) -> ScaleBarTruth:
    """White strip: the label over a short bar with end ticks at the left, EHT / WD / Mag / Signal fields beside."""
    H, W = display.shape
    strip_h, font, margin = _strip(display, strip_top, 1.0, font_name, 0.22, 9, 0.015, 4)
    text = f"{_format_value(value)} {unit}"
    alpha = _text_alpha(text, font)
    text_top = strip_top + int(round(0.15 * strip_h))
    text_box = _text(display, text, font, text_top, margin, 0.0)
    thickness = 1 if H < 900 else 2
    tick_h = int(max(4, round(0.14 * strip_h)))
    bar_row = text_box[2] + int(max(3, round(0.12 * strip_h))) + tick_h // 2
    bar_box = _bar_with_end_ticks(display, bar_row, margin, length, thickness, tick_h, 0.0, tick_top=bar_row - tick_h // 2)
    fields = [
        (f"EHT = {rng.choice([1.0, 3.0, 5.0, 10.0, 20.0]):.2f} kV", f"WD = {rng.uniform(3.0, 12.0):.1f} mm"),
        (f"Signal A = {rng.choice(['SE1', 'InLens', 'SE2'])}", f"Mag = {rng.uniform(1.0, 99.0):.2f} K X"),
        (
            f"Date :{rng.integers(1, 29)} Jan {rng.integers(2010, 2021)}",
            f"Time :{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}",
        ),
    ]
    left = max(margin + max(alpha.shape[1], length) + 3 * margin, int(0.2 * W))
    for upper, lower in fields:
        widths = [_text_alpha(t, font).shape[1] for t in (upper, lower)]
        if left + max(widths) > W - margin:
            break
        _text(display, upper, font, text_top, left, 0.0)
        _text(display, lower, font, text_top + int(round(0.45 * strip_h)), left, 0.0)
        left += max(widths) + 3 * margin
    return ScaleBarTruth(value, unit, text, length, bar_box, text_box, "bottom-left", "dark", True)


def _bar_with_end_ticks(display, row: int, left: int, length: int, thickness: int, tick_h: int, colour: float, tick_top=None) -> tuple:
    """A horizontal bar from ``left`` over ``length`` px with end ticks from ``tick_top`` (default: centred on
    the bar's middle row; Zeiss centres them on its top edge); the bar's box."""
    bar_box = (row, left, row + thickness, left + length)
    top = row + thickness // 2 - tick_h // 2 if tick_top is None else tick_top
    _paint(display, bar_box, (colour,) * 3)
    for col in (left, left + length - thickness):
        _paint(display, (top, col, top + tick_h, col + thickness), (colour,) * 3)
    return bar_box


def _draw_fei(display, strip_top: int, value, unit, length: int, font_name: str, rng) -> ScaleBarTruth:
    """Black strip of xT cells (names over values, grey cell borders), the label centred over a bar at the right."""
    H, W = display.shape
    strip_h, font, margin = _strip(display, strip_top, 0.0, font_name, 0.3, 8, 0.01, 4)
    hfw = value * _UNIT_NM[unit] / length * W / 1000.0  # the field width in µm
    cells = [
        ("HV", f"{rng.choice([2.0, 5.0, 10.0, 15.0, 20.0]):.2f} kV"),
        ("mag", f"{rng.integers(5, 400) * 1000:,} x".replace(",", " ")),
        ("WD", f"{rng.uniform(3.0, 12.0):.1f} mm"),
        ("det", str(rng.choice(["TLD", "ETD", "CBS"]))),
        ("HFW", f"{hfw:.2f} µm"),
        ("spot", f"{rng.choice([2.0, 3.0, 3.5, 4.0]):.1f}"),
    ]
    upper, lower = strip_top + int(round(0.12 * strip_h)), strip_top + int(round(0.55 * strip_h))
    text = f"{_format_value(value)} {unit}"
    alpha = _text_alpha(text, font)
    bar_left = W - margin - max(length, alpha.shape[1]) - margin
    left = margin
    for name, shown in cells:
        width = max(_text_alpha(t, font).shape[1] for t in (name, shown)) + 2 * margin
        if left + width > bar_left - margin:
            break
        _text(display, name, font, upper, left + margin, 1.0)
        _text(display, shown, font, lower, left + margin, 1.0)
        left += width
        _paint(display, (strip_top + 2, left, H - 2, left + 1), (0.45,) * 3)  # the cell's right border
    bar_right = W - 2 * margin
    thickness = 1 if H < 900 else 2
    bar_row = lower + int(round(0.2 * strip_h))
    text_box = _text(display, text, font, upper, bar_right - length // 2 - alpha.shape[1] // 2, 1.0)
    tick_h = int(max(4, round(0.18 * strip_h)))
    bar_box = _bar_with_end_ticks(display, bar_row, bar_right - length, length, thickness, tick_h, 1.0)
    return ScaleBarTruth(value, unit, text, length, bar_box, text_box, "bottom-right", "bright", True)


def _draw_philips(display, strip_top: int, value, unit, length: int, font_name: str, rng) -> ScaleBarTruth:
    """Black strip of two rows (field names over values); a bar with end ticks in the upper row, its label right of it."""
    H, W = display.shape
    strip_h, font, margin = _strip(display, strip_top, 0.0, font_name, 0.32, 8, 0.01, 4)
    upper, lower = strip_top + int(round(0.1 * strip_h)), strip_top + int(round(0.55 * strip_h))
    names = "Acc.V  Spot Magn   Det  WD  Exp"
    values = f"{rng.choice([5.0, 10.0, 15.0, 20.0, 25.0]):.1f} kV {rng.choice([2.0, 3.0, 4.0]):.1f}  {rng.integers(1, 200) * 500}x  SE  {rng.uniform(5.0, 15.0):.1f}  1"
    names_box = _text(display, names, font, upper, margin, 1.0)
    _text(display, values, font, lower, margin, 1.0)
    text = f"{_format_value(value)} {unit}"
    alpha = _text_alpha(text, font)
    left = names_box[3] + 4 * margin
    if left + length + margin + alpha.shape[1] > W - margin:
        left = W - margin - alpha.shape[1] - margin - length
    thickness = 1 if H < 900 else 2
    bar_row = (names_box[0] + names_box[2]) // 2
    tick_h = int(max(4, round(0.6 * (names_box[2] - names_box[0]))))
    bar_box = _bar_with_end_ticks(display, bar_row, left, length, thickness, tick_h, 1.0)
    text_box = _text(display, text, font, names_box[2] - alpha.shape[0], left + length + margin, 1.0)
    return ScaleBarTruth(value, unit, text, length, bar_box, text_box, "bottom-right", "bright", True)
