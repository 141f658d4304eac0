"""Recipe widget: form + measured outcome → appended dataset row; predicted vs measured."""

from __future__ import annotations

import pytest
from _widget_helpers import TEST_IMAGE, notes, sync_tasks, synthesis_model, tem_image  # noqa: F401 - fixtures
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.io import read_recipes, write_recipes

from napari_nanocrystal._widgets.measure import MeasureWidget
from napari_nanocrystal._widgets.recipe import MODEL_FOLDER, NO_LAYER, RecipeWidget

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def setup(make_napari_viewer):
    viewer = make_napari_viewer()
    sample = tem_image(**TEST_IMAGE)
    calibration = {"nm_per_px": 0.5, "calibration_source": "ocr", "source_path": "/data/tem.tif"}
    viewer.add_image(sample.image, name="tem", scale=(0.5, 0.5), metadata=calibration)
    metadata = {"source_image": "tem", "made_by": "segment"}
    labels = viewer.add_labels(sample.labels, name="tem labels", scale=(0.5, 0.5), metadata=metadata)
    measure = MeasureWidget(viewer)
    measure.labels.value = labels
    measure.run()
    widget = RecipeWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.reset_choices()
    return viewer, labels, widget


def _fill(widget, recipe_id="r1"):
    widget.recipe_id.value = recipe_id
    widget.product.value = "PbSe"
    widget.chemicals.table.setRowCount(0)
    for name, amount, role in (("PbO", 1.0, "precursor"), ("Se", 1.0, "precursor"), ("OA", 2.0, "ligand"), ("ODE", 10.0, "solvent")):
        widget.chemicals.add_row(name, amount, role)
    widget.injection.value, widget.reaction.value, widget.heating.value, widget.time.value = 150.0, 160.0, 0.0, 5.0
    widget.doi.value = "10.1000/example"


def test_append_rows_with_the_measured_outcome(setup, tmp_path, notes):
    viewer, labels, widget = setup
    assert widget.labels.value is labels
    _fill(widget)
    path = tmp_path / "my_recipes.csv"
    widget.dataset.value = path
    widget.append()
    assert [m for m in notes() if "Append" in m] == []
    (recipe,) = read_recipes(path).raise_for_errors().recipes
    table = labels.features
    assert recipe.id == "r1" and recipe.product.name == "PbSe"
    assert [c.name for c in recipe.chemicals] == ["PbO", "Se", "OA", "ODE"]  # (the Gu CSV layout stores no roles)
    assert [c.amount_mmol for c in recipe.chemicals] == [1.0, 1.0, 2.0, 10.0]
    assert recipe.conditions.reaction_temp_c == 160.0
    assert recipe.outcome.n_particles == len(table)
    assert recipe.outcome.size_nm == pytest.approx(table["ecd_nm"].mean(), rel=1e-6)
    assert recipe.outcome.shape in set(table["shape_class"])
    # the measured column of the comparison; no shipped model → a clear note
    assert widget.comparison.item(0, 1).text().startswith(f"{recipe.outcome.size_nm:.3g} ±")
    # a second recipe is appended, the first row kept byte for byte
    before = path.read_bytes()
    _fill(widget, "r2")
    widget.append()
    assert path.read_bytes().startswith(before) and [r.id for r in read_recipes(path).recipes] == ["r1", "r2"]
    # an existing ID is refused and the file left alone
    widget.append()
    assert any("Append recipe r2" in m and "already present" in m for m in notes())
    assert [r.id for r in read_recipes(path).recipes] == ["r1", "r2"]


def test_json_dataset_and_provenance(setup, tmp_path):
    viewer, labels, widget = setup
    _fill(widget)
    path = tmp_path / "recipes.json"
    widget.dataset.value = path
    widget.append()
    (recipe,) = read_recipes(path).recipes
    assert [c.role for c in recipe.chemicals] == ["precursor", "precursor", "ligand", "solvent"]
    assert recipe.provenance.doi == "10.1000/example"
    assert recipe.provenance.source_images == ["/data/tem.tif"]
    assert recipe.provenance.nm_per_px == 0.5 and recipe.provenance.calibration_source == "ocr"
    assert recipe.provenance.size_from_segmentation is True


