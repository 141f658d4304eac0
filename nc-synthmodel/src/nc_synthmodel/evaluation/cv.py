"""The cross-validation harness: :func:`cross_validate` over folds, :class:`CVResult`, a text table.

Any estimator factory with ``fit(recipes, y)`` / ``predict(recipes)`` runs fold by fold
(optionally in parallel with joblib), with wall time and peak memory growth
(:mod:`.memory`) recorded; results keep both the mean over folds and the pooled metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..contract import Recipe
from .memory import _ProcessMemory
from .metrics import regression_metrics
from .splits import Folds, _as_list, size_targets

logger = logging.getLogger(__name__)


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
    tasks = [
        (estimator_factory, [recipes[i] for i in train_idx], y[train_idx], [recipes[i] for i in val_idx], y[val_idx], monitor_every)
        for train_idx, val_idx in folds
    ]
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
            name or "cv",
            k + 1,
            len(folds),
            metrics["MAE"],
            metrics["R2"],
            outcome["fit_s"],
            outcome["peak_mb"],
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
