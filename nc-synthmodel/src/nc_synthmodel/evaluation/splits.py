"""Targets, the paper's cross-validation pool and folds, leak-free grouped folds, the loss mask.

:func:`size_targets` (nm, NaN when unknown), :func:`paper_pool` / :func:`paper_folds` (the
authors' protocol, see :mod:`nc_synthmodel.evaluation`), :func:`grouped_folds` (folds by
source publication), :func:`composition_folds` (leave one product composition out) and :func:`tolerant_size_mask` (the ±:data:`PAPER_TOLERANCE` loss
convention for recipes with few particles; both live in :mod:`nc_synthmodel.targets` and are
re-exported here).  A fold is a pair of index arrays
``(train, validation)``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..contract import Recipe
from ..targets import PAPER_TOLERANCE, SOLID_MIN_PARTICLES, size_targets, tolerant_size_mask

__all__ = [
    "PAPER_MAX_SIZE_NM",
    "PAPER_TOLERANCE",
    "Folds",
    "composition",
    "composition_folds",
    "grouped_folds",
    "paper_folds",
    "paper_pool",
    "size_targets",
    "tolerant_size_mask",
]

logger = logging.getLogger(__name__)


#: Largest size (nm) of a recipe in the paper's cross-validation pool.
PAPER_MAX_SIZE_NM = 20.0

Folds = list[tuple[np.ndarray, np.ndarray]]


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
        len(pool),
        len(recipes),
        [len(v) for _, v in folds],
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


def composition(recipe: Recipe) -> str:
    """The product composition of a recipe: its product name without a polymorph suffix (``CdSe-1`` -> ``CdSe``)."""
    name = recipe.product.name.strip()
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() and head else name


def composition_folds(
    recipes: Sequence[Recipe],
    *,
    min_pool: int = 1,
    solid_min_particles: int = SOLID_MIN_PARTICLES,
    max_size_nm: float = PAPER_MAX_SIZE_NM,
    train_max_size_nm: float | None = None,
) -> Folds:
    """Leave-one-composition-out folds over the paper's pool: can a model size a material it never saw?

    One fold per product composition (:func:`composition`) with at least ``min_pool`` pool
    recipes, in alphabetical order: it validates on that composition's pool recipes and trains
    on every recipe of any other composition (pool or not).
    """
    recipes = _as_list(recipes)
    if int(min_pool) < 1:
        raise ValueError(f"min_pool must be a positive number of recipes, got {min_pool!r}")
    names = np.array([composition(r) for r in recipes], dtype=object)
    pool = paper_pool(recipes, solid_min_particles=solid_min_particles, max_size_nm=max_size_nm)
    counts = Counter(names[pool].tolist())
    held = sorted(c for c, n in counts.items() if n >= min_pool)
    if len(held) < 2:
        raise ValueError(f"the pool holds {len(held)} composition(s) with >= {min_pool} recipes; need at least 2")
    keep = _train_filter(recipes, train_max_size_nm)
    folds = []
    for name in held:
        val_idx = pool[names[pool] == name]
        folds.append((np.flatnonzero((names != name) & keep), val_idx))
    logger.info("composition folds: %d compositions held out one at a time", len(folds))
    return folds


def _train_filter(recipes: list[Recipe], train_max_size_nm: float | None) -> np.ndarray:
    if train_max_size_nm is None:
        return np.ones(len(recipes), dtype=bool)
    size = size_targets(recipes)
    return ~(size > train_max_size_nm)  # NaN (unknown) stays


def _as_list(recipes) -> list[Recipe]:
    return list(getattr(recipes, "recipes", recipes))
