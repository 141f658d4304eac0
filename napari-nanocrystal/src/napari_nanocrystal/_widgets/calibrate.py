"""Calibrate widget: an image layer's pixel size from its scale bar, its file or a typed value.

The image and every layer made from it (labels, weak labels, the scale-bar overlay) get
``scale = (nm/px, nm/px)`` and ``units = ("nm", "nm")``; the detected bar and its label are
drawn as rectangles in a Shapes layer ``"<image> scale bar"``.  The reading is shown — the crop
of the image that was read (bar and label), the text, the OCR confidence, the calibration
source and where exactly it came from (file tag, label) — and can be corrected: a misread label
value, or the pixel size itself, applied again (the source then becomes ``"manual"``).  When the
label is refused but its bar was found, the bar is shown and the label's value can be typed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from napari.layers import Image
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

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
_PREVIEW_WIDTH = 280  # px: the crop that was read is shown at most this wide


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
    from napari_nanocrystal.analysis import iter_calibrate  # the one order of the calibration sources

    return (
        yield from iter_calibrate(
            image, mode, manual_nm_per_px=manual_nm_per_px, metadata_nm_per_px=metadata_nm_per_px, source_path=source_path
        )
    )


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
        self.preview = QLabel()  # the crop of the image that was read: bar and label
        self.preview.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.preview.setToolTip("the part of the image that was read: the scale bar and its label")
        self.crop: np.ndarray | None = None
        self.bar_value = FloatSpinBox(label="bar label value", value=0.0, min=0.0, max=1e6, step=0.1, enabled=False)
        self.bar_unit = ComboBox(label="bar label unit", choices=list(UNITS), value="nm", enabled=False)
        self.nm_per_px = FloatSpinBox(label="nm per pixel", value=1.0, min=0.0, max=1e5, step=1e-6)
        self.nm_per_px.native.setDecimals(6)
        self.apply_button = PushButton(text="Apply to image and its layers")
        self.form = Container(
            widgets=[
                self.image,
                self.mode,
                self.read_button,
                self.reading,
                self.bar_value,
                self.bar_unit,
                self.nm_per_px,
                self.apply_button,
            ]
        )
        compact(self.reading)
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.preview)
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
            on_error=lambda error: self._read_failed(image, error),
        )

    def _read_done(self, image, bar) -> None:
        self.result = bar
        self._show(bar)
        self._show_crop(image, bar.bar_box, bar.text_box)
        self._apply(image, bar.nm_per_px, bar.source, bar)

    def _read_failed(self, image, error) -> None:
        """A refused label whose bar was found: show the bar and let the user type the label."""
        found = getattr(error, "bar", None)
        if found is None:
            self._show_crop(image, None, None)
            return
        from napari_nanocrystal.scalebar import ScaleBar

        r0, c0, r1, c1 = found.bar_box
        reach = max(12, int(0.6 * (c1 - c0)))
        area = (max(0, r0 - reach), max(0, c0 - reach // 2), r1 + reach, c1 + reach // 2)
        self.result = ScaleBar(nm_per_px=float("nan"), bar_length_px=found.bar_length_px, bar_box=found.bar_box, source="ocr")
        for widget in (self.bar_value, self.bar_unit):
            widget.enabled = True
        with self.bar_value.changed.blocked():
            self.bar_value.value = 0.0
        self._show_crop(image, area, None)
        self.reading.value = f"label refused: {error}\ntype the label's value and unit (bar: {found.bar_length_px:.1f} px), then Apply"

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
        unchanged = bar is not None and bar.nm_per_px > 0 and abs(bar.nm_per_px - value) <= 1e-9 * max(1.0, value)
        if unchanged:
            self._apply(image, value, bar.source, bar)
            return
        corrected = None
        if bar is not None and bar.bar_length_px and self.bar_value.value > 0:
            corrected = dataclasses.replace(
                bar,
                nm_per_px=value,
                value=float(self.bar_value.value),
                unit=self.bar_unit.value,
                source="manual",
                detail=f"label typed by the user over the {bar.bar_length_px:.1f} px bar",
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

    def _show_crop(self, image, *boxes) -> None:
        """Show the part of ``image`` spanned by ``boxes`` (bar, label) in the preview; clear it if none."""
        boxes = [b for b in boxes if b is not None]
        if not boxes:
            self.crop = None
            self.preview.clear()
            return
        r0 = max(0, min(b[0] for b in boxes) - 4)
        c0 = max(0, min(b[1] for b in boxes) - 4)
        r1, c1 = max(b[2] for b in boxes) + 4, max(b[3] for b in boxes) + 4
        self.crop = crop = _display_uint8(layer_array(image)[r0:r1, c0:c1])
        if crop.size == 0:
            self.preview.clear()
            return
        rgb = np.ascontiguousarray(crop if crop.ndim == 3 else np.repeat(crop[..., None], 3, axis=2))
        height, width = rgb.shape[:2]
        picture = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        pixmap = QPixmap.fromImage(picture)
        if width > _PREVIEW_WIDTH:
            pixmap = pixmap.scaledToWidth(_PREVIEW_WIDTH, Qt.TransformationMode.SmoothTransformation)
        elif width * 2 <= _PREVIEW_WIDTH:
            pixmap = pixmap.scaledToWidth(min(_PREVIEW_WIDTH, 3 * width), Qt.TransformationMode.FastTransformation)
        self.preview.setPixmap(pixmap)

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
        if bar and bar.get("detail"):
            text += f" ({bar['detail']})"
        if bar and bar.get("value") is not None and bar.get("bar_length_px"):
            text += f"\nlabel {bar['value']:g} {bar.get('unit') or ''}"
            if bar.get("text") is not None:
                text += f" (read {bar['text']!r})"
            text += f" over a {bar['bar_length_px']:.1f} px bar"
            if bar.get("confidence") is not None:
                text += f", OCR confidence {bar['confidence']:.2f}"
        return text


def _display_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 gray or RGB of an image crop of any real dtype (min-max stretched; RGBA loses alpha)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., :3]
    pixels = pixels.astype(np.float64)
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 1.0)
    scaled = (pixels - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(pixels)
    return np.round(scaled).astype(np.uint8)
