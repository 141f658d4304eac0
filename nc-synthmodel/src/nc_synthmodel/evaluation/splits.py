"""Targets, the paper's cross-validation pool and folds, leak-free grouped folds, the loss mask.

:func:`size_targets` (nm, NaN when unknown), :func:`paper_pool` / :func:`paper_folds` (the
authors' protocol, see :mod:`nc_synthmodel.evaluation`), :func:`grouped_folds` (folds by
source publication) and :func:`tolerant_size_mask` (the ±:data:`PAPER_TOLERANCE` loss
convention for recipes with few particles).  A fold is a pair of index arrays
``(train, validation)``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..contract import Recipe
from ..dataset import SOLID_MIN_PARTICLES

logger = logging.getLogger(__name__)


#: Largest size (nm) of a recipe in the paper's cross-validation pool.
PAPER_MAX_SIZE_NM = 20.0
#: Relative error below which a recipe with few particles adds no loss (paper: ±15 %).
PAPER_TOLERANCE = 0.15

Folds = list[tuple[np.ndarray, np.ndarray]]


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


def _as_list(recipes) -> list[Recipe]:
    return list(getattr(recipes, "recipes", recipes))
