"""Calibrate widget: an image layer's pixel size from its scale bar, its file or a typed value.

The image and every layer made from it (labels, weak labels, the scale-bar overlay) get
``scale = (nm/px, nm/px)`` and ``units = ("nm", "nm")``; the detected bar and its label are
drawn as rectangles in a Shapes layer ``"<image> scale bar"``.  The reading (value, unit,
bar length, source) is shown and can be corrected — a misread label value, or the pixel size
itself — and applied again (the source then becomes ``"manual"``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Generator

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from napari.layers import Image
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ._common import TaskPanel, notify_error
from ._layers import (
    compact,
    connect_layer_events,
    derived_layers,
    layer_array,
    layer_choices,
    link_to_image,
    scale_bar_overlay,
    set_calibration,
)

logger = logging.getLogger(__name__)

#: Calibration modes shown → mode passed to the task.
MODES = {
    "auto: file metadata, else scale bar": "auto",
    "scale bar (OCR)": "ocr",
    "file metadata": "metadata",
    "typed value (nm per pixel)": "manual",
}
UNITS = ("nm", "µm", "Å", "pm")
_BAR_COLOUR, _TEXT_COLOUR = "magenta", "cyan"


def file_nm_per_px(image) -> float | None:
    """The pixel size the image's file stored, as the reader put it in the metadata."""
    metadata = image.metadata
    if metadata.get("file_nm_per_px") is not None:
        return float(metadata["file_nm_per_px"])
    if metadata.get("calibration_source") == "metadata" and metadata.get("nm_per_px") is not None:
        return float(metadata["nm_per_px"])
    return None


def calibrate(image: np.ndarray, mode: str, *, manual_nm_per_px=None, metadata_nm_per_px=None, source_path=None) -> Generator:
    """Task: calibrate ``image``; yields ``(message, fraction)``, returns a ``ScaleBar``.

    ``mode``: "auto" (file metadata, else the scale bar), "ocr", "metadata" or "manual".
    """
    from napari_nanocrystal.scalebar import ScaleBar, ScaleBarError, read_image, read_scale_bar

    if mode == "manual":
        yield "typed value", 0.5
        return read_scale_bar(image, manual_nm_per_px=manual_nm_per_px)
    if mode in ("auto", "metadata") and metadata_nm_per_px is None and source_path and os.path.isfile(source_path):
        yield "reading the file's calibration", 0.1
        metadata_nm_per_px = read_image(source_path)[1]
    if mode == "metadata":
        if metadata_nm_per_px is None:
            raise ScaleBarError("no pixel size in the file metadata: read the scale bar or type the value")
        return ScaleBar(nm_per_px=float(metadata_nm_per_px), score=1.0, source="metadata")
    if mode == "auto" and metadata_nm_per_px is not None:
        return read_scale_bar(image, metadata_nm_per_px=metadata_nm_per_px)
    yield "reading the scale bar (OCR)", 0.2
    bar = read_scale_bar(image)
    yield f"read {bar.text!r}", 1.0
    return bar


