"""Glyph-shape checks on a label crop: a descender (µ vs n), the glyphs and decimal marks of a line
(label ink beside a read line, a missed glyph, is checked in :mod:`.beside`)."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

logger = logging.getLogger(__name__)


class GlyphLayout(NamedTuple):
    """What :func:`glyph_layout` sees in a text line's ink."""

    tall: int | None  # digit-height glyphs
    marks: int | None  # decimal points or commas
    height: float  # cap line to baseline, px
    blobs: bool  # a component taller than the line (a particle) touches it
    descenders: int  # x-height glyphs reaching below the baseline (µ)
    spans: tuple = ()  # (first, last + 1) column of each digit-height glyph in the ink, left to right
    bases: tuple = ()  # share of each digit-height glyph's width its own ink covers in its bottom rows (a 2's flat base)


_SHAPE_MARGIN = 0.15  # correlation margin by which an n or u shape must win (:func:`_n_or_u`)
_SMALL_LINE_PX = 32  # lines lower than this are magnified for the n/u test (:func:`_arch_or_bowl`)
_INK_TOLERANCE = 0.35  # label ink: within this fraction of the ink-to-ground contrast of the label's ink


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
        o
        for o, size in zip(ndi.find_objects(comp), sizes)
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


def _n_or_u(crop: np.ndarray, box, polarity: str) -> str | None:
    """Whether the glyph before the final ``m`` of a line is drawn like an ``n`` or a ``u`` (or ``µ``):
    "n", "u" or None when undecided.

    OCR confuses the two (in serif print the feet of an ``n`` join like the bowl of a ``u``).
    In every font an ``n`` is drawn like the left part of the ``m`` beside it, a ``u`` like
    that part upside down: the glyph's x-height rows (gray, ink up, each column's mean taken
    out so that the stems do not count) are correlated with the ``m``'s left part as it is
    and flipped; one must win by :data:`_SHAPE_MARGIN`.  Glyphs
    are the components of the ink beyond 30 % of the way from the ground (median) to the
    extreme 1 % (the hairline arches of a serif n or m stay whole).
    """
    r0, c0, r1, c1 = box
    pad = max(2, (r1 - r0) // 3)
    patch = crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - 1) : c1 + 1].astype(float)
    if patch.shape[0] < 8 or patch.shape[1] < 8 or np.ptp(patch) == 0:
        return None
    ground = float(np.median(patch))
    cut = ground + 0.3 * (float(np.percentile(patch, 99 if polarity == "bright" else 1)) - ground)  # keeps hairline arches
    ink = patch > cut if polarity == "bright" else patch < cut
    comp, n = ndi.label(ink, structure=np.ones((3, 3)))
    h_img = ink.shape[0]
    glyphs = sorted(
        (o for o in ndi.find_objects(comp) if o[0].stop - o[0].start >= 0.2 * h_img and o[0].start > 0 and o[0].stop < h_img),
        key=lambda o: o[1].start,
    )
    if len(glyphs) < 2:
        return None
    m, before = glyphs[-1], glyphs[-2]
    height, width = m[0].stop - m[0].start, m[1].stop - m[1].start
    narrow = before[1].stop - before[1].start
    if height < 6 or width < 1.1 * height or not 0.4 * width <= narrow <= 0.85 * width:
        return None  # the last glyph is no 'm', or its neighbour is no x-height letter
    if before[1].stop > m[1].start + 1 or abs(before[0].start - m[0].start) > max(1, 0.15 * height):
        return None  # overlapping, or not on the m's x-height line
    level = (patch - ground) * (1.0 if polarity == "bright" else -1.0)  # ink up
    rows = slice(m[0].start, m[0].stop)
    glyph = level[rows, before[1]]
    left = level[rows, m[1].start : m[1].start + narrow]

    def corr(a, b):  # of the rows' profiles: each column's mean (the stems) taken out
        a, b = a - a.mean(axis=0), b - b.mean(axis=0)
        scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / scale if scale > 0 else 0.0

    upright, flipped = corr(glyph, left), corr(glyph, left[::-1])
    if upright - flipped >= _SHAPE_MARGIN:
        return "n"
    if flipped - upright >= _SHAPE_MARGIN:
        return "u"
    return None


def _runs(row: np.ndarray) -> int:
    """Number of separate ink runs in a row of booleans."""
    return int(np.count_nonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))) == 1))


def _open_fraction(row: np.ndarray) -> float | None:
    """Share of a row's ink span (first to last inked pixel) that is not inked; None without ink."""
    cols = np.flatnonzero(row)
    if cols.size == 0:
        return None
    return 1.0 - cols.size / float(cols[-1] - cols[0] + 1)


