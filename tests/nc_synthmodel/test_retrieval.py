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


def test_forest_metric_retrieves_by_shared_leaves_not_by_raw_distance():
    """Column 1 decides the outcome, 15 noise columns distract: the Euclidean bank (every column
    alike) follows the noise, the proximity forest (fitted on the bank's outcomes) follows column 1."""
    from nc_synthmodel.models.retrieval import fit_proximity_forest

    rng = np.random.default_rng(0)
    f = np.zeros((200, N_FEATURES), dtype=np.float32)
    f[:, 0] = rng.normal(0, 10, 200)
    f[:, 1] = rng.integers(0, 2, 200)
    f[:, 2:16] = rng.normal(0, 1, (200, 14))
    target = 3.0 * f[:, 1]
    trees, out_of_bag = fit_proximity_forest(f, target, n_trees=30, random_state=0)
    assert out_of_bag.shape == (200, 30) and 0.2 < out_of_bag.mean() < 0.5  # ~37 % out of bag
    forest = NeighbourBank(f, target, -np.ones(200, dtype=int), trees=trees)
    euclid = NeighbourBank(f, target, -np.ones(200, dtype=int))
    assert (forest.metric, euclid.metric) == ("forest", "euclidean")
    q = np.zeros((40, N_FEATURES), dtype=np.float32)
    q[:, 0] = rng.normal(0, 10, 40)
    q[:, 1] = np.arange(40) % 2
    q[:, 2:16] = rng.normal(0, 1, (40, 14))
    truth = 3.0 * q[:, 1]
    by_forest, by_euclid = forest.tokens(q, 4), euclid.tokens(q, 4)
    assert np.all(by_forest[:, :, 0] == truth[:, None])  # every neighbour shares the deciding value
    assert np.mean(by_euclid[:, :, 0] == truth[:, None]) < 0.9
    distance = by_forest[:, :, 1 + len(SHAPE_CLASSES)]
    assert np.all((distance >= 0) & (distance <= 1)) and np.all(np.diff(distance, axis=1) >= 0)  # 1 - proximity, nearest first
    # a bank recipe counts only the trees it was out of bag for; every tree masked out is refused
    own = forest.tokens(f, 4, exclude=np.arange(200), trees_used=out_of_bag)
    assert np.all(own[:, :, 0] == target[:, None])
    with pytest.raises(ValueError, match="at least one tree"):
        forest.tokens(f[:2], 1, trees_used=np.zeros((2, 30), dtype=bool))
    with pytest.raises(ValueError, match="forest metric only"):
        euclid.tokens(q, 1, trees_used=np.ones((40, 30), dtype=bool))
    again = NeighbourBank.from_state(forest.state())
    assert again.metric == "forest"
    np.testing.assert_allclose(again.tokens(q, 4), by_forest, atol=1e-6)


def test_forest_metric_model_trains_round_trips_and_guards_its_bank(table, toy, tmp_path):
    from safetensors.torch import load_file, save_file

    model = SynthesisTransformer(
        table,
        retrieval_k=4,
        retrieval_metric="forest",
        pretrain_epochs=0,
        finetune_epochs=20,
        learning_rate=3e-3,
        validation_fraction=0.0,
        augment=False,
        **TINY,
    ).fit(toy)
    assert model.retrieval_.metric == "forest"
    y = np.array([r.outcome.size_nm for r in toy])
    pred = model.predict(toy)
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    directory = model.save(tmp_path / "m")
    loaded = SynthesisTransformer.load(directory)
    assert loaded.retrieval_metric == "forest" and loaded.retrieval_.metric == "forest"
    np.testing.assert_allclose(loaded.predict(toy), pred, rtol=1e-5)
    state = load_file(str(directory / "weights.safetensors"))  # the forest's arrays lost: not silently Euclidean
    save_file({k: v for k, v in state.items() if not k.startswith("retrieval.forest_")}, str(directory / "weights.safetensors"))
    with pytest.raises(ModelFormatError, match="retrieval_metric"):
        SynthesisTransformer.load(directory)
    with pytest.raises(ValueError, match="retrieval_metric"):
        SynthesisTransformer(table, retrieval_k=2, retrieval_metric="cosine", **TINY).fit(toy)
    with pytest.raises(ValueError, match="retrieval_aggregate"):
        SynthesisTransformer(table, retrieval_k=2, retrieval_aggregate=True, **TINY).fit(toy)
    aggregated = SynthesisTransformer(
        table,
        **{**TINY, "augment": False},
        retrieval_k=3,
        retrieval_metric="forest",
        retrieval_aggregate=True,
        pretrain_epochs=0,
        finetune_epochs=2,
        validation_fraction=0.0,
    ).fit(toy)
    again = SynthesisTransformer.load(aggregated.save(tmp_path / "agg"))
    assert again.retrieval_aggregate and again._neighbours(toy[:2]).shape == (2, 4, TOKEN_WIDTH)
    np.testing.assert_allclose(again.predict(toy), aggregated.predict(toy), rtol=1e-5)


