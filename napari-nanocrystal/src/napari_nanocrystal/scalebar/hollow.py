"""Hollow scale bars: a thin frame drawn around an inside of the ground's shade.

The detector measures neither the frame nor its outside: it finds the *inside* (a long, thin,
uniform stroke; the frame around it is dropped as an outline) or one *edge* of the frame (when
the inside is blurred to a middle shade).  On three real tune labels (``934d76aaf2``,
``782d7f752d``, ``893215335a``) the inside is 2–9 % short of the frame: a silent error in every
size downstream.  :func:`hollow_bar` tells such a bar apart and measures the frame's *outside*,
the length of a drawn rectangle (the convention taken here: a bar's length is that of what is
drawn in the label's shade, and for a hollow bar that is the whole frame); the reader uses it,
and refuses the reading when the outside cannot be measured consistently.

An *outlined* bar (a filled bar with a thin outline of the other shade, tune ``2e5dab1969``) has
the same ring around it; it is told apart by its thickness: its filled inside is more than twice
as thick as the outline, where a hollow bar's inside is as thin as its frame.  Its length is the
fill's (the outline is a contrast edge, as around outlined glyphs).  (The label's shade does not
tell them apart: ``2e5dab1969``'s outlined glyphs are judged dark on its white bar.)  But a bar
inside a ring whose label is judged in the bar's own shade is no frame's inside (a frame is drawn
in its label's shade): its ring is an outline or the margin of a panel, and its length is its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .locate import BarCandidate

_MAX_GAP = 2  # rows or columns of blur allowed between the bar and its frame
_RING_LEVEL = 0.65  # the ring: beyond this fraction from the bar's shade to the other (a JPEG halo fades below it)
# The ring stands out from what lies beyond it by this fraction of its contrast with the bar: 0.48-0.70
# on the tune frames and outlines (934d76aaf2, 782d7f752d, 2e5dab1969), 0.03-0.07 for the ground around
# generated seed 21088's plain bar (a noise dip ends a "ring" of ground).
_BEYOND = 0.2
_HOLLOW = "hollow scale bar: its length is ambiguous (frame or inside); type the value / measure it"


def _band_rows(levels: np.ndarray, start: int, step: int, mid: float, limit: int) -> tuple[int, int] | None:
    """First and last index of a thin run of values ≥ ``mid`` starting within :data:`_MAX_GAP` of ``start``
    (walking by ``step``), at most ``limit`` long and followed by a value < ``mid`` inside the
    profile; None otherwise (no band, a ground of that shade, or the profile's end)."""
    n = levels.shape[0]
    first = next((i for i in range(start, start + step * (_MAX_GAP + 1), step) if 0 <= i < n and levels[i] >= mid), None)
    if first is None:
        return None
    last = first
    while 0 <= last + step < n and levels[last + step] >= mid:
        last += step
        if abs(last - first) + 1 > limit:
            return None
    if not 0 <= last + step < n:
        return None
    return first, last


def _ring_band(levels: np.ndarray, start: int, step: int, mid: float, limit: int, inside: float) -> tuple[int, int] | None:
    """The band of :func:`_band_rows`, kept only when it stands out from what lies beyond it as well
    as from the bar: the median of the next ``limit`` values past the band lies below the band's
    median by at least :data:`_BEYOND` of the band's contrast with the bar (``inside``).  A frame
    drawn around the bar is the other shade on both of its sides; a plain bar's ground is not a
    frame, though a noise dip ends a run of it (generated seed 21088: a white bar on a white,
    noisy ground was taken for the inside of a 7 px frame)."""
    rows = _band_rows(levels, start, step, mid, limit)
    if rows is None:
        return None
    (first, last), n = rows, levels.shape[0]
    ring = float(np.median(levels[min(first, last) : max(first, last) + 1]))
    after = [last + step * k for k in range(1, limit + 1) if 0 <= last + step * k < n]
    beyond = float(np.median(levels[after]))
    return rows if ring - beyond >= _BEYOND * (ring - inside) else None


def _band(levels: np.ndarray, start: int, step: int, mid: float, limit: int, inside: float) -> int | None:
    """Thickness of the band of :func:`_ring_band`, or None."""
    rows = _ring_band(levels, start, step, mid, limit, inside)
    return None if rows is None else abs(rows[1] - rows[0]) + 1


def _normalised(plane: np.ndarray, bar: BarCandidate) -> np.ndarray:
    """The plane in [0, 1], low where the bar is."""
    g = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-12)
    return g if bar.polarity == "dark" else 1.0 - g


