"""Tick rulers: a row of evenly spaced, equal short ticks without a solid bar (Hitachi SEM/TEM data strips).

A ruler is found in the image's top and bottom quarters as at least :data:`MIN_TICKS` thin vertical
strokes of one height, standing on one row, evenly spaced; its length is its ink extent, first tick to
last, which the label's value spans. The label is read under the ruler's right part, then over it.
:func:`~napari_nanocrystal.scalebar.read_scale_bar` tries rulers only when no bar's label reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Fewest ticks that make a ruler (Hitachi draws eleven).
MIN_TICKS = 6


#: Width of the row-wise opening that leaves a thin tick's contrast over its own background, in px.
_OPENING = 7
#: A tick's contrast over its background, as a fraction of the image's range: low enough for the grey
#: one-pixel ticks of a figure shrunk for the page (a 2-px white tick shrunk 2.5× is two 35-50 % pixels).
_CONTRAST = 0.2


@dataclass(frozen=True)
class TickRuler:
    """Ticks' rows and columns (first tick's left to last tick's right, exclusive), tick count, shade.

    ``left_px`` / ``right_px`` are the ink's sub-pixel ends (the first tick's left and the last tick's right
    edge, from each tick's centroid and ink width), which ``length_px`` spans.
    """

    box: tuple[int, int, int, int]
    ticks: int
    polarity: str  # "bright" or "dark": the ticks' shade
    left_px: float
    right_px: float

    @property
    def length_px(self) -> float:
        return self.right_px - self.left_px


def _ticks(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of the thin vertical strokes of ``mask``: ≤ 3 px wide, 3–40 px and at least twice as high, nearly solid."""
    labels, _ = ndi.label(mask)
    out = []
    for index, (rows, cols) in enumerate(ndi.find_objects(labels), start=1):
        high, wide = rows.stop - rows.start, cols.stop - cols.start
        if wide <= 3 and 3 <= high <= 40 and high >= 2 * wide and (labels[rows, cols] == index).mean() >= 0.7:
            out.append((rows.start, cols.start, rows.stop, cols.stop))
    return out


def _centre(tick, contrast: np.ndarray) -> float:
    """A tick's ink centroid column (its box widened by a pixel each side, where a shrunk tick's edge may lie)."""
    r0, c0, r1, c1 = tick
    c0, c1 = max(0, c0 - 1), min(contrast.shape[1], c1 + 1)
    weight = contrast[r0:r1, c0:c1].sum(axis=0)
    return float(c0 + (np.arange(c1 - c0) + 0.5) @ weight / max(weight.sum(), 1e-12))


def _evenly_spaced(ticks: list[tuple[int, int, int, int]], centres: dict) -> list[list[tuple[int, int, int, int]]]:
    """Runs of ticks (sorted by column) spaced ≥ 4 px, each gap within 1.5 px of the run's median gap."""
    runs: list[list] = []
    run: list = []
    for tick in ticks:
        gap = centres[tick] - centres[run[-1]] if run else 0
        fits = len(run) < 2 or abs(gap - np.median(np.diff([centres[t] for t in run]))) <= 1.5
        if run and gap >= 4 and fits:
            run.append(tick)
            continue
        if run:
            runs.append(run)
        run = [run[-1], tick] if run and gap >= 4 else [tick]  # a new run may start at the last tick
    runs.append(run)
    return [r for r in runs if len(r) >= MIN_TICKS]


def _ink_width(run, contrast: np.ndarray) -> float:
    """The ticks' ink width in px: a row's ink across a tick over the run's full shade (≤ the widest box)."""
    full = max(float(contrast[t[0] : t[2], t[1] : t[3]].max()) for t in run)
    widths = []
    for r0, c0, r1, c1 in run:
        middle = contrast[(r0 + r1) // 2, max(0, c0 - 1) : c1 + 1]
        widths.append(float(middle.sum()) / max(full, 1e-12))
    return float(min(np.median(widths), max(t[3] - t[1] for t in run)))


def find_tick_rulers(gray: np.ndarray) -> list[TickRuler]:
    """Tick rulers of a gray image's top and bottom quarters, most ticks first.

    A tick is a thin stroke brighter (darker) than half the image's range, or standing out of its own
    row's background (a row-wise morphological opening of :data:`_OPENING` px) by :data:`_CONTRAST` of
    the range, so that grey one-pixel ticks of a shrunk figure are found as well as drawn ones; a
    ruler both find is kept once.
    """
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return []
    g = (gray - lo) / (hi - lo)
    H = g.shape[0]
    found = []
    for top, bottom in ((0, H // 4), (H - H // 4, H)):
        band = g[top:bottom]
        bright = band - ndi.grey_opening(band, size=(1, _OPENING))
        dark = ndi.grey_closing(band, size=(1, _OPENING)) - band
        for polarity, contrast, mask in (
            ("bright", bright, band > 0.5),  # drawn ticks, halfway up the image's range
            ("bright", bright, bright > _CONTRAST),  # and grey ones, over their own row's ground
            ("dark", dark, band < 0.5),
            ("dark", dark, dark > _CONTRAST),
        ):
            groups: dict[tuple[int, int], list] = {}
            for r0, c0, r1, c1 in _ticks(mask):  # ticks standing on one row, of one height (±1 px)
                key = next((k for k in groups if abs(k[0] - r0) <= 1 and abs(k[1] - r1) <= 1), (r0, r1))
                groups.setdefault(key, []).append((r0, c0, r1, c1))
            for ticks in groups.values():
                if len(ticks) >= 3:  # again within the ticks' rows only: a tick touching its label's glyph is cut free
                    rows = slice(min(t[0] for t in ticks), max(t[2] for t in ticks))
                    ticks = [(a + rows.start, b, c + rows.start, d) for a, b, c, d in _ticks(mask[rows])]
                centres = {tick: _centre(tick, contrast) for tick in ticks}
                for run in _evenly_spaced(sorted(ticks, key=centres.get), centres):
                    half = _ink_width(run, contrast) / 2
                    box = (top + min(t[0] for t in run), run[0][1], top + max(t[2] for t in run), run[-1][3])
                    found.append(TickRuler(box, len(run), polarity, centres[run[0]] - half, centres[run[-1]] + half))
    kept: list[TickRuler] = []
    for ruler in sorted(found, key=lambda r: -r.ticks):  # most ticks first (a stable sort: the first mask's first)
        if not any(_part_of(ruler, k) for k in kept):
            kept.append(ruler)
    return kept


def _part_of(ruler: TickRuler, other: TickRuler) -> bool:
    """Whether ``ruler`` is ``other`` or a part of it: the same shade, the same rows (±2 px), its columns within
    ``other``'s (±2 px). One ruler found by both masks is kept once; a run of its ticks that one mask split (a grey
    tick missed) is no shorter ruler of its own, whose label would be ``other``'s over too few ticks."""
    (r0, c0, r1, c1), (s0, d0, s1, d1) = ruler.box, other.box
    return ruler.polarity == other.polarity and abs(r0 - s0) <= 2 and abs(r1 - s1) <= 2 and c0 >= d0 - 2 and c1 <= d1 + 2


def label_regions(ruler: TickRuler, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    """Where a ruler's label may be: under its right part (Hitachi), then over it."""
    H, W = shape
    r0, c0, r1, c1 = ruler.box
    reach = max(4 * (r1 - r0), 24)
    left, right = max(0, c1 - int(0.7 * ruler.length_px)), min(W, c1 + int(0.15 * ruler.length_px) + 4)
    return [(slice(r1, min(H, r1 + reach)), slice(left, right)), (slice(max(0, r0 - reach), r0), slice(left, right))]
