"""Around a scale bar: the windows its label may be in, and a window's crop with the bar painted out.

Split from :mod:`.locate` (finding and measuring bars), which had grown past the ~500-line limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from .lines import label_shade, padded

if TYPE_CHECKING:
    from .locate import BarCandidate


def _label_windows(plane: np.ndarray, bar: BarCandidate, bar_pixels: np.ndarray) -> list[tuple[slice, slice]]:
    """Where the label may be — above, below, right and left of the bar — most ink first, then
    above and below again reaching twice as far up or down and sideways (a label taller or
    wider than the first windows, whose lines touched their cut edges and were skipped there).

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
    ordered = [region for _, region in sorted(windows, key=lambda w: -w[0])]
    wide = 2 * widen
    for top, left, bottom, right in ((r0 - 2 * reach_v, c0 - wide, r1, c1 + wide), (r0, c0 - wide, r1 + 2 * reach_v, c1 + wide)):
        region = (slice(max(0, top), min(H, bottom)), slice(max(0, left), min(W, right)))
        if region not in ordered and region[0].stop - region[0].start >= 6:
            ordered.append(region)
    return ordered


def off_diagonal(box, bar_box) -> bool:
    """Whether a text line's ``box`` lies diagonally off the bar (both boxes in one frame): more than
    the line's height away from the bar's rows *and* from its columns.  A label is drawn beside its
    bar — above or below it, overlapping its columns, or left or right of it, level with it — so such
    a line is some other pattern (generated seed 31044: the grey ground between dark particles below
    and right of a bold ``10nm`` was read ``7A``, a silent 14-fold error)."""
    r0, c0, r1, c1 = box
    b0, d0, b1, d1 = bar_box
    height = max(1, r1 - r0)
    return max(b0 - r1, r0 - b1) > height and max(d0 - c1, c0 - d1) > height


def frames_label(plane: np.ndarray, bar_box, text_box) -> bool:
    """Whether the bar is part of a frame drawn around its label (a box around the text in the
    label's shade): between the bar's columns, from 0.6 line heights before the first of bar and
    label to as far past the last, the label's shade closes around at least 90 % of the label's box,
    and the closed shape holds the bar (as one of its edges, or inside it).  End ticks do not close:
    they leave the side away from the bar open.  A drawn ``50 nm`` in a thin box was read over the
    box's 60-px edge, or over the 48-px strip of ground inside the box below the text, instead of
    its bar (tenth pass, drawn stress labels)."""
    r0, c0, r1, c1 = bar_box
    t0, s0, t1, s1 = text_box
    if s0 < c0 - 2 or s1 > c1 + 2 or (t0 < r1 and r0 < t1):
        return False  # a frame's edge spans its label; a label inside the bar's rows is in a block bar
    reach = max(2, int(0.6 * (t1 - t0)))
    top, bottom = max(0, min(t0, r0) - reach), min(plane.shape[0], max(t1, r1) + reach)
    left, right = max(0, c0 - 2), min(plane.shape[1], c1 + 2)
    patch, text = plane[top:bottom, left:right], plane[t0:t1, s0:s1]
    ground = float(np.median(text))  # the ground between and inside the glyphs
    ink = float(np.percentile(text, 1.0 if label_shade(padded(plane, text_box)) == "dark" else 99.0))
    if abs(ink - ground) < 1e-9:
        return False
    pieces, _ = ndi.label(ndi.binary_fill_holes(np.abs(patch - ink) < np.abs(patch - ground)))
    own = np.unique(pieces[r0 - top : r1 - top, c0 - left : c1 - left])  # the closed shapes holding the bar
    inside = np.isin(pieces[t0 - top : t1 - top, s0 - left : s1 - left], own[own > 0])
    return bool(inside.size and inside.mean() >= 0.9)


#: Height (px) of a glyph kept out of a piece of the bar's component that reaches past the bar's
#: columns (:func:`_bar_only`): a frame's or an outline's edge is thinner.
_GLYPH_IN_PIECE_PX = 6


def _bar_only(bar_pixels: np.ndarray, bar_box) -> np.ndarray:
    """The bar's component (:meth:`_Found.region`) less the glyphs that touch it: a piece of it
    above or below the bar's rows, within the bar's columns away from its ends (ticks stand at the
    ends), at least 0.3 times as wide as high (a tick or a frame's edge is a thin line), is a glyph
    whose descender reaches the bar ("1 µm", tune 2bc87a8698 and 39e18a8f4c), not painted out.
    A piece that reaches past those columns (a glyph joined to a patch of ground of its shade beyond
    the bar's end: the ``m`` of tune 85a5d4d8b9) keeps its parts within them that are glyph-sized
    (:data:`_GLYPH_IN_PIECE_PX` high or more, at least 0.3 times as wide as high); the rest of it
    is painted out with the bar."""
    r0, c0, r1, c1 = bar_box
    margin = max(2, int(0.05 * (c1 - c0)))
    rest = bar_pixels.copy()
    rest[max(0, r0 - 1) : r1 + 1] = False
    if not rest.any():
        return bar_pixels
    pieces, _ = ndi.label(rest, structure=np.ones((3, 3)))
    kept = bar_pixels.copy()
    for index, (rows, cols) in enumerate(ndi.find_objects(pieces), start=1):
        tall, wide = rows.stop - rows.start, cols.stop - cols.start
        if cols.start >= c0 + margin and cols.stop <= c1 - margin and tall >= 3 and wide >= 0.3 * tall:
            kept[rows, cols] &= pieces[rows, cols] != index
        elif tall >= _GLYPH_IN_PIECE_PX:  # a glyph joined to ground of its shade past the bar's end
            inner = slice(max(cols.start, c0 + margin), min(cols.stop, c1 - margin))
            if inner.stop - inner.start < 3:
                continue
            parts, _ = ndi.label(pieces[rows, inner] == index, structure=np.ones((3, 3)))
            for k, (prow, pcol) in enumerate(ndi.find_objects(parts), start=1):
                p_tall, p_wide = prow.stop - prow.start, pcol.stop - pcol.start
                if p_tall >= _GLYPH_IN_PIECE_PX and p_wide >= 0.3 * p_tall:
                    window = kept[rows, inner]
                    window[prow, pcol] &= parts[prow, pcol] != k
    return kept


def _clean_crop(plane: np.ndarray, region: tuple[slice, slice], bar_pixels: np.ndarray) -> np.ndarray:
    """The crop with the bar and its ticks painted in the surrounding shade (OCR reads bars as '1' or '-')."""
    crop = plane[region].copy()
    bar = ndi.binary_dilation(bar_pixels[region], iterations=2)
    ring = ndi.binary_dilation(bar, iterations=3) & ~bar
    if ring.any():
        crop[bar] = np.median(crop[ring])
    return crop