def _ring(v: np.ndarray, bar: BarCandidate) -> tuple[int, tuple[int, int], tuple[int, int]] | None:
    """A thin ring of the other shade closed around the bar on all four sides (above, below, left
    and right, each within :data:`_MAX_GAP` px, beyond :data:`_RING_LEVEL` of the way to the other
    shade and followed by a shade well short of it, :func:`_ring_band`): (its thickness, the rows (first, last) of its top
    and of its bottom edge), or None."""
    r0, c0, r1, c1 = bar.bar_box
    H, W = v.shape
    t, length = r1 - r0, c1 - c0
    limit = max(3, t)
    inset = max(1, length // 4)
    rows = slice(max(0, r0 - 4 * limit), min(H, r1 + 4 * limit))
    cols = slice(max(0, c0 - 4 * limit), min(W, c1 + 4 * limit))
    inside = float(np.median(v[r0:r1, c0:c1]))
    mid = inside + _RING_LEVEL * (float(np.percentile(v[rows, cols], 95)) - inside)
    if mid - inside < 0.2:
        return None
    across = np.median(v[rows, c0 + inset : c1 - inset], axis=1)
    along = np.median(v[r0:r1, cols], axis=0)
    top = _ring_band(across, r0 - rows.start - 1, -1, mid, limit, inside)
    bottom = _ring_band(across, r1 - rows.start, +1, mid, limit, inside)
    sides = [_band(along, c0 - cols.start - 1, -1, mid, limit, inside), _band(along, c1 - cols.start, +1, mid, limit, inside)]
    if top is None or bottom is None or None in sides:
        return None
    thickness = max(abs(top[1] - top[0]), abs(bottom[1] - bottom[0])) + 1
    return thickness, (rows.start + top[1], rows.start + top[0]), (rows.start + bottom[0], rows.start + bottom[1])


def _edge_of_frame(v: np.ndarray, bar: BarCandidate) -> tuple[int, int] | None:
    """Whether the bar is one edge of a closed frame: the bar's shade (below half-way to the
    other) encloses, within :data:`_MAX_GAP` + 1 rows above or below the bar, a hole spanning
    at least 80 % of its length and no thicker than the bar.  Returns the rows (first, last) of
    the frame's other edge (as thick as the bar, across the hole), or None."""
    r0, c0, r1, c1 = bar.bar_box
    H, W = v.shape
    t, length = r1 - r0, c1 - c0
    rows = slice(max(0, r0 - 2 * t - 4), min(H, r1 + 2 * t + 4))
    cols = slice(max(0, c0 - 6), min(W, c1 + 6))
    patch = v[rows, cols]
    inside = float(np.median(v[r0:r1, c0:c1]))
    ground = float(np.median(patch))
    if ground - inside < 0.2:
        return None
    ink = patch < inside + 0.5 * (ground - inside)
    holes, _ = ndi.label(ndi.binary_fill_holes(ink) & ~ink)
    for hr, hc in ndi.find_objects(holes):
        top, bottom = hr.start + rows.start, hr.stop + rows.start  # the hole's rows, exclusive end
        near = bottom >= r0 - _MAX_GAP - 1 and top <= r1 + _MAX_GAP
        if near and hc.stop - hc.start >= 0.8 * length and hr.stop - hr.start <= max(2, t):
            return (top - t, top - 1) if top < r0 else (bottom, bottom + t - 1)
    return None


def _crossing(profile: np.ndarray, start: int, step: int, half: float, through: bool) -> float | None:
    """Where ``profile`` falls below ``half`` walking from ``start`` by ``step`` (sub-pixel, a
    pixel-edge coordinate in the profile); with ``through``, first past a run of values ≥ ``half``
    (the frame's side, seen from the inside).  None at the profile's end."""
    n, c = profile.shape[0], start
    if through:
        while 0 <= c < n and profile[c] < half:
            c += step
    while 0 <= c < n and profile[c] >= half:
        c += step
    if not 0 <= c < n or not 0 <= c - step < n:
        return None
    before, after = profile[c - step], profile[c]
    frac = float(np.clip((before - half) / max(float(before - after), 1e-12), 0.0, 1.0))
    return c - step + 0.5 + step * frac


def _outer_ends(f: np.ndarray, edges, bar: BarCandidate, reach: float) -> tuple[float, float] | None:
    """Sub-pixel outer ends (left, right; pixel c spans [c, c + 1)) of a thin frame, high in ``f``.

    Measured three times: in each long edge of the frame (``edges``: (first row, last row) of its
    top and of its bottom edge), where the mean of the edge's rows falls half-way from the frame's
    level (the median of its middle half) to the ground's (the median of the 8 columns beyond
    ``reach`` px past each end of the bar), walking out from a quarter of the bar's length inside
    each end; and in the rows between the edges, where the profile falls below that level past the
    frame's side.  At each end the median of the three is kept, with at least one other within 1 px
    of it (a particle touching one edge lengthens that edge alone); None unless both ends are so
    agreed and lie 0.5 to ``reach`` px beyond the bar's.
    """
    _, c0, _, c1 = bar.bar_box
    W = f.shape[1]
    lo, hi = int(c0 - reach - 8), int(math.ceil(c1 + reach + 8))
    if lo < 0 or hi > W or c1 - c0 < 8:
        return None
    inset = max(1, (c1 - c0) // 4)
    (a0, a1), (b0, b1) = sorted(tuple(sorted(edge)) for edge in edges)
    levels, lefts, rights = [], [], []
    for rows in (slice(a0, a1 + 1), slice(b0, b1 + 1)):
        profile = f[rows, lo:hi].mean(axis=0)
        frame = float(np.median(profile[c0 - lo + inset : c1 - lo - inset]))
        ground = float(np.median(np.concatenate([profile[:8], profile[-8:]])))
        if frame - ground < 0.2:
            return None
        half = ground + 0.5 * (frame - ground)
        levels.append(half)
        lefts.append(_crossing(profile, c0 - lo + inset, -1, half, through=False))
        rights.append(_crossing(profile, c1 - lo - inset - 1, +1, half, through=False))
    if a1 + 1 < b0:  # the rows between the edges: the inside, then the frame's sides
        profile = f[a1 + 1 : b0, lo:hi].mean(axis=0)
        half = float(np.mean(levels))
        lefts.append(_crossing(profile, c0 - lo + inset, -1, half, through=True))
        rights.append(_crossing(profile, c1 - lo - inset - 1, +1, half, through=True))
    ends = []
    for found in (lefts, rights):
        found = [x for x in found if x is not None]
        if len(found) < 2:
            return None
        middle = float(np.median(found))
        if sum(abs(x - middle) <= 1.0 for x in found) < 2:
            return None
        ends.append(lo + middle)
    left, right = ends
    if not (bar.left_px - reach <= left <= bar.left_px - 0.5 and bar.right_px + 0.5 <= right <= bar.right_px + reach):
        return None
    return left, right


@dataclass(frozen=True)
class HollowBar:
    """A bar found as part of a hollow frame (:func:`hollow_bar`).

    Attributes
    ----------
    reason : str — what the bar found is, and why its own length is not the scale bar's
    outer : (left, right) or None — the frame's outer ends, sub-pixel (the scale bar's length by
        the convention of a drawn rectangle: its outside), or None when they cannot be measured
        consistently (then the reading is refused)
    """

    reason: str
    outer: tuple[float, float] | None

    @property
    def length_px(self) -> float | None:
        return None if self.outer is None else self.outer[1] - self.outer[0]


def hollow_bar(plane: np.ndarray, bar: BarCandidate, label: str | None = None) -> HollowBar | None:
    """Whether ``bar`` (found in ``plane``) is part of a hollow bar, and the frame's outer length.

    Two cases: the bar is the inside of a thin frame (:func:`_ring`) at most twice as thick as the
    frame (an outlined *filled* bar is thicker) — unless the label's shade ``label`` ("dark" or
    "bright", judged from the label's own pixels) is the bar's: a frame is drawn in its label's
    shade, so the ring around a bar of the label's shade is a thin bar's outline or the panel's
    margin around it (generated seeds 24014, a 4-px black bar with a white outline, and 24083, a
    black bar 6 px from the edges of its white panel: their outsides were taken, 1.6 and 8 % long);
    or the bar is one edge of a closed frame whose
    inside is a thin slit (:func:`_edge_of_frame`).  The frame's outer ends are measured on its
    two long edges (:func:`_outer_ends`): for the inside, 0.5 to ring + :data:`_MAX_GAP` + 1 px beyond
    its ends; for an edge, which spans the frame, within 1 px of its own ends.
    """
    v = _normalised(plane, bar)
    ring = _ring(v, bar)
    if ring is not None and label == bar.polarity:
        return None  # the bar is drawn in its label's shade: the ring is an outline or a panel's margin
    if ring is not None and bar.bar_box[2] - bar.bar_box[0] <= 2 * ring[0]:
        thickness, top, bottom = ring
        outer = _outer_ends(v, (top, bottom), bar, thickness + _MAX_GAP + 1)
        what = f"the inside of a {thickness} px frame"
    else:
        other = _edge_of_frame(v, bar)
        if other is None:
            return None
        r0, r1 = bar.bar_box[0], bar.bar_box[2] - 1
        shifted = BarCandidate(bar.bar_box, bar.bar_length_px, bar.polarity, bar.score, bar.left_px + 1.0, bar.right_px - 1.0)
        outer = _outer_ends(1.0 - v, ((r0, r1), other), shifted, 2.0)  # within 1 px of the edge's own ends
        what = "one edge of a frame around a thin slit"
    reason = f"{_HOLLOW}: the bar found ({bar.bar_length_px:.1f} px) is {what}"
    return HollowBar(reason, outer)