def test_models_saved_before_the_forest_metric_load_as_euclidean(retrieving, toy, tmp_path):
    directory = retrieving.save(tmp_path / "m")
    config = json.loads((directory / "model.json").read_text())
    for name in ("retrieval_metric", "retrieval_aggregate", "retrieval_dropout", "retrieval_residual"):
        del config["params"][name]  # what an older save holds
    (directory / "model.json").write_text(json.dumps(config))
    loaded = SynthesisTransformer.load(directory)
    assert loaded.retrieval_metric == "euclidean" and loaded.retrieval_.metric == "euclidean"
    assert loaded.retrieval_dropout == 0.0 and not loaded.retrieval_residual and loaded.net_.neighbour_gate is None
    assert not loaded.retrieval_aggregate
    np.testing.assert_allclose(loaded.predict(toy), retrieving.predict(toy), rtol=1e-5)


def test_neighbour_dropout_hides_tokens_but_never_all_of_a_row():
    from nc_synthmodel.models.trainer import neighbour_dropout

    torch.manual_seed(0)
    neighbours = torch.zeros(500, 4, TOKEN_WIDTH)
    drop = neighbour_dropout(neighbours, 0.5)
    assert drop.shape == (500, 4) and drop.dtype == torch.bool
    assert not drop.all(dim=1).any()  # every row keeps at least one neighbour
    assert 0.4 < drop.float().mean() < 0.5  # ~p, a little less for the rows given one back
    assert neighbour_dropout(neighbours, 0.0) is None and neighbour_dropout(None, 0.5) is None


def test_residual_head_starts_from_the_neighbours_mean_and_dropout_trains(table, toy, tmp_path):
    from nc_synthmodel.models.network import build_network

    net = build_network(10, 4, 16, 1, 2, 32, 0.0, len(SHAPE_CLASSES), retrieval_width=TOKEN_WIDTH, retrieval_residual=True)
    neighbours = torch.zeros(3, 4, TOKEN_WIDTH)
    neighbours[:, :, 0] = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    args = (torch.zeros(3, 2, 2), torch.zeros(3, 2, 8), torch.ones(3, 2, dtype=torch.bool), torch.zeros(3, 4))
    with torch.no_grad():
        for p in net.size_head.parameters():
            p.zero_()  # the head's correction is 0: the output is the gate's average of the targets
        size, _, _ = net(*args, neighbours)
        np.testing.assert_allclose(size.numpy(), 3.0)  # the gate starts uniform: the plain mean
        hidden = torch.tensor([[False, False, True, True]] * 3)
        np.testing.assert_allclose(net(*args, neighbours, hidden)[0].numpy(), 1.5)  # hidden neighbours do not count
    y = np.array([r.outcome.size_nm for r in toy])
    model = SynthesisTransformer(
        table,
        retrieval_k=4,
        retrieval_residual=True,
        retrieval_dropout=0.25,
        pretrain_epochs=0,
        finetune_epochs=20,
        learning_rate=3e-3,
        validation_fraction=0.0,
        augment=False,
        **TINY,
    ).fit(toy)
    assert model.net_.neighbour_gate is not None
    pred = model.predict(toy)
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    loaded = SynthesisTransformer.load(model.save(tmp_path / "m"))
    assert loaded.retrieval_residual and loaded.retrieval_dropout == 0.25
    np.testing.assert_allclose(loaded.predict(toy), pred, rtol=1e-5)
    with pytest.raises(ValueError, match="retrieval_residual"):
        SynthesisTransformer(table, retrieval_residual=True, **TINY).fit(toy)
    with pytest.raises(ValueError, match="retrieval_dropout"):
        SynthesisTransformer(table, retrieval_k=2, retrieval_dropout=1.0, **TINY).fit(toy)


