"""Scale-bar label text and length units: parse ``"0.5 µm"``, convert to nm, check plausibility."""

from __future__ import annotations

import logging
import math
import re

logger = logging.getLogger(__name__)

#: Length of one unit in nm, by canonical unit name.
UNIT_NM: dict[str, float] = {"pm": 1e-3, "Å": 0.1, "nm": 1.0, "µm": 1e3, "mm": 1e6}

#: Plausible pixel sizes of a micrograph (nm): 2 pm (finer than atomic-resolution STEM) to
#: 5 µm.  File resolutions outside are print or display resolutions (72 dpi → 3.5e5 nm/px),
#: OCR readings outside are misreadings.
PLAUSIBLE_NM_PER_PX = (2e-3, 5e3)


class ScaleBarError(ValueError):
    """The image has no readable scale bar (none found, or its label is unreadable).

    Attributes
    ----------
    bar : BarCandidate or None
        The bar whose label could not be read, when one was found: its length lets a user
        type the label's value instead (``nm/px = value_nm / bar.bar_length_px``).
    texts : tuple of str
        What OCR saw, for the message and the user.
    """

    def __init__(self, message: str, *, bar=None, texts=()):
        super().__init__(message)
        self.bar = bar
        self.texts = tuple(texts)


# ----------------------------------------------------------------------------------------
# Label parsing

_MICRO = "µ"  # U+00B5, canonical
_UNIT_WORDS = {
    "nm": "nm",
    "um": "µm",
    "µm": "µm",
    "micron": "µm",
    "microns": "µm",
    "mm": "mm",
    "pm": "pm",
}
_NUMBER = re.compile(r"^[0-9OoIl|]*[0-9][0-9OoIl|]*(?:[.,][0-9OoIl|]+)?$|^[.,][0-9OoIl|]*[0-9][0-9OoIl|]*$")
_SPLIT = re.compile(r"^\s*([0-9OoIl|.,]+)\s*([A-Za-zµÅ]+)\s*$")  # no unit starts with O, o, I or l


def to_nm(value: float, unit: str) -> float:
    """``value`` in ``unit`` (a :data:`UNIT_NM` key) converted to nm."""
    if unit not in UNIT_NM:
        raise ValueError(f"unknown length unit {unit!r}; expected one of {list(UNIT_NM)}")
    return float(value) * UNIT_NM[unit]


def parse_scale_text(text: str) -> tuple[float, str]:
    """Parse a scale-bar label such as ``"50 nm"``, ``"0.5 µm"``, ``"200nm"``, ``"1 um"``.

    Accepts a positive number (decimal point or comma) followed by one unit: nm; µm
    written ``µm``, ``μm``, ``um`` or ``micron(s)``; mm; pm; Å or ``A``.  Units are
    matched case-insensitively except ``A`` (Å).  Unambiguous OCR confusions inside a
    number that has a real digit are corrected (``O``/``o`` → 0, ``l``/``I``/``|`` → 1);
    a comma followed by exactly three digits (``1,000``) is ambiguous and refused,
    and so is a leading zero before a digit (``02 µm``: a lost decimal point).

    Returns
    -------
    (value, unit) with ``unit`` a key of :data:`UNIT_NM` (µ is U+00B5).

    Raises
    ------
    ScaleBarError
        ``scale bar label unreadable: '<text>'`` for anything else.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    clean = text.replace("\u03bc", _MICRO).replace("\u212b", "Å").replace("\u00a0", " ").replace("\u2009", " ")
    # OCR often reads a space beside a small decimal mark: "0 . 5 µm", "0 ,5 um"
    clean = re.sub(r"(?<=[0-9OoIl|])\s+(?=[.,])|(?<=[.,])\s+(?=[0-9OoIl|])", "", clean)
    match = _SPLIT.match(clean)
    if not match or not _NUMBER.match(match.group(1)):
        raise ScaleBarError(f"scale bar label unreadable: {text!r}")
    number, unit_word = match.groups()
    if re.search(r",[0-9OoIl|]{3}$", number) and not number.startswith(("0", ",")):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (is ',' a decimal or a thousands separator?)")
    number = number.translate(str.maketrans("OoIl|,", "00111."))
    if re.match(r"^0[0-9]", number):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (a leading zero: is a decimal point missing?)")
    if unit_word in ("A", "Å", "å"):
        unit = "Å"
    else:
        unit = _UNIT_WORDS.get(unit_word.lower())
    if unit is None:
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (unknown unit {unit_word!r})")
    value = float(number)
    if not (math.isfinite(value) and value > 0):
        raise ScaleBarError(f"scale bar label unreadable: {text!r} (value must be > 0)")
    return value, unit


# ----------------------------------------------------------------------------------------
# Files

_UNIT_ALIASES = {
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "nanometres": "nm",
    "um": "µm",
    "µm": "µm",
    "μm": "µm",
    "\\u00b5m": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "pm": "pm",
    "a": "Å",
    "å": "Å",
    "Å": "Å",
    "angstrom": "Å",
    "\\u00c5": "Å",
    "m": "m",
    "cm": "cm",
}
_EXTRA_NM = {"m": 1e9, "cm": 1e7}


def _unit_to_nm(unit: str | None) -> float | None:
    """nm per ``unit`` for a real-space length unit name; None for anything else (1/nm, px, …)."""
    if not unit:
        return None
    name = _UNIT_ALIASES.get(str(unit).strip().lower().replace("\u212b", "å"))
    if name is None:
        return None
    return UNIT_NM.get(name) or _EXTRA_NM.get(name)


def _plausible(nm_per_px: float | None, what: str) -> float | None:
    if nm_per_px is None or not math.isfinite(nm_per_px):
        return None
    low, high = PLAUSIBLE_NM_PER_PX
    if not low <= nm_per_px <= high:
        logger.info("ignoring %s: %.4g nm/px is no micrograph pixel size (a print or display resolution?)", what, nm_per_px)
        return None
    return float(nm_per_px)
