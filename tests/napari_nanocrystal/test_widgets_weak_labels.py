"""Weak labels widget: image layers + detector → weak-label layers (0 / 1 / 255), saved as training pairs."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import TEST_IMAGE, answer, notes, sync_tasks, tem_image, tiny_model  # noqa: F401 - fixtures

from napari_nanocrystal._widgets.weak_labels import WEAK_COLOURS, WeakLabelsWidget
from napari_nanocrystal.segmentation.data import find_weak_pairs, read_image, read_weak_label

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    sample = tem_image(**TEST_IMAGE)
    image = viewer.add_image(sample.image, name="tem 1", scale=(0.5, 0.5), metadata={"nm_per_px": 0.5})
    widget = WeakLabelsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.images.value = [image]
    return viewer, image, widget, sample


def _check_map(weak, truth):
    assert weak.dtype == np.uint8 and set(np.unique(weak)) <= {0, 1, 255}
    assert {0, 1, 255} <= set(np.unique(weak))
    # certain particle pixels lie on particles, certain background mostly off them
    assert (truth[weak == 1] > 0).mean() > 0.95
    assert (truth[weak == 0] == 0).mean() > 0.95


def test_otsu_detector_layers_and_saved_pairs(setup, tmp_path, notes):
    viewer, image, widget, sample = setup
    widget.detector.value = "Otsu + watershed (no model)"
    widget.diameter.value = 14.0  # nm → 28 px on this image
    widget.folder.value = tmp_path
    widget.run()
    assert notes() == []
    layer = viewer.layers["tem 1 weak labels"]
    _check_map(np.asarray(layer.data), sample.labels)
    assert layer.scale == pytest.approx([0.5, 0.5]) and layer.metadata["source_image"] == "tem 1"
    assert layer.metadata["detector"] == "otsu"
    # background transparent, particle and uncertain shown in two colours
    colours = layer.colormap.color_dict
    assert colours[0][3] == 0 and colours[1][3] > 0 and colours[255][3] > 0
    assert not np.allclose(colours[1], colours[255]) and tuple(colours[255]) == pytest.approx(WEAK_COLOURS[255])
    # saved in the flat layout the trainer reads
    (pair,) = find_weak_pairs(tmp_path)
    assert pair.image.name == "tem_1_image.tif" and pair.labels.name == "tem_1_weak.png"
    np.testing.assert_array_equal(read_weak_label(pair.labels), layer.data)
    np.testing.assert_array_equal(read_image(pair.image), sample.image)


def test_background_checked_against_the_image(setup, answer, notes):
    viewer, image, widget, sample = setup
    answer(True)  # each run replaces the weak-label layer
    widget.detector.value = "Otsu + watershed (no model)"
    widget.diameter.value = 14.0
    widget.run()
    plain = np.asarray(viewer.layers["tem 1 weak labels"].data).copy()
    assert widget.explained.native.isHidden()  # hidden until the check is on (the window itself is not shown)
    widget.otsu_check.value = True
    assert not widget.explained.native.isHidden() and widget.explained.value == pytest.approx(0.2)
    widget.run()
    assert notes() == []
    checked = np.asarray(viewer.layers["tem 1 weak labels"].data)
    assert ((checked == 1) == (plain == 1)).all()  # the particles found are the same
    assert (checked == 0).sum() < (plain == 0).sum() and not ((checked == 0) & (plain != 0)).any()
    widget.explained.value = 1.0  # no detector explains every particle pixel: no background at all
    widget.run()
    assert not (np.asarray(viewer.layers["tem 1 weak labels"].data) == 0).any()


def test_existing_files_are_replaced_only_after_asking(setup, tmp_path, answer, notes):
    viewer, image, widget, sample = setup
    widget.detector.value = "Otsu + watershed (no model)"
    widget.folder.value = tmp_path
    mine = tmp_path / "tem_1_weak.png"
    mine.write_bytes(b"my file")
    asked = answer(False)
    widget.run()
    assert len(asked) == 1 and mine.read_bytes() == b"my file"
    assert any("not saved" in m for m in notes()) and "tem 1 weak labels" not in viewer.layers
    answer(True)
    widget.run()
    assert read_weak_label(mine).shape == sample.labels.shape


def test_self_training_detector_uses_the_segmentation_model(setup, tiny_model, notes):
    viewer, image, widget, sample = setup
    widget.detector.value = "self-training (segmentation model)"
    assert not widget.model.native.isHidden()
    widget.model.value = "model file…"
    widget.model_file.value = tiny_model
    widget.run()
    assert notes() == []
    _check_map(np.asarray(viewer.layers["tem 1 weak labels"].data), sample.labels)


def test_errors(setup, tmp_path, notes):
    viewer, image, widget, sample = setup
    widget.detector.value = "Cascade R-CNN detector (mmdet)"
    assert not widget.checkpoint.native.isHidden() and widget.model.native.isHidden()
    widget.checkpoint.value = tmp_path / "missing.pth"
    widget.run()
    assert any("detector weights not found" in m for m in notes())
    widget.images.value = []
    widget.run()
    assert any("select one or more image layers" in m for m in notes())
