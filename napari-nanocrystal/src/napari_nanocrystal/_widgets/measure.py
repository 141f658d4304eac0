"""Measure widget: a Labels layer → its per-particle table, a docked table and a size histogram.

The table (the columns of :data:`nc_synthmodel.contract.PARTICLE_COLUMNS`, sizes in nm, plus
napari's ``index`` lookup column) goes into the Labels layer's ``features``; the histogram
shows the equivalent circle diameters with D, σ/D and N.  Selecting rows selects the
particle in the viewer (and centres it); clicking a particle, or picking its label in the
layer controls, selects its row.  The table exports to CSV (written atomically; an existing
file is replaced only after asking).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pandas as pd
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from napari.layers import Labels
from qtpy.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from ._common import TaskPanel, confirm, notify_error, notify_info
from ._layers import camera, compact, connect_layer_events, layer_array, layer_choices, nm_per_px
from ._views import ParticleTable, PlotCanvas

logger = logging.getLogger(__name__)

#: Columns shown in the table, in order.
TABLE_COLUMNS = (
    "label",
    "ecd_nm",
    "area_nm2",
    "area_px",
    "circularity",
    "solidity",
    "convexity",
    "eccentricity",
    "aspect_ratio",
    "confidence",
    "shape_class",
    "shape_cluster",
)


def measure_labels(labels: np.ndarray, scale, *, exclude_border: bool, min_area_px: float, confidence, name_shapes: bool) -> Generator:
    """Task: measure every particle; yields ``(message, fraction)``, returns the particle table."""
    from napari_nanocrystal.measure import measure_particles

    yield "measuring particles", 0.1
    table = measure_particles(labels, scale, exclude_border=exclude_border, min_area_px=min_area_px, confidence=confidence)
    if table.empty:
        n = int(len(np.unique(labels[labels > 0])))
        raise ValueError(
            f"no particles to measure: the layer has {n} instance(s), none left after the exclusions "
            f"(border excluded: {exclude_border}, smallest {min_area_px:g} px)"
        )
    if name_shapes:
        from napari_nanocrystal.shapes import assign_shape_classes

        yield f"naming the shapes of {len(table)} particles", 0.5
        table = assign_shape_classes(table, labels)
    yield f"{len(table)} particles", 1.0
    return table


def particle_table(layer) -> pd.DataFrame | None:
    """The measured particle table in a layer's ``features`` (contract columns), or None."""
    from nc_synthmodel.contract import PARTICLE_COLUMNS

    features = layer.features
    if features is None or not all(c in features.columns for c in PARTICLE_COLUMNS):
        return None
    return features[list(PARTICLE_COLUMNS)]


