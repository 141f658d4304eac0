"""End to end in napari, with the widgets' real background workers:
open the sample → calibrate → segment → measure → shapes → recipe row appended → prediction shown."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import notes  # noqa: F401 - fixtures
from nc_synthmodel.contract import PARTICLE_COLUMNS
from nc_synthmodel.io import read_recipes

from napari_nanocrystal._widgets import _common
from napari_nanocrystal._widgets.calibrate import CalibrateWidget
from napari_nanocrystal._widgets.measure import MeasureWidget
from napari_nanocrystal._widgets.recipe import RecipeWidget
from napari_nanocrystal._widgets.segment import MODEL_DEFAULT, SegmentWidget
from napari_nanocrystal._widgets.shapes import ShapesWidget

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


def _run(qtbot, widget, action=None):
    """Start a widget's task and wait for its worker to finish."""
    with qtbot.waitSignal(widget.task.finished, timeout=120_000):
        (action or widget.run)()
    assert widget.task.last_error is None, widget.task.last_error


def test_sample_to_recipe_row(make_napari_viewer, qtbot, tmp_path, monkeypatch, notes):
    """The shipped models: the default segmentation model and the default nc-synthmodel model."""
    monkeypatch.delenv(_common.SYNC_ENV, raising=False)  # real thread workers
    viewer = make_napari_viewer()

    # File ▸ Open Sample
    viewer.open_sample("napari-nanocrystal", "synthetic_tem")
    image = viewer.layers["synthetic TEM"]
    truth = image.metadata["particles"]
    widgets = {}
    classes = {
        "calibrate": CalibrateWidget,
        "segment": SegmentWidget,
        "measure": MeasureWidget,
        "shapes": ShapesWidget,
        "recipe": RecipeWidget,
    }
    for name, cls in classes.items():
        widgets[name] = cls(viewer)
        viewer.window.add_dock_widget(widgets[name], name=name)

    # calibrate from the burned-in scale bar
    calibrate = widgets["calibrate"]
    calibrate.image.value, calibrate.mode.value = image, "scale bar (OCR)"
    _run(qtbot, calibrate, calibrate.read)
    expected = image.metadata["scale_bar"]["nm_per_px"]
    assert image.metadata["calibration_source"] == "ocr"
    assert image.scale == pytest.approx([0.5, 0.5], rel=0.02) and expected == pytest.approx(0.5, rel=0.02)
    assert "synthetic TEM scale bar" in viewer.layers

    # segment with the shipped default model, particles ~15 nm
    segment = widgets["segment"]
    segment.image.value, segment.model.value = image, MODEL_DEFAULT
    segment.diameter.value, segment.diameter_unit.value = 15.0, "nm"
    _run(qtbot, segment)
    labels = viewer.layers["synthetic TEM labels"]
    assert labels.scale == pytest.approx(image.scale) and labels.metadata["source_image"] == "synthetic TEM"
    assert labels.data.max() >= 0.7 * len(truth["label"])

    # measure
    measure = widgets["measure"]
    measure.labels.value = labels
    _run(qtbot, measure)
    table = labels.features
    assert list(table.columns[: len(PARTICLE_COLUMNS)]) == list(PARTICLE_COLUMNS)
    assert table["ecd_nm"].median() == pytest.approx(np.median(truth["ecd_nm"]), rel=0.15)
    assert measure.table.rowCount() == len(table)

    # shapes
    shapes = widgets["shapes"]
    shapes.reset_choices()
    shapes.layers.value = [labels]
    shapes.n_clusters.value = 3
    _run(qtbot, shapes)
    assert set(labels.features["shape_cluster"]) == {0, 1, 2}
    assert len(shapes.scatter.figure.axes[0].collections[0].get_offsets()) == len(table)

    # recipe: form + measured outcome → a new dataset row, and the model's prediction beside it
    recipe = widgets["recipe"]
    recipe.reset_choices()
    recipe.labels.value = labels
    recipe.recipe_id.value, recipe.product.value = "sample-1", "PbSe"
    recipe.chemicals.table.setRowCount(0)
    for name, amount, role in (("PbO", 1.0, "precursor"), ("Se", 1.0, "precursor"), ("OA", 2.0, "ligand"), ("ODE", 10.0, "solvent")):
        recipe.chemicals.add_row(name, amount, role)
    recipe.injection.value = recipe.reaction.value = 180.0
    recipe.time.value = 5.0
    dataset = tmp_path / "my_recipes.csv"
    recipe.dataset.value = dataset
    with qtbot.waitSignals([recipe.task.finished, recipe.task.finished], timeout=120_000):
        recipe.append()  # appends, then predicts
    assert recipe.task.last_error is None
    (row,) = read_recipes(dataset).raise_for_errors().recipes
    assert row.id == "sample-1" and row.outcome.n_particles == len(table)
    assert row.outcome.size_nm == pytest.approx(table["ecd_nm"].mean())
    provenance = recipe.build_recipe().provenance  # (the Gu CSV layout has no provenance columns)
    assert provenance.calibration_source == "ocr" and provenance.size_from_segmentation
    assert provenance.nm_per_px == pytest.approx(image.metadata["nm_per_px"])
    assert recipe.comparison.item(0, 0).text() == f"{recipe.prediction['size_nm']:.3g}"
    assert recipe.comparison.item(0, 1).text().startswith(f"{row.outcome.size_nm:.3g}")
    assert recipe.note.value == "prediction of the nc-synthmodel synthesis model"
    assert notes() == []
