"""One validation layer for every entry point: the API, the ``nanocrystal`` CLI and the widgets.

Inputs that would give a silently wrong answer are refused here with a message that names
the input, the value and the accepted range (with its unit):

* images: real dtype, 2-D gray or RGB(A), not empty, no NaN or infinite pixels, at most
  ``max_pixels`` pixels (:func:`check_image`);
* pixel sizes within :data:`~nc_synthmodel.contract.PLAUSIBLE_NM_PER_PX` nm/px
  (:func:`check_nm_per_px`); fractions such as a confidence threshold within [0, 1]
  (:func:`check_fraction`); positive sizes (:func:`check_positive`);
* segmentation model files whose config would build an absurd network (a width of 65,536
  channels is a 154 GB allocation) are refused from the config alone, before the network is
  built (:func:`check_model_file`).

:func:`check_segment_inputs` bundles the checks of :func:`napari_nanocrystal.segment`.
No torch, Qt or napari import.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
from nc_synthmodel.contract import PLAUSIBLE_NM_PER_PX

from .images import MAX_PIXELS

__all__ = [
    "InputError",
    "MODEL_LIMITS",
    "check_diameter",
    "check_fraction",
    "check_image",
    "check_min_area",
    "check_model_file",
    "check_nm_per_px",
    "check_positive",
    "check_segment_inputs",
]

logger = logging.getLogger(__name__)

#: Bounds of a segmentation model config (``SeedFlowNet``): the widest layer (channels), the
#: number of levels, the kernel size and the training diameter (px).  The shipped model has
#: channels (1, 16, 32, 64, 128), 5 levels, kernel 3, diameter 30 px.
MODEL_LIMITS = {"channels": 1024, "levels": 8, "kernel": 15, "diameter_px": 1000.0}


class InputError(ValueError):
    """An input (image, option, model file) that would give a wrong or runaway result."""


# ----------------------------------------------------------------------------------------
# numbers


def _number(value, name: str) -> float:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise InputError(f"{name} must be a number, not {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, not {value!r}") from None


def check_positive(value, name: str) -> float | None:
    """None, or a finite number > 0."""
    if value is None:
        return None
    number = _number(value, name)
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"{name} must be a finite positive number, not {value!r}")
    return number


def check_nm_per_px(value, name: str = "nm_per_px") -> float | None:
    """None, or a pixel size within :data:`~nc_synthmodel.contract.PLAUSIBLE_NM_PER_PX` (nm/px)."""
    number = check_positive(value, name)
    if number is None:
        return None
    low, high = PLAUSIBLE_NM_PER_PX
    if not low <= number <= high:
        raise InputError(
            f"{name} = {number:g} nm/px is outside the plausible range {low:g}–{high:g} nm/px (1 pm to 5 µm per pixel); check the unit"
        )
    return number


def check_fraction(value, name: str, *, allow_none: bool = True) -> float | None:
    """None (if allowed), or a number within [0, 1]."""
    if value is None and allow_none:
        return None
    number = _number(value, name)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise InputError(f"{name} must be within [0, 1], not {value!r}")
    return number


def check_diameter(value, name: str = "diameter") -> float | str | None:
    """None, ``"auto"`` (estimated by the model) or a finite positive diameter."""
    if isinstance(value, str) and value == "auto":
        return "auto"
    return check_positive(value, name)


def check_min_area(value, name: str = "min_area_px") -> float:
    """A finite number ≥ 0 (pixels)."""
    number = _number(value, name)
    if not (math.isfinite(number) and number >= 0):
        raise InputError(f"{name} must be a finite number ≥ 0, not {value!r}")
    return number


# ----------------------------------------------------------------------------------------
# images


def check_image(image, *, max_pixels: int | None = MAX_PIXELS, name: str = "image") -> np.ndarray:
    """A micrograph as (rows, columns) gray or (rows, columns, 3|4) RGB(A), checked.

    A trailing channel of 1 (gray) or 2 (gray + alpha) is reduced to gray.  Raises
    :class:`InputError` (naming ``name``) for a non-real dtype, an empty image, another
    shape (a stack: pick one plane first), more than ``max_pixels`` pixels, or NaN/inf pixels.
    """
    image = np.asarray(image)
    if image.dtype.names is not None or image.dtype.kind not in "biuf":
        raise InputError(f"{name} must be real-valued (bool, int, uint or float), not {image.dtype}")
    if image.size == 0:
        raise InputError(f"{name} is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[-1] in (1, 2):  # gray, gray + alpha
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise InputError(
            f"{name} must be 2-D gray (rows, columns) or RGB/RGBA (rows, columns, 3|4); got shape {image.shape} "
            "(a stack or multi-channel image: choose one plane)"
        )
    n = int(image.shape[0]) * int(image.shape[1])
    if max_pixels is not None and n > max_pixels:
        raise InputError(
            f"{name} too large: {image.shape[0]} × {image.shape[1]} = {n:,} pixels exceeds the limit of "
            f"{max_pixels:,} pixels (max_pixels); crop or bin it first"
        )
    if image.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise InputError(
                f"{name} contains NaN or infinite values ({bad:,} of {image.size:,} values); "
                "replace them (e.g. with the background level) or crop them away first"
            )
    return image


# ----------------------------------------------------------------------------------------
# model files


def _model_config(path: Path) -> dict | None:
    """The JSON config of a segmentation weight file (sidecar, else safetensors metadata); None if none."""
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            config = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"model file invalid: {path}: config sidecar {sidecar.name} is not valid JSON ({error})") from None
        return config if isinstance(config, dict) else None
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
        config = json.loads(metadata["config"]) if "config" in metadata else None
    except ImportError:
        return None
    except Exception as error:  # noqa: BLE001 - a broken header raises safetensors' own errors
        raise InputError(f"model file invalid: {path}: cannot be read as safetensors ({type(error).__name__}: {error})") from None
    return config if isinstance(config, dict) else None


def _check_model_config(path: Path, config: dict) -> None:
    limits = MODEL_LIMITS
    nbase = config.get("nbase")
    if nbase is not None:
        if not isinstance(nbase, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in nbase):
            raise InputError(f"model file invalid: {path}: config nbase must be a list of whole numbers, not {nbase!r}")
        if len(nbase) > limits["levels"]:
            raise InputError(f"model file invalid: {path}: config nbase has {len(nbase)} levels; at most {limits['levels']}")
        widest = max(nbase, default=0)
        if widest > limits["channels"]:
            gigabytes = 4 * 9 * widest * widest / 1e9
            raise InputError(
                f"model file invalid: {path}: config nbase asks for {widest:,} channels in one layer (at most "
                f"{limits['channels']:,}; one such layer alone needs ~{gigabytes:,.0f} GB)"
            )
    sz = config.get("sz")
    if sz is not None and (not isinstance(sz, int) or isinstance(sz, bool) or not 1 <= sz <= limits["kernel"]):
        raise InputError(f"model file invalid: {path}: config kernel size sz = {sz!r}; expected a whole number 1..{limits['kernel']}")
    diameter = config.get("diameter_px")
    if diameter is not None:
        number = check_positive(diameter, f"model file {path}: config diameter_px")
        if number > limits["diameter_px"]:
            raise InputError(f"model file invalid: {path}: config diameter_px = {number:g} px; at most {limits['diameter_px']:g} px")


def check_model_file(model) -> None:
    """Refuse a segmentation weight file whose config would build an absurd network.

    ``model`` as :func:`napari_nanocrystal.segment` takes it: a torch module or a shipped
    name pass unchecked; a path's config (JSON sidecar or safetensors metadata) is read
    without building anything and checked against :data:`MODEL_LIMITS`.
    """
    if not isinstance(model, (str, os.PathLike)):
        return
    path = Path(model)
    if not path.is_file():
        return  # a shipped name, or missing: the loader says which
    config = _model_config(path)
    if config is not None:
        _check_model_config(path, config)


# ----------------------------------------------------------------------------------------
# entry points


def check_segment_inputs(
    image,
    model="default",
    *,
    diameter_px=None,
    confidence_threshold=None,
    flow_threshold=None,
    tile_size=512,
    max_pixels: int | None = MAX_PIXELS,
) -> np.ndarray:
    """The checks of :func:`napari_nanocrystal.segment`, before any work; returns the checked image.

    Image (see :func:`check_image`), ``diameter_px`` (positive, "auto" or None),
    ``confidence_threshold`` and ``flow_threshold`` (within [0, 1] or None), ``tile_size``
    (a whole number ≥ 16) and a model file's config (see :func:`check_model_file`).
    """
    checked = check_image(image, max_pixels=max_pixels)
    check_diameter(diameter_px, "diameter_px")
    check_fraction(confidence_threshold, "confidence_threshold")
    if flow_threshold is not None:
        number = _number(flow_threshold, "flow_threshold")
        if not (math.isfinite(number) and number >= 0):
            raise InputError(f"flow_threshold must be a finite number ≥ 0 (0/None: off), not {flow_threshold!r}")
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 16:
        raise InputError(f"tile_size must be a whole number of pixels ≥ 16, not {tile_size!r}")
    check_model_file(model)
    return checked
