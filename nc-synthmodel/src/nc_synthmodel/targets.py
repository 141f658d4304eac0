"""What a model predicts: one :class:`Target` per outcome column, with its task, scaling, loss and metrics.

A :class:`Target` names everything a trainer, an evaluation and a report need to know about
one outcome, so that a new target (shape, yield, ...) is one entry in :data:`TARGETS`, not a
search through the code:

* ``column`` - the :class:`~nc_synthmodel.contract.Outcome` field it reads;
* ``task`` - ``"regression"`` or ``"classification"``;
* ``scaling`` - how a regressor sees it (``"log"``: learn ``ln(value)``);
* ``loss`` - the training loss of the transformer (``"huber-tolerant"``: Huber on the scaled
  value, with the paper's ±15 % tolerance for recipes with few particles, :func:`tolerant_size_mask`);
* ``metrics`` - what an evaluation reports (:func:`nc_synthmodel.evaluation.regression_metrics`);
* ``pool`` - which recipes may be scored: ``"solid<=20nm"`` is the paper's cross-validation
  pool (:func:`nc_synthmodel.evaluation.paper_pool`: at least 300 counted particles, size ≤ 20 nm).

Today the code knows one target, :data:`SIZE`.  This module imports only the contract, so
models and evaluation can both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .contract import Recipe

__all__ = [
    "PAPER_TOLERANCE",
    "SIZE",
    "SOLID_MIN_PARTICLES",
    "TARGETS",
    "Target",
    "size_fit_targets",
    "size_targets",
    "tolerant_size_mask",
]

#: Recipes whose size was measured on at least this many particles are "solid" (paper protocol).
SOLID_MIN_PARTICLES = 300
#: Relative error below which a recipe with few particles adds no loss (paper: ±15 %).
PAPER_TOLERANCE = 0.15


@dataclass(frozen=True)
class Target:
    """One predicted outcome: its column, task, scaling, loss, reported metrics and scoring pool."""

    name: str
    column: str
    task: str
    scaling: str
    loss: str
    metrics: tuple[str, ...]
    pool: str
    unit: str = ""

    def values(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """The target of each recipe as float64 (n,), NaN where the recipe has no value."""
        return np.array(
            [
                np.nan if r.outcome is None or getattr(r.outcome, self.column) is None else getattr(r.outcome, self.column)
                for r in _as_list(recipes)
            ],
            dtype=float,
        )


#: Mean particle size (nm), the target of the paper's Extended Data Table 1.
SIZE = Target(
    name="size",
    column="size_nm",
    task="regression",
    scaling="log",
    loss="huber-tolerant",
    metrics=("MAE", "MSE", "RMSE", "MAPE", "R2"),
    pool="solid<=20nm",
    unit="nm",
)

#: Every target the code knows, by name.
TARGETS: dict[str, Target] = {SIZE.name: SIZE}


def size_targets(recipes: Sequence[Recipe]) -> np.ndarray:
    """Mean size (nm) of each recipe, NaN when unknown; float64 (n,)."""
    return SIZE.values(recipes)


def size_fit_targets(recipes, y) -> tuple[list, np.ndarray]:
    """(recipes as a list, size targets) for an estimator's ``fit``: ``y`` or the recipes' sizes, checked."""
    recipes = list(recipes)
    if not recipes:
        raise ValueError("cannot fit on no recipes")
    y = size_targets(recipes) if y is None else np.asarray(y, dtype=float).ravel()
    if len(y) != len(recipes):
        raise ValueError(f"{len(y)} targets for {len(recipes)} recipes")
    if not (np.isfinite(y) & (y > 0)).any():
        raise ValueError("no recipe has a known size to train on")
    return recipes, y


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


def _as_list(recipes) -> list[Recipe]:
    return list(getattr(recipes, "recipes", recipes))
