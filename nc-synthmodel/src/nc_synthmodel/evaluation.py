"""Evaluation of size models: the paper's cross-validation, leak-free folds, metrics.

Paper protocol (Gu, Liang et al. 2025, the authors' ``scripts/best_size.sh`` and
``utils/data_utils.py``), reproduced by :func:`paper_folds`:

* "solid" recipes have ``n_particles >= 300`` (720 in ``recipes.csv``); an unknown count
  (-1 in the CSV) is not solid;
* the cross-validation pool is the solid recipes with ``size_nm <= 20`` (617), in file
  order, split by ``KFold(n_splits=5, shuffle=True, random_state=0)``;
* fold k validates on pool fold k and trains on every other recipe: the other four pool
  folds, the 2,769 recipes with fewer than 300 (or unknown) particles and the 103 solid
  recipes above 20 nm.

The concatenated validation targets equal the ``true`` column of the authors'
``paper_cv_size_predictions.csv`` row by row.  The paper's Extended Data Table 1 reports
the *mean over the five folds* of each metric (their ``pretrain_mix.py`` averages the
per-fold values; the file gives R² 0.7198 that way against 0.7235 pooled), so
:class:`CVResult` keeps both ``fold_mean`` and ``pooled``.  Note also that the authors
keep, per fold, the checkpoint with the best validation score, which flatters their
numbers; the estimators here are never selected on the validation fold.

Training loss convention: recipes with fewer than 300 particles are noisy labels, so
the authors' size loss is zero for them when the prediction is within ±15 % of the
label (:func:`tolerant_size_mask`; their fine-tuning stage uses 20 %).  scikit-learn
regressors cannot do this; the baselines train on every recipe with a known size.

:func:`grouped_folds` is a leak-free variant: the pool is split by source publication
(:func:`publication_groups` links each ``recipes.csv`` row to its row of
``raw_recipe_dataset.xlsx`` and so to a DOI or "self-synthesis"), and a fold trains only
on recipes from other publications.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .contract import Recipe
from .dataset import SOLID_MIN_PARTICLES

__all__ = [
    "PAPER_MAX_SIZE_NM",
    "PAPER_TOLERANCE",
    "CVResult",
    "SourceLinks",
    "cross_validate",
    "format_results",
    "grouped_folds",
    "link_recipes",
    "paired_comparison",
    "paper_folds",
    "paper_pool",
    "publication_groups",
    "read_paper_predictions",
    "regression_metrics",
    "size_targets",
    "tolerant_size_mask",
]

logger = logging.getLogger(__name__)

#: Largest size (nm) of a recipe in the paper's cross-validation pool.
PAPER_MAX_SIZE_NM = 20.0
#: Relative error below which a recipe with few particles adds no loss (paper: ±15 %).
PAPER_TOLERANCE = 0.15

Folds = list[tuple[np.ndarray, np.ndarray]]

# ---------------------------------------------------------------------- targets and folds


def size_targets(recipes: Sequence[Recipe]) -> np.ndarray:
    """Mean size (nm) of each recipe, NaN when unknown; float64 (n,)."""
    return np.array(
        [np.nan if r.outcome is None or r.outcome.size_nm is None else r.outcome.size_nm for r in _as_list(recipes)],
        dtype=float,
    )


def _particle_counts(recipes: list[Recipe]) -> np.ndarray:
    return np.array(
        [-1 if r.outcome is None or r.outcome.n_particles is None else r.outcome.n_particles for r in recipes],
        dtype=np.int64,
    )


def paper_pool(
    recipes: Sequence[Recipe],
    *,
    solid_min_particles: int = SOLID_MIN_PARTICLES,
    max_size_nm: float = PAPER_MAX_SIZE_NM,
) -> np.ndarray:
    """Indices (in input order) of the cross-validation pool: solid and ``size_nm <= max_size_nm``."""
    recipes = _as_list(recipes)
    size = size_targets(recipes)
    solid = _particle_counts(recipes) >= solid_min_particles
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(solid & (size <= max_size_nm))


def paper_folds(
    recipes: Sequence[Recipe],
    *,
    n_splits: int = 5,
    random_state: int = 0,
    solid_min_particles: int = SOLID_MIN_PARTICLES,
    max_size_nm: float = PAPER_MAX_SIZE_NM,
    train_max_size_nm: float | None = None,
) -> Folds:
    """The paper's folds as ``[(train_idx, val_idx), ...]``, indices into ``recipes``.

    ``val_idx`` is pool fold k in pool (file) order; ``train_idx`` (sorted) is every
    other recipe.  ``train_max_size_nm`` drops training recipes with a known size above
    it (the authors' fine-tuning stage reads the CSV with ``max_threshold=20``); the
    default keeps them, as in the published protocol.
    """
    from sklearn.model_selection import KFold

    recipes = _as_list(recipes)
    pool = paper_pool(recipes, solid_min_particles=solid_min_particles, max_size_nm=max_size_nm)
    if len(pool) < n_splits:
        raise ValueError(f"the pool has {len(pool)} recipes, fewer than n_splits={n_splits}")
    keep = _train_filter(recipes, train_max_size_nm)
    folds = []
    for _, val in KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(pool):
        val_idx = pool[val]
        train = np.ones(len(recipes), dtype=bool)
        train[val_idx] = False
        folds.append((np.flatnonzero(train & keep), val_idx))
    logger.info(
        "paper folds: pool %d of %d recipes, validation sizes %s",
        len(pool), len(recipes), [len(v) for _, v in folds],
    )
    return folds


def grouped_folds(
    recipes: Sequence[Recipe],
    groups: Sequence[str],
    n_splits: int = 5,
    *,
    random_state: int = 0,
    solid_min_particles: int = SOLID_MIN_PARTICLES,
    max_size_nm: float = PAPER_MAX_SIZE_NM,
    train_max_size_nm: float | None = None,
) -> Folds:
    """Leak-free folds: the paper's pool split so that no group spans two folds.

    Groups (e.g. source publications, :func:`publication_groups`) are shuffled with
    ``random_state`` and dealt, largest first, to the fold with the fewest pool recipes
    so far.  Fold k validates on its pool recipes and trains on every recipe whose group
    has no recipe in validation fold k (pool or not).
    """
    recipes = _as_list(recipes)
    groups = np.asarray([str(g) for g in groups], dtype=object)
    if len(groups) != len(recipes):
        raise ValueError(f"{len(groups)} groups for {len(recipes)} recipes; give one group per recipe")
    pool = paper_pool(recipes, solid_min_particles=solid_min_particles, max_size_nm=max_size_nm)
    pool_counts = Counter(groups[pool].tolist())
    if len(pool_counts) < n_splits:
        raise ValueError(f"the pool spans {len(pool_counts)} groups, fewer than n_splits={n_splits}")
    rng = np.random.default_rng(random_state)
    names = sorted(pool_counts)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda g: -pool_counts[g])  # stable: ties keep the shuffled order
    fold_of: dict[str, int] = {}
    load = np.zeros(n_splits, dtype=int)
    for group in order:
        k = int(np.argmin(load))
        fold_of[group] = k
        load[k] += pool_counts[group]
    keep = _train_filter(recipes, train_max_size_nm)
    folds = []
    pool_fold = np.array([fold_of[g] for g in groups[pool]])
    for k in range(n_splits):
        val_idx = pool[pool_fold == k]
        val_groups = {g for g, f in fold_of.items() if f == k}
        train = np.array([g not in val_groups for g in groups]) & keep
        folds.append((np.flatnonzero(train), val_idx))
    logger.info("grouped folds: %d groups in the pool, validation sizes %s", len(pool_counts), load.tolist())
    return folds


def _train_filter(recipes: list[Recipe], train_max_size_nm: float | None) -> np.ndarray:
    if train_max_size_nm is None:
        return np.ones(len(recipes), dtype=bool)
    size = size_targets(recipes)
    return ~(size > train_max_size_nm)  # NaN (unknown) stays


def tolerant_size_mask(
    pred_nm,
    target_nm,
    n_particles,
    *,
    tolerance: float = PAPER_TOLERANCE,
    solid_min_particles: int = SOLID_MIN_PARTICLES,
):
    """Which recipes count in the size loss (True) under the paper's convention.

    A recipe with fewer than ``solid_min_particles`` particles (or an unknown count,
    -1) whose prediction is within ``tolerance`` (relative) of a positive target adds no
    loss: ``|pred - target| <= tolerance * target``.  Works on numpy arrays and on torch
    tensors alike (operators only; detach a tensor prediction first).  Rows with an
    unknown (NaN) target come back True: exclude them from the loss separately.

    Examples
    --------
    >>> counts = tolerant_size_mask(pred, y, n, tolerance=0.15)  # doctest: +SKIP
    >>> loss = (per_row_loss * counts).sum() / counts.sum()  # doctest: +SKIP
    """
    within = abs(pred_nm - target_nm) <= tolerance * target_nm
    weak = (n_particles < solid_min_particles) & (target_nm > 0)
    return ~(within & weak)


# ---------------------------------------------------------------------- metrics


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MAE, MSE, RMSE (units of y), MAPE (%) and R² (fraction) of predictions.

    MAPE is ``100 * mean(|y - ŷ| / |y|)``; R² is ``1 - SS_res / SS_tot`` (NaN when the
    targets are constant).
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values, y_pred {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no values to score")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("y_true and y_pred must be finite")
    error = y_pred - y_true
    mse = float(np.mean(error**2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    with np.errstate(divide="ignore"):
        mape = float(100.0 * np.mean(np.abs(error) / np.abs(y_true)))
    return {
        "MAE": float(np.mean(np.abs(error))),
        "MSE": mse,
        "RMSE": math.sqrt(mse),
        "MAPE": mape,
        "R2": 1.0 - float(np.sum(error**2)) / ss_tot if ss_tot > 0 else float("nan"),
    }


# ---------------------------------------------------------------------- cross-validation


@dataclass
class CVResult:
    """Outcome of :func:`cross_validate`.

    Attributes
    ----------
    name : str
    fold_metrics : list of dict
        :func:`regression_metrics` of each validation fold.
    fold_mean : dict
        Mean over folds of each metric (the paper's convention).
    pooled : dict
        Metrics of all validation predictions together.
    index, fold : int ndarray (m,)
        Recipe index and fold number of each prediction, in fold order.
    y_true, y_pred : float ndarray (m,)
        Targets and predictions in fold order.
    fit_seconds, predict_seconds : list of float
        Per fold, wall-clock time of ``fit`` and ``predict``.
    peak_rss_mb : list of float
        Per fold, the peak increase of the process's resident memory during fit and
        predict over its value at the fold's start (MiB).  Sampled every 20 ms from
        ``/proc/self/statm`` on Linux, so native allocations (numpy, torch) count; where
        that file is missing, the growth of ``ru_maxrss`` (a lower bound: 0 unless the
        process reaches a new peak).
    wall_seconds : float
        Whole run, including building the estimators.
    eval_histories : list of list of dict
        With ``monitor_every``: per fold, the estimator's ``eval_history_`` on that fold's
        validation recipes (scored during training, never used to select anything).
    """

    name: str
    fold_metrics: list[dict[str, float]]
    fold_mean: dict[str, float]
    pooled: dict[str, float]
    index: np.ndarray
    fold: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    fit_seconds: list[float]
    predict_seconds: list[float]
    peak_rss_mb: list[float]
    wall_seconds: float
    memory_method: str = "proc-statm"
    eval_histories: list[list[dict]] | None = None

    def summary(self, which: Literal["fold_mean", "pooled"] = "fold_mean") -> dict[str, Any]:
        """One table row: name, the metrics (``which``), wall time and peak memory."""
        return {
            "name": self.name,
            **getattr(self, which),
            "wall_s": self.wall_seconds,
            "peak_rss_mb": max(self.peak_rss_mb) if self.peak_rss_mb else float("nan"),
        }

    def to_frame(self):
        """Predictions as a DataFrame: index, fold, true, pred."""
        import pandas as pd

        return pd.DataFrame({"index": self.index, "fold": self.fold, "true": self.y_true, "pred": self.y_pred})


def _fit_fold(estimator_factory, train, y_train, val, truth, monitor_every) -> dict:
    """Fit one fresh estimator and predict the validation recipes (time, memory, monitoring)."""
    estimator = estimator_factory()
    history = None
    with _ProcessMemory() as memory:
        t0 = time.perf_counter()
        if monitor_every is None:
            estimator.fit(train, y_train)
        else:
            estimator.fit(train, y_train, eval_set=(val, truth), eval_every=monitor_every)
            history = list(estimator.eval_history_)
        t1 = time.perf_counter()
        pred = np.asarray(estimator.predict(val), dtype=float).ravel()
        t2 = time.perf_counter()
    return {"pred": pred, "fit_s": t1 - t0, "predict_s": t2 - t1, "peak_mb": memory.peak_mb, "history": history}


def cross_validate(
    estimator_factory: Callable[[], Any],
    recipes: Sequence[Recipe],
    folds: Folds,
    *,
    y: np.ndarray | None = None,
    name: str = "",
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    monitor_every: int | None = None,
    n_jobs: int = 1,
) -> CVResult:
    """Fit a fresh estimator per fold and score its validation predictions.

    Parameters
    ----------
    estimator_factory : callable
        ``estimator_factory()`` returns an unfitted estimator with ``fit(recipes, y)``
        and ``predict(recipes) -> (n,) nm``; it receives the training recipes and
        their sizes (NaN where unknown; what to do with those is the estimator's call).
    recipes : sequence of Recipe
    folds : list of (train_idx, val_idx)
        From :func:`paper_folds` or :func:`grouped_folds`.
    y : array (n,), optional
        Targets; default :func:`size_targets`.  Validation targets must be finite.
    name : str
        Label of the result (e.g. the registry name).
    progress : callable, optional
        Called as ``progress(k, n_folds, fold_metrics)`` after each fold, in fold order.
    monitor_every : int, optional
        Also score the validation fold every this many epochs while training
        (``fit(..., eval_set=..., eval_every=...)``, e.g. :class:`SynthesisTransformer`), to
        show what selecting a checkpoint on the held-out fold would report.  The
        predictions scored are still those of the fitted estimator.
    n_jobs : int
        Folds fitted at once, each in its own process (joblib); give each estimator
        correspondingly fewer threads.  Memory is then measured per worker process.
    """
    recipes = _as_list(recipes)
    y = size_targets(recipes) if y is None else np.asarray(y, dtype=float)
    if len(y) != len(recipes):
        raise ValueError(f"{len(y)} targets for {len(recipes)} recipes")
    if int(n_jobs) < 1:
        raise ValueError(f"n_jobs must be ≥ 1, got {n_jobs}")
    start = time.perf_counter()
    folds = [(np.asarray(train_idx), np.asarray(val_idx)) for train_idx, val_idx in folds]
    for k, (train_idx, val_idx) in enumerate(folds):
        if np.intersect1d(train_idx, val_idx).size:
            raise ValueError(f"fold {k}: training and validation share recipes")
        if not np.isfinite(y[val_idx]).all():
            raise ValueError(f"fold {k}: {int((~np.isfinite(y[val_idx])).sum())} validation recipe(s) have no target")
    tasks = [(estimator_factory, [recipes[i] for i in train_idx], y[train_idx], [recipes[i] for i in val_idx], y[val_idx],
              monitor_every) for train_idx, val_idx in folds]
    if int(n_jobs) == 1:
        outcomes = (_fit_fold(*task) for task in tasks)
    else:
        from joblib import Parallel, delayed

        outcomes = Parallel(n_jobs=int(n_jobs), return_as="generator")(delayed(_fit_fold)(*task) for task in tasks)
    fold_metrics, fit_s, predict_s, peak_mb, histories, y_pred = [], [], [], [], [], []
    method = "proc-statm" if _ProcessMemory.available() else "ru_maxrss"
    for k, ((_, val_idx), outcome) in enumerate(zip(folds, outcomes)):
        truth, pred = y[val_idx], outcome["pred"]
        if pred.shape != truth.shape:
            raise ValueError(f"fold {k}: predict returned {pred.size} values for {truth.size} recipes")
        metrics = regression_metrics(truth, pred)
        fold_metrics.append(metrics)
        fit_s.append(outcome["fit_s"])
        predict_s.append(outcome["predict_s"])
        peak_mb.append(outcome["peak_mb"])
        histories.append(outcome["history"])
        y_pred.append(pred)
        logger.info(
            "%s fold %d/%d: MAE %.3f R2 %.3f (fit %.1f s, +%.0f MiB)",
            name or "cv", k + 1, len(folds), metrics["MAE"], metrics["R2"], outcome["fit_s"], outcome["peak_mb"],
        )
        if progress is not None:
            progress(k, len(folds), metrics)
    y_true_all, y_pred_all = np.concatenate([y[v] for _, v in folds]), np.concatenate(y_pred)
    return CVResult(
        name=name,
        fold_metrics=fold_metrics,
        fold_mean={m: float(np.mean([f[m] for f in fold_metrics])) for m in fold_metrics[0]},
        pooled=regression_metrics(y_true_all, y_pred_all),
        index=np.concatenate([v for _, v in folds]),
        fold=np.concatenate([np.full(len(v), k) for k, (_, v) in enumerate(folds)]),
        y_true=y_true_all,
        y_pred=y_pred_all,
        fit_seconds=fit_s,
        predict_seconds=predict_s,
        peak_rss_mb=peak_mb,
        wall_seconds=time.perf_counter() - start,
        memory_method=method,
        eval_histories=histories if monitor_every is not None else None,
    )


def format_results(results: Sequence[CVResult], which: Literal["fold_mean", "pooled"] = "fold_mean") -> str:
    """A plain-text table of several results: MAE, MSE, RMSE (nm), MAPE, R² (%), time, memory."""
    header = f"{'model':<14}{'MAE nm':>9}{'MSE':>10}{'RMSE':>9}{'MAPE %':>9}{'R2 %':>10}{'wall s':>9}{'peak MiB':>10}"
    lines = [f"({which})", header]
    for result in results:
        row = result.summary(which)
        lines.append(
            f"{row['name']:<14} {row['MAE']:>8.3f} {row['MSE']:>9.3f} {row['RMSE']:>8.3f}"
            f" {row['MAPE']:>8.2f} {100 * row['R2']:>9.2f} {row['wall_s']:>8.1f} {row['peak_rss_mb']:>9.0f}"
        )
    return "\n".join(lines)


class _ProcessMemory:
    """Context manager: peak growth of the resident set size (MiB) while inside."""

    _STATM = "/proc/self/statm"
    _INTERVAL_S = 0.02

    def __init__(self):
        self.peak_mb = 0.0

    @classmethod
    def available(cls) -> bool:
        return os.path.exists(cls._STATM)

    @classmethod
    def _rss_bytes(cls) -> int:
        with open(cls._STATM) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    @staticmethod
    def _maxrss_bytes() -> int:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss if sys.platform == "darwin" else maxrss * 1024

    def __enter__(self) -> _ProcessMemory:
        # collect garbage left by earlier work first: freeing it inside the block would
        # lower the resident set and hide the growth being measured
        gc.collect()
        self._stop = threading.Event()
        if self.available():
            self._start = self._peak = self._rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._thread = None
            self._start = self._maxrss_bytes()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._INTERVAL_S):
            self._peak = max(self._peak, self._rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._peak = max(self._peak, self._rss_bytes())
            grown = self._peak - self._start
        else:
            grown = self._maxrss_bytes() - self._start
        self.peak_mb = max(grown, 0) / 2**20


# ---------------------------------------------------------------------- paired comparison


def read_paper_predictions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(true, pred)`` of the authors' ``paper_cv_size_predictions.csv`` (617 rows, fold order)."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"true", "pred"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected 'true' and 'pred'")
    return frame["true"].to_numpy(dtype=float), frame["pred"].to_numpy(dtype=float)


def paired_comparison(
    ours,
    paper,
    truth,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict[str, float]:
    """Compare two sets of predictions of the same recipes by their absolute errors.

    Returns ``mae_ours``, ``mae_paper``, ``mean_abs_error_diff`` (ours - paper; negative
    means ours is better), its percentile-bootstrap confidence interval ``ci_low`` /
    ``ci_high`` (``n_boot`` resamples of recipes), and the two-sided Wilcoxon
    signed-rank test of the paired differences (``wilcoxon_statistic``,
    ``wilcoxon_p``; p = 1 when all differences are 0).
    """
    from scipy.stats import wilcoxon

    ours, paper, truth = (np.asarray(a, dtype=float).ravel() for a in (ours, paper, truth))
    if not (ours.shape == paper.shape == truth.shape):
        raise ValueError(f"ours, paper and truth must have the same length, got {ours.size}, {paper.size}, {truth.size}")
    if ours.size < 2:
        raise ValueError("need at least 2 paired predictions")
    if not (np.isfinite(ours).all() and np.isfinite(paper).all() and np.isfinite(truth).all()):
        raise ValueError("predictions and truth must be finite")
    diff = np.abs(ours - truth) - np.abs(paper - truth)
    rng = np.random.default_rng(random_state)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 1000):  # bounded memory
        stop = min(start + 1000, n_boot)
        means[start:stop] = diff[rng.integers(0, diff.size, size=(stop - start, diff.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    if np.any(diff != 0):
        test = wilcoxon(diff)
        statistic, p = float(test.statistic), float(test.pvalue)
    else:
        statistic, p = 0.0, 1.0
    return {
        "n": int(diff.size),
        "mae_ours": float(np.mean(np.abs(ours - truth))),
        "mae_paper": float(np.mean(np.abs(paper - truth))),
        "mean_abs_error_diff": float(diff.mean()),
        "ci_low": float(np.quantile(means, alpha)),
        "ci_high": float(np.quantile(means, 1.0 - alpha)),
        "wilcoxon_statistic": statistic,
        "wilcoxon_p": p,
    }


# ---------------------------------------------------------------------- source publications

_XLSX_CHEMICAL_SLOTS = 10
_RTOL = 0.01  # relative tolerance of the "tolerant" match stage


@dataclass(frozen=True)
class _Source:
    row_id: str
    product: str | None
    numbers: tuple  # injection T, reaction T, time, as _q() keys
    chemicals: tuple  # sorted (name, amount) with raw floats
    size_nm: float | None
    n_particles: float | None
    doi: str | None

    @property
    def names(self) -> tuple:
        return tuple(name for name, _ in self.chemicals)


@dataclass
class SourceLinks:
    """Link of each recipe to a row of the source workbook (:func:`link_recipes`).

    Attributes
    ----------
    source_row : list of str or None
        ID of the linked source row (``"xlsx-<spreadsheet row>"``), None if unmatched.
    doi : list of str or None
        Normalised DOI (lower case, no URL prefix) or ``"self-synthesis"``.
    stage : list of str
        How the link was made: ``"exact"`` (product, temperatures, time, chemicals and
        amounts equal), ``"tolerant"`` (same chemicals, numbers within 1 %),
        ``"names"`` (same product and chemical names, every such source row from one
        publication) or ``"unmatched"``.
    n_ambiguous : int
        Links chosen among candidates from more than one publication.
    """

    source_row: list[str | None]
    doi: list[str | None]
    stage: list[str]
    n_ambiguous: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def match_rate(self) -> float:
        """Fraction of recipes linked to a source row."""
        return sum(s != "unmatched" for s in self.stage) / len(self.stage) if self.stage else float("nan")


def _q(value) -> float | None:
    """A number as a hashable key: 6 significant digits; None for missing."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return float(f"{value:.6g}")


def _normalise_doi(doi) -> str | None:
    if not isinstance(doi, str) or not doi.strip():
        return None
    text = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    return text.strip().lower()


def _source_from_recipe(recipe: Recipe) -> _Source:
    c, o = recipe.conditions, recipe.outcome
    return _Source(
        row_id=recipe.id,
        product=recipe.product.name if recipe.product is not None else None,
        numbers=(_q(c.injection_temp_c), _q(c.reaction_temp_c), _q(c.time_min)),
        chemicals=_sorted_chemicals((ch.name, ch.amount_mmol) for ch in recipe.chemicals),
        size_nm=None if o is None else o.size_nm,
        n_particles=None if o is None else o.n_particles,
        doi=_normalise_doi(recipe.provenance.doi),
    )


def _sorted_chemicals(chemicals) -> tuple:
    return tuple(sorted(chemicals, key=lambda item: (item[0], item[1] is None, item[1] or 0.0)))


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _read_sources(path: Path) -> list[_Source]:
    """Rows of ``raw_recipe_dataset.xlsx``, leniently: a bad cell is missing, not an error."""
    import pandas as pd

    frame = pd.read_excel(path, sheet_name=0, dtype=object)
    needed = ["Nanocrystal Composition", "injection temperature/℃", "reaction temperature/℃", "reaction time/min", "DOI"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not the raw recipe workbook layout; missing columns {missing}")
    sources = []
    for index, row in enumerate(frame.to_dict("records")):
        chemicals = []
        for i in range(_XLSX_CHEMICAL_SLOTS):
            suffix = "" if i == 0 else f".{i}"
            name = _text(row.get(f"reactants{suffix}"))
            if name:
                chemicals.append((name, _number(row.get(f"additive amount/mmol{suffix}"))))
        sources.append(
            _Source(
                row_id=f"xlsx-{index + 2}",
                product=_text(row.get("Nanocrystal Composition")),
                numbers=tuple(
                    _q(_number(row.get(c)))
                    for c in ("injection temperature/℃", "reaction temperature/℃", "reaction time/min")
                ),
                chemicals=_sorted_chemicals(chemicals),
                size_nm=_number(row.get("D/nm")),
                n_particles=_number(row.get("Number of statistics")),
                doi=_normalise_doi(row.get("DOI")),
            )
        )
    return sources


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= _RTOL * max(abs(a), abs(b)) + 1e-12


def link_recipes(recipes: Sequence[Recipe], source: Sequence[Recipe] | str | os.PathLike) -> SourceLinks:
    """Link recipes (e.g. ``recipes.csv``) to rows of their source workbook by content.

    Parameters
    ----------
    recipes : sequence of Recipe
    source : path of ``raw_recipe_dataset.xlsx``, or recipes read from it
        A path is read leniently (rows with unreadable cells still take part; the
        strict reader :func:`~nc_synthmodel.io.read_recipes` drops 15 of the 3,508 rows).

    The chemical sets and amounts, product, temperatures and time must agree
    ("exact", 6 significant digits), or agree within 1 % ("tolerant"); sizes are not
    compared, because ``recipes.csv`` rescales the sizes of some publications.  Among
    several candidates, an unused row with the same size and particle count wins.
    Failing both, a recipe takes the publication of the source rows with the same
    product and chemical names if they all come from one ("names").
    """
    recipes = _as_list(recipes)
    if isinstance(source, (str, os.PathLike)):
        sources = _read_sources(Path(source))
    else:
        sources = [_source_from_recipe(r) for r in _as_list(source)]
    exact: dict[tuple, list[int]] = defaultdict(list)
    by_names: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sources):
        exact[(s.product, s.numbers, tuple((n, _q(a)) for n, a in s.chemicals))].append(i)
        by_names[(s.product, s.names)].append(i)
    used: set[int] = set()
    rows: list[str | None] = []
    dois: list[str | None] = []
    stages: list[str] = []
    n_ambiguous = 0
    for recipe in recipes:
        mine = _source_from_recipe(recipe)
        candidates = exact.get((mine.product, mine.numbers, tuple((n, _q(a)) for n, a in mine.chemicals)), [])
        stage = "exact"
        if not candidates:
            stage = "tolerant"
            candidates = [
                i for i in by_names.get((mine.product, mine.names), [])
                if all(_close(a, b) for a, b in zip(mine.numbers, sources[i].numbers))
                and all(_close(a[1], b[1]) for a, b in zip(mine.chemicals, sources[i].chemicals))
            ]
        if candidates:
            ranked = sorted((_preference(mine, sources[i], i in used), i) for i in candidates)
            best = ranked[0][1]
            n_ambiguous += len({sources[i].doi for rank, i in ranked if rank[:3] == ranked[0][0][:3]}) > 1
            used.add(best)
            rows.append(sources[best].row_id)
            dois.append(sources[best].doi)
            stages.append(stage)
            continue
        publications = {sources[i].doi for i in by_names.get((mine.product, mine.names), [])}
        if len(publications) == 1:
            rows.append(None)
            dois.append(publications.pop())
            stages.append("names")
        else:
            rows.append(None)
            dois.append(None)
            stages.append("unmatched")
    counts = dict(Counter(stages))
    links = SourceLinks(rows, dois, stages, n_ambiguous, counts)
    logger.info(
        "linked %d of %d recipes to a source row or publication (%.2f %%): %s; %d ambiguous",
        len(stages) - counts.get("unmatched", 0), len(stages), 100 * links.match_rate, counts, n_ambiguous,
    )
    return links


def _preference(mine: _Source, other: _Source, used: bool) -> tuple:
    same_size = mine.size_nm is not None and other.size_nm is not None and math.isclose(mine.size_nm, other.size_nm, rel_tol=1e-6)
    same_n = mine.n_particles is not None and mine.n_particles == other.n_particles
    return (used, not same_size, not same_n, other.row_id)


def publication_groups(
    recipes: Sequence[Recipe],
    source: Sequence[Recipe] | str | os.PathLike,
    *,
    unmatched: Literal["own", "product"] = "own",
) -> list[str]:
    """Source publication of each recipe: its DOI (lower case), ``"self-synthesis"``, or
    for a recipe that :func:`link_recipes` cannot link, ``"unmatched:<id>"`` (its own
    group) or, with ``unmatched="product"``, ``"unmatched:<product>"`` (a coarser,
    more conservative grouping).
    """
    if unmatched not in ("own", "product"):
        raise ValueError(f"unmatched must be 'own' or 'product', got {unmatched!r}")
    recipes = _as_list(recipes)
    links = link_recipes(recipes, source)
    groups = []
    for recipe, doi in zip(recipes, links.doi):
        if doi is not None:
            groups.append(doi)
        elif unmatched == "own":
            groups.append(f"unmatched:{recipe.id}")
        else:
            groups.append(f"unmatched:{recipe.product.name if recipe.product else recipe.id}")
    return groups


def _as_list(recipes) -> list[Recipe]:
    return list(getattr(recipes, "recipes", recipes))