def test_aggregate_token_is_the_forest_leaf_mean_without_the_recipe_itself():
    from nc_synthmodel.models.retrieval import fit_proximity_forest

    rng = np.random.default_rng(3)
    f = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    target = (f[:, 0] > 0) * 2.0 + rng.normal(0, 0.1, 60)
    trees, out_of_bag = fit_proximity_forest(f, target, n_trees=8, random_state=0)
    bank = NeighbourBank(f, target, rng.integers(0, 2, 60), trees=trees)
    q = rng.normal(size=(5, N_FEATURES)).astype(np.float32)
    tokens = bank.tokens(q, 3, aggregate=True)
    assert tokens.shape == (5, 4, TOKEN_WIDTH)
    np.testing.assert_allclose(tokens[:, :3], bank.tokens(q, 3), atol=1e-6)  # the k neighbours unchanged
    leaves_q, leaves_b = trees.apply(q), trees.apply(f)
    by_hand = [np.mean([target[leaves_b[:, t] == leaves_q[i, t]].mean() for t in range(8)]) for i in range(5)]
    np.testing.assert_allclose(tokens[:, 3, 0], by_hand, rtol=1e-5)  # per tree the leaf mean, averaged
    shares = tokens[:, 3, 1 : 1 + len(SHAPE_CLASSES)]
    np.testing.assert_allclose(shares.sum(1), 1.0, rtol=1e-5)  # a distribution over the two shapes used
    assert not shares[:, 2:].any()
    # a bank recipe's aggregate never holds its own outcome
    marked = target.copy()
    marked[0] = 1000.0
    bank = NeighbourBank(f, marked, np.zeros(60, dtype=int), trees=trees)
    own = bank.tokens(f[:1], 2, exclude=np.array([0]), trees_used=out_of_bag[:1], aggregate=True)
    assert own[0, 2, 0] < 10.0
    with pytest.raises(ValueError, match="forest metric"):
        NeighbourBank(f, target, np.zeros(60, dtype=int)).tokens(q, 2, aggregate=True)


def test_crossfit_parts_are_balanced_and_keep_groups_whole():
    from nc_synthmodel.models.retrieval import crossfit_parts

    part = crossfit_parts(103, 5, random_state=0)
    assert sorted(set(part.tolist())) == [0, 1, 2, 3, 4] and np.bincount(part).max() - np.bincount(part).min() <= 1
    assert not np.array_equal(part, crossfit_parts(103, 5, random_state=1))  # the seed shuffles
    groups = np.repeat([f"g{i}" for i in range(20)], np.arange(1, 21))  # 210 recipes, groups of 1..20
    part = crossfit_parts(len(groups), 4, groups=groups)
    for g in set(groups):
        assert len(set(part[groups == g].tolist())) == 1  # a group lies in one part
    sizes = np.bincount(part)
    assert sizes.max() - sizes.min() <= 20  # greedy: within one group's size
    with pytest.raises(ValueError, match="groups"):
        crossfit_parts(10, 4, groups=["a", "b", "c"] * 3 + ["a"])
    with pytest.raises(ValueError, match="n_parts >= 2"):
        crossfit_parts(10, 1)
    with pytest.raises(ValueError, match="2 recipes per part"):
        crossfit_parts(9, 5)


def test_crossfit_tokens_come_from_the_other_parts_with_all_trees_of_their_forest():
    from nc_synthmodel.models.retrieval import crossfit_parts, crossfit_tokens, fit_proximity_forest

    rng = np.random.default_rng(4)
    f = rng.normal(size=(80, N_FEATURES)).astype(np.float32)
    target = np.arange(80, dtype=np.float32)  # each outcome names its recipe
    shapes = rng.integers(0, 3, 80)
    trees, _ = fit_proximity_forest(f, target, n_trees=10, random_state=0)
    bank = NeighbourBank(f, target, shapes, trees=trees)
    tokens = crossfit_tokens(bank, f, target, shapes, 3, 4, aggregate=True, random_state=7)
    assert tokens.shape == (80, 4, TOKEN_WIDTH)
    part = crossfit_parts(80, 4, random_state=7)
    neighbour = tokens[:, :3, 0].astype(int)
    assert np.all(part[neighbour] != part[:, None])  # never a recipe of its own part (nor itself)
    # part 0 exactly: the forest fitted on the other parts (seed 7 + 1), every tree counted, their bank
    fit = part != 0
    forest0, _ = fit_proximity_forest(f[fit], target[fit], random_state=8)
    others = NeighbourBank(f[fit], target[fit], shapes[fit], mean=bank.mean, std=bank.std, trees=forest0)
    np.testing.assert_allclose(tokens[part == 0], others.tokens(f[part == 0], 3, aggregate=True), atol=1e-5)
    assert tokens[part == 0, 3, 0].max() <= target[fit].max()  # the aggregate averages the other parts only
    groups = np.repeat(np.arange(16), 5).astype(str)
    grouped = crossfit_tokens(bank, f, target, shapes, 3, 4, groups=groups)
    assert np.all(groups[grouped[:, :, 0].astype(int)] != groups[:, None])
    with pytest.raises(ValueError, match="bank's 80 rows"):
        crossfit_tokens(bank, f[:10], target[:10], shapes[:10], 3, 4)


