"""What the readings of one label line say: OCR text made parseable, the vote of several
readings, and the checks of a reading against scale-bar usage and the line's ink.

Split from :mod:`.ocr` (which runs the recogniser and finds the lines) so that each stays under
the ~500-line limit: these are pure functions of text and of a :class:`~.glyphs.GlyphLayout`.
"""

from __future__ import annotations

import re

import numpy as np

from .parse import ScaleBarError, _plausible, parse_scale_text, to_nm

#: A decimal mark with a space on both sides between two digits ("0 . 1 um").
_SPACED_POINT = re.compile(r"([0-9]) ([.,]) ([0-9])")
#: A number and letters of the recogniser's alphabet (:data:`~.ocr._OCR_ALLOWLIST`), as read.
_NUMBER_LETTERS = re.compile(r"[0-9]+(?:[.,][0-9]+)? ?[nmuA]{1,4}")
#: Share of a digit's width its bottom rows must cover to be a flat base, a 2 and not a 7
#: (:func:`~.glyphs._base_share`; printed 5-12 px lines of 21 fonts: 92 % of 2s, 4 % of 7s).
_FLAT_BASE = 0.7


def _leading_number(text: str) -> float | None:
    """The number a reading starts with (digits and decimal marks, as :func:`_normalise` leaves them;
    a comma is a decimal point), or None."""
    match = re.match(r"[.,]?[0-9]+(?:[.,][0-9]+)?", _normalise(text)[0])
    return None if match is None else float(match.group(0).replace(",", "."))


def _garbled_number(text: str) -> float | None:
    """The number of a reading that is a number and letters that do not parse as a unit ("1umn",
    "100 n": a unit word OCR garbled, the number read), or None.

    Such a reading does not vote (it names no unit), but its number must not disagree with the
    consensus (:func:`~.ocr._check_line`), and it asks for more readings (:func:`~.ocr._readings`)."""
    clean = _normalise(text)[0]
    if _NUMBER_LETTERS.fullmatch(clean) is None or _plausible_reading(clean) is not None:
        return None
    return _leading_number(clean)


def _unreadable_number(text: str, unit: str) -> bool:
    """Whether a reading names ``unit`` after a "number" that is not one ("Anm" for "5nm": a digit
    read as a letter). It does not vote, but it counts against the consensus (:func:`_vote`)."""
    word = {"nm": "nm", "µm": "um", "Å": "A"}.get(unit)
    clean = _normalise(text)[0].replace(" ", "")
    if word is None or not clean.endswith(word) or _plausible_reading(clean) is not None:
        return False
    return bool(clean[: -len(word)])


def _spaced_point(text: str) -> bool:
    """Whether OCR read a decimal mark apart from the digits on both its sides ("0 . 1 um").

    Monospace print gives its point a whole character cell, and OCR puts a space on each side;
    but a speck between two digits ("5 . 0 nm" from "50 nm") reads the same way, so such a
    reading counts only when the ink shows a decimal mark there (:func:`_point_unseen`)."""
    return _SPACED_POINT.search(text) is not None


def _point_unseen(layout, text: str) -> str | None:
    """Why a reading whose decimal mark was read apart from its digits (:func:`_spaced_point`) is
    refused — the line's ink (a :class:`~.glyphs.GlyphLayout`) shows fewer decimal marks than the
    text has, or cannot be counted — or None."""
    points = sum(ch in ".," for ch in _normalise(text)[0])
    if layout is None or layout.marks is None or layout.marks < points:
        return f"{text!r}: a decimal mark read apart from its digits, not seen in the ink (a speck read as a point?)"
    return None


