"""A label line touched by a particle: its glyphs counted at the ink's own level.

:func:`~.glyphs.glyph_layout` thresholds a line half-way from its ink to its ground, so a grey
particle under the label joins the glyphs it touches into one *blob*, and those are not counted:
the checks of the digit count (:func:`~.votes._glyph_mismatch`) then let a digit OCR invented from
the particle's edge pass; a particle that covers much of the line leaves no layout at all (too much
ink), and nothing is counted.  A drawn monospace ``50 nm`` over a dark grey triangle was read
``150 nm`` so (ninth pass of issue 16).  Such a line is counted again with the threshold a quarter
of the way from the ink to the ground, which leaves a particle lighter than that out.  The same
tight count checks an ``Å`` label whose ring hides its digits (:func:`ring_shortfall`) and a line
box that a particle, not glyphs, made (:func:`blob_made_box`); a glyph joined with a particle into
one component too wide for a glyph is cleaned of what the tight threshold leaves out, for the line
to be read again (:func:`joined_particle`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

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
    tight = _tight_ink(crop, box, polarity)
    if tight is None:
        return None
    layout = glyph_layout(tight.ink, tight.line_height)
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


class TightInk(NamedTuple):
    """A label line seen at the ink's own level (:func:`_tight_ink`)."""

    u8: np.ndarray  # the line's gray patch (:func:`~.ocr._line_label`)
    big: np.ndarray  # that patch magnified as for every glyph count (:func:`~.ocr._magnified`)
    ink: np.ndarray  # its ink at the tight threshold (``big < level``)
    line_height: float  # the line's height in ``big``
    level: float  # the tight threshold (:func:`_tight_level`)


def _tight_ink(crop: np.ndarray, box, polarity: str | None) -> TightInk | None:
    """The line in ``box`` at the ink's own level; None for a patch too small or flat to hold text."""
    from .ocr import _line_label, _magnified

    u8 = _line_label(crop, box, polarity)
    if u8 is None:
        return None
    big = _magnified(u8)
    level = _tight_level(big)
    return TightInk(u8, big, big < level, (box[2] - box[0]) * big.shape[0] / u8.shape[0], level)


def _tight_level(big: np.ndarray) -> float:
    """The tight threshold of a magnified label-only line: :data:`_TIGHT` of the way from its ink to its ground."""
    ink_level, ground = (float(v) for v in np.percentile(big, (2, 50)))
    return ink_level + _TIGHT * (ground - ink_level)


def ring_shortfall(crop: np.ndarray, box, polarity: str | None, text: str) -> str | None:
    """Why an ``Å`` reading whose line counts one glyph at the usual threshold is refused, or None.

    One glyph counted is the ring case of :func:`~.votes._glyph_mismatch`: the ``Å`` ring sets the
    cap line and the digits are not counted — or, as in generated seed 37037 (oblique ``50Å``, JPEG),
    a grey particle left of the label joins the digits into one component too wide for a glyph, and
    OCR reads it as a leading digit (``750A``).  At the ink's own level the particle drops out; when
    that count includes the ``Å`` (the last digit-height glyph is the line's rightmost glyph-sized
    component) and shows two or more digits before it but fewer than the text has, a digit was
    invented."""
    tight = _tight_ink(crop, box, polarity)
    if tight is None:
        return None
    ink, line_height = tight.ink, tight.line_height
    layout = glyph_layout(ink, line_height)
    if layout is None or layout.tall is None or not layout.spans:
        return None
    comp, n = ndi.label(ink, structure=np.ones((3, 3)))
    sized = [o for o in ndi.find_objects(comp) if 0.5 * line_height <= o[0].stop - o[0].start <= 1.15 * line_height]
    if not sized or layout.spans[-1][1] < max(o[1].stop for o in sized) - 1:
        return None  # the Å is not among the counted glyphs: the digits' count is unknown
    digits = sum(ch.isdigit() for ch in text)
    if 2 <= layout.tall - 1 < digits:
        return f"{text!r}: at the ink's own level the line shows {layout.tall - 1} digit(s) before its Å (a digit invented from the ground beside it?)"
    return None


#: Below this fraction of the line box's height, the tallest component at the ink's own level is no
#: glyph that made the box.
_SMALL_IN_BOX = 0.4


