"""Tests of nc_synthmodel.models: the synthesis transformer, its save format, registry and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from nc_synthmodel.cli import main
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.evaluation import cross_validate, paper_folds
from nc_synthmodel.io import write_recipes
from nc_synthmodel.models import ModelFormatError, SynthesisTransformer, make_model, model_names

NAMES = ["PbSe", "CdSe", "PbO", "CdO", "Se", "OLA", "OA", "ODE", "PbO@OA", "CdO@OA"]
ROLES = {"PbO": "precursor", "CdO": "precursor", "Se": "precursor", "OLA": "ligand", "OA": "ligand", "ODE": "solvent"}
TINY = dict(d_model=16, n_layers=1, n_heads=2, dim_feedforward=32, dropout=0.0, batch_size=16, n_threads=1, augment_copies=3)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return DescriptorTable(NAMES, rng.normal(size=(len(NAMES), 6)).astype(np.float32))


def _recipe(i, temp, lead, oa, size, n, shape="sphere"):
    chemicals = [("PbO" if lead else "CdO", 1.0), ("Se", 1.0), ("OA", oa), ("ODE", 10.0)]
    return Recipe(
        id=str(i),
        product=Chemical(name="PbSe" if lead else "CdSe", role="product"),
        chemicals=[Chemical(name=c, amount_mmol=a, role=ROLES[c]) for c, a in chemicals],
        conditions=Conditions(injection_temp_c=temp, reaction_temp_c=temp, time_min=5.0),
        outcome=Outcome(success=False) if size is None else Outcome(size_nm=size, n_particles=n, shape=shape),
    )


@pytest.fixture(scope="module")
def toy():
    """Size grows with temperature; lead products are cubes, cadmium ones spheres; some rows solid."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(120):
        lead = i % 2 == 0
        temp = float(rng.uniform(100, 250))
        size = 2.0 + temp / 25.0 + (2.0 if lead else 0.0)
        out.append(_recipe(i, temp, lead, float(rng.uniform(1, 5)), size, 400 if i % 3 == 0 else 50, "cube" if lead else "sphere"))
    return out


@pytest.fixture(scope="module")
def failed():
    rng = np.random.default_rng(2)
    return [_recipe(f"f{i}", float(rng.uniform(20, 60)), i % 2 == 0, 30.0, None, None) for i in range(40)]


@pytest.fixture(scope="module")
def fitted(table, toy, failed):
    model = SynthesisTransformer(table, pretrain_epochs=15, finetune_epochs=15, learning_rate=3e-3, **TINY)
    return model.fit(toy, failed_recipes=failed)


def test_learns_size_shape_and_success(fitted, toy, failed):
    y = np.array([r.outcome.size_nm for r in toy])
    pred = fitted.predict(toy)
    assert pred.shape == (len(toy),) and np.isfinite(pred).all()
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    outcomes = fitted.predict_outcomes(toy + failed)
    assert set(outcomes[0]) == {"id", "size_nm", "shape", "shape_probabilities", "success_probability"}
    assert all(abs(sum(o["shape_probabilities"].values()) - 1) < 1e-5 for o in outcomes)
    shapes = [o["shape"] for o in outcomes[: len(toy)]]
    assert np.mean([s == r.outcome.shape for s, r in zip(shapes, toy)]) > 0.9
    success = np.array([o["success_probability"] for o in outcomes])
    assert success[: len(toy)].mean() > success[len(toy) :].mean() + 0.3


def test_augmentation_and_history(fitted, toy):
    assert fitted.n_copies_ > len(toy)  # every toy recipe has a PbO@OA or CdO@OA pair
    assert len(fitted.history_["pretrain"]) == 15 and len(fitted.history_["finetune"]) == 15
    assert "val_MAE" in fitted.history_["finetune"][0]  # 10 % of the 40 solid rows held out
    assert 0 <= fitted.best_epoch_["finetune"] < 15


def test_augmented_fine_tune_stage(table, toy, monkeypatch, tmp_path):
    from nc_synthmodel.models import trainer

    rows, real = [], trainer._Batches

    def spy(sets, *args, **kwargs):  # the rows of every training epoch
        rows.append(sum(len(s) for s in sets))
        return real(sets, *args, **kwargs)

    monkeypatch.setattr(trainer, "_Batches", spy)
    params = dict(pretrain_epochs=0, finetune_epochs=2, validation_fraction=0.0, **TINY)
    plain = SynthesisTransformer(table, **params).fit(toy)  # the paper's stage only: no pretraining, no copies
    assert plain.n_copies_ == 0 and rows == [len(toy)] * 2
    rows.clear()
    model = SynthesisTransformer(table, augment_stages="finetune", **params).fit(toy)
    assert model.n_copies_ > len(toy) and rows == [2 * len(toy)] * 2  # one fresh copy per recipe and epoch
    rows.clear()
    both = SynthesisTransformer(table, **{**params, "pretrain_epochs": 1, "augment_stages": "both"}).fit(toy)
    assert both.n_copies_ > 0 and rows == [2 * len(toy)] * 3
    assert SynthesisTransformer.load(model.save(tmp_path / "m")).augment_stages == "finetune"
    with pytest.raises(ValueError, match="augment_stages"):
        SynthesisTransformer(table, augment_stages="all", **params).fit(toy)


