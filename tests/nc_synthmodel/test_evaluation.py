"""Tests of nc_synthmodel.evaluation: the paper's folds, metrics, CV harness, source links."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from nc_synthmodel.contract import Chemical, Conditions, Outcome, Provenance, Recipe
from nc_synthmodel.evaluation import (
    CVResult,
    cross_validate,
    format_results,
    grouped_folds,
    link_recipes,
    paired_comparison,
    paper_folds,
    paper_pool,
    publication_groups,
    read_paper_predictions,
    regression_metrics,
    size_targets,
    tolerant_size_mask,
)


def make_recipe(recipe_id, size_nm, n_particles, doi=None, se_mmol=1.0):
    return Recipe(
        id=str(recipe_id),
        product=Chemical(name="PbSe", role="product"),
        chemicals=[Chemical(name="PbO", amount_mmol=2.0, role="precursor"), Chemical(name="Se", amount_mmol=se_mmol, role="precursor")],
        conditions=Conditions(injection_temp_c=140, reaction_temp_c=150, time_min=5),
        outcome=Outcome(size_nm=size_nm, n_particles=n_particles, shape="sphere"),
        provenance=Provenance(doi=doi),
    )


# ------------------------------------------------------------------ metrics


def test_regression_metrics_by_hand():
    metrics = regression_metrics([2.0, 4.0, 6.0, 8.0], [3.0, 4.0, 4.0, 10.0])
    # errors 1, 0, -2, 2; mean 5, SS_tot = 9 + 1 + 1 + 9 = 20, SS_res = 1 + 0 + 4 + 4 = 9
    assert metrics["MAE"] == pytest.approx(5 / 4)
    assert metrics["MSE"] == pytest.approx(9 / 4)
    assert metrics["RMSE"] == pytest.approx(1.5)
    assert metrics["MAPE"] == pytest.approx(100 * (1 / 2 + 0 + 2 / 6 + 2 / 8) / 4)
    assert metrics["R2"] == pytest.approx(1 - 9 / 20)
    assert set(metrics) == {"MAE", "MSE", "RMSE", "MAPE", "R2"}


def test_regression_metrics_agree_with_sklearn():
    from sklearn.metrics import mean_absolute_percentage_error, r2_score

    rng = np.random.default_rng(1)
    y = rng.uniform(1, 20, 50)
    p = y + rng.normal(0, 2, 50)
    metrics = regression_metrics(y, p)
    assert metrics["R2"] == pytest.approx(r2_score(y, p))
    assert metrics["MAPE"] == pytest.approx(100 * mean_absolute_percentage_error(y, p))


def test_regression_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="same|has"):
        regression_metrics([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
    assert math.isnan(regression_metrics([3.0, 3.0], [3.0, 4.0])["R2"])


def test_tolerant_size_mask():
    pred = np.array([10.0, 11.6, 11.4, 11.6, 11.4, 5.0])
    target = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    counts = np.array([50, 50, 50, 400, 400, -1])
    # few particles within 15 % -> no loss; outside -> loss; solid rows always count
    np.testing.assert_array_equal(tolerant_size_mask(pred, target, counts), [False, True, False, True, True, True])
    np.testing.assert_array_equal(tolerant_size_mask(pred, target, counts, tolerance=0.2)[:3], [False, False, False])
    # unknown count (-1) is "few particles"
    assert not tolerant_size_mask(np.array([10.5]), np.array([10.0]), np.array([-1]))[0]


def test_tolerant_size_mask_works_on_torch_tensors():
    import torch

    mask = tolerant_size_mask(torch.tensor([10.0, 13.0]), torch.tensor([10.0, 10.0]), torch.tensor([10, 10]))
    assert mask.dtype == torch.bool and mask.tolist() == [False, True]


# ------------------------------------------------------------------ folds


def test_paper_folds_on_a_toy_set():
    sizes = [5, 25, 8, 3, 12, 40, 7, 9, 15, 6, 2, 30]
    counts = [400, 400, 10, -1, 500, 50, 300, 299, 1000, 350, 320, 330]
    recipes = [make_recipe(i, s, None if n == -1 else n) for i, (s, n) in enumerate(zip(sizes, counts))]
    pool = paper_pool(recipes)
    np.testing.assert_array_equal(pool, [0, 4, 6, 8, 9, 10])
    folds = paper_folds(recipes, n_splits=3)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == pool.tolist()
    for train, val in folds:
        assert not set(train) & set(val)
        assert set(train) | set(val) == set(range(len(recipes)))
    # train_max_size_nm drops large training rows only
    small = paper_folds(recipes, n_splits=3, train_max_size_nm=20)
    for train, _ in small:
        assert not {1, 5, 11} & set(train)


def test_grouped_folds_keep_groups_apart():
    rng = np.random.default_rng(0)
    recipes, groups = [], []
    for i in range(60):
        recipes.append(make_recipe(i, float(rng.uniform(2, 30)), int(rng.choice([100, 400]))))
        groups.append(f"paper{i % 9}")
    folds = grouped_folds(recipes, groups, n_splits=3)
    pool = set(paper_pool(recipes).tolist())
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == sorted(pool)
    for train, val in folds:
        val_groups = {groups[i] for i in val}
        assert not val_groups & {groups[i] for i in train}
        assert {i for i in range(60) if groups[i] not in val_groups} == set(train.tolist())
    with pytest.raises(ValueError, match="one group per recipe"):
        grouped_folds(recipes, groups[:-1])


# ------------------------------------------------------------------ CV harness


class MeanSize:
    """A trivial estimator: the mean known training size."""

    def fit(self, recipes, y):
        self.mean_ = float(np.nanmean(y))
        self.n_seen_ = len(recipes)
        return self

    def predict(self, recipes):
        return np.full(len(recipes), self.mean_)


def test_cross_validate_with_a_trivial_estimator():
    sizes = [5.0, 25.0, 8.0, 3.0, 12.0, 40.0, 7.0, 9.0, 15.0, 6.0, 2.0, 30.0]
    recipes = [make_recipe(i, s, 400) for i, s in enumerate(sizes)]
    folds = paper_folds(recipes, n_splits=3)
    calls = []
    result = cross_validate(MeanSize, recipes, folds, name="mean", progress=lambda k, n, m: calls.append((k, n)))
    assert isinstance(result, CVResult) and calls == [(0, 3), (1, 3), (2, 3)]
    np.testing.assert_array_equal(result.index, np.concatenate([v for _, v in folds]))
    np.testing.assert_array_equal(result.y_true, np.array(sizes)[result.index])
    for k, (train, val) in enumerate(folds):
        np.testing.assert_allclose(result.y_pred[result.fold == k], np.mean(np.array(sizes)[train]))
    assert result.pooled == pytest.approx(regression_metrics(result.y_true, result.y_pred))
    assert result.fold_mean["MAE"] == pytest.approx(np.mean([m["MAE"] for m in result.fold_metrics]))
    assert len(result.fit_seconds) == 3 and result.wall_seconds > 0
    # one memory reading per fold, by a known method; a mean estimator allocates next to nothing
    assert len(result.peak_rss_mb) == 3 and result.memory_method in ("proc-statm", "ru_maxrss")
    assert all(math.isfinite(m) and 0 <= m < 64 for m in result.peak_rss_mb), result.peak_rss_mb
    assert result.summary("fold_mean")["peak_rss_mb"] == max(result.peak_rss_mb)
    table = format_results([result])
    assert "mean" in table and "MAE" in table
    assert list(result.to_frame().columns) == ["index", "fold", "true", "pred"]


MEMORY_PROBE = """
import numpy as np
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe
from nc_synthmodel.evaluation import cross_validate, paper_folds

