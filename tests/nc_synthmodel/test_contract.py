"""The layer-to-recipe contract: models, validation errors, the per-particle table."""

import math

import numpy as np
import pandas as pd
import pytest

from nc_synthmodel.contract import (
    PARTICLE_COLUMNS,
    SHAPE_CLASSES,
    Chemical,
    Outcome,
    Recipe,
    RecipeValidationError,
    empty_particle_table,
    outcome_from_particles,
    validate_particle_table,
    validate_recipe,
)


def recipe_dict(**changes):
    data = {
        "id": "7",
        "product": {"name": "PbSe", "role": "product"},
        "chemicals": [
            {"name": "PbO", "amount_mmol": 5.0, "role": "precursor"},
            {"name": "OA", "amount_mmol": 22.2, "role": "ligand"},
        ],
        "conditions": {"injection_temp_c": 140, "reaction_temp_c": 140, "heating_rate_c_per_min": 0, "time_min": 5},
        "outcome": {"size_nm": 4.87, "size_dispersion_pct": 6.49, "n_particles": 1195, "shape": "sphere"},
    }
    data.update(changes)
    return data


def test_valid_recipe_round_trips_through_dict():
    recipe = validate_recipe(recipe_dict())
    assert recipe.product.name == "PbSe"
    assert [c.name for c in recipe.chemicals] == ["PbO", "OA"]
    assert validate_recipe(recipe.model_dump()) == recipe


@pytest.mark.parametrize(
    "changes, field, value, words",
    [
        (
            {"chemicals": [{"name": "PbO", "amount_mmol": -1.0, "role": "precursor"}]},
            "chemicals.0(PbO).amount_mmol",
            -1.0,
            "greater than or equal to 0",
        ),
        (
            {"conditions": {"injection_temp_c": float("nan"), "reaction_temp_c": 140, "time_min": 5}},
            "conditions.injection_temp_c",
            None,
            "finite",
        ),
        (
            {"conditions": {"injection_temp_c": -300, "reaction_temp_c": 140, "time_min": 5}},
            "conditions.injection_temp_c",
            -300,
            "greater than -273.15",
        ),
        (
            {"conditions": {"injection_temp_c": 140, "reaction_temp_c": 140, "time_min": -5}},
            "conditions.time_min",
            -5,
            "greater than or equal to 0",
        ),
        (
            {"conditions": {"injection_temp_c": 140, "reaction_temp_c": 140, "heating_rate_c_per_min": -2, "time_min": 5}},
            "conditions.heating_rate_c_per_min",
            -2,
            "greater than or equal to 0",
        ),
        ({"outcome": {"size_nm": 5, "shape": "blob"}}, "outcome.shape", "blob", "unknown shape"),
        ({"outcome": {"size_nm": -5, "shape": "cube"}}, "outcome.size_nm", -5, "greater than 0"),
        ({"outcome": {"size_nm": 5, "n_particles": 2.5}}, "outcome.n_particles", 2.5, "integer"),
        ({"outcome": {"shape_fractions": {"cube": 0.5, "sphere": 0.2}}}, "outcome.shape_fractions", None, "sum to"),
        ({"outcome": {"success": False, "size_nm": 3.0}}, "outcome.size_nm", 3.0, "unsuccessful synthesis has no size"),
        ({"product": None}, "product", None, "missing product"),
        ({"chemicals": []}, "chemicals", [], "at least one chemical"),
        ({"chemicals": [{"name": "OA", "amount_mmol": 1}, {"name": "OA", "amount_mmol": 2}]}, "chemicals", None, "more than once: OA"),
        ({"chemicals": [{"name": "  ", "amount_mmol": 1}]}, "chemicals.0(  ).name", "  ", "empty"),
        ({"chemicals": [{"name": "PlaceHolder", "amount_mmol": 0}]}, "chemicals.0(PlaceHolder).name", "PlaceHolder", "empty slot"),
        ({"chemicals": [{"name": "OA", "amount_mmol": 1, "role": "catalyst"}]}, "chemicals.0(OA).role", "catalyst", "'product'"),
        ({"chemicals": [{"name": "OA"}]}, "chemicals", None, "has no amount_mmol"),
        ({"product": {"name": "PbSe", "role": "ligand"}}, "product", None, "expected 'product'"),
        ({"colour": "red"}, "colour", "red", "Extra inputs"),
        ({"id": ""}, "id", "", "at least 1 character"),
    ],
)
def test_bad_recipe_names_recipe_field_and_value(changes, field, value, words):
    with pytest.raises(RecipeValidationError) as info:
        validate_recipe(recipe_dict(**changes))
    error = info.value
    assert error.recipe_id == recipe_dict(**changes)["id"]
    fields = [p.field for p in error.problems]
    assert field in fields, fields
    problem = error.problems[fields.index(field)]
    if value is not None:
        assert problem.value == value
    text = str(error)
    assert f"recipe {error.recipe_id}" in text and field in text and words in text