def test_without_failed_recipes_success_is_unknown(table, toy):
    model = SynthesisTransformer(table, pretrain_epochs=0, finetune_epochs=2, validation_fraction=0.0, **TINY).fit(toy)
    assert not model.has_success_
    assert model.predict_outcomes(toy[:2])[0]["success_probability"] is None
    assert "val_MAE" not in model.history_["finetune"][0]
    assert model.best_epoch_["finetune"] == 1


def test_tolerance_band_costs_nothing(table):
    model = SynthesisTransformer(table, **TINY)
    model.target_mean_, model.target_std_ = 0.0, 1.0
    huber = torch.nn.HuberLoss(delta=1.0, reduction="none")
    size = torch.tensor([10.0, 10.0, 10.0])
    batch = {"size": size, "n_particles": torch.tensor([50, 50, 400])}
    pred = torch.log(torch.tensor([11.0, 13.0, 11.0]))  # +10 % (few particles), +30 %, +10 % (solid)
    loss = model._size_loss(huber, pred, batch, None)
    expected = (huber(pred[1:], torch.log(size[1:]))).sum() / 3
    assert torch.isclose(loss, expected)


def test_finetune_size_limit_masks_large(table):
    model = SynthesisTransformer(table, **TINY)
    model.target_mean_, model.target_std_ = 0.0, 1.0
    huber = torch.nn.HuberLoss(delta=1.0, reduction="none")
    batch = {"size": torch.tensor([50.0, 100.0]), "n_particles": torch.tensor([400, 400])}
    assert float(model._size_loss(huber, torch.zeros(2), batch, 20.0)) == 0.0


@pytest.fixture(scope="module")
def paper_style(table, toy):
    """The authors' training choices: conditions in every token, nm target, weight EMA."""
    model = SynthesisTransformer(
        table,
        pretrain_epochs=5,
        finetune_epochs=25,
        learning_rate=3e-3,
        condition_tokens=True,
        target_scale="linear",
        ema_decay=0.9,
        validation_fraction=0.0,
        **TINY,
    )
    return model.fit(toy)


def test_paper_style_options_learn_and_round_trip(paper_style, toy, tmp_path):
    y = np.array([r.outcome.size_nm for r in toy])
    pred = paper_style.predict(toy)
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    assert paper_style.target_mean_ == pytest.approx(np.median(y))  # robust scaling of nm
    assert paper_style.net_.embed.in_features == paper_style.encoder_.token_dim + 4
    loaded = SynthesisTransformer.load(paper_style.save(tmp_path / "m"))
    assert (loaded.condition_tokens, loaded.target_scale, loaded.ema_decay) == (True, "linear", 0.9)
    np.testing.assert_allclose(loaded.predict(toy), pred, rtol=1e-5)


def test_ema_weights_are_what_the_model_keeps(table, toy):
    """With EMA the kept weights are the average, not the last optimiser step."""
    kwargs = dict(pretrain_epochs=0, finetune_epochs=3, learning_rate=1e-2, validation_fraction=0.0, **TINY)
    plain = SynthesisTransformer(table, **kwargs).fit(toy)
    averaged = SynthesisTransformer(table, ema_decay=0.5, **kwargs).fit(toy)
    slow = SynthesisTransformer(table, ema_decay=0.999, **kwargs).fit(toy)
    # same seed and batches: decay 0.5 stays near the last step, 0.999 near the initial weights
    first = plain.net_.embed.weight.detach()
    assert not torch.allclose(first, averaged.net_.embed.weight)
    assert (averaged.net_.embed.weight - first).abs().mean() < (slow.net_.embed.weight - first).abs().mean()