class MeasureWidget(QWidget):
    """Measure the particles of a Labels layer: table in ``features``, docked table, histogram, CSV."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.labels = ComboBox(label="labels", choices=layer_choices(napari_viewer, Labels))
        self.exclude_border = CheckBox(label="exclude particles touching the border", value=True)
        self.min_area = SpinBox(label="smallest particle (px)", value=15, min=0, max=1_000_000)
        self.name_shapes = CheckBox(label="name shapes (11 classes)", value=True)
        self.run_button = PushButton(text="Measure")
        self.summary = Label(value="")
        self.show_selected = CheckBox(label="show the selected particle only", value=False)
        self.csv_path = FileEdit(label="CSV file", mode="w", filter="*.csv")
        self.export_button = PushButton(text="Export CSV")
        self.form = Container(widgets=[self.labels, self.exclude_border, self.min_area, self.name_shapes, self.run_button, self.summary])
        self.export = Container(widgets=[self.show_selected, self.csv_path, self.export_button])
        compact(self.summary)
        self.table = ParticleTable(self)
        self.histogram = PlotCanvas(napari_viewer, self)
        tabs = QTabWidget(self)
        tabs.addTab(self.table, "Particles")
        tabs.addTab(self.histogram, "Size histogram")
        self.tabs = tabs
        self.task = TaskPanel(self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.task.status)
        layout.addWidget(self.task)
        layout.addWidget(tabs, 1)
        layout.addWidget(self.export.native)

        self._layer = None  # the Labels layer shown
        self._clicks: dict[int, object] = {}
        self.run_button.changed.connect(self.run)
        self.export_button.changed.connect(self.export_csv)
        self.labels.changed.connect(self._show_layer)
        self.show_selected.changed.connect(self._show_selected_changed)
        self.table.labels_selected.connect(self.select_particles)
        connect_layer_events(napari_viewer, self.reset_choices)
        self._show_layer(self.labels.value)

    def reset_choices(self, *_):
        self.form.reset_choices()

    # -- measuring

    def run(self) -> None:
        layer = self.labels.value
        if layer is None:
            notify_error("Measure: no Labels layer — segment an image first")
            return
        try:
            labels = layer_array(layer)
        except ValueError as error:
            notify_error(f"Measure {layer.name}: {error}")
            return
        features = layer.features
        confidence = None
        if "confidence" in features.columns and "label" in features.columns:
            confidence = dict(zip(features["label"].astype(int), features["confidence"].astype(float), strict=True))
        self.task.run(
            f"Measure {layer.name}",
            measure_labels,
            labels,
            nm_per_px(layer, self.viewer),
            exclude_border=self.exclude_border.value,
            min_area_px=self.min_area.value,
            confidence=confidence,
            name_shapes=self.name_shapes.value,
            on_return=lambda table: self._measured(layer, table),
        )

    def _measured(self, layer, table: pd.DataFrame) -> None:
        features = table.copy()
        features["index"] = features["label"].astype(np.int64)
        layer.features = features
        layer.metadata["measured"] = {"exclude_border": self.exclude_border.value, "min_area_px": self.min_area.value}
        if self.labels.value is not layer:
            self.labels.value = layer
        self._show_layer(layer)

    # -- display

    def _show_layer(self, layer=None, *_) -> None:
        if self._layer is not None:
            try:
                self._layer.events.features.disconnect(self._refresh)
                self._layer.events.selected_label.disconnect(self._label_picked)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._layer = layer if isinstance(layer, Labels) else None
        if self._layer is not None:
            self._layer.events.features.connect(self._refresh)
            self._layer.events.selected_label.connect(self._label_picked)
            self._attach_click(self._layer)
        self._refresh()

    def _refresh(self, *_) -> None:
        layer = self._layer
        table = None if layer is None else particle_table(layer)
        if table is None:
            self.table.set_table(pd.DataFrame(columns=list(TABLE_COLUMNS)))
            self.summary.value = "not measured yet" if layer is not None else "no Labels layer"
            self.histogram.new_axes()
            self.histogram.draw()
            return
        from napari_nanocrystal.analysis import size_summary

        self.table.set_table(table, TABLE_COLUMNS)
        diameters, unit, text = size_summary(table)
        self.summary.value = text + ("" if unit == "nm" else " — not calibrated: sizes in px")
        ax = self.histogram.new_axes()
        if len(diameters):
            bins = max(5, min(40, int(math.sqrt(len(diameters))) + 3))
            colours = self.histogram.colours
            ax.hist(diameters, bins=bins, color=colours["highlight"], edgecolor=colours["text"], linewidth=0.5)
        ax.set_xlabel(f"equivalent circle diameter ({unit})")
        ax.set_ylabel("particles")
        ax.set_title(text, fontsize="small")
        self.histogram.draw()

    # -- selection: table ↔ viewer

    def select_particles(self, labels: list[int]) -> None:
        """Select particles (from the table): the layer's selected label, camera centred on it."""
        layer = self._layer
        if layer is None or not labels:
            return
        label = int(labels[-1])
        with layer.events.selected_label.blocker(self._label_picked):
            layer.selected_label = label
        layer.show_selected_label = bool(self.show_selected.value)
        table = particle_table(layer)
        row = table[table["label"] == label]
        if len(row):
            centre = layer.data_to_world((float(row["centroid_y_px"].iloc[0]), float(row["centroid_x_px"].iloc[0])))
            camera(self.viewer).center = tuple(centre)

    def _label_picked(self, *_) -> None:
        layer = self._layer
        if layer is not None and layer.selected_label > 0:
            self.table.select_labels([int(layer.selected_label)])

    def _show_selected_changed(self, value) -> None:
        if self._layer is not None:
            self._layer.show_selected_label = bool(value)

    def _attach_click(self, layer) -> None:
        if id(layer) in self._clicks:
            return

        def clicked(source, event):
            if source.mode != "pan_zoom" or particle_table(source) is None:
                return
            value = source.get_value(event.position, view_direction=event.view_direction, dims_displayed=event.dims_displayed, world=True)
            if value:
                source.selected_label = int(value)

        layer.mouse_drag_callbacks.append(clicked)
        self._clicks[id(layer)] = clicked

    # -- export

    def export_csv(self) -> None:
        layer = self._layer
        table = None if layer is None else particle_table(layer)
        if table is None:
            notify_error("Export CSV: measure a Labels layer first")
            return
        path = Path(self.csv_path.value)
        if not path.name or path.is_dir():
            notify_error("Export CSV: choose a file name (.csv)")
            return
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        if path.exists() and not confirm(self, f"{path} exists. Replace it with the particle table of {layer.name!r}?"):
            return
        from nc_synthmodel.io import atomic_write_bytes

        try:
            atomic_write_bytes(path, table.to_csv(index=False).encode("utf-8"))
        except OSError as error:
            notify_error(f"Export CSV: cannot write {path}: {error}")
            return
        notify_info(f"wrote {len(table)} particles to {path}")
