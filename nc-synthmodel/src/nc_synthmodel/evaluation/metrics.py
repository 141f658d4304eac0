"""Regression metrics of size predictions: MAE, MSE, RMSE, MAPE and R²."""

from __future__ import annotations

import math

import numpy as np


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