def blob_made_box(crop: np.ndarray, box, polarity: str | None, text: str) -> str | None:
    """Why a line whose glyphs could not be counted is refused, or None: the line box was made by a
    particle, not by glyphs — at the usual threshold its tallest component is at least as wide as it
    is high (a blob, where a digit or capital is narrower), and at the ink's own level, where a grey
    particle drops out, the tallest component is under :data:`_SMALL_IN_BOX` of the box's height.  A
    drawn 10-px STIX ``200 nm`` (7-px digits) over a particle gave a 22-px line, a part of the label
    with the particle, read ``6 nm`` (issue 16).  Noisy thin print breaks apart at the ink's own level
    too, but its tallest component at the usual threshold is a glyph (generated seed 33085's ``5 Å``)."""
    from .ocr import _usual_ink

    tight = _tight_ink(crop, box, polarity)
    if tight is None or not tight.ink.any():
        return None
    ink, height = tight.ink, tight.line_height
    usual = [
        (o[0].stop - o[0].start, o[1].stop - o[1].start)
        for o in ndi.find_objects(ndi.label(_usual_ink(tight.big), structure=np.ones((3, 3)))[0])
    ]
    if not usual:
        return None
    high, wide = max(usual)
    tallest = max(o[0].stop - o[0].start for o in ndi.find_objects(ndi.label(ink, structure=np.ones((3, 3)))[0]))
    if wide >= high and tallest < _SMALL_IN_BOX * height:
        return (
            f"{text!r}: the line's tallest ink is a blob ({high} x {wide} px) and at the ink's own level its tallest "
            f"glyph is {tallest / height:.2f} of the line's height (the line box is a particle's?)"
        )
    return None


#: A digit-height component wider than a glyph is a glyph joined with a particle when, at the ink's own
#: level, its ink spans fewer columns by more than this fraction of the glyph height (generated 45021: 0.85;
#: at 0.3, generated 38099's outlined serif ``50 Å`` over a dark band, JPEG q39, narrowed by 0.36 and its
#: cleaned line read ``60 A``: correct -> refused, eighteenth pass).
_JOINED_SHRINK = 0.5
#: A joined component is cleaned with its rim: the pixels within this distance (px of the crop) of it.
_RIM = 2.0


class Joined(NamedTuple):
    """A line's crop with one joined component cleaned (:func:`joined_particle`)."""

    crop: np.ndarray  # a copy of the crop: the component's pixels lighter than the tight ink set to the ground
    width: int  # the component's columns at the usual threshold (magnified line, px)
    narrow: int  # the columns its ink at the ink's own level spans (magnified line, px)
    height: float  # the line's glyph height (magnified line, px)


def joined_particle(crop: np.ndarray, box, polarity: str | None) -> Joined | None:
    """The crop with a glyph's particle removed, or None: generated seed 45021's mono ``10 nm`` has a dark rod
    touching its ``1``, and the pair, one component at the usual threshold (:func:`~.ocr._ink`), reads ``4``.
    Such a component is of digit height (at least 0.85 glyph heights, not a blob) and wider than a glyph
    (over 0.9 glyph heights: :func:`~.glyphs.glyph_layout` counts it neither as a glyph nor as a blob, so
    no particle check runs), and at the ink's own level (:func:`_tight_ink`) its ink spans fewer columns
    by more than :data:`_JOINED_SHRINK` glyph heights (something lighter than the ink is joined to it).
    Only that component is cleaned: its pixels and its blurred rim (within :data:`_RIM` px of it, and
    nearer to it than to any other ink at the usual threshold) lighter than the tight threshold are set
    to the line's ground; every other pixel is left as it is.  The first such
    component from the left is taken."""
    import cv2  # an EasyOCR dependency

    from .ocr import _line_window, _usual_ink

    tight = _tight_ink(crop, box, polarity)
    if tight is None:
        return None
    u8, tight_big, line_height = tight.u8, tight.ink, tight.line_height
    usual = _usual_ink(tight.big)
    layout = glyph_layout(usual, line_height)
    if layout is None or usual.shape != tight_big.shape:
        return None
    height = layout.height
    comp, _ = ndi.label(usual, structure=np.ones((3, 3)))
    for index, o in sorted(enumerate(ndi.find_objects(comp), start=1), key=lambda item: item[1][1].start):
        high, wide = o[0].stop - o[0].start, o[1].stop - o[1].start
        if not (max(0.85 * height, 0.5 * line_height) <= high <= 1.15 * line_height and wide > 0.9 * height):
            continue
        part = comp == index
        kept = np.flatnonzero((part & tight_big).any(axis=0))
        narrow = int(kept[-1] - kept[0] + 1) if kept.size else 0
        if wide - narrow <= _JOINED_SHRINK * height:
            continue
        # the component and its blurred rim: within _RIM px (the crop's) of it and nearer to it than to other ink
        distance, (rows, cols) = ndi.distance_transform_edt(~usual, return_indices=True)
        factor = usual.shape[0] / u8.shape[0]
        grown = (comp[rows, cols] == index) & (distance <= _RIM * factor)
        inside = cv2.resize(grown.astype(np.float32), (u8.shape[1], u8.shape[0]), interpolation=cv2.INTER_AREA) >= 0.5
        drop = inside & (u8 >= tight.level)
        window = _line_window(box)
        patch = crop[window]
        if patch.shape != u8.shape:
            return None
        cleaned = crop.copy()
        cleaned[window][drop] = float(np.median(patch))
        return Joined(cleaned, int(wide), narrow, float(height))
    return None