def test_crossfit_model_trains_tokens_out_of_fold_and_predicts_from_the_unchanged_bank(table, toy, tmp_path):
    from types import SimpleNamespace

    from nc_synthmodel.models.retrieval import attach_neighbours, crossfit_parts

    common = dict(
        retrieval_k=3,
        retrieval_metric="forest",
        retrieval_aggregate=True,
        pretrain_epochs=0,
        finetune_epochs=20,
        learning_rate=3e-3,
        validation_fraction=0.0,
        augment=False,
        **TINY,
    )
    crossfit = SynthesisTransformer(table, retrieval_crossfit=4, **common).fit(toy)
    plain = SynthesisTransformer(table, **common).fit(toy)
    np.testing.assert_allclose(crossfit._neighbours(toy), plain._neighbours(toy), atol=1e-6)  # same bank and forest
    y = np.array([r.outcome.size_nm for r in toy])
    pred = crossfit.predict(toy)
    assert np.mean(np.abs(pred - y)) < 0.5 * np.mean(np.abs(y - y.mean()))
    loaded = SynthesisTransformer.load(crossfit.save(tmp_path / "m"))
    assert loaded.retrieval_crossfit == 4
    np.testing.assert_allclose(loaded.predict(toy), pred, rtol=1e-5)
    # the training recipes' tokens: from the other parts of the bank (all 80 toy recipes have a size)
    originals = SimpleNamespace(shape_index=np.array([SHAPE_CLASSES.index(r.outcome.shape) for r in toy]))
    marked = y + 100.0 * np.arange(len(toy))  # each size names its recipe
    attach_neighbours(crossfit, toy, marked, originals, None, None, [])
    owner = np.rint((np.exp(originals.neighbours[:, :3, 0] * crossfit.target_std_ + crossfit.target_mean_) - 2.0) / 100.0)
    part = crossfit_parts(len(toy), 4, random_state=crossfit.random_state)
    assert np.all(part[owner.astype(int)] != part[:, None])
    oob = SimpleNamespace(shape_index=originals.shape_index)
    attach_neighbours(plain, toy, marked, oob, None, None, [])
    assert not np.allclose(oob.neighbours, originals.neighbours)  # out-of-bag tokens are other tokens
    for params, message in (
        ({"retrieval_crossfit": 1}, "retrieval_crossfit"),
        ({"retrieval_crossfit": True}, "retrieval_crossfit"),
        ({"retrieval_crossfit": 3, "retrieval_metric": "euclidean", "retrieval_aggregate": False}, "retrieval_crossfit"),
    ):
        with pytest.raises(ValueError, match=message):
            SynthesisTransformer(table, **{**common, **params}).fit(toy)


