"""Finding the scale bar: a long, thin, straight, uniform horizontal stroke, measured to the sub-pixel,
and the windows around it where its label may be.

Boxes are ``(row0, col0, row1, col1)`` with exclusive ends, like numpy slices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .parse import ScaleBarError

logger = logging.getLogger(__name__)

#: A block bar's thickness, at most (this share of its length, of the image's height + 2 px); a usual bar's
#: is at most (0.25, 0.08).  Blocks are tried only when no usual bar's label reads (read_scale_bar).
_BLOCK = (0.5, 0.2)


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


def _evaluate(v, mask, comp, first_row, starts, ends, polarity, sharp=True, block=False) -> BarCandidate | None:
    """Score a stack of runs (bar low in ``v``, in [0, 1]) as a scale bar; None if it cannot be one.

    Refused: thicker than a quarter of its length or than 8 % of the image's height + 2 px (with
    ``block``: :data:`_BLOCK`, and only such a thick block is kept), touching the top or bottom border or
    spanning the width, a slice of a larger blob, contrast < 0.2.  The score is a
    weighted mean of contrast to its surroundings, uniformity, straight ends, isolation
    (its share of its connected component), length, thickness > 1 px, being framed by an
    outline or panel, and lying at the image's extreme shade.
    """
    H, W = v.shape
    t = len(starts)
    r0, r1 = first_row, first_row + t  # exclusive end
    along, across = _BLOCK if block else (0.25, 0.08)
    if r0 < 1 or r1 > H - 1 or t > across * H + 2 or t > max(1.0, along * (ends.max() - starts.min())):
        return None
    s, e = int(np.sort(starts)[t // 2]), int(np.sort(ends)[t // 2])
    length = e - s
    if t > max(1.0, along * length) or (s < 1 and e > W - 1):
        return None  # too thick, or spanning the width: a frame or a panel edge
    if block and t <= 0.08 * H + 2 and t <= max(1.0, 0.25 * min(ends.max() - starts.min(), length)):
        return None  # a usual bar, found without ``block``
    frac = [np.count_nonzero(mask[r, s:e]) / length for r in (r0 - 1, max(0, r0 - 2), r1, min(H - 1, r1 + 1))]
    if min(frac[0], frac[1]) >= 0.5 or min(frac[2], frac[3]) >= 0.5:
        return None  # a slice of a larger blob
    core = v[r0:r1, s:e]
    k = max(2, t)
    ring = np.concatenate(
        [
            v[max(0, r0 - k) : r0, s:e].ravel(),
            v[r1 : r1 + k, s:e].ravel(),
            v[r0:r1, max(0, s - k) : s].ravel(),
            v[r0:r1, e : e + k].ravel(),
        ]
    )
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
    return BarCandidate(
        (int(r0), int(s), int(r1), int(e)), float(right_px - left_px), polarity, float(score), float(left_px), float(right_px)
    )


def _ends(v: np.ndarray, box, around: float, sharp: bool = True) -> tuple[float, float]:
    """Sub-pixel left and right ends of a bar (low in ``v``): half-level crossings, between
    the bar and its surroundings (``around``), of the median profile across its rows.

    The profile reaches max(6, 2 × thickness) px past the run's ends.  An end whose walk does not
    leave the bar there (the run stopped short of the bar's end: a JPEG colour dip beside an end
    tick's outline breaks the threshold runs) is walked again on a profile reaching a quarter of
    the length further; only when that walk does not leave the bar either is the run's end used.
    """
    r0, s, r1, e = box
    t, length = r1 - r0, e - s
    rows = slice(r0 + 1, r1 - 1) if t >= 4 else slice(r0, r1)
    inset = max(1, length // 4)  # walk out from a quarter of the length inside each end
    ends = []
    for margin in dict.fromkeys((max(6, 2 * t), max(6, 2 * t, length // 4))):  # the wider one only if wider
        c_lo, c_hi = max(0, s - margin), min(v.shape[1], e + margin)
        profile = np.median(v[rows, c_lo:c_hi], axis=0)
        inside = float(np.median(profile[s - c_lo + inset : e - c_lo - inset] if length > 8 else profile[s - c_lo : e - c_lo]))
        core = profile[s - c_lo : e - c_lo]
        noise = 1.4826 * float(np.median(np.abs(core - np.median(core))))
        left = _end(profile, inside, around, s - c_lo + inset, -1, noise, sharp)
        right = _end(profile, inside, around, e - c_lo - inset, +1, noise, sharp)
        found = (c_lo + left if left is not None else None), (c_lo + right if right is not None else None)
        ends = [old if old is not None else new for old, new in zip(ends, found)] if ends else list(found)
        if None not in ends:
            break
    return (ends[0] if ends[0] is not None else float(s)), (ends[1] if ends[1] is not None else float(e))


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


def _scan(plane: np.ndarray, index: int, block: bool = False) -> list[_Found]:
    """Candidates of one gray plane, both polarities, a few thresholds (``block``: :func:`_evaluate`)."""
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
                candidate = _evaluate(v, mask, comp, first_row, s, e, polarity, sharp=index == 0, block=block)
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


def _candidates(planes: list[np.ndarray], block: bool = False) -> list[_Found]:
    """Bar candidates of all planes, best first, without duplicates, outlines and panels; with
    ``block``, only the thick blocks the usual limits refuse (:data:`_BLOCK`)."""
    found = [item for i, plane in enumerate(planes) for item in _scan(plane, i, block)]
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


def _beside(a: BarCandidate, b: BarCandidate) -> bool:
    """Whether two candidates are parts of one bar (stacked within 3 px, overlapping columns)."""
    gap = max(a.bar_box[0] - b.bar_box[2], b.bar_box[0] - a.bar_box[2])
    shared = min(a.bar_box[3], b.bar_box[3]) - max(a.bar_box[1], b.bar_box[1])
    return gap <= 3 and shared > 0.5 * min(a.bar_box[3] - a.bar_box[1], b.bar_box[3] - b.bar_box[1])
