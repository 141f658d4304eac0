"""A label's number read apart from its unit word, when OCR reads the line as the unit alone.

The recogniser sometimes drops a whole glyph at the start of a line at every text height (tune
``af2a275342``: a bold serif ``1`` before ``um``, read ``um`` five times), while the same glyph,
cut out and read by itself, is read at once.  This module finds where the number ends in the
line's ink (:func:`number_end`) and reads that part alone (:func:`number_apart`); the caller
joins it to the unit and checks the joined reading like any other.

Split from :mod:`.ocr` to keep that module under the ~500-line limit.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import ndimage as ndi

from .glyphs import glyph_layout

#: A reading of a unit word alone (after :func:`~.votes._normalise`): the x-height words only (an
#: ``Å`` is a capital, as tall as a digit, so the number's end could not be told from it).
_UNIT_ONLY = re.compile(r"^(?:nm|um)$")
#: A number read by itself.
_NUMBER = re.compile(r"^[0-9]+(?:[.,][0-9]+)?$")
#: Mean OCR confidence the number's readings need (as :data:`~.ocr._SURE_CONFIDENCE`).
_NUMBER_CONFIDENCE = 0.6


def unit_only(readings) -> str | None:
    """The unit word every reading of a line is (at least two readings, all "nm" or all "um"
    once normalised, spaces left out), or None."""
    from .votes import _normalise

    texts = {re.sub(r"\s+", "", _normalise(text)[0]) for text, _ in readings}
    if len(readings) < 2 or len(texts) != 1:
        return None
    text = texts.pop()
    return text if _UNIT_ONLY.match(text) else None


def number_end(crop: np.ndarray, box, polarity: str) -> tuple[int, int] | None:
    """(column in ``crop`` where the number of the line in ``box`` ends, digit-height glyphs before it).

    The ink is the line's (:func:`~.ocr._layout`'s: label-only, magnified to a 60-px line,
    thresholded half-way); its digit-height glyphs are counted by :func:`~.glyphs.glyph_layout`.
    The number ends half-way between the right edge of the last digit-height glyph and the left
    edge of the next glyph-sized component right of it (at least 0.3 glyph heights tall, starting
    right of that edge: the unit word's first letter, whose top must lie at least 0.15 glyph heights
    below the digits' highest: an x-height letter).  None when the ink shows no countable
    digit-height glyph, or no x-height letter after the last one (no unit word to split off; in a
    unit word alone, "nm", its first letter sets the cap line and counts as digit-height).
    """
    from .ocr import _ink, _label_only

    r0, c0, r1, c1 = box
    pad = max(2, (r1 - r0) // 4)
    top, left = max(0, r0 - pad), max(0, c0 - pad)
    patch = crop[top : r1 + pad, left : c1 + pad]
    if patch.size < 20 or np.ptp(patch) == 0:
        return None
    u8 = _label_only(patch, polarity)
    ink = _ink(u8)
    layout = glyph_layout(ink, (r1 - r0) * ink.shape[0] / u8.shape[0])
    if layout is None or not layout.tall or not layout.spans:
        return None
    last = layout.spans[-1][1]
    comp, _ = ndi.label(ink, structure=np.ones((3, 3)))
    glyphs = [o for o in ndi.find_objects(comp) if o is not None and o[0].stop - o[0].start >= 0.3 * layout.height]
    digits = [o for o in glyphs if o[1].start < last]
    after = [o for o in glyphs if o[1].start > last]
    if not digits or not after:
        return None
    first = min(after, key=lambda o: o[1].start)  # the unit word's first letter: an x-height letter
    if first[0].start < min(o[0].start for o in digits) + 0.15 * layout.height:
        return None  # as tall as the digits: no unit word (or a capital) after them
    scale = ink.shape[1] / u8.shape[1]
    return left + int(round(0.5 * (last + first[1].start) / scale)), layout.tall


def number_apart(reader, crop: np.ndarray, box, polarity: str, recognise) -> tuple[str, float] | None:
    """The number of a line read by itself: (text, mean confidence), or None.

    The part of the line's box before :func:`number_end` is read at every text height by
    ``recognise`` (:func:`~.ocr._recognise_line`); every reading must be the same number, with a
    mean confidence of at least :data:`_NUMBER_CONFIDENCE`, and have as many digits as the ink
    has digit-height glyphs there.
    """
    end = number_end(crop, box, polarity)
    if end is None:
        return None
    column, tall = end
    if column - box[1] < 2:
        return None
    readings = recognise(reader, crop, (box[0], box[1], box[2], column), polarity)
    texts = {re.sub(r"\s+", "", text) for text, _ in readings}
    if len(readings) < 2 or len(texts) != 1:
        return None
    number = texts.pop()
    confidence = float(np.mean([c for _, c in readings]))
    if not _NUMBER.match(number) or confidence < _NUMBER_CONFIDENCE or sum(ch.isdigit() for ch in number) != tall:
        return None
    return number, confidence