def test_extra_trees_proximity_forest_needs_crossfit_and_builds_the_bank(table, toy, tmp_path):
    from sklearn.ensemble import ExtraTreesRegressor

    from nc_synthmodel.models.retrieval import fit_proximity_forest
    from nc_synthmodel.models.trees import tree_arrays

    rng = np.random.default_rng(5)
    f = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    target = rng.normal(size=60)
    trees, out_of_bag = fit_proximity_forest(f, target, n_trees=8, random_state=3, kind="extra", max_features=0.5)
    assert not out_of_bag.any()  # no bootstrap: every recipe shaped every tree
    expected = tree_arrays(ExtraTreesRegressor(8, max_features=0.5, random_state=3, n_jobs=1).fit(f, target))
    np.testing.assert_array_equal(trees.threshold, expected.threshold)
    with pytest.raises(ValueError, match="proximity forest"):
        fit_proximity_forest(f, target, kind="boosted")
    common = dict(
        retrieval_k=3,
        retrieval_metric="forest",
        retrieval_aggregate=True,
        retrieval_crossfit=4,
        pretrain_epochs=0,
        finetune_epochs=3,
        validation_fraction=0.0,
        augment=False,
        **TINY,
    )
    extra = SynthesisTransformer(table, retrieval_forest="extra", retrieval_max_features=0.5, **common).fit(toy)
    random = SynthesisTransformer(table, **common).fit(toy)
    assert not np.allclose(extra._neighbours(toy), random._neighbours(toy))  # another forest, other neighbours
    loaded = SynthesisTransformer.load(extra.save(tmp_path / "m"))
    assert loaded.retrieval_forest == "extra" and loaded.retrieval_max_features == 0.5
    np.testing.assert_allclose(loaded.predict(toy), extra.predict(toy), rtol=1e-5)
    for params, message in (
        ({"retrieval_forest": "extra", "retrieval_crossfit": 0}, "retrieval_crossfit >= 2"),
        ({"retrieval_forest": "boosted"}, "retrieval_forest"),
        ({"retrieval_max_features": 0}, "retrieval_max_features"),
        (
            {"retrieval_max_features": 0.5, "retrieval_metric": "euclidean", "retrieval_aggregate": False, "retrieval_crossfit": 0},
            "retrieval_metric",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            SynthesisTransformer(table, **{**common, **params}).fit(toy)


def test_residual_from_the_aggregate_starts_at_the_forest_estimate(table, toy, tmp_path):
    from nc_synthmodel.models.network import build_network

    torch.manual_seed(0)
    net = build_network(10, 4, 16, 1, 2, 32, 0.0, len(SHAPE_CLASSES), retrieval_width=TOKEN_WIDTH, retrieval_residual="aggregate")
    assert net.neighbour_gate is None
    neighbours = torch.randn(3, 5, TOKEN_WIDTH)
    args = (torch.randn(3, 2, 2), torch.randn(3, 2, 8), torch.ones(3, 2, dtype=torch.bool), torch.randn(3, 4))
    with torch.no_grad():  # untrained: exactly the last (aggregate) token's outcome, whatever else the tokens hold
        np.testing.assert_allclose(net(*args, neighbours)[0].numpy(), neighbours[:, -1, 0].numpy(), atol=1e-6)
        hidden = torch.tensor([[True, True, False, False, True]] * 3)
        np.testing.assert_allclose(net(*args, neighbours, hidden)[0].numpy(), neighbours[:, -1, 0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="retrieval_residual"):
        build_network(10, 4, 16, 1, 2, 32, 0.0, len(SHAPE_CLASSES), retrieval_width=TOKEN_WIDTH, retrieval_residual="gate")
    common = dict(retrieval_k=3, retrieval_metric="forest", pretrain_epochs=0, validation_fraction=0.0, augment=False, **TINY)
    untrained = SynthesisTransformer(
        table, retrieval_aggregate=True, retrieval_residual="aggregate", finetune_epochs=1, learning_rate=1e-9, **common
    )
    untrained.fit(toy)
    tokens = untrained._neighbours(toy)
    forest_estimate = np.exp(tokens[:, -1, 0] * untrained.target_std_ + untrained.target_mean_)
    np.testing.assert_allclose(untrained.predict(toy), forest_estimate, rtol=1e-3)  # one step at lr 1e-9: still the forest
    model = SynthesisTransformer(
        table, retrieval_aggregate=True, retrieval_residual="aggregate", finetune_epochs=20, learning_rate=3e-3, **common
    ).fit(toy)
    assert not np.allclose(model.predict(toy), forest_estimate, rtol=1e-3)  # the correction trains
    loaded = SynthesisTransformer.load(model.save(tmp_path / "m"))
    assert loaded.retrieval_residual == "aggregate" and loaded.net_.from_aggregate
    np.testing.assert_allclose(loaded.predict(toy), model.predict(toy), rtol=1e-5)
    for params, message in (({"retrieval_aggregate": False}, "retrieval_aggregate=True"), ({"retrieval_residual": "gate"}, "one of")):
        with pytest.raises(ValueError, match=message):
            SynthesisTransformer(table, **{**common, "retrieval_aggregate": True, "retrieval_residual": "aggregate", **params}).fit(toy)