class Hog:
    def fit(self, recipes, y):
        self.block_ = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        return self
    def predict(self, recipes):
        return np.full(len(recipes), 5.0)

recipes = [
    Recipe(id=str(i), product=Chemical(name="PbSe", role="product"),
           chemicals=[Chemical(name="PbO", amount_mmol=2.0, role="precursor")],
           conditions=Conditions(injection_temp_c=140, reaction_temp_c=150, time_min=5),
           outcome=Outcome(size_nm=5.0 + i, n_particles=400))
    for i in range(6)
]
result = cross_validate(Hog, recipes, paper_folds(recipes, n_splits=2))
print(result.memory_method, max(result.peak_rss_mb))
"""


def test_cross_validate_measures_memory_growth():
    # a fresh process: in a long test session freed memory is reused and RSS need not grow
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    method, peak_mb = done.stdout.split()
    assert method in ("proc-statm", "ru_maxrss")
    assert float(peak_mb) >= 30


def test_model_layer_imports_without_the_posix_resource_module():
    """Windows has no ``resource``: the model and evaluation layers must import without it."""
    code = (
        "import sys\n"
        "sys.modules['resource'] = None  # import resource -> ImportError, as on Windows\n"
        "import nc_synthmodel.evaluation, nc_synthmodel.models\n"
        "from nc_synthmodel.evaluation.memory import _ProcessMemory\n"
        "with _ProcessMemory() as memory:\n"
        "    block = bytearray(1 << 20)\n"
        "print(_ProcessMemory.available(), memory.peak_mb >= 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "True"


def test_cross_validate_rejects_unknown_validation_targets():
    recipes = [make_recipe(i, 5.0 + i, 400) for i in range(6)]
    y = size_targets(recipes)
    y[0] = np.nan
    with pytest.raises(ValueError, match="no target"):
        cross_validate(MeanSize, recipes, [(np.arange(1, 6), np.array([0]))], y=y)
    with pytest.raises(ValueError, match="share"):
        cross_validate(MeanSize, recipes, [(np.arange(0, 6), np.array([0]))])


# ------------------------------------------------------------------ paired comparison


def test_paired_comparison():
    truth = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0])
    paper = truth + np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    ours = truth + np.array([0.5, -0.5, 0.5, -0.5, 0.25, -0.25, 0.5, -0.5])
    result = paired_comparison(ours, paper, truth, n_boot=2000)
    assert result["n"] == 8
    assert result["mae_paper"] == pytest.approx(1.0)
    assert result["mean_abs_error_diff"] == pytest.approx(np.mean(np.abs(ours - truth)) - 1.0)
    assert result["ci_low"] <= result["mean_abs_error_diff"] <= result["ci_high"] < 0
    assert result["wilcoxon_p"] < 0.05
    same = paired_comparison(paper, paper, truth, n_boot=100)
    assert same["mean_abs_error_diff"] == 0.0 and same["wilcoxon_p"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        paired_comparison(ours[:-1], paper, truth)


# ------------------------------------------------------------------ source links (toy)


def test_link_recipes_by_content():
    source = [
        make_recipe("xlsx-2", 5.0, 400, doi="10.1/A", se_mmol=1.0),
        make_recipe("xlsx-3", 7.0, 400, doi=" 10.1/B ", se_mmol=3.0),
        make_recipe("xlsx-4", 9.0, 400, doi="https://doi.org/10.1/C", se_mmol=5.0),
    ]
    recipes = [
        make_recipe("a", 3.7, 400, se_mmol=3.0),  # same content, size rescaled: exact
        make_recipe("b", 9.0, 400, se_mmol=5.02),  # within 1 %: tolerant
        make_recipe("c", 1.0, 400, se_mmol=8.0),  # other amounts, but all PbO+Se rows are not one paper
    ]
    links = link_recipes(recipes, source)
    assert links.stage == ["exact", "tolerant", "unmatched"]
    assert links.source_row == ["xlsx-3", "xlsx-4", None]
    assert links.doi == ["10.1/b", "10.1/c", None]
    assert links.match_rate == pytest.approx(2 / 3)
    assert publication_groups(recipes, source) == ["10.1/b", "10.1/c", "unmatched:c"]
    assert publication_groups(recipes, source, unmatched="product")[2] == "unmatched:PbSe"
    # one publication for the whole chemical system: the "names" stage
    links = link_recipes(recipes[2:], source[:1])
    assert links.stage == ["names"] and links.doi == ["10.1/a"]


def test_link_prefers_unused_rows_with_the_same_size():
    source = [make_recipe("xlsx-2", 5.0, 400, doi="10.1/A"), make_recipe("xlsx-3", 6.0, 400, doi="10.1/B")]
    links = link_recipes([make_recipe("a", 6.0, 400), make_recipe("b", 5.5, 400)], source)
    assert links.source_row == ["xlsx-3", "xlsx-2"]


# ------------------------------------------------------------------ the Gu et al. data


@pytest.fixture(scope="module")
def gu_recipes(gu2025):
    from nc_synthmodel.io import read_recipes

    return read_recipes(gu2025 / "recipes.csv").raise_for_errors().recipes


def test_paper_folds_reproduce_the_authors_validation_order(gu_recipes, gu2025):
    """Proof of the split: our validation targets are the authors' `true` column, in order."""
    counts = Counter("solid" if (r.outcome.n_particles or -1) >= 300 else "weak" for r in gu_recipes)
    assert counts == {"solid": 720, "weak": 2769}
    pool = paper_pool(gu_recipes)
    assert len(pool) == 617
    folds = paper_folds(gu_recipes)
    assert [len(v) for _, v in folds] == [124, 124, 123, 123, 123]
    sizes = size_targets(gu_recipes)
    true, pred = read_paper_predictions(gu2025 / "paper_cv_size_predictions.csv")
    ours = np.concatenate([sizes[v] for _, v in folds])
    np.testing.assert_array_equal(ours, true)
    for train, val in folds:
        assert len(train) == 3489 - len(val)  # 4 pool folds + 2,769 weak + 103 solid > 20 nm
        assert (sizes[train] > 20).sum() >= 103
    # the paper's Table 1 numbers are means over folds
    starts = np.cumsum([0] + [len(v) for _, v in folds])
    per_fold = [regression_metrics(true[a:b], pred[a:b]) for a, b in zip(starts[:-1], starts[1:])]
    assert np.mean([m["R2"] for m in per_fold]) == pytest.approx(0.7198, abs=1e-4)
    assert regression_metrics(true, pred)["MAE"] == pytest.approx(1.3988, abs=1e-4)


def test_gu_publication_links(gu_recipes, gu2025):
    workbook = gu2025 / "raw_recipe_dataset.xlsx"
    links = link_recipes(gu_recipes, workbook)
    # measured: 3,429 exact + 5 tolerant + 2 by chemical system = 3,436 of 3,489 (98.5 %);
    # the 53 unmatched include the 35 fluoride recipes (IDs 3493-3527) absent from the workbook
    assert links.match_rate > 0.98
    assert links.counts["exact"] >= 3400 and links.counts["unmatched"] <= 60
    groups = publication_groups(gu_recipes, workbook)
    pool = paper_pool(gu_recipes)
    pool_groups = Counter(groups[i] for i in pool)
    assert pool_groups.most_common(1)[0] == ("self-synthesis", 319)
    folds = grouped_folds(gu_recipes, groups)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == pool.tolist()
    for train, val in folds:
        assert not {groups[i] for i in val} & {groups[i] for i in train}