def _normalise(text: str) -> tuple[str, bool]:
    """An OCR line made parseable where that is unambiguous: (text, whether a µ was left unread).

    A decimal mark read apart from the digits on both its sides ("0 . 1 um": monospace print,
    whose point fills a whole character cell) is joined to them — a reading that needs the mark
    to be seen in the ink (:func:`_spaced_point`, checked in :func:`~.ocr._check_line`); other
    decimal marks touching no digit are dropped (a speck, or a µ the English model cannot
    read: "1.0 , m"), "u m" becomes "um", a "u" after a digit and before more digits, " nm",
    "nm", " um" or " A" is a 0 ("2u nm", "1unm": a "u" cannot be part of a number, and no
    unit is written "unm"), so is each of a run of them right before "nm" ("5uunm") or
    after a decimal's digits and before "um" ("5.0uum": zeros that leave the value as it is), and a
    bare "m" after the number becomes "um" — flagged, since it
    must be confirmed by the glyph before the ``m`` (:func:`_check_line`).
    """
    clean = _SPACED_POINT.sub(r"\1\2\3", text)
    clean = re.sub(r"(?<![0-9])[.,](?![0-9])", " ", clean)
    clean = re.sub(r"\s+", " ", clean).strip()
    clean = re.sub(r"(?<=[0-9 ])u m$", "um", clean)
    # a "u" inside the number or right before "nm" is a 0 (the allowlist's only round glyph)
    clean = re.sub(r"(?<=[0-9])u(?=[0-9]*(?: ?nm| um| A)$)", "0", clean)
    # so is a run of them right before "nm" ("5uunm": a µ cannot stand before "nm"; the glyph count checks the digits)
    clean = re.sub(r"(?<=[0-9])u{2,}(?=nm$)", lambda run: "0" * len(run.group(0)), clean)
    # and a run of them after a decimal's digits and before "um" is trailing zeros ("5.0uum": Hitachi's "5.00um")
    clean = re.sub(r"([.,][0-9]+)(u+)(um)$", lambda m: m.group(1) + "0" * len(m.group(2)) + m.group(3), clean)
    bare = re.match(r"^([0-9.,]+) ?m$", clean)
    if bare:
        return f"{bare.group(1)} um", True
    return clean, False


def _vote(readings: list[tuple[str, float]], bar_length_px=None):
    """The consensus of several readings of one line, or why there is none.

    Readings that do not parse (or imply an implausible calibration) abstain; of the others
    at least two must agree and they must not be outvoted: the winner needs every parseable
    reading, or at least 3 of them and three quarters, and more than half of the parseable
    readings and those whose number is no number before the winner's unit
    (:func:`_unreadable_number`: "Anm" read five times against "9nm" three times is refused).

    Returns ((value, unit, text, agreement, confidence, µ unread) or None, reason or None).
    """
    votes: dict[tuple[float, str], list[tuple[str, float]]] = {}
    unread_by: dict[tuple[float, str], list[bool]] = {}
    for text, confidence in readings:
        clean, unread = _normalise(text)
        parsed = _plausible_reading(clean, bar_length_px)
        if parsed is not None:
            votes.setdefault(parsed, []).append((text, confidence))
            unread_by.setdefault(parsed, []).append(unread)
    if not votes:
        return None, None
    key, agreeing = max(votes.items(), key=lambda item: len(item[1]))
    total = sum(len(v) for v in votes.values())
    others = total - len(agreeing)
    tally = ", ".join(f"{k[0]:g} {k[1]} ×{len(v)}" for k, v in sorted(votes.items(), key=lambda item: -len(item[1])))
    if len(agreeing) < 2:
        return None, None if others == 0 else f"readings disagree ({tally})"
    if others and (len(agreeing) < 3 or 4 * len(agreeing) < 3 * total):
        return None, f"readings disagree ({tally})"
    value, unit = key
    garbled = sum(_unreadable_number(text, unit) for text, _ in readings)
    if 2 * len(agreeing) <= total + garbled:  # "9nm" ×3 against "Anm" ×5: the number's glyph is in doubt
        return None, f"readings disagree ({tally}, the number unreadable ×{garbled})"
    confidence = float(np.mean([c for _, c in agreeing]))
    unread = all(unread_by[key])  # a µ read as u by some readings and left blank by others: the u is checked
    text = next((t for (t, _), blank in zip(agreeing, unread_by[key]) if not blank), agreeing[0][0])
    return (value, unit, text, len(agreeing) / len(readings), confidence, unread), None


def _usual_value(value: float) -> bool:
    """Whether a label value has the significant digits of a scale bar (1–9, 15, 25, 35, 45, 75)."""
    digits = f"{value:.6f}".replace(".", "").strip("0")
    return digits in {"1", "2", "3", "4", "5", "6", "7", "8", "9", "15", "25", "35", "45", "75"}


