"""The nc-synthmodel model shipped in the package: it loads, predicts, and is in the wheel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nc_synthmodel import SHAPE_CLASSES, Chemical, Conditions, Recipe, write_recipes
from nc_synthmodel.cli import main
from nc_synthmodel.computed import read_structures
from nc_synthmodel.models import DEFAULT_MODEL_DIR, default_model

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "nc-synthmodel"


def pbse_recipe(recipe_id="pbse", extra=()):
    return Recipe(
        id=recipe_id,
        product=Chemical(name="PbSe", role="product"),
        chemicals=[
            Chemical(name="PbO", amount_mmol=5.0, role="precursor"),
            Chemical(name="Se", amount_mmol=5.0, role="precursor"),
            Chemical(name="OA", amount_mmol=22.2, role="ligand"),
            Chemical(name="ODE", amount_mmol=46.9, role="solvent"),
            *extra,
        ],
        conditions=Conditions(injection_temp_c=150, reaction_temp_c=150, heating_rate_c_per_min=0, time_min=5),
    )


@pytest.fixture(scope="module")
def model():
    return default_model()


def test_default_model_predicts_size_shape_and_success(model):
    assert model.metadata_["descriptors"] == "computed"  # works for any chemical with a known structure
    [out] = model.predict_outcomes([pbse_recipe()])
    assert out["id"] == "pbse"
    assert 1.0 < out["size_nm"] < 100.0
    probabilities = out["shape_probabilities"]
    assert set(probabilities) == set(SHAPE_CLASSES) and sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert out["shape"] == max(probabilities, key=probabilities.get)
    assert 0.0 <= out["success_probability"] <= 1.0
    # the recipe's conditions matter: a longer, hotter reaction changes the predicted size
    hotter = pbse_recipe("hot").model_copy(
        update={"conditions": Conditions(injection_temp_c=180, reaction_temp_c=180, heating_rate_c_per_min=0, time_min=60)}
    )
    sizes = model.predict([pbse_recipe(), hotter])
    assert np.all(np.isfinite(sizes)) and sizes[0] != pytest.approx(sizes[1], rel=1e-3)


def test_chemicals_outside_the_vocabulary_use_computed_descriptors(model):
    vocabulary = set(model.descriptors.names)
    unseen = [s.name for s in read_structures() if s.name not in vocabulary and "@" not in s.name]
    if not unseen:
        pytest.fail("every shipped structure is in the model's vocabulary; pick a new chemical for this test")
    recipe = pbse_recipe("new-ligand", extra=[Chemical(name=unseen[0], amount_mmol=1.0, role="ligand")])
    [out] = model.predict_outcomes([recipe])
    assert np.isfinite(out["size_nm"]) and out["size_nm"] > 0


def test_predict_cli_uses_the_shipped_model(tmp_path, capsys):
    path = write_recipes([pbse_recipe()], tmp_path / "mine.json")
    assert main(["predict", str(path), "--json"]) == 0
    [out] = json.loads(capsys.readouterr().out)
    assert out["id"] == "pbse" and out["size_nm"] > 0 and out["shape"] in SHAPE_CLASSES


def test_the_default_model_is_the_selected_forest_and_loads_without_unpickling(monkeypatch):
    import pickle

    from nc_synthmodel.models import SynthesisForest

    def refuse(*args, **kwargs):
        raise AssertionError("the default model must not be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    model = default_model()
    assert isinstance(model, SynthesisForest) and model.size_model == "blend" and model.train_max_size_nm == 20.0
    assert model.max_features == 0.5  # the nested tuning's choice (BENCHMARKS.md, fifth round)
    assert model.blend_weight == 0.75  # the tenth round's choice (dev gate, then re-drawn folds)
    card = (DEFAULT_MODEL_DIR / "README.md").read_text(encoding="utf-8")
    assert "SynthesisForest" in card and "paper split" in card and "grouped" in card


def test_the_wheel_ships_the_default_model(wheel_files):
    names = wheel_files(PACKAGE_DIR, "nc_synthmodel")
    for part in ("model.json", "trees.npz", "descriptors.npz", "README.md"):
        assert f"nc_synthmodel/data/default_model/{part}" in names
        assert (DEFAULT_MODEL_DIR / part).is_file()
    assert "nc_synthmodel/data/structures.csv" in names
