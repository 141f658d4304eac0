"""Text lines of a label crop found from its ink alone (connected components), without OCR.

EasyOCR's CRAFT detector costs about 0.5 s on a magnified label window on one CPU core, 10
times a recognition; most labels are a clean row of glyphs whose connected components find
it in milliseconds.  :func:`ink_lines` returns such rows, each with the shade of its ink
judged from its own pixels (a dark label over a white bar is read as dark, not in the bar's
shade); the reader falls back on CRAFT only when none of them reads.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

_MIN_GLYPH_PX = 5  # components lower than this are no glyphs of a readable label (specks, points)
_GROUND_PX = 21  # the local ground: strokes narrower than this stand out of it
_MAX_ASPECT = 6.0  # a component wider than this many heights is no glyph group (a ruler, an edge)


def label_shade(patch: np.ndarray) -> str:
    """ "dark" or "bright": the (minority) shade of the text in a patch around one line."""
    lo, mid, hi = np.percentile(patch, (0.5, 50, 99.5))
    return "dark" if mid - lo > hi - mid else "bright"


def padded(crop: np.ndarray, box, fraction: float = 0.25) -> np.ndarray:
    """The part of ``crop`` in ``box`` grown by ``fraction`` of its height on every side."""
    r0, c0, r1, c1 = box
    pad = max(2, int(fraction * (r1 - r0)))
    return crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - pad) : c1 + pad]


def _ink(crop: np.ndarray, shade: str) -> np.ndarray | None:
    """Strokes of ``shade`` against their local ground: the top-hat (the crop against its grey
    closing, for dark ink, or opening, for bright ink, over :data:`_GROUND_PX` pixels) beyond
    half its 99.9th percentile, which must stand out of the pixel noise."""
    if shade == "dark":
        hat = ndi.grey_closing(crop, size=(_GROUND_PX, _GROUND_PX)) - crop
    else:
        hat = crop - ndi.grey_opening(crop, size=(_GROUND_PX, _GROUND_PX))
    extreme = float(np.percentile(hat, 99.9))
    noise = 1.4826 * float(np.median(np.abs(np.diff(crop, axis=1)))) / math.sqrt(2.0)  # pixel noise, not the scene's spread
    if extreme <= 10.0 * noise or extreme == 0.0:  # the top-hat of pure noise reaches about 6 sigma
        return None  # no ink of this shade stands out of the noise
    return hat > 0.5 * extreme


def ink_lines(crop: np.ndarray, near=None, count: int = 4) -> list[tuple[tuple[int, int, int, int], str]]:
    """Rows of glyph-sized components of one shade: ``(box, shade)``, nearest ``near`` first.

    Components of each shade ("dark", "bright") at least :data:`_MIN_GLYPH_PX` high, at most
    0.8 times the crop high and :data:`_MAX_ASPECT` times as wide as high are joined left to right
    when they share half the lower one's rows and their gap is under 1.2 heights; small
    components (decimal points) in the row's lower half within 0.6 heights extend it.  A row
    is kept when it is at least 1.2 heights wide; a row that looks like the ground between the
    glyphs of a row of the other shade (:func:`_gaps_of`) comes after all the others (the
    judgement fails for bold print, which inks more of its box than its gaps do).
    """
    H, W = crop.shape
    found: list[tuple[float, tuple[int, int, int, int], str]] = []
    for shade in ("dark", "bright"):
        ink = _ink(crop, shade)
        if ink is None:
            continue
        comp, n = ndi.label(ink, structure=np.ones((3, 3)))
        boxes = [(o[0].start, o[1].start, o[0].stop, o[1].stop) for o in ndi.find_objects(comp)]
        sized = [b for b in boxes if _MIN_GLYPH_PX <= b[2] - b[0] <= 0.8 * H and b[3] - b[1] <= _MAX_ASPECT * (b[2] - b[0])]
        glyphs = sorted((b for b in sized if not _encloses_any(b, sized)), key=lambda b: b[1])
        small = [b for b in boxes if 2 <= b[2] - b[0] < _MIN_GLYPH_PX and b[3] - b[1] < 2 * _MIN_GLYPH_PX]
        rows: list[list] = []  # [r0, c0, r1, c1, glyph height, member boxes]
        for r0, c0, r1, c1 in glyphs:
            h = r1 - r0
            for row in rows:
                shared = min(r1, row[2]) - max(r0, row[0])
                gap = c0 - row[3]
                if shared >= 0.5 * min(h, row[4]) and -2 <= gap <= 1.2 * max(h, row[4]) and max(h, row[4]) <= 2.5 * min(h, row[4]):
                    row[:] = [min(r0, row[0]), row[1], max(r1, row[2]), max(c1, row[3]), max(h, row[4]), [*row[5], (r0, c0, r1, c1)]]
                    break
            else:
                rows.append([r0, c0, r1, c1, h, [(r0, c0, r1, c1)]])
        rows = [_off_baseline_trimmed(row[5]) for row in rows]
        for row in rows:
            h = row[4]
            for r0, c0, r1, c1 in small:  # a decimal point before, between or after the glyphs
                if row[0] + 0.5 * h <= r1 <= row[2] + 1 and row[1] - 0.6 * h <= c1 and c0 <= row[3] + 0.6 * h:
                    row[1], row[3] = min(row[1], c0), max(row[3], c1)
            box = (row[0], row[1], row[2], row[3])
            if box[3] - box[1] >= 1.2 * h:
                distance = 0.0 if near is None else math.hypot((box[0] + box[2]) / 2 - near[0], (box[1] + box[3]) / 2 - near[1])
                found.append((distance, box, shade, float(ink[box[0] : box[2], box[1] : box[3]].mean())))
    ground = [any(_gaps_of(item, other) for other in found if other[2] != item[2]) for item in found]
    # a row judged the ground between another row's glyphs is read after every other row, not dropped:
    # bold print inks more of its box than the gaps between its glyphs do (tune 934d76aaf2)
    ordered = sorted(zip(ground, found), key=lambda pair: (pair[0], pair[1][0]))
    return [(box, shade) for _, (_, box, shade, _) in ordered[:count]]


def _encloses_any(box, others) -> bool:
    """Whether ``box`` is a frame drawn around a line: wider than high, it holds two or more other
    glyph-sized boxes wholly inside it.  Read as a row of its own, a frame around ``5 nm`` gave
    ``6nm`` (a drawn stress label of the tenth pass).  One box inside is not enough: the bright
    ground left inside the outlined bold ``0`` of generated seed 29051's ``0.1 µm`` is one, and
    dropping the ``0`` read ``1 um``."""
    r0, c0, r1, c1 = box
    if c1 - c0 <= r1 - r0:
        return False
    return sum(o != box and r0 <= o[0] and o[2] <= r1 and c0 <= o[1] and o[3] <= c1 for o in others) >= 2


def _off_baseline_trimmed(members: list[tuple[int, int, int, int]]) -> list:
    """A row's box and glyph height ([r0, c0, r1, c1, height]) without the components at its ends
    that end well above its baseline (the median bottom) and stand apart: a rod or particle beside
    the label (tune 7f50b86c4b: a nanorod left of "200 nm", whose bottom is half a glyph height
    above the digits', read as a leading 1).  Every glyph of a scale-bar label sits on the baseline
    (a µ reaches below it; a decimal point is no member).  Such a component must lie a quarter of
    the row's glyph height or more from the next: pieces of the ground between a label's glyphs,
    found in the other shade, touch each other (trimming them made tune 6d0f510327's ground read
    "9 nm").  At least two members are kept, and a row of fewer than three is left whole (its
    median says nothing)."""
    members = sorted(members, key=lambda b: b[1])
    if len(members) >= 3:
        base = float(np.median([b[2] for b in members]))
        height = max(b[2] - b[0] for b in members)
        while len(members) > 2 and members[0][2] < base - 0.25 * height and members[1][1] - members[0][3] >= 0.25 * height:
            members = members[1:]
        while len(members) > 2 and members[-1][2] < base - 0.25 * height and members[-1][1] - members[-2][3] >= 0.25 * height:
            members = members[:-1]
    return [
        min(b[0] for b in members),
        members[0][1],
        max(b[2] for b in members),
        max(b[3] for b in members),
        max(b[2] - b[0] for b in members),
    ]


def _gaps_of(row, other) -> bool:
    """Whether ``row`` is the ground between the glyphs of ``other``, a row of the other shade
    over half of it with less of its box inked (strokes are the minority of a row of text,
    the ground between and inside them the majority)."""
    (_, box, _, inked), (_, obox, _, oinked) = row, other
    rows = min(box[2], obox[2]) - max(box[0], obox[0])
    cols = min(box[3], obox[3]) - max(box[1], obox[1])
    if rows <= 0 or cols <= 0 or rows * cols < 0.5 * (box[2] - box[0]) * (box[3] - box[1]):
        return False
    return oinked < inked