def _glyph_mismatch(layout, text: str, unit: str) -> str | None:
    """Why the ink of a line (its :func:`_layout`) disagrees with the OCR ``text``, or None.

    More tall glyphs than the text's digits (and its ``Å``) is a digit OCR did not read
    ("10 nm" from "100 nm"); fewer than the text's digits, when the number starts with a ``1``
    (the digit a stroke looks like), is a 1 OCR invented from a stroke at the edge of the label
    ("150 nm" from the edge of a panel: the stroke, taller than the digits, sets the cap line
    and only it is counted) or a decimal point lost between glyphs the ink merged ("10 um" from
    "1.0 µm").  Other shortfalls are not refused (a 1 inside the number, as in "210 nm"): digits
    merge in the ink of small print too often; nor when a particle touches the line, nor for
    ``Å``, a capital that is counted as a digit-height glyph and whose ring can set the cap line
    above the digits (then only the ``Å`` is counted) — but an ``Å`` label with two or more glyphs
    counted and fewer than its digits is refused ("350 A" from "50 Å" and the noisy ground beside
    it, generated seed 36042).  More decimal marks than the text has is a lost decimal point.
    When the glyphs cannot be counted (thin print, or a row merged with particle rims), a
    number 10, 100, … is refused: it may be 1.0 or 1.00 whose point was lost
    (".2 µm" read "2 µm").  Fewer marks than the text are not refused: a small decimal point
    often merges with a digit in the ink.
    """
    text = _normalise(text)[0]  # as parsed: a "u" read inside the number is a 0 ("20unm": 3 digits)
    if layout is None or layout.tall is None:
        if layout is not None and re.fullmatch(r"10+", re.sub(r"[^0-9.,]", "", text)):
            return f"{text!r}: the ink cannot be counted to tell it from '1.0' or '1.00' (a lost decimal point?)"
        return None
    expected = sum(ch.isdigit() for ch in text) + (unit == "Å")
    points = sum(ch in ".," for ch in text)
    if layout.tall > expected:
        return f"{layout.tall} digit-height glyphs in the ink but {expected} in {text!r} (a digit OCR did not read?)"
    digits = re.sub(r"[^0-9]", "", text)
    if unit != "Å" and digits.startswith("1") and layout.tall < len(digits) and not layout.blobs:
        # "150 nm" from a panel's edge (whose stroke, taller than the digits, sets the cap line: one glyph counted)
        return f"{layout.tall} digit-height glyphs in the ink but {len(digits)} digits in {text!r} (a digit invented from a stroke at its edge, or a lost decimal point?)"
    if unit == "Å" and 2 <= layout.tall < len(digits):
        # two or more counted: the cap line is the digits' (a ring setting it leaves only the Å counted)
        return f"{layout.tall} digit-height glyphs in the ink but {len(digits)} digits in {text!r} (a digit invented from noise beside the label?)"
    if layout.marks > points:
        return f"{layout.marks} decimal mark(s) in the ink but {points} in {text!r} (a lost decimal point?)"
    if layout.tall == len(digits) + (unit == "Å") and len(layout.bases) == layout.tall:
        flat = [k for k, ch in enumerate(digits) if ch == "7" and layout.bases[k] >= _FLAT_BASE]
        if flat:  # a 2 read as 7 (generated printed 60008's "20 Å" read "70 Å")
            return f"{text!r}: the glyph read as 7 has a flat base across {layout.bases[flat[0]]:.0%} of its width (a 2?)"
    return None


def _plausible_reading(text: str, bar_length_px=None) -> tuple[float, str] | None:
    """(value, unit) of a label text, or None if it does not parse or (with ``bar_length_px``)
    implies an implausible calibration ("5 mm" for a 60 px bar is a misreading)."""
    try:
        value, unit = parse_scale_text(text)
    except ScaleBarError:
        return None
    if bar_length_px and _plausible(to_nm(value, unit) / bar_length_px, f"the reading {text!r}") is None:
        return None
    return value, unit
