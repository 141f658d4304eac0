"""Reading a scale-bar label with EasyOCR on the offline English weights (never downloaded)."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter

import numpy as np

from .apart import number_apart, unit_only
from .beside import _truncated
from .glyphs import _has_descender, glyph_layout, u_shape
from .lines import ink_lines, label_shade, padded
from .locate import _to_gray
from .parse import ScaleBarError
from .particle import blob_made_box, joined_particle, particle_mismatch, ring_shortfall
from .reader import _OCR_MODEL_FILES, _OCR_PACKAGE, get_ocr_reader, ocr_model_dir, quiet_easyocr
from .votes import (
    _garbled_number,
    _glyph_mismatch,
    _leading_number,
    _normalise,
    _plausible_reading,
    _point_unseen,
    _spaced_point,
    _usual_value,
    _vote,
)
from .window import off_diagonal

__all__ = ["get_ocr_reader", "ocr_model_dir", "read_scale_text", "_OCR_MODEL_FILES", "_OCR_PACKAGE"]

logger = logging.getLogger(__name__)

_OCR_ALLOWLIST = "0123456789.,nmuA "
_OCR_SCALES = (1, 2)  # magnifications tried in turn (small labels are missed at x1)
_LINE_DETECT_SCALE = 2  # magnification of the crop for finding text lines
_LINE_HEIGHTS = (32, 40, 48, 56, 64)  # text heights (px) a line is read at when unsure; a majority must agree
_FIRST_HEIGHTS = (40, 56)  # read first: two readings that agree with confidence suffice
_MIN_CONFIDENCE = 0.5  # mean EasyOCR confidence of the agreeing readings below which a line is refused
_SURE_CONFIDENCE = 0.6  # mean EasyOCR confidence of the first two readings for them to suffice


def _as_uint8(gray: np.ndarray) -> np.ndarray:
    lo, hi = float(gray.min()), float(gray.max())
    scaled = (gray - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(gray)
    return np.round(scaled).astype(np.uint8)


def _ocr(reader, crop: np.ndarray, scale: int = 1) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """OCR lines of a uint8 crop magnified ``scale`` times: (text, confidence, box in crop pixels).

    Words on one line less than 1.5 heights apart are joined into one line ("1" + "um");
    a line is never split again, so a lost decimal point ("0", "1", "um") cannot leave a
    plausible but wrong "1 um".
    """
    if scale > 1:
        crop = np.kron(crop, np.ones((scale, scale), dtype=np.uint8))
    with quiet_easyocr():
        results = reader.readtext(crop, allowlist=_OCR_ALLOWLIST, min_size=5, detail=1, paragraph=False)
    words = []
    for points, text, confidence in results:
        points = np.asarray(points, dtype=float) / scale
        box = (int(points[:, 1].min()), int(points[:, 0].min()), int(math.ceil(points[:, 1].max())), int(math.ceil(points[:, 0].max())))
        words.append((str(text).strip(), float(confidence), box))
    return _merge_lines(words)


def _merge_lines(words) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    """Join (text, confidence, box) words of one line less than 1.5 heights apart, left to right."""
    words = sorted(words, key=lambda w: w[2][1])
    lines: list[list] = []  # [texts, confidences, box]
    for text, confidence, b in words:
        for line in lines:
            box = line[2]
            shared = min(box[2], b[2]) - max(box[0], b[0])
            if shared > 0.5 * min(box[2] - box[0], b[2] - b[0]) and -2 <= b[1] - box[3] < 1.5 * (box[2] - box[0]):
                line[0].append(text)
                line[1].append(confidence)
                line[2] = (min(box[0], b[0]), box[1], max(box[2], b[2]), max(box[3], b[3]))
                break
        else:
            lines.append([[text], [confidence], b])
    return [(" ".join(texts).strip(), float(np.mean(confs)), box) for texts, confs, box in lines]


def _label_only(crop: np.ndarray, polarity: str) -> np.ndarray:
    """uint8 crop with dark text on a light ground and everything of the other shade removed.

    The label has its bar's shade (``polarity``); whatever is on the other side of the
    background level (particles under a bright label, say) is clipped to the background, so
    it can neither be read as a glyph nor hide one.
    """
    ground = float(np.median(crop))
    label = np.maximum(crop, ground) if polarity == "bright" else np.minimum(crop, ground)
    lo, hi = np.percentile(label, (0.5, 99.5))
    scaled = np.clip((label - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0)
    if polarity == "bright":
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)


def _resize(u8: np.ndarray, factor: float) -> np.ndarray:
    import cv2  # an EasyOCR dependency

    return cv2.resize(u8, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)


def _text_lines(reader, crop: np.ndarray, polarity: str, near=None, count: int = 3) -> list[tuple[int, int, int, int]]:
    """Boxes of the ``count`` text lines nearest to ``near`` (EasyOCR's CRAFT detector on the
    magnified, label-only crop; words joined into lines as in :func:`_ocr`)."""
    big = _resize(_label_only(crop, polarity), _LINE_DETECT_SCALE)
    horizontal, _ = reader.detect(big, min_size=5, text_threshold=0.7, low_text=0.4, link_threshold=0.4, add_margin=0.0)
    H, W = crop.shape
    words = []
    for x0, x1, y0, y1 in horizontal[0]:
        box = (
            max(0, round(y0 / _LINE_DETECT_SCALE)),
            max(0, round(x0 / _LINE_DETECT_SCALE)),
            min(H, round(y1 / _LINE_DETECT_SCALE)),
            min(W, round(x1 / _LINE_DETECT_SCALE)),
        )
        if box[2] - box[0] >= 5 and box[3] > box[1]:
            words.append(("", 0.0, box))
    boxes = [box for _, _, box in _merge_lines(words)]
    if near is not None:
        boxes.sort(key=lambda b: math.hypot((b[0] + b[2]) / 2 - near[0], (b[1] + b[3]) / 2 - near[1]))
    return boxes[:count]


def _recognise_line(reader, crop: np.ndarray, box, polarity: str, binary: bool = False, heights=_LINE_HEIGHTS) -> list[tuple[str, float]]:
    """The line in ``box`` read at several text heights: (text, confidence) each.

    The tight, label-only crop (:func:`_label_only`) is read at every text height of
    :data:`_LINE_HEIGHTS`; with ``binary``, its Otsu binarisation at every other one instead —
    an independent preprocessing.  Confidences are EasyOCR's (from the per-character
    probabilities of its CTC decoder).
    """
    from skimage.filters import threshold_otsu

    r0, c0, r1, c1 = box
    pad = max(3, int(0.15 * (r1 - r0)))
    patch = _label_only(crop[max(0, r0 - pad) : r1 + pad, max(0, c0 - pad) : c1 + pad], polarity)
    if binary:
        if np.ptp(patch) == 0:
            return []
        patch = np.where(patch < threshold_otsu(patch), 0, 255).astype(np.uint8)
    readings = []
    for height in heights:
        big = _resize(patch, height / max(1, r1 - r0))
        with quiet_easyocr():
            found = reader.recognize(
                big, horizontal_list=[[0, big.shape[1], 0, big.shape[0]]], free_list=[], allowlist=_OCR_ALLOWLIST, detail=1
            )
        text = " ".join(str(t) for _, t, _ in found).strip()
        confidence = float(np.mean([c for _, _, c in found])) if found else 0.0
        readings.append((text, confidence))
    return readings


def _readings(reader, crop: np.ndarray, box, polarity: str, bar_length_px=None, extra=()) -> list[tuple[str, float]]:
    """Readings of a line to vote on, as few as will do.

    First the gray preprocessing at two text heights (:data:`_FIRST_HEIGHTS`): when both
    parse to the same label with a mean confidence of at least :data:`_SURE_CONFIDENCE`
    and hold no ``u``, they are the readings (OCR reads the ``n`` of a serif font as ``u``
    with high confidence at some heights, so a ``u`` is always voted on).  When neither
    parses, they are the readings too (no label, cheaply) — unless one is a number with a garbled
    unit word (:func:`~.votes._garbled_number`: "1umn").  Otherwise the other text heights of
    :data:`_LINE_HEIGHTS` are added and — unless those agree unanimously, or none of them parses
    and none is garbled — the binarised preprocessing at three more (tune ``245e1a4826``'s small
    ``1 µm``: ``1umn`` at every gray height, ``1um`` binarised).
    """
    first = _recognise_line(reader, crop, box, polarity, heights=_FIRST_HEIGHTS) + list(extra)
    parsed = [_plausible_reading(_normalise(text)[0], bar_length_px) for text, _ in first]
    sure = None not in parsed and len(set(parsed)) == 1 and np.mean([c for _, c in first]) >= _SURE_CONFIDENCE
    if sure and not any("u" in text for text, _ in first):  # n read as u: the alphabet's likeliest confusion
        return first
    garbled = any(_garbled_number(text) is not None for text, _ in first)  # "1umn": a label, its unit word garbled
    if all(p is None for p in parsed) and not garbled:
        return first  # no label here (or not legible at these heights): not worth six more readings
    rest = tuple(h for h in _LINE_HEIGHTS if h not in _FIRST_HEIGHTS)
    readings = first + _recognise_line(reader, crop, box, polarity, heights=rest)
    parsed = {_plausible_reading(_normalise(text)[0], bar_length_px) for text, _ in readings}
    if len(parsed - {None}) == 1 and None not in parsed or (parsed == {None} and not garbled):
        return readings
    return readings + _recognise_line(reader, crop, box, polarity, binary=True, heights=_LINE_HEIGHTS[::2])


def _check_line(reader, crop: np.ndarray, box, polarity: str, bar_length_px=None, glyphs=True, extra=()):
    """Read the line in ``box`` and check the reading: (value, unit, text, confidence, box) or None, and notes.

    ``extra``: readings from elsewhere (EasyOCR's full ``readtext``) that vote too.  When every
    reading is a unit word alone ("um": a glyph of the number dropped at every text height), the
    number is read by itself (:func:`~.apart.number_apart`) and joined to it.  A reading
    is refused, with the reason in the notes, when the readings disagree, more label ink
    continues beside the line, the value is unusual for a scale bar ("1200 nm": an invented
    digit?), the mean confidence of the agreeing readings is under :data:`_MIN_CONFIDENCE`
    (small or faint glyphs), a µ left unread shows neither a descender that the glyph count sees
    nor a u shape (:func:`~.glyphs.u_shape`; the descender test alone is not trusted), a "nm" whose n is drawn like a u, a "nm" whose n shows a
    descender that the glyph count (:func:`~.glyphs.glyph_layout`) does not see or cannot be
    built to confirm (noise under an n, generated 39088: only both together make it a µ), or the glyphs and decimal
    marks of the ink do not match the text (:func:`_glyph_mismatch`).  A "um" must show a µ
    descender or a u shape: OCR reads the n of serif print as u, and the shape test is not
    trusted to turn it into nm (a slanted µ can look like an n to it), so it is refused.
    """
    readings = _readings(reader, crop, box, polarity, bar_length_px, extra)
    notes = [text for text, _ in readings if text]
    consensus, reason = _vote(readings, bar_length_px)
    if consensus is None and unit_only(readings) is not None:  # "um": a glyph of the number dropped?
        number = number_apart(reader, crop, box, polarity, _recognise_line)
        if number is not None:  # the number read by itself, joined to the unit and checked as one reading
            readings = [(f"{number[0]} {text}", min(confidence, number[1])) for text, confidence in readings]
            notes.append(f"number read apart: {number[0]!r}")
            consensus, reason = _vote(readings, bar_length_px)
    if consensus is None:
        return None, notes + ([reason] if reason else [])
    value, unit, text, agreement, confidence, unread = consensus
    read_unit = unit  # as voted on (a descender may make an "nm" a µm below)
    dissent = sorted({_garbled_number(t) for t, _ in readings} - {None, value})
    if dissent:  # "10 mn" among readings of "100 nm": a digit lost or invented by some reading
        return None, notes + [f"{text!r}: other readings have the number {', '.join(f'{d:g}' for d in dissent)} (with a garbled unit)"]
    if confidence < _MIN_CONFIDENCE:
        return None, notes + [f"{text!r}: OCR confidence {confidence:.2f} < {_MIN_CONFIDENCE} (small or faint glyphs misread?)"]
    if _truncated(crop, box, polarity):
        return None, notes + [f"{text!r}: more label ink beside it (a glyph OCR missed?)"]
    if not _usual_value(value):
        return None, notes + [f"{text!r}: {value:g} is no usual scale-bar value (a digit too many or misread?)"]
    layout = _layout(crop, box, polarity)  # colour labels too: a count can only refuse
    descender = _has_descender(crop, box, polarity) if glyphs and unit in ("nm", "µm") else None
    if unread:  # a glyph before the m OCR left unread (the English model has no µ)
        # the descender test alone is not trusted (noise under an n, as in rules D and N): the count or the shape
        mu = (glyphs and layout is not None and layout.descenders == 1) or u_shape(crop, box, polarity) == "u"
        if not mu and descender:
            return None, notes + [f"{text!r}: a glyph before 'm' was not read; its descender is not confirmed by the glyph count (µ or n?)"]
        if not mu:
            return None, notes + [f"{text!r}: a glyph before 'm' was not read and shows neither a µ descender nor a u shape"]
        unit = "µm"
    elif unit == "nm" and descender:
        if layout is None:  # the descender test alone took noise under an n for a µ before (39088): not trusted alone
            return None, notes + [f"{text!r}: a descender under the glyph before 'm' but no glyph count to confirm it (µ or n?)"]
        if layout.descenders == 0:  # noise under an n (generated 39088: '10 nm')?
            return None, notes + [f"{text!r}: a descender under the glyph before 'm' that the glyph count does not see (µ or n?)"]
        logger.info("label %r: the glyph before 'm' has a descender: µm, not nm", text)
        unit = "µm"
    elif not glyphs and unit == "µm" and re.search(r"u ?m$", text):
        if u_shape(crop, box, polarity) != "u":  # colour labels: only the unambiguous bowl counts
            return None, notes + [f"{text!r}: a 'u' before 'm' on a colour label without a clear u shape (an n read as u?)"]
    elif glyphs and not descender and unit in ("nm", "µm") and re.search(r"[nu] ?m$", text):
        shape = u_shape(crop, box, polarity)
        if unit == "µm" and shape != "u" and not (layout is not None and layout.descenders == 1):
            return None, notes + [f"{text!r}: the 'u' before 'm' shows neither a µ descender nor a u shape (an n read as u?)"]
        if unit == "nm" and shape == "u":
            return None, notes + [f"{text!r}: the glyph before 'm' is open above with a bowl below (a u or µ?)"]
    mismatch = _glyph_mismatch(layout, text, unit)
    if mismatch is None and (layout is None or layout.blobs):  # a particle touches the line: count at the ink's level
        mismatch = particle_mismatch(crop, box, polarity, _normalise(text)[0], unit)
    if mismatch is None and (layout is None or layout.tall is None):  # uncountable: did glyphs make the box?
        mismatch = blob_made_box(crop, box, polarity, text)
    if mismatch is None and unit == "Å" and layout is not None and layout.tall == 1:  # the ring case: recount
        invented = ring_shortfall(crop, box, polarity, _normalise(text)[0])
        if invented is not None:  # the label is here, and OCR invents from the ground beside it: no other line
            raise ScaleBarError(f"scale bar label misread: {invented}; type the value", texts=[*notes, invented])
    if mismatch is None and any(
        _spaced_point(t) and _plausible_reading(_normalise(t)[0], bar_length_px) == (value, read_unit) for t, _ in readings
    ):
        mismatch = _point_unseen(layout, text)  # "0 . 1 um" (monospace) or a speck between two digits?
    if mismatch is not None:
        return None, notes + [mismatch]
    changed = _reread_joined(reader, crop, box, polarity, bar_length_px, text)
    if changed is not None:  # the label is here, and a particle joined to a glyph changes its number: no other line
        raise ScaleBarError(f"scale bar label unreadable: {changed}; type the value", texts=[*notes, changed])
    return (value, unit, text, agreement * confidence, box), notes


def _cleaned_verdict(text: str, readings) -> str | None:
    """Why the reading ``text`` is refused when its line, cleaned of a particle joined to a glyph, reads
    ``readings`` (:func:`_reread_joined`), or None: another number is read more often than ``text``'s
    (readings with no number abstain; a tie keeps the reading)."""
    own = _leading_number(text)
    counts = Counter(n for n in (_leading_number(t) for t, _ in readings) if n is not None)
    if own is None or not counts:
        return None
    most, best = counts.most_common(1)[0]
    if counts[own] == best:
        return None
    cleaned = ", ".join(repr(t) for t, _ in readings)
    return f"{text!r}: a particle joined to a glyph; without it the line reads {cleaned} (the number {most:g}, not {own:g})"


def _reread_joined(reader, crop: np.ndarray, box, polarity: str, bar_length_px=None, text: str = "") -> str | None:
    """Why an accepted reading ``text`` is refused, or None: a digit-height component of the line too wide for
    a glyph, which narrows at the ink's own level (:func:`~.particle.joined_particle`: a particle joined to a
    glyph, which OCR may read with it as another digit: generated seed 45021's ``10 nm`` read ``40 nm``) is
    cleaned, and the line is read again as before (:func:`_readings`); another number refuses the image."""
    joined = joined_particle(crop, box, polarity)
    if joined is None:
        return None
    return _cleaned_verdict(text, _readings(reader, joined.crop, box, polarity, bar_length_px))


def _read_lines(reader, crop: np.ndarray, polarity: str, near=None, cut=None, bar_length_px=None, glyphs=True):
    """Read the label by line: find text lines near the bar, read and check each (:func:`_check_line`).

    Returns ((value, unit, text, confidence, box) or None, notes: texts seen and reasons).
    """
    seen: list[str] = []
    for box in _text_lines(reader, crop, polarity, near):
        if _at_cut_edge(box, cut):
            continue  # may be cut by the window: read whole in another window
        reading, notes = _check_line(reader, crop, box, polarity, bar_length_px, glyphs)
        seen += [note for note in notes if note not in seen]
        if reading is not None:
            return reading, seen
    return None, seen


def _read_ink_lines(reader, crop: np.ndarray, near=None, cut=None, bar_length_px=None, glyphs=True, tried=None, offset=(0, 0), bar=None):
    """Read the label by the rows of glyphs in its ink (:func:`~.lines.ink_lines`), nearest first,
    each in the shade of its own ink; no CRAFT detection.  ``tried``: a set of (box, shade) read
    already, boxes shifted by ``offset`` (the crop's corner in the image), skipped and added to.
    ``bar``: the bar's box in the crop; a row touching it (within 2 px) is left to the costly
    pass — what remains of the painted-out bar's end would join it as a glyph ("150 nm").

    Returns ((value, unit, text, confidence, box) or None, notes).
    """
    seen: list[str] = []
    for box, shade in ink_lines(crop, near):
        if _at_cut_edge(box, cut):
            continue
        if bar is not None and box[0] < bar[2] + 2 and bar[0] - 2 < box[2] and box[1] < bar[3] + 2 and bar[1] - 2 < box[3]:
            continue
        if bar is not None and off_diagonal(box, bar):
            continue  # no label of this bar (:func:`~.window.off_diagonal`)
        if tried is not None:
            key = (box[0] + offset[0], box[1] + offset[1], box[2] + offset[0], box[3] + offset[1], shade)
            if key in tried:
                continue
            tried.add(key)
        reading, notes = _check_line(reader, crop, box, shade, bar_length_px, glyphs)
        seen += [note for note in notes if note not in seen]
        if reading is not None:
            return reading, seen
    return None, seen


def _line_window(box) -> tuple[slice, slice]:
    """Rows and columns of the line in ``box`` padded by a quarter of its height (:func:`_line_label`'s patch)."""
    r0, c0, r1, c1 = box
    pad = max(2, (r1 - r0) // 4)
    return slice(max(0, r0 - pad), r1 + pad), slice(max(0, c0 - pad), c1 + pad)


def _line_label(crop: np.ndarray, box, polarity: str | None) -> np.ndarray | None:
    """The line in ``box`` (padded by a quarter of its height) as dark ink on a light ground: its ink
    has the shade ``polarity`` the line was read in (else the minority shade of the line); None for
    a patch too small or flat to hold text."""
    patch = crop[_line_window(box)]
    if patch.size < 20 or np.ptp(patch) == 0:
        return None
    return _label_only(patch, polarity or _label_shade(patch))


def _layout(crop: np.ndarray, box, polarity: str | None):
    """:func:`~.glyphs.glyph_layout` of the line in ``box`` (:func:`_line_label`), magnified as in :func:`_ink`."""
    u8 = _line_label(crop, box, polarity)
    if u8 is None:
        return None
    ink = _ink(u8)
    return glyph_layout(ink, (box[2] - box[0]) * ink.shape[0] / u8.shape[0])


def _magnified(u8: np.ndarray) -> np.ndarray:
    """A label-only line magnified to a 60-px line (cubic interpolation joins thin diagonal strokes):
    the scale every glyph count works at."""
    return _resize(u8, max(1.0, 60.0 / max(1, u8.shape[0])))


def _ink(u8: np.ndarray) -> np.ndarray:
    """Binary ink of a label-only line (dark text on a light ground), :func:`_magnified`, thresholded
    half-way from the ink (2nd percentile) to the ground (median) (:func:`_usual_ink`)."""
    return _usual_ink(_magnified(u8))


def _usual_ink(big: np.ndarray) -> np.ndarray:
    """The usual threshold of a magnified label-only line: half-way from its ink (2nd percentile) to its ground (median)."""
    ink_level, ground = np.percentile(big, (2, 50))
    return big < 0.5 * (float(ink_level) + float(ground))


def _at_cut_edge(box, cut) -> bool:
    """Whether a line box touches an edge where its window was cut out of the image
    (``cut`` = (shape, (top, left, bottom, right) cut flags)): its text may be truncated."""
    if cut is None:
        return False
    (h, w), (top, left, bottom, right) = cut
    return bool((top and box[0] <= 0) or (left and box[1] <= 1) or (bottom and box[2] >= h) or (right and box[3] >= w - 1))


def _best_reading(lines, near=None, cut=None, bar_length_px=None):
    """The parseable line with the highest confidence (ties: nearest to ``near``).

    ``cut`` = (shape, (top, left, bottom, right) edges cut out of a larger image): lines
    touching a cut edge may be truncated ("00 nm" of "100 nm") and are skipped.  With
    ``bar_length_px``, lines implying an implausible calibration ("5 mm" for a 60 px bar)
    are misreadings and are skipped too.
    """
    best = None
    for text, confidence, box in lines:
        parsed = None if _at_cut_edge(box, cut) else _plausible_reading(_normalise(text)[0], bar_length_px)
        if parsed is None:
            continue
        value, unit = parsed
        distance = 0.0
        if near is not None:
            distance = math.hypot((box[0] + box[2]) / 2 - near[0], (box[1] + box[3]) / 2 - near[1])
        key = (round(confidence, 2), -distance)
        if best is None or key > best[0]:
            best = (key, value, unit, text, confidence, box)
    return None if best is None else best[1:]


def _read_label(
    reader,
    crop: np.ndarray,
    near=None,
    cut_edges=(False, False, False, False),
    scales=_OCR_SCALES,
    bar_length_px=None,
    glyphs=True,
    polarity=None,
    ink=True,
):
    """Read a label from a float crop at the magnifications ``scales``, in turn, until a line parses.

    ``glyphs``: the crop shows glyph shapes faithfully (not the JPEG-blurred chroma of a
    colour label), so that a descender can tell ``µm`` from ``nm``; ``polarity``: the
    label's shade, "dark" or "bright" (that of its bar), or None if unknown.

    Returns ((value, unit, text, confidence, box) or None, texts seen).
    """
    seen: list[str] = []
    if scales[0] == _OCR_SCALES[0]:  # by line first (once per crop, not again at the next magnification)
        if ink:  # rows of glyphs found without OCR first: cheap
            reading, seen = _read_ink_lines(reader, crop, near, (crop.shape, cut_edges), bar_length_px, glyphs)
            if reading is not None:
                return reading, seen
        shade = polarity or _label_shade(crop)
        reading, notes = _read_lines(reader, crop, shade, near, (crop.shape, cut_edges), bar_length_px, glyphs)
        seen += [note for note in notes if note not in seen]
        if reading is not None:
            return reading, seen
    u8 = _as_uint8(crop)
    for scale in scales:
        lines = _ocr(reader, u8, scale)
        seen += [text for text, _, _ in lines if text not in seen]
        reading = _best_reading(lines, near, (crop.shape, cut_edges), bar_length_px)
        if reading is None:
            continue
        _, _, text, confidence, box = reading
        shade = _label_shade(_padded(crop, box))  # the label may differ from its bar's shade
        checked, notes = _check_line(reader, crop, box, shade, bar_length_px, glyphs, extra=[(text, confidence)])
        seen += [note for note in notes if note not in seen]
        if checked is not None:
            return checked, seen
    return None, seen


_padded, _label_shade = padded, label_shade  # (the names used here before lines.py)


def read_scale_text(crop, *, reader=None) -> tuple[float, str]:
    """Read a scale-bar label from an image crop holding it.

    Parameters
    ----------
    crop : gray or RGB(A) array, any real dtype
    reader : an ``easyocr.Reader``; default :func:`get_ocr_reader`

    Returns
    -------
    (value, unit), see :func:`parse_scale_text`.

    Raises
    ------
    ScaleBarError
        ``scale bar label unreadable: '<what OCR saw>'``.
    """
    gray = _to_gray(crop)
    reading, seen = _read_label(reader or get_ocr_reader(), gray)
    if reading is None:
        raise ScaleBarError(f"scale bar label unreadable: {' | '.join(seen)!r}")
    return reading[0], reading[1]
