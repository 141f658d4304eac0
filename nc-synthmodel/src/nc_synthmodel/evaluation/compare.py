"""Paired comparison of two models' predictions of the same recipes (Wilcoxon signed-rank).

:func:`read_paper_predictions` reads the authors' ``paper_cv_size_predictions.csv``;
:func:`paired_comparison` compares absolute errors row by row.
"""

from __future__ import annotations

import os

import numpy as np


def read_paper_predictions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(true, pred)`` of the authors' ``paper_cv_size_predictions.csv`` (617 rows, fold order)."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"true", "pred"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected 'true' and 'pred'")
    return frame["true"].to_numpy(dtype=float), frame["pred"].to_numpy(dtype=float)


def bootstrap_interval(values, *, n_boot: int = 10_000, confidence: float = 0.95, random_state: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (``n_boot`` resamples)."""
    values = np.asarray(values, dtype=float).ravel()
    rng = np.random.default_rng(random_state)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 1000):  # bounded memory
        stop = min(start + 1000, n_boot)
        means[start:stop] = values[rng.integers(0, values.size, size=(stop - start, values.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


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
    ci_low, ci_high = bootstrap_interval(diff, n_boot=n_boot, confidence=confidence, random_state=random_state)
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
        "ci_low": ci_low,
        "ci_high": ci_high,
        "wilcoxon_statistic": statistic,
        "wilcoxon_p": p,
    }
