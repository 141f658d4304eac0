"""Segment widget: an image layer → a Labels layer of particle instances.

The model is the shipped default, another shipped model, a model trained in this session
(Train widget), a weight file, or the classical Otsu–watershed baseline.  Options: the
typical particle diameter (nm on a calibrated image, px, or "auto": estimated by the model)
that the image is rescaled to the model's training diameter with, the confidence and flow thresholds, tiling for large images,
and the smallest particle kept.  The Labels layer ``"<image> labels"`` has the image's scale
and ``features`` with each instance's ``label`` and ``confidence`` (mean seed probability).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, PushButton, SpinBox
from napari.layers import Image
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ._common import TRAINED_MODELS, TaskPanel, iter_callback, notify_error
from ._layers import (
    add_or_replace,
    connect_layer_events,
    labels_features,
    layer_array,
    layer_choices,
    link_to_image,
    nm_per_px,
    spatial_kwargs,
)

logger = logging.getLogger(__name__)

MODEL_DEFAULT = "default (shipped model)"
MODEL_FILE = "model file…"
MODEL_BASELINE = "Otsu–watershed baseline (no model)"
#: Diameter unit choice that lets the model estimate the particle diameter (``diameter_px="auto"``).
DIAMETER_AUTO = "auto (estimate)"


def shipped_models() -> dict[str, Path]:
    """Weight files shipped in ``napari_nanocrystal/models`` (found without importing torch)."""
    from napari_nanocrystal.segmentation.weights import shipped_weights

    return shipped_weights()


def segment_image(image: np.ndarray, model, *, diameter_px="auto", scale_bar_boxes=(), **options) -> Generator:
    """Task: segment ``image``; yields ``(message, fraction)``, returns ``(labels int32, confidence float32 (N,),
    diameter_px)`` — the particle diameter (px) segmented at: the one given or the model's estimate (None: as is).

    ``model`` is "default", a shipped name, a weight-file path, or :data:`MODEL_BASELINE`;
    ``options`` are those of :func:`napari_nanocrystal.segment` (thresholds, tiling, min size).
    """
    from napari_nanocrystal.analysis import remove_scale_bar_particles, segment_baseline

    if model == MODEL_BASELINE:
        yield "Otsu threshold and watershed", 0.1
        labels, confidence, used = segment_baseline(image, diameter_px=diameter_px, min_size_px=int(options.get("min_size_px", 15)))
    else:
        from napari_nanocrystal.segmentation.inference import segment

        yield "loading the model", 0.02
        result = yield from iter_callback(segment, image, model, diameter_px=diameter_px, **options)
        labels, confidence, used = result.labels, result.confidence, result.diameter_px
    labels, confidence, dropped = remove_scale_bar_particles(labels, confidence, scale_bar_boxes)
    if not labels.any():
        raise ValueError(
            "no particles found"
            + (f" ({dropped} on the scale bar removed)" if dropped else "")
            + ": check the particle diameter, lower the confidence threshold or try another model"
        )
    yield f"{int(labels.max())} particles" + (f" (diameter {used:.1f} px)" if used else ""), 1.0
    return labels, confidence, used


class SegmentWidget(QWidget):
    """Segment particles of an image layer into a Labels layer with per-instance confidence."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.image = ComboBox(label="image", choices=layer_choices(napari_viewer, Image))
        self.model = ComboBox(label="model", choices=self._model_choices)
        self.model_file = FileEdit(label="model file", mode="r", filter="*.safetensors *.pt *.pth", visible=False)
        self.diameter = FloatSpinBox(label="particle diameter (0: as is)", value=0.0, min=0.0, max=1e6, step=0.5, visible=False)
        self.diameter_unit = ComboBox(label="particle diameter", choices=[DIAMETER_AUTO, "nm", "px"], value=DIAMETER_AUTO)
        self.confidence = FloatSpinBox(label="confidence threshold", value=0.5, min=0.0, max=1.0, step=0.05)
        self.flow = FloatSpinBox(label="flow threshold (0: off)", value=0.4, min=0.0, max=10.0, step=0.05)
        self.tile_size = SpinBox(label="tile size (px)", value=512, min=64, max=8192, step=64)
        self.tile_overlap = FloatSpinBox(label="tile overlap", value=0.1, min=0.05, max=0.5, step=0.05)
        self.min_size = SpinBox(label="smallest particle (px)", value=15, min=0, max=1_000_000)
        self.drop_bar = CheckBox(label="drop particles on the scale bar", value=True)
        self.run_button = PushButton(text="Segment")
        self.form = Container(
            widgets=[
                self.image,
                self.model,
                self.model_file,
                self.diameter,
                self.diameter_unit,
                self.confidence,
                self.flow,
                self.tile_size,
                self.tile_overlap,
                self.min_size,
                self.drop_bar,
                self.run_button,
            ]
        )
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addStretch(1)
        self.model.changed.connect(self._model_changed)
        self.diameter_unit.changed.connect(lambda unit: setattr(self.diameter, "visible", unit != DIAMETER_AUTO))
        self.run_button.changed.connect(self.run)
        connect_layer_events(napari_viewer, self.reset_choices)
        TRAINED_MODELS.changed.connect(self._model_trained)  # held weakly by psygnal

    def reset_choices(self, *_):
        self.form.reset_choices()

    @staticmethod
    def _model_choices(_widget=None) -> list:
        # all (text, value) pairs: magicgui reads a mix of strings and pairs as values
        choices = [(MODEL_DEFAULT, MODEL_DEFAULT)]
        choices += [(f"shipped: {name}", name) for name in shipped_models() if name != "default"]
        choices += [(f"trained: {Path(p).name}", p) for p in TRAINED_MODELS.paths]
        return [*choices, (MODEL_FILE, MODEL_FILE), (MODEL_BASELINE, MODEL_BASELINE)]

    def _model_changed(self, value) -> None:
        self.model_file.visible = value == MODEL_FILE

    def _model_trained(self, path: str) -> None:
        try:
            self.model.reset_choices()
            self.model.value = path
        except RuntimeError:  # the widget was closed (its Qt object is gone)
            TRAINED_MODELS.changed.disconnect(self._model_trained)

    def select_model_file(self, path) -> None:
        """Choose a weight file as the model (what the file picker does)."""
        self.model.value = MODEL_FILE
        self.model_file.value = Path(path)

    def _model_argument(self):
        value = self.model.value
        if value == MODEL_DEFAULT:
            return "default"
        if value == MODEL_FILE:
            path = Path(self.model_file.value)
            if not path.is_file():
                raise ValueError(f"model file not found: {path} — pick a .safetensors/.pt weight file")
            return str(path)
        return value

    def run(self) -> None:
        image = self.image.value
        if image is None:
            notify_error("Segment: no image layer — open an image first")
            return
        try:
            pixels = layer_array(image)
            model = self._model_argument()
            diameter_px = self._diameter_px(image)
        except ValueError as error:
            notify_error(f"Segment {image.name}: {error}")
            return
        from napari_nanocrystal.analysis import scale_bar_boxes

        bar = image.metadata.get("scale_bar") if self.drop_bar.value else None
        boxes = scale_bar_boxes(bar) if isinstance(bar, dict) else []
        options = {
            "confidence_threshold": self.confidence.value,
            "flow_threshold": self.flow.value,
            "tile_size": self.tile_size.value,
            "tile_overlap": self.tile_overlap.value,
            "min_size_px": self.min_size.value,
        }
        settings = {"model": str(model), "diameter_px": diameter_px, **options}
        self.task.run(
            f"Segment {image.name}",
            segment_image,
            pixels,
            model,
            diameter_px=diameter_px,
            scale_bar_boxes=boxes,
            on_return=lambda result: self._show(image, *result, settings),
            **options,
        )

    def _diameter_px(self, image) -> float | str | None:
        if self.diameter_unit.value == DIAMETER_AUTO:
            return "auto"
        value = float(self.diameter.value)
        if value <= 0:
            return None
        if self.diameter_unit.value == "px":
            return value
        scale = nm_per_px(image, self.viewer)
        if scale is None:
            raise ValueError("the image is not calibrated: calibrate it first or give the diameter in px")
        return value / scale

    def _show(self, image, labels: np.ndarray, confidence: np.ndarray, diameter_px, settings: dict):
        ids = np.arange(1, int(labels.max()) + 1)
        settings = {**settings, "diameter_used_px": diameter_px}
        metadata = {"made_by": "segment", "segmentation": settings}
        scale = nm_per_px(image, self.viewer)
        if scale is not None:
            metadata["nm_per_px"] = scale
        layer = add_or_replace(
            self.viewer,
            self,
            f"{image.name} labels",
            "labels",
            labels,
            features=labels_features(ids, label=ids, confidence=confidence.astype(float)),
            metadata=metadata,
            **spatial_kwargs(image),
        )
        link_to_image(layer, image)
        self.viewer.layers.selection.active = layer
        logger.info("%s: %d particles", image.name, len(ids))
        return layer
