"""Tests of the transformer's retrieval tokens (nc_synthmodel.models.retrieval) and trainer speed options."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from nc_synthmodel.contract import SHAPE_CLASSES, Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.models import ModelFormatError, SynthesisTransformer
from nc_synthmodel.models.retrieval import TOKEN_WIDTH, NeighbourBank
from nc_synthmodel.models.trainer import REFERENCE_BATCH, native_bf16, scaled_lr

NAMES = ["PbSe", "CdSe", "PbO", "CdO", "Se", "OA", "ODE", "PbO@OA", "CdO@OA"]
ROLES = {"PbO": "precursor", "CdO": "precursor", "Se": "precursor", "OA": "ligand", "ODE": "solvent"}
TINY = dict(d_model=16, n_layers=1, n_heads=2, dim_feedforward=32, dropout=0.0, batch_size=16, n_threads=1, augment_copies=2)
N_FEATURES = 20  # 4 conditions + 7 descriptor columns + 9 role columns


def _bank_features(x):
    """Rows of 20 flat features whose first column (a condition) is ``x``; the rest zero."""
    f = np.zeros((len(x), N_FEATURES), dtype=np.float32)
    f[:, 0] = x
    return f


def test_bank_tokens_hold_outcome_distance_and_differences():
    bank = NeighbourBank(_bank_features([0.0, 1.0, 3.0, 7.0]), target=[10.0, 11.0, 13.0, 17.0], shape_index=[0, 2, -1, 1])
    tokens = bank.tokens(_bank_features([0.9]), 2)
    assert tokens.shape == (1, 2, TOKEN_WIDTH)
    nearest, second = tokens[0]
    assert (nearest[0], second[0]) == (11.0, 10.0)  # nearest first: x = 1, then x = 0
    assert nearest[1 : 1 + len(SHAPE_CLASSES)].tolist() == [0, 0, 1] + [0] * (len(SHAPE_CLASSES) - 3)
    unit = bank.std[0]  # features are standardised with the bank's own statistics
    assert nearest[1 + len(SHAPE_CLASSES)] == pytest.approx(0.1 / unit / np.sqrt(N_FEATURES), rel=1e-5)
    assert nearest[2 + len(SHAPE_CLASSES)] == pytest.approx(-0.1 / unit, rel=1e-5)  # recipe minus neighbour, condition 0
    unknown_shape = bank.tokens(_bank_features([3.0]), 1)[0, 0]
    assert unknown_shape[0] == 13.0 and not unknown_shape[1 : 1 + len(SHAPE_CLASSES)].any()


def test_bank_never_hands_a_recipe_itself_or_its_group():
    x = [0.0, 0.1, 5.0, 5.1, 9.0]
    bank = NeighbourBank(_bank_features(x), target=[0, 1, 2, 3, 4], shape_index=[-1] * 5)
    own = bank.tokens(_bank_features(x), 1, exclude=np.arange(5))
    assert own[:, 0, 0].tolist() == [1, 0, 3, 2, 3]  # each one's nearest other recipe
    assert own[:, 0, 1 + len(SHAPE_CLASSES)].min() > 0
    groups = ["a", "a", "b", "b", "c"]
    grouped = bank.tokens(_bank_features(x), 2, exclude=np.arange(5), groups=groups, bank_groups=groups)
    picked = grouped[:, :, 0].astype(int)
    assert all(groups[j] != groups[i] for i in range(5) for j in picked[i])
    with pytest.raises(ValueError, match="admissible neighbours"):
        bank.tokens(_bank_features(x), 4, groups=groups, bank_groups=groups)
    with pytest.raises(ValueError, match="groups for"):
        bank.tokens(_bank_features(x), 1, groups=groups[:2], bank_groups=groups)


def test_a_column_constant_over_the_bank_keeps_its_raw_scale():
    """A recipe with a value no bank recipe has (e.g. a new role) gets a finite, modest token, not 1e6."""
    bank = NeighbourBank(_bank_features([0.0, 1.0, 2.0]), target=[1.0, 2.0, 3.0], shape_index=[0, 1, 2])
    q = _bank_features([1.0])
    q[0, -1] = 2.0  # the last role column is 0 in every bank recipe
    token = bank.tokens(q, 1)[0, 0]
    assert token[-1] == pytest.approx(2.0) and np.abs(token).max() < 10


def test_bank_refuses_bad_input_and_rebuilds_from_its_state():
    with pytest.raises(ValueError, match="finite"):
        NeighbourBank(_bank_features([0.0, 1.0]), target=[1.0, np.nan], shape_index=[0, 0])
    with pytest.raises(ValueError, match="at least 2"):
        NeighbourBank(_bank_features([0.0]), target=[1.0], shape_index=[0])
    with pytest.raises(ValueError, match="one row per recipe"):
        NeighbourBank(_bank_features([0.0, 1.0]), target=[1.0, 2.0, 3.0], shape_index=[0, 0])
    bank = NeighbourBank(_bank_features([0.0, 1.0, 2.0]), target=[1.0, 2.0, 3.0], shape_index=[0, 1, 2])
    again = NeighbourBank.from_state(bank.state())
    q = _bank_features([0.4, 1.7])
    np.testing.assert_allclose(again.tokens(q, 2), bank.tokens(q, 2), atol=1e-6)
    with pytest.raises(ValueError, match="missing"):
        NeighbourBank.from_state({"features": bank.state()["features"]})


def _recipe(i, temp, lead, size):
    chemicals = [("PbO" if lead else "CdO", 1.0), ("Se", 1.0), ("OA", 2.0), ("ODE", 10.0)]
    return Recipe(
        id=str(i),
        product=Chemical(name="PbSe" if lead else "CdSe", role="product"),
        chemicals=[Chemical(name=c, amount_mmol=a, role=ROLES[c]) for c, a in chemicals],
        conditions=Conditions(injection_temp_c=temp, reaction_temp_c=temp, time_min=5.0),
        outcome=Outcome(size_nm=size, n_particles=400, shape="cube" if lead else "sphere"),
    )


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return DescriptorTable(NAMES, rng.normal(size=(len(NAMES), 6)).astype(np.float32))


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    return [_recipe(i, float(t), i % 2 == 0, 2.0 + float(t) / 25.0 + 2.0 * (i % 2 == 0)) for i, t in enumerate(rng.uniform(100, 250, 80))]


@pytest.fixture(scope="module")
def retrieving(table, toy):
    model = SynthesisTransformer(
        table, retrieval_k=4, pretrain_epochs=2, finetune_epochs=20, learning_rate=3e-3, validation_fraction=0.0, **TINY
    )
    return model.fit(toy, groups=[f"paper{i // 4}" for i in range(len(toy))])


def test_retrieval_model_reads_its_bank_and_round_trips(retrieving, table, toy, tmp_path):
    y = np.array([r.outcome.size_nm for r in toy])
    pred = retrieving.predict(toy)
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    assert len(retrieving.retrieval_) == len(toy) and retrieving.net_.neighbour_embed.in_features == TOKEN_WIDTH
    loaded = SynthesisTransformer.load(retrieving.save(tmp_path / "m"))
    assert loaded.retrieval_k == 4 and len(loaded.retrieval_) == len(toy)
    np.testing.assert_allclose(loaded.predict(toy), pred, rtol=1e-5)
    # the neighbours' outcomes are read: other outcomes in the bank, other predictions
    loaded.retrieval_.target = loaded.retrieval_.target + 3.0
    assert np.abs(loaded.predict(toy) - pred).max() > 1e-3


def test_saved_retrieval_model_without_its_bank_is_refused(retrieving, tmp_path):
    from safetensors.torch import load_file, save_file

    directory = retrieving.save(tmp_path / "m")
    state = load_file(str(directory / "weights.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("retrieval.")}, str(directory / "weights.safetensors"))
    with pytest.raises(ModelFormatError, match="neighbour bank"):
        SynthesisTransformer.load(directory)
    config = json.loads((directory / "model.json").read_text())
    config["params"]["retrieval_k"] = -1
    (directory / "model.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="retrieval_k"):
        SynthesisTransformer.load(directory)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"retrieval_k": -1}, "retrieval_k"),
        ({"retrieval_k": 200}, "more than 200"),
        ({"schedule": "step"}, "schedule"),
        ({"lr_scaling": "cubic"}, "lr_scaling"),
        ({"precision": "fp16"}, "precision"),
    ],
)
def test_bad_retrieval_and_speed_parameters(table, toy, params, message):
    with pytest.raises(ValueError, match=message):
        SynthesisTransformer(table, **{**TINY, "pretrain_epochs": 0, "finetune_epochs": 1, **params}).fit(toy)


def test_groups_must_match_the_recipes(table, toy):
    with pytest.raises(ValueError, match="groups for"):
        SynthesisTransformer(table, retrieval_k=2, pretrain_epochs=0, finetune_epochs=1, **TINY).fit(toy, groups=["a"])


def test_speed_options_train_the_same_network(table, toy):
    """One-cycle schedule, bf16 autocast, fused AdamW and a scaled rate all train a usable model."""
    y = np.array([r.outcome.size_nm for r in toy])
    common = dict(pretrain_epochs=0, finetune_epochs=40, learning_rate=1e-2, validation_fraction=0.0, augment=False, **TINY)
    fast = SynthesisTransformer(table, **{**common, "batch_size": 32}, schedule="onecycle", precision="bf16", fused_optimizer=True).fit(toy)
    plain = SynthesisTransformer(table, **common, precision="fp32", fused_optimizer=False, lr_scaling="none").fit(toy)
    for model in (fast, plain):
        assert np.mean(np.abs(model.predict(toy) - y)) < 0.6 * np.mean(np.abs(y - y.mean()))
        assert all(p.dtype == torch.float32 for p in model.net_.parameters())  # autocast leaves the weights fp32
    assert scaled_lr(1e-3, 4 * REFERENCE_BATCH, "sqrt") == pytest.approx(2e-3)
    assert scaled_lr(1e-3, 4 * REFERENCE_BATCH, "linear") == pytest.approx(4e-3)
    assert scaled_lr(1e-3, 4 * REFERENCE_BATCH, "none") == pytest.approx(1e-3)
    assert isinstance(native_bf16(torch.device("cpu")), bool)
