"""Layer conventions shared by the widgets: choices, links between layers, calibration.

An image's calibration lives in ``layer.metadata`` (``nm_per_px``, ``calibration_source``,
``scale_bar``) as the reader and the sample data write it; layers made from an image (labels,
scale-bar shapes, weak labels) carry ``source_image`` (its name) and ``source_image_id`` in
their metadata, so that a new calibration reaches them and the Recipe widget finds the image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from napari.layers import Image, Layer
from qtpy.QtWidgets import QLabel, QWidget

from . import _common

logger = logging.getLogger(__name__)


def layer_choices(viewer, kind: type[Layer] | tuple[type[Layer], ...], where: Callable[[Layer], bool] | None = None):
    """A magicgui ``choices`` callable: (name, layer) of the viewer's layers of ``kind``."""

    def choices(_widget=None) -> list[tuple[str, Layer]]:
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kind) and (where is None or where(layer))]

    return choices


def connect_layer_events(viewer, callback: Callable[..., None]) -> None:
    """Call ``callback`` whenever layers are added, removed, moved or renamed."""
    events = viewer.layers.events
    for name in ("inserted", "removed", "reordered", "moved", "renamed"):
        emitter = getattr(events, name, None)
        if emitter is not None:
            emitter.connect(callback)


def layer_array(layer: Layer) -> np.ndarray:
    """The full-resolution 2-D pixels of an Image or Labels layer as a numpy array.

    Gray images are (rows, columns), RGB(A) images (rows, columns, 3|4); multiscale layers
    give their finest level; dask/zarr data are read into memory.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    array = np.asarray(data)
    rgb = isinstance(layer, Image) and layer.rgb
    if array.ndim != (3 if rgb else 2):
        raise ValueError(
            f"layer {layer.name!r} has shape {array.shape}: expected a 2-D {'RGB ' if rgb else ''}image "
            "(take a single plane of a stack first, e.g. Layers ▸ Data ▸ Split stack)"
        )
    return array


def link_to_image(layer: Layer, image: Layer) -> None:
    """Mark ``layer`` as made from ``image`` (receives its calibration)."""
    layer.metadata["source_image"] = image.name
    layer.metadata["source_image_id"] = str(image.unique_id)


def source_image(viewer, layer: Layer) -> Image | None:
    """The image a derived layer was made from, if it is still in the viewer."""
    wanted_id, wanted_name = layer.metadata.get("source_image_id"), layer.metadata.get("source_image")
    for candidate in viewer.layers:
        if isinstance(candidate, Image) and wanted_id and str(candidate.unique_id) == wanted_id:
            return candidate
    for candidate in viewer.layers:
        if isinstance(candidate, Image) and wanted_name and candidate.name == wanted_name:
            return candidate
    return None


def derived_layers(viewer, image: Layer) -> list[Layer]:
    """Layers made from ``image`` (see :func:`link_to_image`)."""
    out = []
    for layer in viewer.layers:
        if layer is image:
            continue
        if layer.metadata.get("source_image_id") == str(image.unique_id) or (
            layer.metadata.get("source_image_id") is None and layer.metadata.get("source_image") == image.name
        ):
            out.append(layer)
    return out


def nm_per_px(layer: Layer, viewer=None) -> float | None:
    """The calibration of a layer: its own metadata, else that of its source image; None if uncalibrated."""
    value = layer.metadata.get("nm_per_px")
    if value is None and viewer is not None:
        image = source_image(viewer, layer)
        if image is not None:
            value = image.metadata.get("nm_per_px")
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def set_calibration(layer: Layer, value_nm_per_px: float, source: str | None = None) -> None:
    """Scale a 2-D layer in nm (``scale``, ``units``, ``metadata["nm_per_px"]``); recompute the
    nm columns of a measured particle table in its ``features``."""
    value = float(value_nm_per_px)
    spatial = 2
    extra = layer.ndim - spatial
    layer.scale = [*list(layer.scale[:extra]), value, value]
    try:
        layer.units = [*list(layer.units[:extra]), "nm", "nm"]
    except (AttributeError, ValueError) as error:  # napari without layer units
        logger.debug("cannot set units of %s: %s", layer.name, error)
    layer.metadata["nm_per_px"] = value
    layer.metadata["calibrated"] = True
    if source is not None:
        layer.metadata["calibration_source"] = source
    features = getattr(layer, "features", None)
    if features is not None and "area_px" in features.columns and len(features):
        table = features.copy()
        area = table["area_px"].to_numpy(dtype=float)
        table["area_nm2"] = area * value**2
        table["ecd_nm"] = np.sqrt(4.0 * area / math.pi) * value
        layer.features = table


def compact(*widgets, rows: int = 4) -> None:
    """Word-wrap magicgui Labels and cap list widgets (Select) at about ``rows`` rows, so docks stay narrow."""
    for widget in widgets:
        native = widget.native
        if isinstance(native, QLabel):
            native.setWordWrap(True)
        else:
            native.setMaximumHeight(22 * rows + 6)


def scale_bar_overlay(viewer):
    """napari's scale-bar overlay (``viewer.canvas.overlays`` from napari 0.9, else ``viewer.scale_bar``)."""
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    bar = getattr(overlays, "scale_bar", None) if overlays is not None else None
    return bar if bar is not None else viewer.scale_bar


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, else ``viewer.camera``)."""
    scene = getattr(viewer, "scene", None)
    return getattr(scene, "camera", None) or viewer.camera


def add_or_replace(viewer, parent: QWidget | None, name: str, kind: str, data, **kwargs) -> Layer:
    """Put a result on a layer called ``name``: a new layer, or — after asking — the existing one.

    An existing layer of that name is replaced only when the user agrees; otherwise a new
    layer is added beside it (napari makes its name unique).
    """
    existing = viewer.layers[name] if name in viewer.layers else None
    same_kind = existing is not None and type(existing).__name__.lower() == kind
    if same_kind and existing.ndim == np.ndim(data) - (1 if kwargs.get("rgb") else 0):
        question = f"A layer named {name!r} exists already. Replace its data with the new result?\n(No keeps it and adds a new layer.)"
        if _common.confirm(parent, question):
            existing.data = data
            for key in ("scale", "translate", "units"):
                if key in kwargs:
                    setattr(existing, key, kwargs[key])
            if "metadata" in kwargs:
                existing.metadata.update(kwargs["metadata"])
            if "features" in kwargs:
                existing.features = kwargs["features"]
            return existing
    adder = getattr(viewer, f"add_{kind}")
    return adder(data, name=name, **kwargs)


def spatial_kwargs(image: Layer) -> dict[str, Any]:
    """``scale``, ``translate`` and ``units`` of a 2-D image, for a layer drawn over it."""
    out: dict[str, Any] = {"scale": tuple(image.scale[-2:]), "translate": tuple(image.translate[-2:])}
    units = getattr(image, "units", None)
    if units is not None:
        out["units"] = tuple(str(u) for u in units[-2:])
    return out


def labels_features(labels: Iterable[int], **columns) -> Any:
    """A Labels ``features`` table: ``index`` (napari's label lookup column) plus ``columns``."""
    import pandas as pd

    index = np.asarray(list(labels), dtype=np.int64)
    return pd.DataFrame({"index": index, **columns})
