"""Hollow scale bars: a thin frame drawn around an inside of the ground's shade.

Which length such a bar means (the frame's outside, its middle or its inside) is a convention of
the figure, and the detector measures neither reliably: it finds the *inside* (a long, thin,
uniform stroke; the frame around it is dropped as an outline) or one *edge* of the frame (when
the inside is blurred to a middle shade).  On three real tune labels (``934d76aaf2``,
``782d7f752d``, ``893215335a``) that length is 2–9 % short of the frame: a silent error in every
size downstream.  :func:`hollow_reason` tells such a bar apart so the reader refuses it (the user
types the value) rather than return a wrong nm/px.

An *outlined* bar (a filled bar with a thin outline of the other shade, tune ``2e5dab1969``) has
the same ring around it; it is told apart by its thickness: its filled inside is more than twice
as thick as the outline, where a hollow bar's inside is as thin as its frame.  (The label's shade
does not tell them apart: ``2e5dab1969``'s outlined glyphs are judged dark on its white bar.)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .locate import BarCandidate

_MAX_GAP = 2  # rows or columns of blur allowed between the bar and its frame
_RING_LEVEL = 0.65  # the ring: beyond this fraction from the bar's shade to the other (a JPEG halo fades below it)
_HOLLOW = "hollow scale bar: its length is ambiguous (frame or inside); type the value / measure it"


def _band(levels: np.ndarray, start: int, step: int, mid: float, limit: int) -> int | None:
    """Thickness of a thin run of values ≥ ``mid`` starting within :data:`_MAX_GAP` of ``start``
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
    return abs(last - first) + 1


def _normalised(plane: np.ndarray, bar: BarCandidate) -> np.ndarray:
    """The plane in [0, 1], low where the bar is."""
    g = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-12)
    return g if bar.polarity == "dark" else 1.0 - g


def _ring(v: np.ndarray, bar: BarCandidate) -> int | None:
    """Thickness of a thin ring of the other shade closed around the bar on all four sides
    (above, below, left and right, each within :data:`_MAX_GAP` px, beyond :data:`_RING_LEVEL` of the way to the
    other shade and followed by a shade short of it), or None."""
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
    bands = [
        _band(across, r0 - rows.start - 1, -1, mid, limit),
        _band(across, r1 - rows.start, +1, mid, limit),
        _band(along, c0 - cols.start - 1, -1, mid, limit),
        _band(along, c1 - cols.start, +1, mid, limit),
    ]
    return None if any(b is None for b in bands) else max(bands[:2])


def _edge_of_frame(v: np.ndarray, bar: BarCandidate) -> bool:
    """Whether the bar is one edge of a closed frame: the bar's shade (below half-way to the
    other) encloses, within :data:`_MAX_GAP` + 1 rows above or below the bar, a hole spanning
    at least 80 % of its length and no thicker than the bar."""
    r0, c0, r1, c1 = bar.bar_box
    H, W = v.shape
    t, length = r1 - r0, c1 - c0
    rows = slice(max(0, r0 - 2 * t - 4), min(H, r1 + 2 * t + 4))
    cols = slice(max(0, c0 - 6), min(W, c1 + 6))
    patch = v[rows, cols]
    inside = float(np.median(v[r0:r1, c0:c1]))
    ground = float(np.median(patch))
    if ground - inside < 0.2:
        return False
    ink = patch < inside + 0.5 * (ground - inside)
    holes, _ = ndi.label(ndi.binary_fill_holes(ink) & ~ink)
    for hr, hc in ndi.find_objects(holes):
        near = hr.stop + rows.start >= r0 - _MAX_GAP - 1 and hr.start + rows.start <= r1 + _MAX_GAP
        if near and hc.stop - hc.start >= 0.8 * length and hr.stop - hr.start <= max(2, t):
            return True
    return False


def hollow_reason(plane: np.ndarray, bar: BarCandidate) -> str | None:
    """Why ``bar`` (found in ``plane``) is a hollow bar whose length is ambiguous, or None.

    Two cases: the bar is the inside of a thin frame (:func:`_ring`) at most twice as thick as
    the frame (an outlined *filled* bar is thicker); or the bar is one edge of a closed frame
    whose inside is a thin slit (:func:`_edge_of_frame`).
    """
    v = _normalised(plane, bar)
    ring = _ring(v, bar)
    if ring is not None and bar.bar_box[2] - bar.bar_box[0] <= 2 * ring:
        return f"{_HOLLOW}: the bar found ({bar.bar_length_px:.1f} px) is the inside of a {ring} px frame"
    if _edge_of_frame(v, bar):
        return f"{_HOLLOW}: the bar found ({bar.bar_length_px:.1f} px) is one edge of a frame around a thin slit"
    return None
