"""Tests of nc_synthmodel.encoding: token layout, masks, scaling, JSON, flat features."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.descriptors import DescriptorTable, UnknownChemicalError
from nc_synthmodel.encoding import (
    CONDITION_NAMES,
    RecipeEncoder,
    UnknownProductError,
    flat_feature_names,
    flat_features,
)

NAMES = ["PbSe", "PbO", "Se", "OLA", "OA", "ODE", "TOP", "CdSe", "CdO", "PbO@OLA"]
DIM = 6


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    return DescriptorTable(NAMES, rng.normal(size=(len(NAMES), DIM)).astype(np.float32), source="test")


def make_recipe(recipe_id, product, chemicals, t_inj=140.0, t_react=150.0, rate=0.0, time_min=5.0, outcome=None):
    roles = {
        "PbO": "precursor",
        "Se": "precursor",
        "CdO": "precursor",
        "TOP": "precursor",
        "OLA": "ligand",
        "OA": "ligand",
        "ODE": "solvent",
    }
    return Recipe(
        id=recipe_id,
        product=Chemical(name=product, role="product"),
        chemicals=[Chemical(name=n, amount_mmol=a, role=roles.get(n, "other")) for n, a in chemicals],
        conditions=Conditions(injection_temp_c=t_inj, reaction_temp_c=t_react, heating_rate_c_per_min=rate, time_min=time_min),
        outcome=outcome if outcome is not None else Outcome(size_nm=5.0, n_particles=400, shape="sphere"),
    )


@pytest.fixture
def recipes():
    return [
        make_recipe("1", "PbSe", [("PbO", 2.0), ("Se", 1.0), ("OLA", 5.0), ("ODE", 20.0)], 140, 150, 0, 5),
        make_recipe(
            "2",
            "PbSe",
            [("PbO", 1.0), ("Se", 1.0), ("OA", 3.0)],
            180,
            180,
            0,
            60,
            outcome=Outcome(size_nm=None, n_particles=None, shape="cube"),
        ),
        make_recipe(
            "3",
            "CdSe",
            [("CdO", 0.5), ("Se", 0.25), ("TOP", 4.0), ("OA", 2.0), ("ODE", 10.0)],
            25,
            240,
            10,
            30,
            outcome=Outcome(size_nm=3.2, n_particles=50, shape="rod"),
        ),
        make_recipe("4", "CdSe", [("CdO", 0.1), ("Se", 0.1)], 25, 300, 5, 1440, outcome=Outcome(success=False)),
    ]


def test_shapes_mask_and_token_layout(table, recipes):
    encoder = RecipeEncoder(table, max_chemicals=6, n_flat_components=3)
    encoded = encoder.fit(recipes).transform(recipes)
    assert encoder.n_tokens == 7 and encoder.token_dim == 2 + DIM
    assert encoded.tokens.shape == (4, 7, 2 + DIM) and encoded.tokens.dtype == np.float32
    assert encoded.mask.shape == (4, 7) and encoded.mask.dtype == bool
    np.testing.assert_array_equal(encoded.mask.sum(axis=1), [5, 4, 6, 3])
    assert encoded.mask[:, 0].all()
    # product first, flag 1, amount 0, its descriptor
    np.testing.assert_array_equal(encoded.tokens[:, 0, 0], 1.0)
    np.testing.assert_array_equal(encoded.tokens[:, 0, 1], 0.0)
    np.testing.assert_array_equal(encoded.tokens[0, 0, 2:], table.get("PbSe"))
    np.testing.assert_array_equal(encoded.tokens[2, 0, 2:], table.get("CdSe"))
    # reactants in slot order, flag 0
    assert encoded.tokens[:, 1:, 0].max() == 0.0
    np.testing.assert_array_equal(encoded.tokens[0, 3, 2:], table.get("OLA"))
    assert list(encoded.names[0, :5]) == ["PbSe", "PbO", "Se", "OLA", "ODE"] and encoded.names[0, 5] == ""
    np.testing.assert_array_equal(encoded.role_index[0, :6], [0, 1, 1, 2, 3, -1])
    # padding is entirely zero
    assert not encoded.tokens[~encoded.mask].any()
    assert encoded.conditions.shape == (4, 4) and encoded.conditions.dtype == np.float32


def test_targets(table, recipes):
    encoded = RecipeEncoder(table, n_flat_components=None).fit(recipes).transform(recipes)
    np.testing.assert_array_equal(encoded.size_nm, [5.0, np.nan, 3.2, np.nan])
    np.testing.assert_array_equal(encoded.n_particles, [400, -1, 50, -1])
    np.testing.assert_array_equal(encoded.shape_index, [9, 1, 7, -1])  # sphere, cube, rod, failed
    np.testing.assert_array_equal(encoded.success, [1, 1, 1, 0])
    assert list(encoded.ids) == ["1", "2", "3", "4"]
    sub = encoded.subset([2, 0])
    assert list(sub.ids) == ["3", "1"] and sub.tokens.shape[0] == 2 and len(sub) == 2


def test_scaling_is_robust_on_log_amounts_and_log1p_time(table, recipes):
    encoder = RecipeEncoder(table).fit(recipes)
    amounts = np.log([c.amount_mmol for r in recipes for c in r.chemicals])
    q1, median, q3 = np.percentile(amounts, [25, 50, 75])
    assert math.isclose(encoder.amount_center_, median) and math.isclose(encoder.amount_scale_, q3 - q1)
    encoded = encoder.transform(recipes)
    expected = (math.log(2.0) - median) / (q3 - q1)
    assert math.isclose(float(encoded.tokens[0, 1, 1]), expected, rel_tol=1e-6)

    assert CONDITION_NAMES == ("injection_temp_c", "reaction_temp_c", "time_min", "heating_rate_c_per_min")
    raw = np.array([[140, 150, 5, 0], [180, 180, 60, 0], [25, 240, 30, 10], [25, 300, 1440, 5]], dtype=float)
    raw[:, 2:] = np.log1p(raw[:, 2:])
    q1, median, q3 = np.percentile(raw, [25, 50, 75], axis=0)
    np.testing.assert_allclose(encoder.conditions_center_, median)
    np.testing.assert_allclose(encoded.conditions, (raw - median) / (q3 - q1), rtol=1e-5)
    # scaling learned on the fit recipes only: transforming others reuses it
    other = RecipeEncoder(table).fit(recipes[:2])
    assert other.amount_center_ != encoder.amount_center_


def test_constant_condition_gets_scale_one(table, recipes):
    hot = [r.model_copy(update={"conditions": r.conditions.model_copy(update={"heating_rate_c_per_min": 0.0})}) for r in recipes]
    encoder = RecipeEncoder(table).fit(hot)
    assert encoder.conditions_scale_[3] == 1.0 and encoder.conditions_center_[3] == 0.0


def test_other_transforms_and_scalers(table, recipes):
    raw = RecipeEncoder(table, amount_transform="none", amount_scaler="none").fit(recipes).transform(recipes)
    assert raw.tokens[0, 1, 1] == 2.0 and raw.tokens[0, 4, 1] == 20.0
    standard = RecipeEncoder(table, amount_transform="log1p", amount_scaler="standard").fit(recipes)
    values = np.log1p([c.amount_mmol for r in recipes for c in r.chemicals])
    assert math.isclose(standard.amount_center_, values.mean()) and math.isclose(standard.amount_scale_, values.std())
    with pytest.raises(ValueError, match="amount_transform"):
        RecipeEncoder(table, amount_transform="sqrt").fit(recipes)


def test_json_round_trip(table, recipes, tmp_path):
    encoder = RecipeEncoder(table, max_chemicals=6, n_flat_components=3).fit(recipes)
    document = json.loads(json.dumps(encoder.to_dict()))
    again = RecipeEncoder.from_dict(document, table)
    a, b = encoder.transform(recipes), again.transform(recipes)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.conditions, b.conditions)
    np.testing.assert_allclose(flat_features(a), flat_features(b))
    assert again.max_chemicals == 6
    path = encoder.save(tmp_path / "encoder.json")
    loaded = RecipeEncoder.load(path, table)
    np.testing.assert_array_equal(loaded.transform(recipes).tokens, a.tokens)
    # the dimension of the table is checked
    small = DescriptorTable(NAMES, np.zeros((len(NAMES), 3)))
    with pytest.raises(ValueError, match="dimension"):
        RecipeEncoder.from_dict(document, small)
    with pytest.raises(ValueError, match="not a RecipeEncoder"):
        RecipeEncoder.from_dict({"format": "other"}, table)


def test_not_fitted_and_too_many_chemicals(table, recipes):
    with pytest.raises(RuntimeError, match="not fitted"):
        RecipeEncoder(table).transform(recipes)
    with pytest.raises(ValueError, match="max_chemicals=3"):
        RecipeEncoder(table, max_chemicals=3).fit(recipes)


def test_unknown_reactant_is_an_error_listing_it(table, recipes):
    encoder = RecipeEncoder(table).fit(recipes)
    bad = make_recipe("9", "PbSe", [("PbO", 1.0), ("Unobtainium", 1.0), ("ola", 2.0)])
    with pytest.raises(UnknownChemicalError) as info:
        encoder.transform([bad])
    assert info.value.names == ["Unobtainium", "ola"]
    assert "did you mean 'OLA'" in str(info.value)
    with pytest.raises(UnknownChemicalError):
        RecipeEncoder(table, unknown_product="zeros").fit(recipes + [bad])


def test_unknown_product_raises_or_is_zero(table, recipes):
    odd = make_recipe("9", "Cs3FeCl5", [("PbO", 1.0), ("Se", 1.0)])
    with pytest.raises(UnknownProductError) as info:
        RecipeEncoder(table).fit(recipes + [odd])
    assert info.value.names == ["Cs3FeCl5"] and 'unknown_product="zeros"' in str(info.value)
    encoder = RecipeEncoder(table, unknown_product="zeros").fit(recipes + [odd])
    encoded = encoder.transform([odd])
    assert encoded.mask[0, 0] and encoded.tokens[0, 0, 0] == 1.0
    assert not encoded.tokens[0, 0, 2:].any()
    # a fallback descriptor takes precedence
    fallback = DescriptorTable(NAMES, table.lookup(NAMES), fallback=lambda name: np.full(DIM, 0.5))
    encoded = RecipeEncoder(fallback).fit(recipes + [odd]).transform([odd])
    np.testing.assert_array_equal(encoded.tokens[0, 0, 2:], 0.5)


def test_augmented_intermediates_are_encoded(table, recipes):
    encoder = RecipeEncoder(table).fit(recipes)
    augmented = make_recipe("1-aug0", "PbSe", [("Se", 1.0), ("OLA", 3.0), ("ODE", 20.0), ("PbO@OLA", 2.0)])
    encoded = encoder.transform([augmented])
    np.testing.assert_array_equal(encoded.tokens[0, 4, 2:], table.get("PbO@OLA"))


def test_flat_features(table, recipes):
    encoder = RecipeEncoder(table, n_flat_components=3).fit(recipes)
    encoded = encoder.transform(recipes)
    features = flat_features(encoded)
    names = flat_feature_names(encoded)
    assert features.shape == (4, 4 + 3 * 3 + 9) == (4, len(names))
    assert np.isfinite(features).all()
    np.testing.assert_allclose(features[:, :4], encoded.conditions, rtol=1e-6)
    row = dict(zip(names, features[0]))
    assert row["precursor_count"] == 2 and row["ligand_count"] == 1 and row["solvent_count"] == 1
    assert math.isclose(row["precursor_log1p_mmol"], math.log1p(3.0))
    assert row["n_reactants"] == 4
    # amount-weighted mean: mole fractions of the projected descriptors
    mean, components = encoded.flat_basis
    projected = (table.lookup(["PbO", "Se", "OLA", "ODE"]) - mean) @ components.T
    weights = np.array([2.0, 1.0, 5.0, 20.0]) / 28.0
    np.testing.assert_allclose(features[0, 7:10], weights @ projected, rtol=1e-5)
    np.testing.assert_allclose(features[0, 10:13], projected.mean(axis=0), rtol=1e-5)
    # full descriptors without PCA
    plain = RecipeEncoder(table, n_flat_components=None).fit(recipes).transform(recipes)
    assert flat_features(plain).shape == (4, 4 + 3 * DIM + 9)


# ------------------------------------------------------------------ the Gu et al. data


@pytest.fixture(scope="module")
def gu(gu2025):
    from nc_synthmodel.io import read_recipes, read_roles

    roles = read_roles(gu2025 / "chemical_abbreviations.xlsx")
    recipes = read_recipes(gu2025 / "recipes.csv", roles=roles).raise_for_errors().recipes
    return recipes, DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz")


def test_gu_encoding(gu):
    recipes, table = gu
    with pytest.raises(UnknownProductError) as info:
        RecipeEncoder(table).fit(recipes)
    assert len(info.value.names) == 15
    encoder = RecipeEncoder(table, unknown_product="zeros").fit(recipes)
    encoded = encoder.transform(recipes)
    assert encoded.tokens.shape == (3489, 14, 514)
    assert int((~encoded.tokens[:, 0, 2:].any(axis=1)).sum()) == 17  # the recipes of the 15 missing products
    amounts = encoded.tokens[:, 1:, 1][encoded.mask[:, 1:]]
    assert -5 < amounts.min() and amounts.max() < 3  # ln + robust keeps 3.4e-7 .. 5.6e4 mmol in range
    assert np.abs(encoded.conditions).max() < 5
    assert int(np.isnan(encoded.size_nm).sum()) == 0 and int((encoded.n_particles == -1).sum()) == 1307
    assert flat_features(encoded).shape == (3489, 4 + 3 * 32 + 9)
