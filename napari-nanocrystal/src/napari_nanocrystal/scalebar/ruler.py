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


@dataclass(frozen=True)
class TickRuler:
    """Ticks' rows, the first tick's left column and the last tick's right column (exclusive), tick count, shade."""

    box: tuple[int, int, int, int]
    ticks: int
    polarity: str  # "bright" or "dark": the ticks' shade

    @property
    def length_px(self) -> int:
        return self.box[3] - self.box[1]


def _ticks(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of the thin vertical strokes of ``mask``: ≤ 3 px wide, 3–40 px and at least twice as high, nearly solid."""
    labels, _ = ndi.label(mask)
    out = []
    for index, (rows, cols) in enumerate(ndi.find_objects(labels), start=1):
        high, wide = rows.stop - rows.start, cols.stop - cols.start
        if wide <= 3 and 3 <= high <= 40 and high >= 2 * wide and (labels[rows, cols] == index).mean() >= 0.7:
            out.append((rows.start, cols.start, rows.stop, cols.stop))
    return out


def _evenly_spaced(ticks: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Runs of ticks (sorted by column) spaced ≥ 4 px, each gap within 1.5 px of the run's median gap."""
    runs: list[list] = []
    run: list = []
    for tick in ticks:
        gap = tick[1] - run[-1][1] if run else 0
        fits = len(run) < 2 or abs(gap - np.median(np.diff([t[1] for t in run]))) <= 1.5
        if run and gap >= 4 and fits:
            run.append(tick)
            continue
        if run:
            runs.append(run)
        run = [run[-1], tick] if run and gap >= 4 else [tick]  # a new run may start at the last tick
    runs.append(run)
    return [r for r in runs if len(r) >= MIN_TICKS]


def find_tick_rulers(gray: np.ndarray) -> list[TickRuler]:
    """Tick rulers of a gray image's top and bottom quarters, most ticks first."""
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return []
    g = (gray - lo) / (hi - lo)
    H = g.shape[0]
    found = []
    for top, bottom in ((0, H // 4), (H - H // 4, H)):
        band = g[top:bottom]
        for polarity, ink in (("bright", band > 0.5), ("dark", band < 0.5)):
            groups: dict[tuple[int, int], list] = {}
            for r0, c0, r1, c1 in _ticks(ink):  # ticks standing on one row, of one height (±1 px)
                key = next((k for k in groups if abs(k[0] - r0) <= 1 and abs(k[1] - r1) <= 1), (r0, r1))
                groups.setdefault(key, []).append((r0, c0, r1, c1))
            for ticks in groups.values():
                for run in _evenly_spaced(sorted(ticks, key=lambda t: t[1])):
                    box = (top + min(t[0] for t in run), run[0][1], top + max(t[2] for t in run), run[-1][3])
                    found.append(TickRuler(box, len(run), polarity))
    return sorted(found, key=lambda r: -r.ticks)


def label_regions(ruler: TickRuler, shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    """Where a ruler's label may be: under its right part (Hitachi), then over it."""
    H, W = shape
    r0, c0, r1, c1 = ruler.box
    reach = max(4 * (r1 - r0), 24)
    left, right = max(0, c1 - int(0.7 * ruler.length_px)), min(W, c1 + int(0.15 * ruler.length_px) + 4)
    return [(slice(r1, min(H, r1 + reach)), slice(left, right)), (slice(max(0, r0 - reach), r0), slice(left, right))]
