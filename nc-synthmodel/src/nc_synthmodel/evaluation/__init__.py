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

:func:`composition_folds` leaves one product composition out at a time.

Modules: :mod:`.splits` (pools and folds; the targets and the loss mask come from
:mod:`nc_synthmodel.targets`), :mod:`.metrics`,
:mod:`.cv` (the cross-validation harness), :mod:`.memory` (peak memory of a fold),
:mod:`.compare` (paired comparison), :mod:`.sources` (source publications of recipes).
Nothing here imports a POSIX-only module at import time.
"""

from __future__ import annotations

from .compare import paired_comparison, read_paper_predictions
from .cv import CVResult, cross_validate, format_results
from .metrics import regression_metrics
from .sources import SourceLinks, link_recipes, publication_groups
from .splits import (
    PAPER_MAX_SIZE_NM,
    PAPER_TOLERANCE,
    Folds,
    composition,
    composition_folds,
    grouped_folds,
    paper_folds,
    paper_pool,
    size_targets,
    tolerant_size_mask,
)

__all__ = [
    "PAPER_MAX_SIZE_NM",
    "PAPER_TOLERANCE",
    "CVResult",
    "SourceLinks",
    "composition",
    "composition_folds",
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