def test_eval_set_is_monitored_without_changing_training(table, toy):
    """fit(eval_set=...) scores held-out recipes every few epochs; the fitted model is the same."""
    kwargs = dict(pretrain_epochs=2, finetune_epochs=5, learning_rate=1e-2, validation_fraction=0.0, ema_decay=0.9, **TINY)
    train, held = toy[:90], toy[90:]
    truth = np.array([r.outcome.size_nm for r in held])
    plain = SynthesisTransformer(table, **kwargs).fit(train)
    watched = SynthesisTransformer(table, **kwargs).fit(train, eval_set=(held, truth), eval_every=2)
    np.testing.assert_array_equal(plain.predict(held), watched.predict(held))
    assert plain.eval_history_ == []
    assert [(e["stage"], e["epoch"]) for e in watched.eval_history_] == [
        ("pretrain", 1),
        ("finetune", 1),
        ("finetune", 3),
        ("finetune", 4),
    ]  # every 2nd epoch and each stage's last
    last = watched.eval_history_[-1]
    np.testing.assert_allclose(last["size_nm"], watched.predict(held), rtol=1e-5)  # the kept (EMA) weights
    assert last["MAE"] == pytest.approx(np.mean(np.abs(watched.predict(held) - truth)), rel=1e-5)
    with pytest.raises(ValueError, match="eval_every"):
        SynthesisTransformer(table, **kwargs).fit(train, eval_set=(held, truth), eval_every=0)
    with pytest.raises(ValueError, match="eval_set"):
        SynthesisTransformer(table, **kwargs).fit(train, eval_set=(held, truth[:-1]))


def test_linear_target_floors_negative_sizes(table):
    model = SynthesisTransformer(table, target_scale="linear", **TINY)
    model.target_mean_, model.target_std_ = 5.0, 2.0
    assert model._size_nm(torch.tensor([1.0, -10.0])).tolist() == pytest.approx([7.0, 0.1])


def test_models_saved_before_the_new_options_still_load(fitted, toy, tmp_path):
    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    for key in ("condition_tokens", "target_scale", "ema_decay"):
        del config["params"][key]
    (tmp_path / "m" / "model.json").write_text(json.dumps(config))
    loaded = SynthesisTransformer.load(tmp_path / "m")
    assert (loaded.condition_tokens, loaded.target_scale, loaded.ema_decay) == (False, "log", None)
    np.testing.assert_allclose(loaded.predict(toy), fitted.predict(toy), rtol=1e-5)


def test_padding_is_trimmed_without_changing_predictions(fitted, toy):
    """Real tokens come first, so a batch can drop all-padding columns: same outputs either way."""
    from nc_synthmodel.models import _Compact

    vocabulary, vectors = {}, []
    data = _Compact(fitted.encoder_, toy[:20], vocabulary, vectors)
    n_real = data.mask.sum(axis=1)
    assert all(data.mask[i, :k].all() and not data.mask[i, k:].any() for i, k in enumerate(n_real))
    matrix = torch.from_numpy(np.stack(vectors))
    with torch.no_grad():
        idx = torch.from_numpy(data.index)
        full = fitted.net_(torch.from_numpy(data.prefix), matrix[idx], torch.from_numpy(data.mask), torch.from_numpy(data.conditions))[0]
    trimmed = fitted._predict_compact(fitted.net_, data, matrix, torch.device("cpu"))["size_nm"]
    np.testing.assert_allclose(trimmed, fitted._size_nm(full).numpy(), rtol=1e-5)


def test_batches_group_rows_by_length_and_cover_every_row(fitted, toy):
    from nc_synthmodel.models import _Batches, _Compact

    vocabulary, vectors = {}, []
    data = _Compact(fitted.encoder_, toy, vocabulary, vectors)
    data.mask[:30, 4:] = False  # shorter rows
    batches = _Batches([data], 16, np.random.default_rng(0), torch.device("cpu"), torch.from_numpy(np.stack(vectors)))
    assert sorted(np.concatenate(batches.batches).tolist()) == list(range(len(toy)))
    widths = [b["mask"].shape[1] for b in batches]
    assert min(widths) < max(widths)  # the short rows got a batch of their own width
    assert all(b["descriptors"].shape[:2] == b["mask"].shape for b in batches)


def test_save_load_round_trip(fitted, table, toy, tmp_path):
    fitted.save(tmp_path / "m", metadata={"note": "test"})
    loaded = SynthesisTransformer.load(tmp_path / "m")  # the table saved beside the weights
    np.testing.assert_allclose(loaded.predict(toy), fitted.predict(toy), rtol=1e-5)
    assert loaded.predict_outcomes(toy[:1])[0]["success_probability"] is not None
    assert loaded.metadata_ == {"note": "test"}


