"""Train widget: labelled + weak-label layers → a trained model (live loss, stop, resume) → Segment choice."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import TEST_IMAGE, notes, sync_tasks, tem_image  # noqa: F401 - fixtures

from napari_nanocrystal._widgets import _common, _layers
from napari_nanocrystal._widgets.segment import SegmentWidget
from napari_nanocrystal._widgets.train import TrainWidget
from napari_nanocrystal._widgets.weak_labels import WeakLabelsWidget
from napari_nanocrystal.segmentation.network import load_model

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    sample = tem_image(**TEST_IMAGE)
    image = viewer.add_image(sample.image, name="tem")
    truth = viewer.add_labels(sample.labels, name="tem truth")
    _layers.link_to_image(truth, image)
    other = viewer.add_image(tem_image(seed=8, shape=(128, 128), n_particles=6).image, name="unlabelled")
    weak = WeakLabelsWidget(viewer)
    weak.images.value = [other]
    weak.detector.value = "Otsu + watershed (no model)"
    weak.run()
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.reset_choices()
    segment = SegmentWidget(viewer)
    yield viewer, widget, segment
    _common.TRAINED_MODELS.paths.clear()


def test_train_stop_resume_and_use_in_segment(setup, tmp_path, notes):
    viewer, widget, segment = setup
    assert widget.labelled_layers.choices == (viewer.layers["tem truth"],)  # weak layers are not instance labels
    assert widget.weak_layers.choices == (viewer.layers["unlabelled weak labels"],)
    widget.labelled_layers.value = [viewer.layers["tem truth"]]
    widget.weak_layers.value = [viewer.layers["unlabelled weak labels"]]
    widget.config.value = "tiny"
    widget.out.value = tmp_path / "run"

    # Stop (the panel's Stop button) as soon as the task starts: a clean, resumable stop
    seen = []
    original = widget._progress

    def stop_at_once(item):
        seen.append(item)
        original(item)
        widget.task.cancel()  # what the Stop button does

    widget._progress = stop_at_once
    widget.start()
    assert notes() == []
    assert widget.task.cancel_button.text() == "Stop"
    assert widget.result.value.startswith("stopped in prepare") and seen[0][2] == "prepare"
    assert widget.model_path is None and _common.TRAINED_MODELS.paths == []
    assert (tmp_path / "run" / "training_log.json").is_file()

    # resume: both stages finish, the loss is plotted, the model is offered by Segment
    widget._progress = original
    widget.resume.value = True
    widget.start()
    assert notes() == []
    path = widget.model_path
    assert path is not None and path.is_file() and load_model(path).config["nbase"] == [1, 4, 8, 16]
    assert set(widget.losses) == {"pretrain", "finetune"}
    lines = widget.plot.figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["pretrain", "finetune"]
    assert all(np.isfinite(line.get_ydata()).all() for line in lines)
    assert segment.model.value == str(path) and str(path) in segment.model.choices


def test_a_used_run_folder_is_not_overwritten(setup, tmp_path, notes):
    viewer, widget, segment = setup
    widget.labelled_layers.value = [viewer.layers["tem truth"]]
    widget.config.value = "tiny"
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_log.json").write_text("{}")
    widget.out.value = run
    widget.start()
    assert any("already holds a training run" in m for m in notes())
    assert (run / "training_log.json").read_text() == "{}"
    widget.labelled_layers.value = []
    widget.start()
    assert any("select labelled layers" in m for m in notes())
