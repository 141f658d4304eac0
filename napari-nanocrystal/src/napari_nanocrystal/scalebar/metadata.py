"""Pixel sizes stored in files: instrument tags, TIFF resolution, ImageJ calibration, DigitalMicrograph axes.

A micrograph's own file calibration wins over reading its scale bar.  For TIFF files the
sources are tried in this order (the first plausible one is used, see
:data:`~.parse.PLAUSIBLE_NM_PER_PX`):

1. FEI / Thermo Fisher ``FEI_HELIOS`` or ``FEI_SFEG`` tag (``[Scan] PixelWidth`` in m, else
   ``[EScan] PixelWidth``), as parsed by tifffile into ``{section: {key: value}}``;
2. Zeiss ``CZ_SEM`` tag (``ap_image_pixel_size`` or ``ap_pixel_size``: ``(name, value, unit)``);
3. ImageJ ``unit`` with XResolution (pixels per unit);
4. XResolution with ResolutionUnit (inch, cm, mm, µm) — print resolutions such as 72 dpi are
   refused by the plausibility check.

Each function returns a :class:`FileCalibration` (``nm_per_px`` and ``detail``, the source in
words, e.g. ``"FEI_HELIOS tag: Scan/PixelWidth"``) or None.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from .parse import _plausible, _unit_to_nm

__all__ = ["FileCalibration", "fei_calibration", "zeiss_calibration", "tiff_calibration", "dm_calibration"]

logger = logging.getLogger(__name__)

_FEI_TAGS = ("FEI_HELIOS", "FEI_SFEG")
_FEI_KEYS = (("Scan", "PixelWidth"), ("EScan", "PixelWidth"), ("Image", "PixelWidth"))
_ZEISS_KEYS = ("ap_image_pixel_size", "ap_pixel_size")


@dataclass(frozen=True)
class FileCalibration:
    """A pixel size stored in a file: ``nm_per_px`` and where it was found (``detail``)."""

    nm_per_px: float
    detail: str


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def fei_calibration(fei: dict | None, tag: str = "FEI_HELIOS") -> FileCalibration | None:
    """Pixel size from an FEI / Thermo Fisher metadata dict (``{section: {key: value}}``, metres).

    Parameters
    ----------
    fei : dict or None
        ``tifffile.TiffFile.fei_metadata`` (the parsed ``FEI_HELIOS`` / ``FEI_SFEG`` tag).
    tag : str
        The tag's name, for ``detail``.
    """
    if not isinstance(fei, dict):
        return None
    for section, key in _FEI_KEYS:
        values = fei.get(section)
        if not isinstance(values, dict):
            continue
        metres = _number(values.get(key))
        if metres is None:
            continue
        height = _number(values.get(key.replace("Width", "Height")))
        if height is not None and not math.isclose(height, metres, rel_tol=1e-3):
            logger.warning("%s: pixels are not square (width %.4g m, height %.4g m); using the width", tag, metres, height)
        nm_per_px = _plausible(metres * 1e9, f"{tag} {section}/{key}")
        if nm_per_px is not None:
            return FileCalibration(nm_per_px, f"{tag} tag: {section}/{key}")
    return None


def zeiss_calibration(sem: dict | None) -> FileCalibration | None:
    """Pixel size from a Zeiss ``CZ_SEM`` dict (``tifffile.TiffFile.sem_metadata``).

    Its entries are ``key: (name, value[, unit])``; the pixel size is ``ap_image_pixel_size``
    (else ``ap_pixel_size``) with a length unit such as ``"nm"``, ``"pm"`` or ``"µm"``.
    """
    if not isinstance(sem, dict):
        return None
    for key in _ZEISS_KEYS:
        entry = sem.get(key)
        if not isinstance(entry, (tuple, list)) or len(entry) < 3:
            continue
        value, unit_nm = _number(entry[1]), _unit_to_nm(str(entry[2]))
        if value is None or unit_nm is None:
            continue
        nm_per_px = _plausible(value * unit_nm, f"CZ_SEM {key}")
        if nm_per_px is not None:
            return FileCalibration(nm_per_px, f"CZ_SEM tag: {key} ({entry[1]} {entry[2]})")
    return None


def _resolution(tif, page) -> FileCalibration | None:
    """ImageJ unit + XResolution, else XResolution + ResolutionUnit."""
    tags = page.tags
    if "XResolution" not in tags:
        return None
    num, den = tags["XResolution"].value
    if not num or not den:
        return None
    px_per_unit = num / den
    if "YResolution" in tags:
        ynum, yden = tags["YResolution"].value
        if yden and ynum and not math.isclose(ynum / yden, px_per_unit, rel_tol=1e-3):
            logger.warning("TIFF pixels are not square (x %.6g, y %.6g per unit); using x", px_per_unit, ynum / yden)
    if tif.is_imagej and tif.imagej_metadata and tif.imagej_metadata.get("unit"):
        unit = tif.imagej_metadata["unit"]
        unit_nm = _unit_to_nm(unit)
        if unit_nm is None:
            logger.info("ImageJ unit %r is not a length; image not calibrated", unit)
            return None
        nm_per_px = _plausible(unit_nm / px_per_unit, f"ImageJ calibration ({unit})")
        return None if nm_per_px is None else FileCalibration(nm_per_px, f"ImageJ calibration ({unit})")
    resunit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2  # TIFF default: inch
    unit_nm = {2: 2.54e7, 3: 1e7, 4: 1e6, 5: 1e3}.get(resunit)
    if unit_nm is None:
        return None
    nm_per_px = _plausible(unit_nm / px_per_unit, f"TIFF resolution ({px_per_unit:.6g} px per unit {resunit})")
    return None if nm_per_px is None else FileCalibration(nm_per_px, "TIFF resolution tags")


def tiff_calibration(tif, page) -> FileCalibration | None:
    """The pixel size of a TIFF page, from the first plausible source (see the module docstring).

    Parameters
    ----------
    tif : tifffile.TiffFile
    page : tifffile.TiffPage
        The page whose pixels are used (its tags are read).
    """
    tags = page.tags
    for tag in _FEI_TAGS:
        if tag in tags:
            found = fei_calibration(tags[tag].value, tag)
            if found is not None:
                return found
            logger.info("%s tag holds no plausible pixel size", tag)
    if "CZ_SEM" in tags:
        found = zeiss_calibration(tags["CZ_SEM"].value)
        if found is not None:
            return found
        logger.info("CZ_SEM tag holds no plausible pixel size")
    return _resolution(tif, page)


def _tiff_nm_per_px(tif, page) -> float | None:
    """nm/px of :func:`tiff_calibration`, or None."""
    found = tiff_calibration(tif, page)
    return None if found is None else found.nm_per_px


def dm_calibration(axes: list[dict]) -> FileCalibration | None:
    """Pixel size from rsciio DigitalMicrograph axes dicts (``scale``, ``units``, ``index_in_array``)."""
    signal = sorted((a for a in axes if not a.get("navigate", False)), key=lambda a: a.get("index_in_array", 0))
    if len(signal) < 2:
        return None
    x = signal[-1]  # columns
    unit_nm = _unit_to_nm(x.get("units"))
    if unit_nm is None:
        return None
    y = signal[-2]
    if _unit_to_nm(y.get("units")) and not math.isclose(abs(y["scale"]) * _unit_to_nm(y["units"]), abs(x["scale"]) * unit_nm, rel_tol=1e-3):
        logger.warning("DM pixels are not square; using the x scale")
    nm_per_px = _plausible(abs(float(x["scale"])) * unit_nm, f"DM calibration ({x.get('units')})")
    return None if nm_per_px is None else FileCalibration(nm_per_px, f"DigitalMicrograph calibration ({x.get('units')})")


def _dm_nm_per_px(axes: list[dict]) -> float | None:
    """nm/px of :func:`dm_calibration`, or None."""
    found = dm_calibration(axes)
    return None if found is None else found.nm_per_px