def test_failed_recipe_needs_no_product():
    recipe = validate_recipe(recipe_dict(product=None, outcome={"success": False}))
    assert recipe.product is None and not recipe.outcome.success


def test_assignment_is_validated():
    chemical = Chemical(name="OA", amount_mmol=1.0, role="ligand")
    with pytest.raises(ValueError):
        chemical.amount_mmol = -3


def _particles(diameters, shapes=None):
    n = len(diameters)
    table = empty_particle_table().reindex(range(n))
    table["label"] = np.arange(1, n + 1)
    table["ecd_nm"] = diameters
    table["area_nm2"] = np.pi * np.asarray(diameters) ** 2 / 4
    table["area_px"] = table["area_nm2"] * 4
    table["shape_cluster"] = -1
    table["shape_class"] = shapes if shapes is not None else [None] * n
    return table


def test_outcome_from_particles_statistics():
    diameters = [4.0, 5.0, 6.0, 5.0]
    shapes = ["sphere", "sphere", "cube", "sphere"]
    outcome = outcome_from_particles(_particles(diameters, shapes))
    assert outcome.size_nm == pytest.approx(5.0)
    assert outcome.size_dispersion_pct == pytest.approx(100 * np.std(diameters) / 5.0)
    assert outcome.n_particles == 4
    assert outcome.shape == "sphere"
    assert outcome.shape_fractions == {"sphere": 0.75, "cube": 0.25}
    assert isinstance(outcome, Outcome)


def test_outcome_from_unclassified_particles_has_no_shape():
    outcome = outcome_from_particles(_particles([3.0, 3.0]))
    assert outcome.shape is None and outcome.shape_fractions == {} and outcome.size_dispersion_pct == 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.drop(columns="ecd_nm"), "missing column(s): ecd_nm"),
        (lambda t: t.assign(label=[1, 1]), "duplicated label 1"),
        (lambda t: t.assign(label=[0, 1]), "positive integers"),
        (lambda t: t.assign(area_px=[-1.0, 3.0]), "'area_px' has a negative value"),
        (lambda t: t.assign(shape_class=["blob", None]), "unknown shape_class 'blob'"),
        (lambda t: t.assign(circularity=["round", 1.0]), "'circularity' row 0: 'round' is not a number"),
        (lambda t: t.iloc[:0], "no particles"),
        (lambda t: t.assign(ecd_nm=[np.nan, 3.0]), "calibrate the image"),
    ],
)
def test_bad_particle_tables(mutate, message):
    with pytest.raises(ValueError) as info:
        outcome_from_particles(mutate(_particles([3.0, 4.0])))
    assert message in str(info.value)


def test_particle_table_schema_order_and_dtypes():
    table = validate_particle_table(_particles([2.0]))
    assert list(table.columns) == list(PARTICLE_COLUMNS)
    assert table["label"].dtype == np.int64 and table["shape_cluster"].dtype == np.int64
    assert len(SHAPE_CLASSES) == 11 and math.isnan(table["confidence"].iloc[0])
    assert isinstance(pd.DataFrame(), pd.DataFrame)


def test_recipe_json_schema_is_versioned(tmp_path):
    from nc_synthmodel.io import read_recipes, write_recipes

    path = write_recipes([Recipe.model_validate(recipe_dict())], tmp_path / "r.json")
    text = path.read_text()
    assert '"schema": "nc-recipes"' in text and '"schema_version": "1.0"' in text
    assert read_recipes(path).recipes[0].model_dump() == validate_recipe(recipe_dict()).model_dump()
