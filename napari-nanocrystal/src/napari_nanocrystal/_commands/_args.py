"""Argument types shared by the ``nanocrystal`` subcommands (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite positive number, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], not {text!r}")
    return value


def diameter_or_auto(text: str) -> float | str:
    """A positive particle diameter, or ``auto`` (estimated by the segmentation model)."""
    if text == "auto":
        return text
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error} (or 'auto')") from None


def nm_per_px(text: str) -> float:
    """A pixel size in nm/px within the plausible range (see :func:`napari_nanocrystal.validation.check_nm_per_px`)."""
    from napari_nanocrystal.validation import InputError, check_nm_per_px

    value = positive_float(text)
    try:
        return check_nm_per_px(value, "--nm-per-px")
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def plane_index(text: str) -> int:
    """A whole number ≥ 0: which image of a multi-image file (TIFF stack)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def tile_size(text: str) -> int:
    """A whole number of pixels ≥ 16."""
    value = positive_int(text)
    if value < 16:
        raise argparse.ArgumentTypeError(f"must be at least 16 px, not {text!r}")
    return value


#: Help of ``--plane``, shared by the commands that read images.
PLANE_HELP = (
    "which image of a multi-image file (TIFF stack or hyperstack, flat index over its non-image axes; "
    "DM stack): required for such files, which are otherwise refused with the list of their axes"
)
