"""Tests of nc_synthmodel.baselines: every baseline fits and predicts recipes, quickly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge

from nc_synthmodel.baselines import BASELINES, FlatFeatureRegressor, LSTMRegressor
from nc_synthmodel.models import make_model as make_baseline
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.evaluation import cross_validate, paper_folds

NAMES = ["PbSe", "CdSe", "PbO", "CdO", "Se", "OLA", "OA", "ODE"]
ROLES = {"PbO": "precursor", "CdO": "precursor", "Se": "precursor", "OLA": "ligand", "OA": "ligand", "ODE": "solvent"}
FAST = {
    "DT": {},
    "RF": {"n_estimators": 10},
    "ET": {"n_estimators": 10},
    "GB": {"max_iter": 20},
    "DNN": {"max_iter": 30},
    "LSTM": {"n_epochs": 3, "hidden_size": 8, "embed_size": 8},
}


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return DescriptorTable(NAMES, rng.normal(size=(len(NAMES), 5)).astype(np.float32))


@pytest.fixture(scope="module")
def toy():
    """Recipes whose size grows with the reaction temperature; a few unknown sizes."""
    rng = np.random.default_rng(1)
    recipes = []
    for i in range(80):
        lead = i % 2 == 0
        temp = float(rng.uniform(100, 250))
        size = 2.0 + temp / 25.0 + (1.0 if lead else 0.0)
        chemicals = [("PbO" if lead else "CdO", float(rng.uniform(0.5, 2))), ("Se", 1.0), ("OA", float(rng.uniform(1, 5)))]
        if i % 3 == 0:
            chemicals.append(("ODE", 20.0))
        recipes.append(
            Recipe(
                id=str(i),
                product=Chemical(name="PbSe" if lead else "CdSe", role="product"),
                chemicals=[Chemical(name=n, amount_mmol=a, role=ROLES[n]) for n, a in chemicals],
                conditions=Conditions(injection_temp_c=temp, reaction_temp_c=temp, time_min=float(rng.uniform(1, 60))),
                outcome=Outcome(size_nm=None if i % 10 == 9 else size, n_particles=int(rng.choice([50, 400])), shape="sphere"),
            )
        )
    return recipes


def test_boosting_leaf_settings_default_to_scikit_learns(table, toy):
    from sklearn.ensemble import HistGradientBoostingRegressor

    preset = make_baseline("GB", table).estimator
    default = HistGradientBoostingRegressor()
    assert (preset.min_samples_leaf, preset.max_leaf_nodes) == (default.min_samples_leaf, default.max_leaf_nodes)
    small = make_baseline("GB", table, max_iter=20, min_samples_leaf=3, max_leaf_nodes=15)
    assert (small.estimator.min_samples_leaf, small.estimator.max_leaf_nodes) == (3, 15)
    assert not np.allclose(small.fit(toy[:60]).predict(toy[60:]), make_baseline("GB", table, max_iter=20).fit(toy[:60]).predict(toy[60:]))


def test_registry_names():
    assert set(BASELINES) == {"DT", "RF", "ET", "GB", "DNN", "LSTM"}
    with pytest.raises(ValueError, match="unknown model"):
        make_baseline("SVM", None)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few MLP iterations only
@pytest.mark.parametrize("name", sorted(FAST))
def test_every_baseline_fits_and_predicts_recipes(name, table, toy):
    model = make_baseline(name, table, **FAST[name])
    with pytest.raises(NotFittedError):
        model.predict(toy[:2])
    assert model.fit(toy[:60]) is model
    assert model.n_train_ == sum(r.outcome.size_nm is not None for r in toy[:60])
    pred = model.predict(toy[60:])
    assert pred.shape == (20,) and pred.dtype == np.float64
    assert np.isfinite(pred).all() and (pred > 0).all()  # log target: sizes stay positive
    assert model.predict([]).shape == (0,)


def test_tree_learns_the_toy_relation(table, toy):
    model = make_baseline("RF", table, n_estimators=30).fit(toy[:60])
    known = [r for r in toy[60:] if r.outcome.size_nm is not None]
    truth = np.array([r.outcome.size_nm for r in known])
    assert np.mean(np.abs(model.predict(known) - truth)) < 1.0  # sizes span ~6..13 nm


def test_flat_regressor_is_a_scikit_learn_estimator(table, toy):
    model = FlatFeatureRegressor(table, Ridge(alpha=1.0), log_target=False)
    params = model.get_params()
    assert params["log_target"] is False and isinstance(params["estimator"], Ridge)
    twin = clone(model)
    assert twin.get_params()["log_target"] is False
    y = np.array([np.nan if r.outcome.size_nm is None else r.outcome.size_nm for r in toy])
    model.fit(toy, y)
    assert model.n_features_in_ == 4 + 3 * 5 + 9  # 5 descriptor dims: the PCA keeps at most the table's dim
    assert 0.5 < model.score([r for r in toy if r.outcome.size_nm is not None], y[np.isfinite(y)]) <= 1.0


def test_lstm_is_reproducible_and_leaves_the_global_rng_alone(table, toy):
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = LSTMRegressor(table, n_epochs=2, hidden_size=8, embed_size=8, random_state=3).fit(toy[:40])
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = LSTMRegressor(table, n_epochs=2, hidden_size=8, embed_size=8, random_state=3).fit(toy[:40])
    np.testing.assert_array_equal(a.predict(toy[40:]), b.predict(toy[40:]))
    assert len(a.loss_curve_) == 2
    # without the tolerance, and in nm, it still trains
    c = LSTMRegressor(table, n_epochs=2, hidden_size=8, embed_size=8, tolerance=None, log_target=False).fit(toy[:40])
    assert np.isfinite(c.predict(toy[40:])).all()


def test_baselines_run_through_the_cv_harness(table, toy):
    folds = [(train, val) for train, val in paper_folds(toy, n_splits=3, max_size_nm=100.0)]
    result = cross_validate(lambda: make_baseline("DT", table), toy, folds, name="DT")
    assert len(result.y_pred) == sum(len(v) for _, v in folds)
    assert result.pooled["MAE"] < 3.0


def test_a_real_subset(gu2025):
    """DT and a 2-epoch LSTM on 300 real recipes (products without descriptors included)."""
    from nc_synthmodel.io import read_recipes, read_roles

    roles = read_roles(gu2025 / "chemical_abbreviations.xlsx")
    recipes = read_recipes(gu2025 / "recipes.csv", roles=roles).raise_for_errors().recipes
    table = DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz")
    subset = recipes[:250] + [r for r in recipes if r.product.name == "Cs3FeCl5"] + recipes[-49:]
    train, test = subset[::2], subset[1::2]
    for name, params in (("DT", {}), ("LSTM", {"n_epochs": 2})):
        pred = make_baseline(name, table, **params).fit(train).predict(test)
        assert pred.shape == (len(test),) and np.isfinite(pred).all()


# ------------------------------------------------------------------ the paper protocol on the real data


@pytest.fixture(scope="module")
def gu(gu2025):
    from nc_synthmodel.io import read_recipes, read_roles

    roles = read_roles(gu2025 / "chemical_abbreviations.xlsx")
    recipes = read_recipes(gu2025 / "recipes.csv", roles=roles).raise_for_errors().recipes
    return recipes, DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz")


def test_decision_tree_on_the_paper_folds(gu):
    """Trained on recipes <= 20 nm (the authors' fine-tuning data), DT matches the paper's 2.04 nm."""
    recipes, table = gu
    folds = paper_folds(recipes, train_max_size_nm=20.0)
    result = cross_validate(lambda: make_baseline("DT", table), recipes, folds, name="DT")
    assert result.fold_mean["MAE"] == pytest.approx(2.01, abs=0.15)  # measured 2.007


@pytest.mark.slow
def test_random_forest_on_the_paper_folds(gu, gu2025):
    from nc_synthmodel.evaluation import paired_comparison, read_paper_predictions

    recipes, table = gu
    folds = paper_folds(recipes, train_max_size_nm=20.0)
    result = cross_validate(lambda: make_baseline("RF", table), recipes, folds, name="RF")
    assert result.fold_mean["MAE"] < 1.65 and result.fold_mean["R2"] > 0.65  # measured 1.542, 0.702
    true, paper = read_paper_predictions(gu2025 / "paper_cv_size_predictions.csv")
    np.testing.assert_array_equal(result.y_true, true)
    comparison = paired_comparison(result.y_pred, paper, true, n_boot=2000)
    assert comparison["mean_abs_error_diff"] > 0  # the paper's transformer is better than RF