def test_load_rejects_bad_directories(fitted, table, tmp_path):
    with pytest.raises(ModelFormatError, match="model.json missing"):
        SynthesisTransformer.load(tmp_path, table)
    fitted.save(tmp_path / "m")
    other = DescriptorTable(NAMES, np.ones((len(NAMES), 6), np.float32))
    with pytest.raises(ModelFormatError, match="differs from the one the model was trained with"):
        SynthesisTransformer.load(tmp_path / "m", other)
    assert SynthesisTransformer.load(tmp_path / "m", table).encoder_ is not None
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFormatError, match="unreadable weights"):
        SynthesisTransformer.load(tmp_path / "m", table)
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        SynthesisTransformer.load(tmp_path / "m", table)
    (tmp_path / "m" / "model.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ModelFormatError, match="not a nc-synthmodel.SynthesisTransformer"):
        SynthesisTransformer.load(tmp_path / "m", table)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"d_model": 10, "n_heads": 4}, "divisible"),
        ({"pretrain_epochs": 0, "finetune_epochs": 0}, "nothing to train"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_fraction": 0.7}, "validation_fraction"),
        ({"device": "tpu"}, "device"),
        ({"target_scale": "sqrt"}, "target_scale"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_bad_parameters(table, toy, params, message):
    with pytest.raises(ValueError, match=message):
        SynthesisTransformer(table, **{**TINY, **params}).fit(toy)


def test_augment_needs_intermediates(toy):
    plain = DescriptorTable(NAMES[:8], np.ones((8, 6), np.float32))
    with pytest.raises(ValueError, match="intermediates"):
        SynthesisTransformer(plain, **TINY).fit(toy)
    with pytest.raises(NotFittedError):
        SynthesisTransformer(plain, **TINY).predict(toy)


def test_registry_and_cross_validation(table, toy):
    assert {"transformer", "transformer-noaug", "RF", "LSTM"} <= set(model_names())
    assert make_model("transformer-noaug", table).augment is False
    with pytest.raises(ValueError, match="unknown model"):
        make_model("SVM", table)
    model = make_model("transformer", table, pretrain_epochs=1, finetune_epochs=1, **TINY)
    assert clone(model).get_params()["d_model"] == 16
    folds = paper_folds(toy, n_splits=2)
    result = cross_validate(lambda: clone(model), toy, folds, name="transformer")
    assert len(result.y_pred) == sum(len(v) for _, v in folds)
    assert result.eval_histories is None
    monitored = cross_validate(lambda: clone(model), toy, folds, name="transformer", monitor_every=1)
    np.testing.assert_array_equal(monitored.y_pred, result.y_pred)  # monitoring changes nothing
    assert len(monitored.eval_histories) == 2
    for (_, val), history in zip(folds, monitored.eval_histories):
        assert [e["stage"] for e in history] == ["pretrain", "finetune"] and len(history[-1]["size_nm"]) == len(val)
    parallel = cross_validate(lambda: clone(model), toy, folds, name="transformer", monitor_every=1, n_jobs=2)
    np.testing.assert_allclose(parallel.y_pred, result.y_pred, rtol=1e-6)  # folds in worker processes: same models
    np.testing.assert_array_equal(parallel.index, result.index)
    assert [len(h) for h in parallel.eval_histories] == [len(h) for h in monitored.eval_histories]
    with pytest.raises(ValueError, match="n_jobs"):
        cross_validate(lambda: clone(model), toy, folds, n_jobs=0)


def test_cli_train_predict_cv(table, toy, failed, tmp_path, capsys):
    write_recipes(toy, tmp_path / "recipes.csv")
    write_recipes(failed, tmp_path / "failed.csv")
    np.savez(tmp_path / "table.npz", names=np.array(table.names, dtype=str), descriptors=table.lookup(list(table.names)))
    common = ["--descriptors", str(tmp_path / "table.npz")]
    sets = [f"--set={k}={v}" for k, v in {**TINY, "pretrain_epochs": 1, "finetune_epochs": 1}.items()]
    assert (
        main(
            ["train", str(tmp_path / "recipes.csv"), "--out", str(tmp_path / "m"), "--failed", str(tmp_path / "failed.csv"), *common, *sets]
        )
        == 0
    )
    assert main(["train", str(tmp_path / "recipes.csv"), "--out", str(tmp_path / "m"), *common, *sets]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "recipes.csv"), "--model", str(tmp_path / "m")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(toy) and "size" in lines[0] and "success" in lines[0]
    assert main(["predict", str(tmp_path / "recipes.csv"), "--model", str(tmp_path / "m"), *common, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(toy)
    assert main(["cv", str(tmp_path / "recipes.csv"), "--model", "DT", *common, "--json", "--predictions", str(tmp_path / "cv.csv")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "DT" and result["pooled"]["MAE"] > 0
    assert (tmp_path / "cv.csv").read_text().startswith("index,fold,true,pred")
    assert main(["cv", str(tmp_path / "recipes.csv"), "--model", "DT", *common, "--json", "--protocol", "composition"]) == 0
    assert json.loads(capsys.readouterr().out)["pooled"]["MAE"] > 0  # leave one product composition out
    assert main(["cv", str(tmp_path / "recipes.csv"), "--set", "bad", *common]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
