"""Segment widget: image layer + model → Labels layer with the image's scale and per-instance confidence."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import TEST_IMAGE, answer, notes, sync_tasks, tem_image, tiny_model  # noqa: F401 - fixtures

from napari_nanocrystal._widgets import _common
from napari_nanocrystal._widgets.segment import DIAMETER_AUTO, MODEL_BASELINE, MODEL_DEFAULT, SegmentWidget
from napari_nanocrystal.segmentation.evaluation import evaluate

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def sample():
    return tem_image(**TEST_IMAGE)


@pytest.fixture
def setup(make_napari_viewer, sample):
    viewer = make_napari_viewer()
    calibration = {"nm_per_px": 0.5, "calibration_source": "metadata"}
    image = viewer.add_image(sample.image, name="tem", scale=(0.5, 0.5), units=("nm", "nm"), metadata=calibration)
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = image
    return viewer, image, widget


def test_model_file_gives_a_scaled_labels_layer_with_confidence(setup, sample, tiny_model, notes):
    viewer, image, widget = setup
    widget.select_model_file(tiny_model)
    widget.run()
    assert notes() == []
    layer = viewer.layers["tem labels"]
    assert layer.data.dtype == np.int32 and layer.data.shape == sample.labels.shape
    assert layer.scale == pytest.approx([0.5, 0.5]) and [str(u) for u in layer.units] == ["nanometer", "nanometer"]
    n = int(layer.data.max())
    assert n == int(sample.labels.max())  # the model was fitted to this image
    assert evaluate([layer.data], [sample.labels])["ap50"] == 1.0
    features = layer.features
    assert list(features["label"]) == list(range(1, n + 1)) and list(features["index"]) == list(features["label"])
    assert (features["confidence"] >= 0.5).all() and (features["confidence"] <= 1.0).all()
    assert layer.metadata["source_image"] == "tem" and layer.metadata["nm_per_px"] == 0.5
    assert layer.metadata["segmentation"]["model"] == str(tiny_model)
    assert viewer.layers.selection.active is layer


def test_diameter_in_nm_tiling_and_rgb(setup, sample, tiny_model, notes):
    viewer, image, widget = setup
    rgb = viewer.add_image(np.repeat(sample.image[..., None], 3, axis=2), name="rgb", rgb=True, metadata={"nm_per_px": 0.5})
    widget.image.value = rgb
    widget.select_model_file(tiny_model)
    widget.diameter.value, widget.diameter_unit.value = 14.0, "nm"  # 28 px → rescaled to the model's 30 px
    widget.tile_size.value = 64  # several tiles on this image
    widget.run()
    assert notes() == []
    layer = viewer.layers["rgb labels"]
    assert layer.data.shape == sample.labels.shape
    assert layer.metadata["segmentation"]["diameter_px"] == pytest.approx(28.0)
    assert layer.metadata["segmentation"]["tile_size"] == 64
    assert evaluate([layer.data], [sample.labels])["ap50"] >= 0.7


def test_diameter_estimated_by_the_model(setup, sample, tiny_model, notes):
    viewer, image, widget = setup
    widget.select_model_file(tiny_model)
    assert widget.diameter_unit.value == DIAMETER_AUTO and widget.diameter.native.isHidden()  # the default: no number asked
    widget.run()
    assert notes() == []
    layer = viewer.layers["tem labels"]
    assert layer.metadata["segmentation"]["diameter_px"] == "auto"
    used = layer.metadata["segmentation"]["diameter_used_px"]  # the estimate the widget shows
    assert used is None or 5 < used < 200
    assert evaluate([layer.data], [sample.labels])["ap50"] >= 0.7
    widget.diameter_unit.value = "px"
    assert not widget.diameter.native.isHidden()


def test_baseline_and_replacing_asks(setup, sample, answer):
    viewer, image, widget = setup
    widget.model.value = MODEL_BASELINE
    widget.run()
    first = viewer.layers["tem labels"]
    assert first.data.max() >= 5 and np.isnan(first.features["confidence"]).all()
    # second run: the user declines replacing → a new layer beside the first
    asked = answer(False)
    widget.run()
    assert len(asked) == 1 and "tem labels" in asked[0]
    assert [layer.name for layer in viewer.layers].count("tem labels") == 1 and len(viewer.layers) == 3
    # third run: the user agrees → the first layer's data are replaced, no new layer
    answer(True)
    widget.run()
    assert len(viewer.layers) == 3


def test_errors_are_named_notifications(setup, tmp_path, notes, monkeypatch):
    from napari_nanocrystal.segmentation import network

    viewer, image, widget = setup
    widget.model.value = MODEL_DEFAULT
    monkeypatch.setattr(network, "MODELS_DIR", tmp_path / "no-models")  # an installation without weights
    widget.run()
    assert any("Segment tem" in m and "no default segmentation model" in m for m in notes())
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model at all")
    widget.select_model_file(bad)
    widget.run()
    assert any("model file invalid" in m for m in notes())
    widget.select_model_file(tmp_path / "missing.safetensors")
    widget.run()
    assert any("model file not found" in m for m in notes())
    plain = viewer.add_image(np.zeros((32, 32), np.uint8), name="uncalibrated")
    widget.image.value = plain
    widget.model.value = MODEL_BASELINE
    widget.diameter.value, widget.diameter_unit.value = 10.0, "nm"
    widget.run()
    assert any("not calibrated" in m for m in notes())
    widget.diameter.value = 0.0
    widget.run()
    assert any("Segment uncalibrated: no particles found" in m for m in notes())
    assert "uncalibrated labels" not in viewer.layers


def test_trained_models_become_choices(setup, tiny_model):
    viewer, image, widget = setup
    _common.TRAINED_MODELS.add(tiny_model)
    try:
        assert widget.model.value == str(tiny_model)
        assert str(tiny_model) in widget.model.choices
    finally:
        _common.TRAINED_MODELS.paths.remove(str(tiny_model))
