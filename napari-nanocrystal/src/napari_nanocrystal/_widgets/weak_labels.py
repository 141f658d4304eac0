"""Weak labels widget: image layers + a detector backend → weak-label layers, saved for training.

Each image gets a Labels layer ``"<image> weak labels"`` (uint8: 0 background — transparent,
1 particle — green, 255 uncertain — orange; :mod:`napari_nanocrystal.weak_labels`) over it.
With a folder chosen, every pair is also written in the flat layout the Train widget and
``nanocrystal train`` read (``<name>_image.tif`` + ``<name>_weak.png``), atomically; existing
files are replaced only after asking.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, PushButton, Select
from napari.layers import Image
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ._common import TRAINED_MODELS, TaskPanel, confirm, notify_error, notify_info
from ._layers import (
    add_or_replace,
    compact,
    connect_layer_events,
    layer_array,
    layer_choices,
    link_to_image,
    nm_per_px,
    spatial_kwargs,
)
from .segment import MODEL_DEFAULT, MODEL_FILE, shipped_models

logger = logging.getLogger(__name__)

DETECTORS = {
    "self-training (segmentation model)": "self",
    "Cascade R-CNN detector (mmdet)": "mmdet",
    "Otsu + watershed (no model)": "otsu",
}
#: Display colours of the weak-label values.
WEAK_COLOURS = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0), 1: (0.1, 0.85, 0.3, 0.55), 255: (1.0, 0.6, 0.0, 0.75)}


def weak_colormap() -> DirectLabelColormap:
    return DirectLabelColormap(color_dict={k: np.asarray(v) for k, v in WEAK_COLOURS.items()})


def make_weak_labels(images: dict[str, np.ndarray], detector: str, folder: Path | None = None, **options) -> Generator:
    """Task: weak labels of ``images`` (name → array); saved as training pairs in ``folder``.

    Returns ``(maps, written files)``.
    """
    from nc_synthmodel.io import atomic_write_bytes

    from napari_nanocrystal.label_files import png_bytes, tiff_bytes, weak_pair_paths
    from napari_nanocrystal.weak_labels import iter_weak_labels

    maps = yield from iter_weak_labels(list(images.values()), detector, **options)
    written: list[Path] = []
    if folder is not None:
        for (name, image), weak in zip(images.items(), maps, strict=True):
            yield f"saving {name}", 0.99
            image_path, weak_path = weak_pair_paths(folder, name)
            atomic_write_bytes(image_path, tiff_bytes(image))
            atomic_write_bytes(weak_path, png_bytes(np.asarray(weak, dtype=np.uint8)))
            written += [image_path, weak_path]
    return maps, written


class WeakLabelsWidget(QWidget):
    """Make weak labels (background / particle / uncertain) of image layers with a detector."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.images = Select(label="images", choices=layer_choices(napari_viewer, Image), allow_multiple=True)
        self.detector = ComboBox(label="detector", choices=list(DETECTORS), value="self-training (segmentation model)")
        self.model = ComboBox(label="segmentation model", choices=self._model_choices)
        self.model_file = FileEdit(label="model file", mode="r", filter="*.safetensors *.pt *.pth", visible=False)
        self.checkpoint = FileEdit(label="detector weights (detector.pth)", mode="r", filter="*.pth", visible=False)
        self.score = FloatSpinBox(label="score threshold", value=0.5, min=0.0, max=1.0, step=0.05)
        self.diameter = FloatSpinBox(label="particle diameter (nm; 0: as is)", value=0.0, min=0.0, max=1e6, step=0.5)
        self.otsu_check = CheckBox(text="background only where the image is background (Otsu)", value=False)
        self.explained = FloatSpinBox(
            label="none unless detections cover this share of particle pixels", value=0.2, min=0.0, max=1.0, step=0.05, visible=False
        )
        self.folder = FileEdit(label="save pairs to folder (optional)", mode="d", value="")
        self.run_button = PushButton(text="Make weak labels")
        self.form = Container(
            widgets=[
                self.images,
                self.detector,
                self.model,
                self.model_file,
                self.checkpoint,
                self.score,
                self.diameter,
                self.otsu_check,
                self.explained,
                self.folder,
                self.run_button,
            ]
        )
        compact(self.images, rows=3)
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addStretch(1)
        self.detector.changed.connect(self._detector_changed)
        self.model.changed.connect(lambda *_: self._detector_changed(self.detector.value))
        self.otsu_check.changed.connect(lambda checked: setattr(self.explained, "visible", bool(checked)))
        self.run_button.changed.connect(self.run)
        connect_layer_events(napari_viewer, self.reset_choices)
        TRAINED_MODELS.changed.connect(self._model_trained)

    def reset_choices(self, *_):
        self.form.reset_choices()

    @staticmethod
    def _model_choices(_widget=None) -> list:
        choices = [(MODEL_DEFAULT, MODEL_DEFAULT)]  # all (text, value) pairs, as magicgui needs
        choices += [(f"shipped: {name}", name) for name in shipped_models() if name != "default"]
        choices += [(f"trained: {Path(p).name}", p) for p in TRAINED_MODELS.paths]
        return [*choices, (MODEL_FILE, MODEL_FILE)]

    def _model_trained(self, _path) -> None:
        try:
            self.model.reset_choices()
        except RuntimeError:  # the widget was closed
            TRAINED_MODELS.changed.disconnect(self._model_trained)

    def _detector_changed(self, value) -> None:
        backend = DETECTORS[value]
        self.model.visible = backend == "self"
        self.model_file.visible = backend == "self" and self.model.value == MODEL_FILE
        self.checkpoint.visible = backend == "mmdet"

    def _options(self, images: list) -> dict:
        backend = DETECTORS[self.detector.value]
        options: dict = {"score_threshold": self.score.value}
        if self.otsu_check.value:
            options["otsu_background"] = self.explained.value
        if backend == "self":
            if self.model.value == MODEL_FILE:
                path = Path(self.model_file.value)
                if not path.is_file():
                    raise ValueError(f"model file not found: {path}")
                options["model"] = str(path)
            else:
                options["model"] = "default" if self.model.value == MODEL_DEFAULT else self.model.value
        if backend == "mmdet":
            checkpoint = Path(self.checkpoint.value)
            if not checkpoint.is_file():
                raise ValueError(f"detector weights not found: {checkpoint} — train one with napari_nanocrystal.detection.train_detector")
            options["checkpoint"] = str(checkpoint)
        if self.diameter.value > 0:
            scales = {nm_per_px(layer, self.viewer) for layer in images}
            if None in scales or len(scales) > 1:
                raise ValueError("a diameter in nm needs images calibrated with one pixel size (calibrate them, or set 0)")
            options["diameter_px"] = self.diameter.value / scales.pop()
        return options

    def _folder(self, images: list) -> Path | None:
        text = str(self.folder.value or "").strip()
        if text in ("", "."):
            return None
        folder = Path(text)
        from napari_nanocrystal.label_files import weak_pair_paths

        existing = [p for layer in images for p in weak_pair_paths(folder, layer.name) if p.exists()]
        if existing and not confirm(self, f"{len(existing)} file(s) exist in {folder} (e.g. {existing[0].name}). Replace them?"):
            raise ValueError("not saved: the folder holds files of these images (choose another folder)")
        return folder

    def run(self) -> None:
        layers = list(self.images.value)
        if not layers:
            notify_error("Weak labels: select one or more image layers")
            return
        try:
            arrays = {layer.name: layer_array(layer) for layer in layers}
            options = self._options(layers)
            folder = self._folder(layers)
        except ValueError as error:
            notify_error(f"Weak labels: {error}")
            return
        self.task.run(
            f"Weak labels ({len(layers)} image(s))",
            make_weak_labels,
            arrays,
            DETECTORS[self.detector.value],
            folder,
            on_return=lambda result: self._show(layers, *result),
            **options,
        )

    def _show(self, images: list, maps: list, written: list) -> None:
        for image, weak in zip(images, maps, strict=True):
            metadata = {"made_by": "weak_labels", "detector": DETECTORS[self.detector.value]}
            scale = nm_per_px(image, self.viewer)
            if scale is not None:
                metadata["nm_per_px"] = scale
            name = f"{image.name} weak labels"
            layer = add_or_replace(self.viewer, self, name, "labels", weak, metadata=metadata, opacity=0.8, **spatial_kwargs(image))
            layer.colormap = weak_colormap()
            link_to_image(layer, image)
        if written:
            notify_info(f"saved {len(written) // 2} image/weak-label pair(s) to {written[0].parent}")
