"""SynthesisForest: the tree-ensemble model (size, shape, success), saved as arrays and loaded without pickle."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from nc_synthmodel.contract import SHAPE_CLASSES, Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.features.flat import flat_features
from nc_synthmodel.models import ModelFormatError, SynthesisForest, load_model, make_model
from nc_synthmodel.models.forest import combine_members, fit_combination
from nc_synthmodel.models.trees import TreeArrays, tree_arrays

NAMES = ["PbSe", "CdSe", "PbO", "CdO", "Se", "OLA", "OA", "ODE"]
ROLES = {"PbO": "precursor", "CdO": "precursor", "Se": "precursor", "OLA": "ligand", "OA": "ligand", "ODE": "solvent"}
FAST = {"n_estimators": 12, "gb_max_iter": 15, "classifier_estimators": 12, "inner_folds": 3}


@pytest.fixture(scope="module")
def table():
    return DescriptorTable(NAMES, np.random.default_rng(0).normal(size=(len(NAMES), 5)).astype(np.float32))


def _recipe(i, rng, failed=False):
    lead = i % 2 == 0
    temp = float(rng.uniform(100, 250))
    size = 2.0 + temp / 25.0 + (1.0 if lead else 0.0)
    chemicals = [("PbO" if lead else "CdO", float(rng.uniform(0.5, 2))), ("Se", 1.0), ("OA", float(rng.uniform(1, 5)))]
    return Recipe(
        id=f"{'f' if failed else 'r'}{i}",
        product=Chemical(name="PbSe" if lead else "CdSe", role="product"),
        chemicals=[Chemical(name=n, amount_mmol=a, role=ROLES[n]) for n, a in chemicals],
        conditions=Conditions(injection_temp_c=temp, reaction_temp_c=temp, time_min=float(rng.uniform(1, 60))),
        outcome=None if failed else Outcome(size_nm=size, n_particles=int(rng.choice([50, 400])), shape="sphere" if temp < 180 else "cube"),
    )


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    return [_recipe(i, rng) for i in range(90)], [_recipe(i, rng, failed=True) for i in range(30)]


def test_tree_arrays_predict_what_sklearn_predicts_and_round_trip_without_pickle():
    rng = np.random.default_rng(0)
    X, X_new = rng.random((200, 6)), rng.random((50, 6))
    X_new[0, 2] = np.nan
    y = 3 * X[:, 0] + rng.random(200)
    for estimator, expected in (
        (RandomForestRegressor(15, max_features=1 / 3, random_state=0), lambda e: e.predict(X_new)[:, None]),
        (HistGradientBoostingRegressor(max_iter=30), lambda e: e.predict(X_new)[:, None]),
        (RandomForestClassifier(15, random_state=0), lambda e: e.predict_proba(X_new)),
        (ExtraTreesRegressor(15, max_features=0.5, random_state=0), lambda e: e.predict(X_new)[:, None]),
        (ExtraTreesClassifier(15, random_state=0), lambda e: e.predict_proba(X_new)),
    ):
        classifier = isinstance(estimator, (RandomForestClassifier, ExtraTreesClassifier))
        target = (y > 2).astype(int) + (y > 3) if classifier else y
        estimator.fit(X, target)
        buffer = io.BytesIO()
        np.savez(buffer, **tree_arrays(estimator).to_npz_dict("m/"))
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as arrays:
            trees = TreeArrays.from_npz_dict(arrays, "m/")
        np.testing.assert_allclose(trees.predict(X_new), expected(estimator), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="6 features"):
        trees.predict(X_new[:, :5])


def test_damaged_tree_arrays_are_refused():
    estimator = RandomForestRegressor(3, random_state=0).fit(np.random.default_rng(0).random((30, 2)), np.arange(30.0))
    arrays = tree_arrays(estimator).to_npz_dict("m/")
    arrays["m/left"] = arrays["m/left"].copy()
    arrays["m/left"][0] = 0  # a node pointing at itself would loop forever
    with pytest.raises(ValueError, match="inconsistent"):
        TreeArrays.from_npz_dict(arrays, "m/")
    del arrays["m/value"]
    with pytest.raises(ValueError, match="m/value missing"):
        TreeArrays.from_npz_dict(arrays, "m/")


def test_combinations():
    rng = np.random.default_rng(0)
    y = rng.uniform(2, 12, 300)
    P = np.column_stack([y + rng.normal(0, 0.5, 300), y + rng.normal(0, 3, 300), np.full(300, 7.0)])
    weighted = fit_combination("weighted", P, y)
    assert sum(weighted["weights"]) == pytest.approx(1.0) and weighted["weights"][0] >= 0.7
    stack = fit_combination("stack", P, y)
    assert min(stack["weights"]) >= 0
    assert np.mean(np.abs(combine_members(stack, P) - y)) < np.mean(np.abs(P[:, 1] - y))
    with pytest.raises(ValueError, match="unknown combination"):
        fit_combination("median", P, y)


@pytest.mark.parametrize("size_model", ["RF", "stack"])
def test_forest_predicts_size_shape_success_and_saves_without_pickle(size_model, table, toy, tmp_path):
    recipes, failed = toy
    model = SynthesisForest(table, size_model=size_model, **FAST).fit(recipes[:70], failed_recipes=failed)
    if size_model == "RF":  # the size model is exactly the RF baseline trained on <= 20 nm
        rf = make_model("RF", table, n_estimators=12).fit(recipes[:70])
        np.testing.assert_allclose(model.predict(recipes[70:]), rf.predict(recipes[70:]), rtol=1e-12)
    else:
        assert set(model.combination_) == {"intercept", "weights"} and len(model.combination_["weights"]) == 3
    outcomes = model.predict_outcomes(recipes[70:])
    assert [o["id"] for o in outcomes] == [r.id for r in recipes[70:]]
    for out in outcomes:
        assert out["size_nm"] > 0 and out["shape"] in ("sphere", "cube")
        assert set(out["shape_probabilities"]) == set(SHAPE_CLASSES)
        assert sum(out["shape_probabilities"].values()) == pytest.approx(1.0)
        assert 0.0 <= out["success_probability"] <= 1.0
    hot = [r for r in recipes[70:] if r.conditions.reaction_temp_c > 200]
    assert np.mean([o["shape"] == "cube" for o in model.predict_outcomes(hot)]) > 0.5
    folder = model.save(tmp_path / "forest", metadata={"descriptors": "toy"})
    assert sorted(p.name for p in folder.iterdir()) == ["descriptors.npz", "model.json", "trees.npz"]
    loaded = load_model(folder)
    assert isinstance(loaded, SynthesisForest) and loaded.metadata_ == {"descriptors": "toy"}
    assert loaded.predict_outcomes(recipes[70:]) == outcomes


def test_extra_trees_size_model_with_max_features_saves_and_loads(table, toy, tmp_path):
    recipes, failed = toy
    model = SynthesisForest(table, size_model="ET", max_features=0.5, **FAST).fit(recipes[:70], failed_recipes=failed)
    # the size model is exactly the ET baseline with those features per split, trained on <= 20 nm
    et = make_model("ET", table, n_estimators=12, max_features=0.5).fit(recipes[:70])
    np.testing.assert_allclose(model.predict(recipes[70:]), et.predict(recipes[70:]), rtol=1e-12)
    rf = SynthesisForest(table, size_model="RF", max_features=0.5, **FAST).fit(recipes[:70])
    assert not np.allclose(rf.predict(recipes[70:]), model.predict(recipes[70:]))
    folder = model.save(tmp_path / "et")
    config = json.loads((folder / "model.json").read_text())
    assert config["params"]["size_model"] == "ET" and config["params"]["max_features"] == 0.5
    loaded = load_model(folder)
    assert loaded.size_model == "ET" and loaded.max_features == 0.5
    assert loaded.predict_outcomes(recipes[70:]) == model.predict_outcomes(recipes[70:])
    # a model saved before max_features existed reads the RF preset's 1/3
    del config["params"]["max_features"]
    (folder / "model.json").write_text(json.dumps(config))
    assert load_model(folder).max_features == pytest.approx(1 / 3)
    for bad in (0, 1.5, "sqrt", True):
        with pytest.raises(ValueError, match="max_features"):
            SynthesisForest(table, max_features=bad, **FAST).fit(recipes[:60])


def test_ensemble_members_extra_trees_and_boosting(table, toy, tmp_path):
    recipes, failed = toy
    model = SynthesisForest(table, size_model="weighted", members=["ET", "GB"], max_features=0.5, **FAST)
    model.fit(recipes[:70], failed_recipes=failed)
    assert sorted(model.size_members_) == ["ET", "GB"] and len(model.combination_["weights"]) == 3
    # the ensemble is its weights applied to exactly the ET and GB baselines (trained <= 20 nm) and the mean
    et = make_model("ET", table, n_estimators=12, max_features=0.5).fit(recipes[:70]).predict(recipes[70:])
    gb = make_model("GB", table, max_iter=15).fit(recipes[:70]).predict(recipes[70:])
    P = np.column_stack([et, gb, np.full(len(et), model.train_mean_nm_)])
    np.testing.assert_allclose(model.predict(recipes[70:]), np.maximum(combine_members(model.combination_, P), 0.1), rtol=1e-12)
    # the weights are fitted on the out-of-fold predictions of those members, not of RF
    rf_gb = SynthesisForest(table, size_model="weighted", max_features=0.5, **FAST).fit(recipes[:70])
    assert sorted(rf_gb.size_members_) == ["GB", "RF"]
    folder = model.save(tmp_path / "etgb")
    config = json.loads((folder / "model.json").read_text())
    assert config["params"]["members"] == ["ET", "GB"]
    loaded = load_model(folder)
    assert list(loaded.members) == ["ET", "GB"]
    assert loaded.predict_outcomes(recipes[70:]) == model.predict_outcomes(recipes[70:])
    # a combination with the wrong number of weights is refused, not mispredicted
    config["combination"]["weights"] = config["combination"]["weights"][:2]
    (folder / "model.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="one weight for each"):
        load_model(folder)
    for bad in ("ET", [], ["ET", "ET"], ["SVM"]):
        with pytest.raises(ValueError, match="members"):
            SynthesisForest(table, size_model="stack", members=bad, **FAST).fit(recipes[:60])


def test_blend_is_extra_trees_and_boosting_corrected_by_the_leaf_mates_residuals(table, toy, tmp_path):
    recipes, failed = toy
    train, new = recipes[:70], recipes[70:]
    model = SynthesisForest(table, size_model="blend", max_features=0.5, **FAST).fit(train, failed_recipes=failed)
    assert sorted(model.size_members_) == ["ET", "GB"] and model.blend_weight == 0.75
    # computed here from the scikit-learn baselines: ln ET, ln GB, and per tree the mean in-sample
    # GB ln-residual of the training recipes in the test recipe's ET leaf, averaged over the trees
    et = make_model("ET", table, n_estimators=12, max_features=0.5).fit(train)
    gb = make_model("GB", table, max_iter=15).fit(train)
    y = np.array([r.outcome.size_nm for r in train])
    residual = np.log(y) - np.log(gb.predict(train))
    leaves = et.estimator_.apply(flat_features(et.encoder_.transform(train)))
    new_leaves = et.estimator_.apply(flat_features(et.encoder_.transform(new)))
    twins = np.mean(
        [[residual[leaves[:, t] == leaf].mean() for leaf in new_leaves[:, t]] for t in range(leaves.shape[1])],
        axis=0,
    )
    ln_size = 0.25 * np.log(et.predict(new)) + 0.75 * (np.log(gb.predict(new)) + twins)
    np.testing.assert_allclose(model.predict(new), np.exp(ln_size), rtol=1e-9)
    # weight 0 is the extra trees alone
    only_et = SynthesisForest(table, size_model="blend", blend_weight=0.0, max_features=0.5, **FAST).fit(train)
    np.testing.assert_allclose(only_et.predict(new), et.predict(new), rtol=1e-12)
    # saved and loaded without pickle: the same predictions; a model saved before blend_weight reads 0.75
    folder = model.save(tmp_path / "blend")
    config = json.loads((folder / "model.json").read_text())
    assert config["params"]["size_model"] == "blend" and config["params"]["blend_weight"] == 0.75
    loaded = load_model(folder)
    assert loaded.predict_outcomes(new) == model.predict_outcomes(new)
    del config["params"]["blend_weight"]
    (folder / "model.json").write_text(json.dumps(config))
    assert load_model(folder).blend_weight == 0.75
    # extra trees without the residual column are refused, not mispredicted
    with np.load(folder / "trees.npz", allow_pickle=False) as arrays:
        arrays = dict(arrays)
    arrays["size_ET/value"] = arrays["size_ET/value"][:, :1]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (folder / "trees.npz").write_bytes(buffer.getvalue())
    with pytest.raises(ModelFormatError, match="two outputs"):
        load_model(folder)
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="blend_weight"):
            SynthesisForest(table, size_model="blend", blend_weight=bad, **FAST).fit(train)


def test_a_saved_ensemble_without_members_reads_rf_and_boosting(table, toy, tmp_path):
    model = SynthesisForest(table, size_model="stack", **FAST).fit(toy[0][:60])
    folder = model.save(tmp_path / "old")
    config = json.loads((folder / "model.json").read_text())
    assert config["params"]["members"] is None
    del config["params"]["members"]  # as written before the parameter existed
    (folder / "model.json").write_text(json.dumps(config))
    loaded = load_model(folder)
    assert loaded.members is None and sorted(loaded.size_members_) == ["GB", "RF"]
    np.testing.assert_array_equal(loaded.predict(toy[0][60:]), model.predict(toy[0][60:]))


def test_forest_without_failed_recipes_has_no_success(table, toy):
    model = SynthesisForest(table, **FAST).fit(toy[0][:60])
    assert not model.has_success_ and model.predict_outcomes(toy[0][60:61])[0]["success_probability"] is None


def test_forest_bad_parameters_and_damaged_folders(table, toy, tmp_path):
    with pytest.raises(ValueError, match="size_model"):
        SynthesisForest(table, size_model="SVM").fit(toy[0])
    folder = SynthesisForest(table, **FAST).fit(toy[0][:60]).save(tmp_path / "m")
    config = json.loads((folder / "model.json").read_text())
    config["members"]["size_RF"]["encoder"] = "nonsense"
    (folder / "model.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="damaged model"):
        load_model(folder)
    (folder / "trees.npz").unlink()
    with pytest.raises(ModelFormatError, match="trees.npz missing"):
        SynthesisForest.load(folder)


def test_cli_trains_and_predicts_a_forest(table, toy, tmp_path, capsys):
    from nc_synthmodel.cli import main
    from nc_synthmodel.io import write_recipes

    data = write_recipes(toy[0], tmp_path / "recipes.json")
    failed = write_recipes(toy[1], tmp_path / "failed.json")
    npz = tmp_path / "table.npz"
    np.savez(npz, names=np.array(NAMES), descriptors=table.lookup(NAMES))
    args = [
        "train",
        str(data),
        "--failed",
        str(failed),
        "--descriptors",
        str(npz),
        "--out",
        str(tmp_path / "m"),
        "--kind",
        "forest",
        "--set",
        "n_estimators=5",
        "--set",
        "gb_max_iter=5",
        "--set",
        "classifier_estimators=5",
    ]
    assert main(args + ["--set", "size_model=SVM"]) == 2
    assert "size_model" in capsys.readouterr().err
    assert main(args) == 0
    capsys.readouterr()
    assert main(["predict", str(data), "--model", str(tmp_path / "m"), "--json"]) == 0
    outcomes = json.loads(capsys.readouterr().out)
    assert len(outcomes) == len(toy[0]) and all(0 <= o["success_probability"] <= 1 for o in outcomes)