def _split_um(comp: np.ndarray, index: int, box) -> int | None:
    """The column between a u (or µ) and an m joined into one component (five stems across its
    middle rows: two of the u, three of the m), or None when it is not five stems."""
    height = box[0].stop - box[0].start
    rows = comp[box[0].start + int(0.4 * height) : box[0].start + int(0.85 * height), box[1]] == index
    if rows.shape[0] == 0:
        return None
    cuts = []
    for row in rows:
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        if edges.size != 10:  # five runs: (start, stop) pairs
            continue
        cuts.append((edges[3] + edges[4]) // 2)  # between the 2nd run's end and the 3rd run's start
    if len(cuts) < 0.5 * rows.shape[0]:
        return None
    return box[1].start + int(np.median(cuts))


def _arch_or_bowl(crop: np.ndarray, box, polarity: str, level: float = 0.3) -> str | None:
    """Whether the glyph before the final ``m`` of a line is an ``n`` (a top bar, open below) or a
    ``u`` / ``µ`` (open above, a bottom bowl): "n", "u" or None when undecided.

    Within the ``m``'s x-height rows, each row of the glyph's own ink has an *open fraction*: the
    share of its span (first to last inked pixel) left blank.  The stems of an ``n`` stand apart
    below its arch, those of a ``u`` above its bowl; serifs do not close the gap between the
    stems, and rows are taken one by one so that slant does not matter.  "u": the most closed
    row of the bottom 35 % is one run of ink across at least half the glyph's width,
    while every row of the top 35 % is open (≥ 0.1), or the column in the middle of the gap
    between the stems (at mid-height) is inked in the bottom 35 % and not in the top 35 % (± 1
    column); "n": the other way round.  The ink is the
    label's shade beyond ``level`` of the way from the ground (median) to the extreme 1 % (the
    hairlines of serif print stay whole); the last glyph must be an ``m`` (three stems across its
    middle rows), the glyph before it 0.35–1.0 times its width, on its x-height line, apart from it.
    """
    r0, c0, r1, c1 = box
    pad = max(2, (r1 - r0) // 3)
    patch = crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - 1) : c1 + 1].astype(float)
    if r1 - r0 < 10 or patch.shape[1] < 8 or np.ptp(patch) == 0:
        return None  # under 10 px, an x-height letter is a few pixels: its gaps are guesses
    if r1 - r0 < _SMALL_LINE_PX:  # small print: magnified (linear) so that a one-pixel gap is a few
        patch = ndi.zoom(patch, _SMALL_LINE_PX / max(1, r1 - r0), order=1)
    ground = float(np.median(patch))
    cut = ground + level * (float(np.percentile(patch, 99 if polarity == "bright" else 1)) - ground)
    ink = patch > cut if polarity == "bright" else patch < cut
    comp, _ = ndi.label(ink, structure=np.ones((3, 3)))
    h_img = ink.shape[0]
    found = sorted(
        (
            (index, o)
            for index, o in enumerate(ndi.find_objects(comp), start=1)
            if o is not None and o[0].stop - o[0].start >= 0.2 * h_img and o[0].start > 0  # a µ's descender may reach the bar
        ),
        key=lambda item: item[1][1].start,
    )
    if not found:
        return None
    split = _split_um(comp, *found[-1])
    if split is not None:  # a u (or µ) whose serif touches the m: cut between them
        ink[:, split] = False
        comp, _ = ndi.label(ink, structure=np.ones((3, 3)))
        found = sorted(
            (
                (index, o)
                for index, o in enumerate(ndi.find_objects(comp), start=1)
                if o is not None and o[0].stop - o[0].start >= 0.2 * h_img and o[0].start > 0
            ),
            key=lambda item: item[1][1].start,
        )
    m_index, m = found[-1]
    height, width = m[0].stop - m[0].start, m[1].stop - m[1].start
    middle = comp[m[0].start + int(0.4 * height) : m[0].start + int(0.85 * height), m[1]] == m_index
    if height < 6 or middle.shape[0] == 0 or np.median([_runs(row) for row in middle]) != 3:
        return None  # the last glyph is no 'm' (three stems)
    # the glyphs within the m's rows (a µ's descender may be joined to what is left of the bar below)
    row_ink = ink[m[0]] & (comp[m[0]] != m_index)
    parts, _ = ndi.label(row_ink, structure=np.ones((3, 3)))
    boxes = [
        (index, o)
        for index, o in enumerate(ndi.find_objects(parts), start=1)
        if o is not None and o[1].stop <= m[1].start + 1 and o[0].stop - o[0].start >= 0.5 * height
    ]
    if not boxes:
        return None
    index, before = max(boxes, key=lambda item: item[1][1].stop)
    narrow = before[1].stop - before[1].start
    if not 0.35 * width <= narrow <= 1.0 * width or before[0].start > max(1, 0.15 * height):
        return None  # no x-height letter, or not on the m's x-height line
    glyph = parts[:, before[1]] == index  # the glyph's own ink, in the m's rows
    band = max(2, int(round(0.35 * height)))

    def closed(rows) -> float:  # the most closed row spanning at least half the glyph
        fractions = [_open_fraction(row) for row in rows if np.count_nonzero(row) and np.ptp(np.flatnonzero(row)) + 1 >= 0.5 * narrow]
        return min(fractions) if fractions else 1.0

    def opened(rows) -> float:  # the least open row with ink
        fractions = [f for f in (_open_fraction(row) for row in rows) if f is not None]
        return min(fractions) if fractions else 0.0

    top, bottom = glyph[:band], glyph[-band:]
    centre = _gap_centre(glyph[int(0.4 * height) : int(0.7 * height)])  # between the stems, mid-height
    if centre is not None:  # ink across the middle of the gap between the stems: above (n) or below (u)
        window = slice(max(0, centre - 1), centre + 2)
        above, below = bool(top[:, window].any()), bool(bottom[:, window].any())
    else:
        above = below = None
    if (closed(bottom) == 0.0 and opened(top) >= 0.1) or (below and above is False):
        return "u"
    if (closed(top) == 0.0 and opened(bottom) >= 0.1) or (above and below is False):
        return "n"
    return None


