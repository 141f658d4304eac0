"""Thin grey lines: scale bars of a figure shrunk for the page, found on row pairs.

Shrunk 2-3× for the page, a 1-2 px bar becomes a grey line less than a pixel thick, often split over
two rows (35 % and 50 % of the ink): no threshold of :func:`~.locate.find_scale_bar` sees it. Here each
row's contrast over its column neighbourhood (a vertical top-hat, :data:`_OPENING` rows) is added to
the next row's, so that such a line has the whole of its ink again, and the usual bar finder is run on
that plane, once per shade. :func:`~napari_nanocrystal.scalebar.read_scale_bar` tries these lines only
when no usual bar and no block is found at all (a label frame's thin edge must not stand in for a bar
whose label was refused).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from .locate import BarCandidate, _candidates

#: Rows of the vertical opening/closing that leaves a thin horizontal line's contrast over its ground.
_OPENING = 15


def _line_ink(gray: np.ndarray) -> dict[str, np.ndarray]:
    """Each pixel's contrast over its column neighbourhood (a vertical top-hat), per shade, in [0, 1]."""
    lo, hi = float(gray.min()), float(gray.max())
    g = (gray - lo) / max(hi - lo, 1e-12)
    size = (_OPENING, 1)
    return {"dark": ndi.grey_closing(g, size=size) - g, "bright": g - ndi.grey_opening(g, size=size)}


def _row_pair_plane(shade: str, ink: np.ndarray) -> np.ndarray:
    """A shade's row-pair plane: each row's line contrast ``ink`` plus the next row's.

    A dark line's plane is 1 − its summed contrast (the ground 1, a line of full ink 0); a bright
    line's is the summed contrast (the ground 0).  Both in [0, 1] of the image's range.
    """
    summed = np.clip(ink + np.vstack([ink[1:], np.zeros((1, ink.shape[1]))]), 0.0, 1.0)
    return 1.0 - summed if shade == "dark" else summed


def _end(strongest: np.ndarray, start: int, step: int, interior: float) -> float:
    """Sub-pixel end of a line walking from ``start`` by ``step``: past the last column at half the
    ``interior`` ink, the columns at ≥ 90 % of the strongest ink near the end count whole, the next
    two by their share of it (the grey edge of an end tick or of the line)."""
    n = len(strongest)
    c = start
    while 0 <= c + step < n and strongest[c + step] >= 0.5 * interior:
        c += step
    near = strongest[min(c, c - 5 * step) : max(c, c - 5 * step) + 1]
    full = max(float(near.max()), 1e-12)
    while c != start and strongest[c] < 0.9 * full:
        c -= step
    edge = c + 1.0 if step > 0 else float(c)  # the outer edge of the last whole column
    for k in (1, 2):
        if not 0 <= c + k * step < n or strongest[c + k * step] <= 0.1 * full:
            break
        edge += step * min(1.0, float(strongest[c + k * step]) / full)
    return edge


def _remeasured(bar: BarCandidate, ink: np.ndarray) -> BarCandidate:
    """The line's ends from the strongest contrast of each column over its rows and three rows
    either side (its end ticks): summed over two rows, a vertical tick's ink counts twice."""
    r0, c0, r1, c1 = bar.bar_box
    rows = slice(max(0, r0 - 3), min(ink.shape[0], r1 + 4))
    strongest = ink[rows].max(axis=0)
    middle, interior = (c0 + c1) // 2, float(np.median(strongest[c0:c1]))
    left, right = _end(strongest, middle, -1, interior), _end(strongest, middle, +1, interior)
    if abs((right - left) - bar.bar_length_px) > 3:
        return bar  # something else beside the line: keep the row pairs' measurement
    return replace(bar, bar_length_px=float(right - left), left_px=float(left), right_px=float(right))


def thin_candidates(gray: np.ndarray) -> list:
    """Bar candidates (:func:`~.locate._candidates` items) of thin lines, best first, their ends
    measured on the original rows (:func:`_remeasured`)."""
    found = []
    for shade, ink in _line_ink(gray).items():
        for item in _candidates([_row_pair_plane(shade, ink)]):
            if item.bar.polarity == shade:
                item.bar = _remeasured(item.bar, ink)
                found.append(item)
    return sorted(found, key=lambda item: -item.bar.score)
