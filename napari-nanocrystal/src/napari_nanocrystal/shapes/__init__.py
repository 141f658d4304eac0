"""Particle shapes: unsupervised shape clusters and the 11 named shape classes.

Two complementary tools:

* :class:`ShapeClustering` groups particles by their shape descriptors (standardised,
  then k-means), as in Gu et al., ACS Nano 2025 (Fig. 2c/d), with an optional 2-D
  t-SNE/UMAP embedding for plotting; :func:`suggest_n_clusters` picks k by silhouette
  and :func:`cluster_proportions` / :func:`plot_cluster_proportions` summarise the
  clusters per group (e.g. per reaction temperature).
* :func:`classify_shape` names a single particle mask with one of
  :data:`~nc_synthmodel.contract.SHAPE_CLASSES` from its geometry (concavities, the
  straight sides of its outline, aspect ratio); :func:`assign_shape_classes` fills the
  ``shape_class`` column of a particle table.  :func:`render_shape_mask` draws synthetic
  masks of every class, used to test the classifier and by benchmarks.

Masks are 2-D boolean arrays (rows, columns); label images are integers, 0 = background.

Modules: :mod:`.clustering` (k-means clusters of a particle table), :mod:`.features`
(geometry of one mask), :mod:`.classify` (rules + round-family model → class name),
:mod:`.render` (synthetic masks).  Every public name is importable from this package.
"""

from __future__ import annotations

from .classify import (
    IRREGULAR,
    ROUND_FAMILY,
    ROUND_FEATURES,
    ROUND_MODEL_FILE,
    assign_shape_classes,
    classify_shape,
    classify_shapes,
    fit_round_shape_model,
)
from .clustering import (
    DEFAULT_DESCRIPTORS,
    ShapeClustering,
    cluster_proportions,
    plot_cluster_proportions,
    suggest_n_clusters,
)
from .features import shape_features
from .render import RANDOM_BLUR_SIGMAS, RANDOM_NOISE_LEVELS, RANDOM_SIZE_PX, random_shape_mask, render_shape_mask

__all__ = [
    "ShapeClustering",
    "suggest_n_clusters",
    "cluster_proportions",
    "plot_cluster_proportions",
    "classify_shape",
    "classify_shapes",
    "assign_shape_classes",
    "shape_features",
    "render_shape_mask",
    "random_shape_mask",
    "fit_round_shape_model",
    "ROUND_FAMILY",
    "DEFAULT_DESCRIPTORS",
]
