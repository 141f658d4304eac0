"""Train widget: labelled and weakly labelled images → a segmentation model, trained in the background.

Labelled data are Labels layers made from (or linked to) an image — each gives an
(image, instances) pair — or a folder of pairs; weak labels are the Weak labels widget's
layers or a folder it saved.  Training (:func:`napari_nanocrystal.segmentation.training.train`,
an mmengine Runner per stage) runs in a worker with a live loss plot and progress; Stop ends
it cleanly after the current iteration with a checkpoint, and "resume" continues the run in
the same folder.  The trained model becomes selectable in the Segment widget.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Generator
from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, Select
from napari.layers import Labels
from qtpy.QtWidgets import QVBoxLayout, QWidget

from ._common import TRAINED_MODELS, TaskPanel, iter_callback, notify_error, notify_info
from ._layers import compact, connect_layer_events, layer_array, layer_choices, source_image
from ._views import PlotCanvas

logger = logging.getLogger(__name__)

PRESETS = ("cpu-small", "paper", "tiny")
CONFIG_FILE = "config file…"
FROM_LAYERS, FROM_FOLDER = "layers", "folder"


def train_model(config, labeled, weak, out: Path, resume: bool, stop_event: threading.Event) -> Generator:
    """Task: train; yields ``(message, fraction, stage, iteration, loss)``, returns the ``TrainingResult``."""
    from napari_nanocrystal.segmentation.training import train

    def convert(stage, iteration, max_iters, loss):
        fraction = iteration / max_iters if max_iters else 0.0
        loss = float("nan") if loss is None else float(loss)
        text = f"{stage}: {iteration}/{max_iters}" + ("" if math.isnan(loss) else f", loss {loss:.4g}")
        return text, fraction, stage, int(iteration), loss

    yield "starting (mmengine)", 0.0, "prepare", 0, float("nan")
    return (
        yield from iter_callback(
            train, config, labeled=labeled, weak=weak, out=out, resume=resume, stop_event=stop_event, _convert=convert, _stop=stop_event
        )
    )


class TrainWidget(QWidget):
    """Train a segmentation model from layers or folders, with a live loss plot; stop and resume."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        instance_layers = layer_choices(napari_viewer, Labels, where=lambda layer: layer.metadata.get("made_by") != "weak_labels")
        weak_layers = layer_choices(napari_viewer, Labels, where=lambda layer: layer.metadata.get("made_by") == "weak_labels")
        self.labelled_from = ComboBox(label="labelled data from", choices=[FROM_LAYERS, FROM_FOLDER], value=FROM_LAYERS)
        self.labelled_layers = Select(label="labelled layers", choices=instance_layers, allow_multiple=True)
        self.labelled_folder = FileEdit(label="labelled folder", mode="d", visible=False)
        self.weak_from = ComboBox(label="weak labels from", choices=[FROM_LAYERS, FROM_FOLDER], value=FROM_LAYERS)
        self.weak_layers = Select(label="weak-label layers", choices=weak_layers, allow_multiple=True)
        self.weak_folder = FileEdit(label="weak-label folder", mode="d", visible=False)
        self.config = ComboBox(label="configuration", choices=[*PRESETS, CONFIG_FILE], value="cpu-small")
        self.config_file = FileEdit(label="config file", mode="r", filter="*.py", visible=False)
        self.out = FileEdit(label="run folder", mode="d")
        self.resume = CheckBox(label="resume the run in this folder", value=False)
        self.train_button = PushButton(text="Train")
        self.result = Label(value="")
        self.form = Container(
            widgets=[
                self.labelled_from,
                self.labelled_layers,
                self.labelled_folder,
                self.weak_from,
                self.weak_layers,
                self.weak_folder,
                self.config,
                self.config_file,
                self.out,
                self.resume,
                self.train_button,
                self.result,
            ]
        )
        compact(self.result)
        compact(self.labelled_layers, self.weak_layers, rows=3)
        self.task = TaskPanel(self, on_cancel=self.stop, cancel_text="Stop")
        self.plot = PlotCanvas(napari_viewer, self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addWidget(self.plot, 1)
        self._stop_event = threading.Event()
        self.losses: dict[str, list[tuple[int, float]]] = {}
        self.model_path: Path | None = None
        self._drawn = 0.0
        self.labelled_from.changed.connect(lambda v: self._toggle(v, self.labelled_layers, self.labelled_folder))
        self.weak_from.changed.connect(lambda v: self._toggle(v, self.weak_layers, self.weak_folder))
        self.config.changed.connect(lambda v: setattr(self.config_file, "visible", v == CONFIG_FILE))
        self.train_button.changed.connect(self.start)
        connect_layer_events(napari_viewer, self.reset_choices)

    def reset_choices(self, *_):
        self.form.reset_choices()

    @staticmethod
    def _toggle(value, layers, folder) -> None:
        layers.visible = value == FROM_LAYERS
        folder.visible = value == FROM_FOLDER

    # -- inputs

    def _pairs(self, layers: list, what: str) -> list:
        pairs = []
        for layer in layers:
            image = source_image(self.viewer, layer)
            if image is None:
                raise ValueError(f"{what} layer {layer.name!r} is not linked to an image in the viewer (made by Segment/Weak labels?)")
            pairs.append((layer_array(image), layer_array(layer)))
        return pairs

    def _data(self):
        if self.labelled_from.value == FROM_LAYERS:
            labeled = self._pairs(list(self.labelled_layers.value), "labelled")
            if not labeled:
                raise ValueError("select labelled layers (image + instance labels), or a folder of pairs")
        else:
            labeled = Path(self.labelled_folder.value)
            if not labeled.is_dir():
                raise ValueError(f"labelled folder not found: {labeled}")
        if self.weak_from.value == FROM_LAYERS:
            weak = self._pairs(list(self.weak_layers.value), "weak-label") or None
        else:
            weak = Path(self.weak_folder.value)
            if not weak.is_dir():
                raise ValueError(f"weak-label folder not found: {weak}")
        config = self.config.value
        if config == CONFIG_FILE:
            config = Path(self.config_file.value)
            if not config.is_file():
                raise ValueError(f"config file not found: {config}")
        out = Path(self.out.value)
        if str(self.out.value) in ("", "."):
            raise ValueError("choose a run folder (it must be new, or tick resume)")
        return config, labeled, weak, out

    # -- running

    def start(self) -> None:
        try:
            config, labeled, weak, out = self._data()
        except ValueError as error:
            notify_error(f"Train: {error}")
            return
        self._stop_event = threading.Event()
        self.losses = {}
        self.result.value = ""
        self.task.run(
            f"Train ({out.name})",
            train_model,
            config,
            labeled,
            weak,
            out,
            bool(self.resume.value),
            self._stop_event,
            on_yield=self._progress,
            on_return=self._finished,
        )

    def stop(self) -> None:
        """Stop training after the current iteration (a checkpoint is written; resume continues)."""
        self._stop_event.set()

    def _progress(self, item) -> None:
        _, _, stage, iteration, loss = item
        if stage != "prepare" and not math.isnan(loss):
            self.losses.setdefault(stage, []).append((iteration, loss))
        now = time.monotonic()
        if now - self._drawn > 0.5:
            self._drawn = now
            self.draw_losses()

    def draw_losses(self) -> None:
        ax = self.plot.new_axes()
        for stage, points in self.losses.items():
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, label=stage, linewidth=1.2)
        ax.set_xlabel("iteration")
        ax.set_ylabel("training loss")
        if any(self.losses.values()):
            ax.set_yscale("log")
            self.plot.style_legend(ax.legend(fontsize="small"))
        self.plot.draw()

    def _finished(self, result) -> None:
        self.draw_losses()
        if result.stopped:
            self.result.value = f"stopped in {result.stage} at iteration {result.iteration}: tick 'resume' and Train to continue"
            return
        self.model_path = Path(result.model_path)
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in result.metrics.items() if isinstance(v, (int, float)))
        self.result.value = f"model: {self.model_path}" + (f"\n{metrics}" if metrics else "")
        TRAINED_MODELS.add(self.model_path)
        notify_info(f"trained model saved to {self.model_path}; it is now a choice of the Segment widget")