class CalibrateWidget(QWidget):
    """Read an image's pixel size and put it on the image and its layers (``scale`` in nm)."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.result = None  # the last ScaleBar read
        self.image = ComboBox(label="image", choices=layer_choices(napari_viewer, Image))
        self.mode = ComboBox(label="calibrate from", choices=list(MODES), value="auto: file metadata, else scale bar")
        self.read_button = PushButton(text="Read calibration")
        self.reading = Label(value="no calibration read yet")
        self.bar_value = FloatSpinBox(label="bar label value", value=0.0, min=0.0, max=1e6, step=0.1, enabled=False)
        self.bar_unit = ComboBox(label="bar label unit", choices=list(UNITS), value="nm", enabled=False)
        self.nm_per_px = FloatSpinBox(label="nm per pixel", value=1.0, min=0.0, max=1e5, step=1e-6)
        self.nm_per_px.native.setDecimals(6)
        self.apply_button = PushButton(text="Apply to image and its layers")
        self.form = Container(
            widgets=[
                self.image, self.mode, self.read_button, self.reading, self.bar_value, self.bar_unit, self.nm_per_px, self.apply_button,
            ]
        )
        compact(self.reading)
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addStretch(1)

        self.read_button.changed.connect(self.read)
        self.apply_button.changed.connect(self.apply)
        self.bar_value.changed.connect(self._label_edited)
        self.bar_unit.changed.connect(self._label_edited)
        self.image.changed.connect(self._show_current)
        connect_layer_events(napari_viewer, self.reset_choices)
        self._show_current()

    def reset_choices(self, *_):
        self.form.reset_choices()

    # -- reading

    def read(self) -> None:
        image = self.image.value
        if image is None:
            notify_error("Calibrate: no image layer — open an image first")
            return
        try:
            pixels = layer_array(image)
        except ValueError as error:
            notify_error(f"Calibrate {image.name}: {error}")
            return
        mode = MODES[self.mode.value]
        if mode == "manual" and not self.nm_per_px.value > 0:
            notify_error(f"Calibrate {image.name}: type a positive pixel size (nm per pixel) first")
            return
        self.task.run(
            f"Calibrate {image.name}",
            calibrate,
            pixels,
            mode,
            manual_nm_per_px=self.nm_per_px.value if mode == "manual" else None,
            metadata_nm_per_px=file_nm_per_px(image),
            source_path=image.metadata.get("source_path") or getattr(image.source, "path", None),
            on_return=lambda bar: self._read_done(image, bar),
        )

    def _read_done(self, image, bar) -> None:
        self.result = bar
        self._show(bar)
        self._apply(image, bar.nm_per_px, bar.source, bar)

    # -- correcting and applying

    def _label_edited(self, *_) -> None:
        bar = self.result
        if bar is None or not bar.bar_length_px or not self.bar_value.value > 0:
            return
        from napari_nanocrystal.scalebar import to_nm

        self.nm_per_px.value = to_nm(self.bar_value.value, self.bar_unit.value) / bar.bar_length_px

    def apply(self) -> None:
        """Apply the (possibly corrected) pixel size shown to the selected image."""
        image = self.image.value
        if image is None:
            notify_error("Calibrate: no image layer selected")
            return
        value = float(self.nm_per_px.value)
        if not value > 0:
            notify_error(f"Calibrate {image.name}: the pixel size must be positive")
            return
        bar = self.result
        unchanged = bar is not None and abs(bar.nm_per_px - value) <= 1e-9 * max(1.0, value)
        if unchanged:
            self._apply(image, value, bar.source, bar)
            return
        corrected = None
        if bar is not None and bar.bar_length_px and self.bar_value.value > 0:
            corrected = dataclasses.replace(
                bar, nm_per_px=value, value=float(self.bar_value.value), unit=self.bar_unit.value, source="manual"
            )
        self._apply(image, value, "manual", corrected)

    def _apply(self, image, value: float, source: str, bar) -> None:
        if image.metadata.get("calibration_source") == "metadata" and "file_nm_per_px" not in image.metadata:
            image.metadata["file_nm_per_px"] = image.metadata.get("nm_per_px")
        set_calibration(image, value, source)
        image.metadata["scale_bar"] = None if bar is None else dataclasses.asdict(bar)
        for layer in derived_layers(self.viewer, image):
            set_calibration(layer, value, source)
        if bar is not None and bar.bar_box is not None:
            self._draw_bar(image, bar)
        scale_bar_overlay(self.viewer).visible = True
        self.viewer.reset_view()
        self.reading.value = self._describe(image.metadata["scale_bar"], value, source)
        logger.info("%s: %.5g nm/px (%s)", image.name, value, source)

    def _draw_bar(self, image, bar) -> None:
        rectangles, what, colours = [], [], []
        parts = ((bar.bar_box, "", _BAR_COLOUR), (bar.text_box, f"{bar.nm_per_px:.4g} nm/px", _TEXT_COLOUR))
        for box, text, colour in parts:
            if box is None:
                continue
            r0, c0, r1, c1 = box
            rectangles.append(np.array([[r0 - 0.5, c0 - 0.5], [r1 - 0.5, c1 - 0.5]], dtype=float))
            what.append(text)
            colours.append(colour)
        name = f"{image.name} scale bar"
        old = self.viewer.layers[name] if name in self.viewer.layers else None
        if old is not None and old.metadata.get("made_by") == "calibrate":
            self.viewer.layers.remove(old)
        layer = self.viewer.add_shapes(
            rectangles,
            shape_type="rectangle",
            name=name,
            edge_color=colours,
            face_color="transparent",
            edge_width=2,
            features={"what": what},
            text={"string": "{what}", "color": "yellow", "anchor": "upper_right", "size": 9},
            scale=(bar.nm_per_px, bar.nm_per_px),
            translate=image.translate[-2:],
            units=("nm", "nm"),
            metadata={"made_by": "calibrate", "nm_per_px": float(bar.nm_per_px)},
        )
        link_to_image(layer, image)
        set_calibration(layer, bar.nm_per_px, bar.source)
        self.viewer.layers.selection.active = image

    # -- display

    def _show(self, bar) -> None:
        has_label = bar.value is not None and bar.bar_length_px is not None
        for widget in (self.bar_value, self.bar_unit):
            widget.enabled = bool(has_label)
        with self.bar_value.changed.blocked(), self.bar_unit.changed.blocked():
            self.bar_value.value = float(bar.value) if has_label else 0.0
            if bar.unit in UNITS:
                self.bar_unit.value = bar.unit
        self.nm_per_px.value = float(bar.nm_per_px)

    def _show_current(self, *_) -> None:
        image = self.image.value
        if image is None:
            self.reading.value = "no image layer"
            return
        value = image.metadata.get("nm_per_px")
        stored = image.metadata.get("scale_bar") if isinstance(image.metadata.get("scale_bar"), dict) else None
        self.reading.value = self._describe(stored, value, image.metadata.get("calibration_source"))
        if value:
            self.nm_per_px.value = float(value)

    @staticmethod
    def _describe(bar: dict | None, value, source) -> str:
        if not value:
            return "not calibrated (pixels)"
        text = f"{float(value):.5g} nm/px — source: {source or 'unknown'}"
        if bar and bar.get("value") is not None and bar.get("bar_length_px"):
            text += f"\nlabel {bar['value']:g} {bar.get('unit') or ''} (read {bar.get('text')!r}) over a {bar['bar_length_px']:.1f} px bar"
            if bar.get("score") is not None:
                text += f", score {bar['score']:.2f}"
        return text
