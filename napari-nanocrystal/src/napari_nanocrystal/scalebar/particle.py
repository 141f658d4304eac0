"""A label line touched by a particle: its glyphs counted at the ink's own level.

:func:`~.glyphs.glyph_layout` thresholds a line half-way from its ink to its ground, so a grey
particle under the label joins the glyphs it touches into one *blob*, and those are not counted:
the checks of the digit count (:func:`~.votes._glyph_mismatch`) then let a digit OCR invented from
the particle's edge pass; a particle that covers much of the line leaves no layout at all (too much
ink), and nothing is counted.  A drawn monospace ``50 nm`` over a dark grey triangle was read
``150 nm`` so (ninth pass of issue 16).  Such a line is counted again with the threshold a quarter
of the way from the ink to the ground, which leaves a particle lighter than that out.
"""

from __future__ import annotations

import re

import numpy as np

from .glyphs import glyph_layout

#: Where the tight threshold lies, as a fraction of the way from the ink level to the ground.
_TIGHT = 0.25


def particle_mismatch(crop: np.ndarray, box, polarity: str | None, text: str, unit: str) -> str | None:
    """Why a line a particle touches is refused, or None (also when the tight ink cannot be counted).

    At the ink's own level the line shows more digit-height glyphs than ``text`` has digits (and
    ``Å``: a digit lost on the particle), or one fewer while the number starts with a ``1`` (a 1
    invented from the particle's edge), or more decimal marks than the text.  Fewer glyphs are
    not refused otherwise: the tight threshold breaks the strokes of faint print (tune
    ``6d0f510327``'s white ``100 nm``, one glyph counted)."""
    from .ocr import _line_label, _resize

    u8 = _line_label(crop, box, polarity)
    if u8 is None:
        return None
    big = _resize(u8, max(1.0, 60.0 / max(1, u8.shape[0])))
    ink_level, ground = (float(v) for v in np.percentile(big, (2, 50)))
    layout = glyph_layout(big < ink_level + _TIGHT * (ground - ink_level), (box[2] - box[0]) * big.shape[0] / u8.shape[0])
    if layout is None or layout.tall is None:
        return None
    digits = sum(ch.isdigit() for ch in text) + (unit == "Å")
    points = len(re.findall(r"[.,](?=[0-9])", text))
    invented = text.lstrip(" .,").startswith("1") and layout.tall == digits - 1  # "150 nm": the particle's edge read as a 1
    if layout.tall > digits or invented or layout.marks > points:
        return (
            f"{text!r}: a particle touches the line, and at the ink's own level it shows {layout.tall} digit-height "
            f"glyph(s) and {layout.marks} decimal mark(s) (a digit invented from the particle's edge or lost on it?)"
        )
    return None
