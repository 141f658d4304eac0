"""Measure widget: Labels layer → contract particle table in features, table, histogram, selection, CSV."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _widget_helpers import TEST_IMAGE, answer, notes, sync_tasks, tem_image  # noqa: F401 - fixtures
from nc_synthmodel.contract import PARTICLE_COLUMNS, SHAPE_CLASSES, validate_particle_table

from napari_nanocrystal._widgets._layers import camera, set_calibration
from napari_nanocrystal._widgets.measure import MeasureWidget

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def sample():
    return tem_image(**TEST_IMAGE)


@pytest.fixture
def setup(make_napari_viewer, sample):
    viewer = make_napari_viewer()
    viewer.add_image(sample.image, name="tem", scale=(0.5, 0.5), metadata={"nm_per_px": 0.5, "calibration_source": "ocr"})
    labels = viewer.add_labels(sample.labels, name="tem labels", scale=(0.5, 0.5), metadata={"source_image": "tem"})
    widget = MeasureWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.labels.value = labels
    return viewer, labels, widget


def _border_labels(labels):
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return set(np.unique(edge[edge > 0]).tolist())


def test_features_table_histogram(setup, sample, notes):
    viewer, layer, widget = setup
    widget.exclude_border.value = False
    widget.run()
    assert notes() == []
    features = layer.features
    table = validate_particle_table(features)  # the contract's schema
    assert list(table.columns) == list(PARTICLE_COLUMNS)
    assert list(features["index"]) == list(features["label"])
    assert len(table) == int(sample.labels.max())
    truth = sample.particles.set_index("label")
    area = truth.loc[table["label"], "area_px"].to_numpy()
    np.testing.assert_allclose(table["area_px"], area)  # particles do not overlap here
    np.testing.assert_allclose(table["ecd_nm"], np.sqrt(4 * area / math.pi) * 0.5)
    assert set(table["shape_class"]) <= set(SHAPE_CLASSES)
    # docked table: one row per particle; the histogram has the summary in its title
    assert widget.table.rowCount() == len(table)
    header = [widget.table.horizontalHeaderItem(c).text() for c in range(widget.table.columnCount())]
    assert header[:3] == ["label", "ecd_nm", "area_nm2"]
    d = table["ecd_nm"].mean()
    assert widget.summary.value.startswith(f"D = {d:.3g} nm") and f"N = {len(table)}" in widget.summary.value
    ax = widget.histogram.figure.axes[0]
    assert sum(p.get_height() for p in ax.patches) == len(table)
    assert ax.get_title() == widget.summary.value


def test_exclude_border_and_recalibration(setup, sample):
    viewer, layer, widget = setup
    border = _border_labels(sample.labels)
    widget.exclude_border.value = True
    widget.run()
    measured = set(layer.features["label"])
    assert measured == set(range(1, int(sample.labels.max()) + 1)) - border
    # a new calibration rescales the nm columns of the table
    old = layer.features["ecd_nm"].to_numpy()
    set_calibration(layer, 1.0)
    np.testing.assert_allclose(layer.features["ecd_nm"], 2 * old)


def test_uncalibrated_layer_measures_in_px(make_napari_viewer, sample):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(sample.labels, name="plain")
    widget = MeasureWidget(viewer)
    widget.labels.value = layer
    widget.exclude_border.value = False
    widget.run()
    assert layer.features["ecd_nm"].isna().all()
    assert "not calibrated: sizes in px" in widget.summary.value and " px, σ/D" in widget.summary.value


def test_selection_is_linked_both_ways(setup):
    viewer, layer, widget = setup
    widget.exclude_border.value = False
    widget.run()
    table = layer.features
    label = int(table["label"].iloc[3])
    widget.table.select_labels([label])
    widget.table.labels_selected.emit(widget.table.selected_labels())  # what a click on a row emits
    assert layer.selected_label == label
    row = table[table["label"] == label].iloc[0]
    centre = layer.data_to_world((row["centroid_y_px"], row["centroid_x_px"]))
    assert tuple(camera(viewer).center[-2:]) == pytest.approx(tuple(centre))
    widget.show_selected.value = True
    assert layer.show_selected_label
    # picking a particle in the viewer (layer controls or a click) selects its row
    other = int(table["label"].iloc[0])
    layer.selected_label = other
    assert widget.table.selected_labels() == [other]
    # a click in pan/zoom mode on a particle selects it
    third = table.iloc[5]
    click = SimpleNamespace(
        position=tuple(layer.data_to_world((third["centroid_y_px"], third["centroid_x_px"]))), view_direction=None, dims_displayed=[0, 1]
    )
    assert layer.mode == "pan_zoom"
    for callback in layer.mouse_drag_callbacks:
        callback(layer, click)
    assert layer.selected_label == layer.data[int(round(third["centroid_y_px"])), int(round(third["centroid_x_px"]))]
    assert widget.table.selected_labels() == [layer.selected_label]


def test_csv_export_asks_before_replacing(setup, tmp_path, answer, notes):
    viewer, layer, widget = setup
    widget.export_csv()
    assert any("measure a Labels layer first" in m for m in notes())
    widget.run()
    path = tmp_path / "particles.csv"
    widget.csv_path.value = path
    widget.export_csv()
    written = pd.read_csv(path)
    assert list(written.columns) == list(PARTICLE_COLUMNS) and len(written) == len(layer.features)
    path.write_text("my own notes\n")
    asked = answer(False)
    widget.export_csv()
    assert len(asked) == 1 and path.read_text() == "my own notes\n"
    answer(True)
    widget.export_csv()
    assert pd.read_csv(path).shape == written.shape


def test_no_particles_is_a_named_error(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    labels = np.zeros((40, 40), np.int32)
    labels[:5, :5] = 1  # one particle, on the border
    layer = viewer.add_labels(labels, name="edge only")
    widget = MeasureWidget(viewer)
    widget.labels.value = layer
    widget.run()
    assert any(m.startswith("Measure edge only: no particles to measure") for m in notes())
    assert "area_px" not in layer.features.columns