def test_load_recipe_from_a_file(setup, tmp_path):
    viewer, labels, widget = setup
    stored = Recipe(
        id="lit-7",
        product=Chemical(name="CdSe", role="product"),
        chemicals=[Chemical(name="CdO", amount_mmol=0.5, role="precursor"), Chemical(name="ODE", amount_mmol=20.0, role="solvent")],
        conditions=Conditions(injection_temp_c=250.0, reaction_temp_c=240.0, heating_rate_c_per_min=10.0, time_min=3.0),
        outcome=Outcome(size_nm=4.2, n_particles=500, shape="sphere"),
    )
    source = tmp_path / "literature.json"
    write_recipes([stored], source)
    widget.source_file.value = source
    widget.load()
    assert widget.recipe_id.value == "lit-7" and widget.product.value == "CdSe"
    assert widget.chemicals.chemicals() == [
        {"name": "CdO", "amount_mmol": 0.5, "role": "precursor"},
        {"name": "ODE", "amount_mmol": 20.0, "role": "solvent"},
    ]
    assert (widget.injection.value, widget.reaction.value, widget.heating.value, widget.time.value) == (250.0, 240.0, 10.0, 3.0)
    # without a Labels layer the outcome is the loaded one
    widget.labels.value = NO_LAYER
    assert widget.build_recipe().outcome.size_nm == 4.2
    assert widget.comparison.item(1, 1).text() == "sphere"


def test_prediction_beside_the_measurement(setup, synthesis_model, tmp_path, monkeypatch, qtbot, notes):
    from nc_synthmodel import models

    viewer, labels, widget = setup
    _fill(widget)
    monkeypatch.setattr(models, "DEFAULT_MODEL_DIR", tmp_path / "nothing-shipped")
    monkeypatch.delenv("NAPARI_NANOCRYSTAL_SYNC")  # in a real worker: "no model" is a note, not an error
    with qtbot.waitSignal(widget.task.finished, timeout=60_000):
        widget.predict()
    assert notes() == []
    monkeypatch.setenv("NAPARI_NANOCRYSTAL_SYNC", "1")
    assert widget.prediction is None and widget.note.value.startswith("no model: no default model is installed")
    assert widget.comparison.item(0, 0).text() == "—"
    # a saved model folder
    widget.model.value = MODEL_FOLDER
    widget.model_dir.value = synthesis_model
    widget.predict()
    predicted = widget.prediction
    assert predicted["size_nm"] > 0 and sum(predicted["shape_probabilities"].values()) == pytest.approx(1.0)
    assert widget.comparison.item(0, 0).text() == f"{predicted['size_nm']:.3g}"
    assert widget.comparison.item(1, 0).text().startswith(predicted["shape"])
    assert widget.note.value == "prediction of the nc-synthmodel synthesis model"


def test_invalid_recipes_are_named(setup, tmp_path, notes):
    viewer, labels, widget = setup
    _fill(widget)
    widget.product.value = ""
    widget.dataset.value = tmp_path / "d.csv"
    widget.append()
    assert any("Append recipe" in m and "product" in m and "missing product" in m for m in notes())
    _fill(widget)
    widget.chemicals.table.item(1, 1).setText("lots")
    widget.append()
    assert any("chemical row 2 (Se): amount 'lots' is not a number" in m for m in notes())
    assert not (tmp_path / "d.csv").exists()
    # an uncalibrated measurement has no size in nm
    _fill(widget)
    plain = viewer.add_labels(labels.data, name="plain")
    measure = MeasureWidget(viewer)
    measure.labels.value = plain
    measure.run()
    widget.reset_choices()
    widget.labels.value = plain
    widget.append()
    assert any("calibrate the image" in m for m in notes())