def _gap_centre(rows: np.ndarray) -> int | None:
    """The column in the middle of the gap between the two stems of rows of an n or u (two runs
    each), or None when most rows are not two runs."""
    centres = []
    for row in rows:
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        if edges.size == 4:
            centres.append((edges[1] + edges[2]) // 2)
    if not rows.shape[0] or len(centres) < 0.6 * rows.shape[0]:
        return None
    return int(np.median(centres))


def u_shape(crop: np.ndarray, box, polarity: str) -> str | None:
    """:func:`_arch_or_bowl` at two ink levels (0.3 and 0.5 of the way from the ground to the
    ink): "n" or "u" when the levels that decide agree, None when they differ; when neither
    decides, "u" if :func:`_n_or_u` finds one (on 20 DejaVu faces at 11–40 px, both shades, it
    never called an n a u, but called 370 of 1,200 u's an n), else None."""
    answers = {_arch_or_bowl(crop, box, polarity, level) for level in (0.3, 0.5)} - {None}
    if len(answers) == 1:
        return answers.pop()
    if not answers and _n_or_u(crop, box, polarity) == "u":
        return "u"  # the correlation test (it errs only towards n on drawn fonts: a u drawn like an n)
    return None


def glyph_layout(ink: np.ndarray, line_height: float) -> GlyphLayout | None:
    """Tall glyphs and decimal marks of one binary text line (True = ink), left to right.

    Only what thin, italic or noisy print keeps whole is counted.  Of the components 0.5–1.15
    times ``line_height`` (the text line's box) tall, the cap line is the highest top
    and the baseline where most bottoms are; *tall glyphs* span from one to the other
    (within 15 % of the glyph height) and are at most 0.9 glyph heights wide — digits and
    capitals, not the x-height letters n, m, u and µ, whose strokes break apart in thin print,
    nor a glyph merged with a particle — and tall components that overlap in columns by more
    than half of the narrower are one glyph.  Taller components are *blobs* (a
    particle touching the label).  A *decimal mark* is a compact blob at least 0.7 stroke
    widths thick and at most 0.4 glyph heights across, its bottom at the baseline, in a gap
    between two tall glyphs or just before the first (".2 µm"), with no ink above it up to the
    cap line, away from the crop's edges; noise specks are thinner.

    Returns
    -------
    GlyphLayout or None
        None when the line shows no clear glyphs (too little or too much ink); ``tall`` and
        ``marks`` None when its strokes are thinner than 9 % of the glyph height (thin print
        breaks apart: nothing can be counted).  ``descenders``: x-height glyphs reaching below
        the baseline — a ``µ`` (or, in thin serif print, a stroke piece hanging under an x-height
        glyph's left stem: :func:`_detached_descenders`) — centred right of the last digit-height
        glyph when there is one (a comma between digits reaches below the baseline too).
    """
    if ink.size == 0 or not 0.02 < ink.mean() < 0.6:
        return None
    comp, n = ndi.label(ink, structure=np.ones((3, 3)))
    if n == 0:
        return None
    boxes = [(o[0].start, o[1].start, o[0].stop, o[1].stop) for o in ndi.find_objects(comp)]
    areas = ndi.sum_labels(ink, comp, index=np.arange(1, n + 1))
    sized = [b for b in boxes if 0.5 * line_height <= b[2] - b[0] <= 1.15 * line_height]
    if not sized:
        return None
    narrow = [b for b in sized if b[3] - b[1] <= 0.9 * (b[2] - b[0])] or sized  # not merged with a blob
    cap = float(min(b[0] for b in narrow))  # the cap line: digits' tops (too high a line only hides glyphs)
    base = float(np.percentile([b[2] for b in sized], 50))  # the baseline
    height = base - cap
    if height < 6:
        return None
    # digit-height: top at the cap line and bottom at the baseline (x-height letters start lower)
    is_tall = [abs(b[0] - cap) <= 0.15 * height and abs(b[2] - base) <= 0.15 * height and b[3] - b[1] <= 0.9 * height for b in boxes]
    tall = sorted(((b, k + 1) for k, (b, t) in enumerate(zip(boxes, is_tall)) if t), key=lambda item: item[0][1])
    columns = _columns(_join_halves(tall, comp, height))
    blobs = any(b[2] - b[0] > 1.15 * line_height for b in boxes)
    # µ: an x-height glyph reaching below the baseline (no other glyph of a label does but a comma), after
    # the number: a tall serif comma between the digits ("1,0 µm", tune ce41e4e56d) is no µ
    unit = [b for b in boxes if not columns or 0.5 * (b[1] + b[3]) >= columns[-1][1]]
    descenders = sum(
        b[2] - b[0] >= 0.5 * height and b[0] >= cap + 0.2 * height and base + 0.15 * height <= b[2] <= base + 0.6 * height for b in unit
    ) + _detached_descenders(boxes, cap, base, height, unit)
    if not columns:
        return GlyphLayout(None, None, height, blobs, descenders)
    tall_ink = np.isin(comp, 1 + np.flatnonzero(is_tall))
    stroke = 2.0 * float(np.percentile(ndi.distance_transform_edt(tall_ink)[tall_ink], 90))
    if stroke < 0.09 * height:
        return GlyphLayout(None, None, height, blobs, descenders)  # thin print breaks apart: not counted
    baseline = float(np.median([c[3] for c in columns]))
    marks = sum(_is_mark(b, area, height, stroke, baseline, columns, ink, cap) for b, area, t in zip(boxes, areas, is_tall) if not t)
    bases = tuple(_base_share(comp, [label for b, label in tall if c[0] <= b[1] and b[3] <= c[1]], c, height) for c in columns)
    return GlyphLayout(len(columns), marks, height, blobs, descenders, tuple((c[0], c[1]) for c in columns), bases)


def _base_share(comp: np.ndarray, labels, column, height: float) -> float:
    """Share of a glyph's width (``column`` = [col0, col1, row0, row1]) that its own components
    (``labels``: not a neighbour kerned under its arm) cover in its bottom 12 % of the glyph height:
    a 2's flat base spans the glyph, a 7's stem a third of it."""
    c0, c1, r0, r1 = column
    band = np.isin(comp[max(r0, r1 - max(1, round(0.12 * height))) : r1, c0:c1], labels)
    cols = np.flatnonzero(band.any(axis=0))
    return float(cols[-1] - cols[0] + 1) / (c1 - c0) if cols.size else 0.0


def _bracket(piece: np.ndarray) -> str | None:
    """Whether one binary glyph piece curves like ``(`` ("left": its top and bottom rows lie right of
    its middle rows) or ``)`` ("right"), by the mean column of each row's ink; None otherwise."""
    rows = np.flatnonzero(piece.any(axis=1))
    if rows.size < 8:
        return None
    cols = np.arange(piece.shape[1])
    centre = np.array([cols[piece[r]].mean() for r in rows])
    q = max(1, rows.size // 5)
    top, middle, bottom = centre[:q].mean(), centre[2 * q : -2 * q].mean(), centre[-q:].mean()
    margin = max(1.0, 0.1 * piece.shape[1])
    if top >= middle + margin and bottom >= middle + margin:
        return "left"
    if top <= middle - margin and bottom <= middle - margin:
        return "right"
    return None


def _join_halves(tall, comp: np.ndarray, height: float) -> list[tuple[int, int, int, int]]:
    """Tall glyph boxes ((box, component label) sorted by column) with the two halves of a broken ``0``
    joined: bold serif print's thin top and bottom arcs fall below the ink threshold and leave a ``(``
    and a ``)`` (:func:`_bracket`), each at most 0.3 glyph heights wide, less than 1.5 of their widths
    apart and at most 0.9 heights wide together — counted as two digits, they would refuse "200nm" for a
    digit OCR did not read.  A ``1`` is no half: its flag bends one way at the top only."""
    out: list[tuple[int, int, int, int]] = []
    k = 0
    while k < len(tall):
        (box, label) = tall[k]
        if k + 1 < len(tall):
            (other, label2) = tall[k + 1]
            w1, w2 = box[3] - box[1], other[3] - other[1]
            gap = other[1] - box[3]
            if (
                max(w1, w2) <= 0.3 * height
                and 0 <= gap <= 1.5 * max(w1, w2)
                and other[3] - box[1] <= 0.9 * height
                and _bracket(comp[box[0] : box[2], box[1] : box[3]] == label) == "left"
                and _bracket(comp[other[0] : other[2], other[1] : other[3]] == label2) == "right"
            ):
                out.append((min(box[0], other[0]), box[1], max(box[2], other[2]), other[3]))
                k += 2
                continue
        out.append(box)
        k += 1
    return out


def _detached_descenders(boxes, cap: float, base: float, height: float, pieces=None) -> int:
    """Stroke pieces below the baseline right under the left stem of an x-height glyph: a serif µ
    whose descender's thin join to its stem fell below the ink threshold (tune 3537f150cd).  A piece
    is at most 0.25 glyph heights wide and at least 0.1 high, starts at most 0.12 heights below the
    bottom of a stem whose top is at the x-height (0.2 heights or more below the cap line) and whose
    bottom is at the baseline, ends 0.15–0.6 heights below the baseline, and lies under that stem's
    left half (a µ's descender hangs from its left stem).  ``pieces``: the boxes that may be such a
    piece (default all; :func:`glyph_layout` passes those after the number)."""
    stems = [b for b in boxes if b[0] >= cap + 0.2 * height and abs(b[2] - base) <= 0.15 * height and b[2] - b[0] >= 0.5 * height]
    count = 0
    for r0, c0, r1, c1 in boxes if pieces is None else pieces:
        if not (c1 - c0 <= 0.25 * height and r1 - r0 >= 0.1 * height and base + 0.15 * height <= r1 <= base + 0.6 * height):
            continue
        if any(-1 <= r0 - s[2] <= 0.12 * height and s[1] < c1 and c0 < s[1] + 0.5 * (s[3] - s[1]) for s in stems):
            count += 1
    return count


def _columns(tall) -> list[list[int]]:
    """Glyph boxes sorted by column → merged columns [col0, col1, row0, row1]."""
    columns: list[list[int]] = []
    for r0, c0, r1, c1 in tall:
        if columns and min(c1, columns[-1][1]) - max(c0, columns[-1][0]) > 0.5 * min(c1 - c0, columns[-1][1] - columns[-1][0]):
            last = columns[-1]
            last[:] = [min(last[0], c0), max(last[1], c1), min(last[2], r0), max(last[3], r1)]
        else:
            columns.append([c0, c1, r0, r1])
    return columns


def _is_mark(box, area: float, height: float, stroke: float, baseline: float, columns, ink: np.ndarray, cap: float) -> bool:
    """Whether a component is a decimal point or comma (see :func:`glyph_layout`)."""
    r0, c0, r1, c1 = box
    h, w = r1 - r0, c1 - c0
    if min(r0, c0) < 2 or r1 > ink.shape[0] - 2 or c1 > ink.shape[1] - 2:
        return False  # at the edge of the line's crop: a piece of something else
    if ink[int(cap) : r0, c0:c1].any():
        return False  # ink above it in the line: a piece of a glyph or of a dotted line, not a point
    if max(h, w) > 0.4 * height or min(h, w) < max(2.0, 0.7 * stroke) or area < 0.45 * h * w:
        return False
    if not baseline - 0.25 * height <= r1 <= baseline + 0.35 * height:
        return False  # not at the baseline (a comma reaches below it)
    if any(min(c1, c[1]) - max(c0, c[0]) > 1 for c in columns):
        return False  # inside a glyph's columns: part of it
    after = [c for c in columns if c[0] >= c1 - 1]
    before = [c for c in columns if c[1] <= c0 + 1]
    return bool(after) and (bool(before) or after[0][0] - c1 <= 0.2 * height)
