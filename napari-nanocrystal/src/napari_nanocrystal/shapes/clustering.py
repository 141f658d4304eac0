"""Unsupervised shape clusters of a particle table (Gu et al., ACS Nano 2025, Fig. 2c/d).

:class:`ShapeClustering` standardises the shape descriptors of a particle table
(:data:`DEFAULT_DESCRIPTORS`) and groups the particles by k-means, with an optional 2-D
t-SNE/UMAP embedding for plotting; :func:`suggest_n_clusters` picks k by silhouette and
:func:`cluster_proportions` / :func:`plot_cluster_proportions` summarise the clusters per
group (e.g. per reaction temperature).  scikit-learn, umap-learn and matplotlib are
imported inside the functions that need them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: Shape descriptors of the particle table used for clustering by default.
DEFAULT_DESCRIPTORS: tuple[str, ...] = ("circularity", "solidity", "convexity", "eccentricity", "aspect_ratio")


def _descriptor_matrix(table: pd.DataFrame, descriptors: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Descriptor values (n, d) and a mask of the rows that are complete and finite."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a particle table (pandas DataFrame), not {type(table).__name__}")
    missing = [d for d in descriptors if d not in table.columns]
    if missing:
        raise ValueError(f"particle table lacks descriptor column(s): {', '.join(missing)}")
    X = table[list(descriptors)].to_numpy(dtype=float)
    return X, np.isfinite(X).all(axis=1)


class ShapeClustering:
    """Cluster particles by shape: standardised descriptors → k-means (+ a 2-D embedding).

    Parameters
    ----------
    n_clusters : int
        Number of k-means clusters (Gu et al. use 7).
    descriptors : sequence of str
        Particle-table columns used as features.
    embedding : {"tsne", "umap", None}
        2-D embedding of the standardised descriptors computed by :meth:`fit`, for
        plotting only (the clusters never depend on it).  UMAP needs ``umap-learn``.
    random_state : int
        Seed of k-means and of the embedding.

    Attributes
    ----------
    scaler_ : sklearn.preprocessing.StandardScaler
    kmeans_ : sklearn.cluster.KMeans
    labels_ : (n,) int array
        Cluster of each row of the fitted table, 0..k-1; -1 for rows with a missing
        (NaN/inf) descriptor.
    embedding_ : (n, 2) float array or None
        Embedding of each row (NaN for rows with missing descriptors).

    Examples
    --------
    >>> model = ShapeClustering(n_clusters=5, embedding=None).fit(table)  # doctest: +SKIP
    >>> table["shape_cluster"] = model.labels_                              # doctest: +SKIP
    """

    def __init__(
        self,
        n_clusters: int = 7,
        descriptors: Sequence[str] = DEFAULT_DESCRIPTORS,
        embedding: str | None = "tsne",
        random_state: int | None = 0,
    ):
        self.n_clusters = n_clusters
        self.descriptors = descriptors
        self.embedding = embedding
        self.random_state = random_state

    def fit(self, table: pd.DataFrame, y=None) -> ShapeClustering:
        """Fit the scaler and k-means on the complete rows of ``table``; returns self."""
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

        if self.embedding not in ("tsne", "umap", None):
            raise ValueError(f"embedding must be 'tsne', 'umap' or None, not {self.embedding!r}")
        if int(self.n_clusters) < 1:
            raise ValueError(f"n_clusters must be ≥ 1, not {self.n_clusters!r}")
        X, ok = _descriptor_matrix(table, self.descriptors)
        n_ok = int(ok.sum())
        if n_ok < self.n_clusters:
            raise ValueError(f"{n_ok} particles with complete descriptors, fewer than n_clusters={self.n_clusters}")
        if n_ok < len(X):
            logger.info("%d of %d particles have a missing descriptor and are not clustered", len(X) - n_ok, len(X))
        self.scaler_ = StandardScaler().fit(X[ok])
        Z = self.scaler_.transform(X[ok])
        self.kmeans_ = KMeans(n_clusters=int(self.n_clusters), n_init=10, random_state=self.random_state).fit(Z)
        self.labels_ = np.full(len(X), -1, dtype=np.int64)
        self.labels_[ok] = self.kmeans_.labels_
        self.embedding_ = None
        if self.embedding is not None:
            self.embedding_ = np.full((len(X), 2), np.nan)
            self.embedding_[ok] = _embed(Z, self.embedding, self.random_state)
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Nearest cluster (0..k-1) of each row; -1 where a descriptor is missing."""
        if not hasattr(self, "kmeans_"):
            raise RuntimeError("this ShapeClustering is not fitted yet: call fit(table) first")
        X, ok = _descriptor_matrix(table, self.descriptors)
        out = np.full(len(X), -1, dtype=np.int64)
        if ok.any():
            out[ok] = self.kmeans_.predict(self.scaler_.transform(X[ok]))
        return out

    def fit_predict(self, table: pd.DataFrame, y=None) -> np.ndarray:
        """Fit on ``table`` and return :attr:`labels_`."""
        return self.fit(table).labels_


def _embed(Z: np.ndarray, method: str, random_state: int | None) -> np.ndarray:
    n = len(Z)
    if n < 3:  # nothing to embed: keep the first two (standardised) descriptors
        return np.pad(Z[:, :2], ((0, 0), (0, max(0, 2 - Z.shape[1]))))
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ImportError(
                "the UMAP embedding needs umap-learn: pip install umap-learn (or napari-nanocrystal[embedding]), or use embedding='tsne'"
            ) from exc
        n_neighbors = max(2, min(15, n - 1))
        n_jobs = 1 if random_state is not None else -1  # umap-learn is only reproducible single-threaded
        return umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=random_state, n_jobs=n_jobs).fit_transform(Z)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state).fit_transform(Z)


def suggest_n_clusters(
    table: pd.DataFrame,
    k_range: Sequence[int] = range(2, 11),
    random_state: int | None = 0,
    descriptors: Sequence[str] = DEFAULT_DESCRIPTORS,
) -> tuple[int, dict[int, float]]:
    """Number of clusters with the best silhouette score.

    Returns
    -------
    best_k : int
    scores : dict k → silhouette score (standardised descriptors, k-means)
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    X, ok = _descriptor_matrix(table, descriptors)
    Z = StandardScaler().fit_transform(X[ok])
    scores: dict[int, float] = {}
    for k in k_range:
        k = int(k)
        if k < 2 or k >= len(Z):
            continue
        labels = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(Z)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(Z, labels))
    if not scores:
        raise ValueError(f"no k in {list(k_range)} can be scored with {len(Z)} complete particles")
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def cluster_proportions(
    table: pd.DataFrame,
    group_by: str | None = None,
    *,
    cluster_column: str = "shape_cluster",
    n_clusters: int | None = None,
) -> pd.DataFrame:
    """Percent of particles in each shape cluster, per group.

    Parameters
    ----------
    table : particle table with a cluster column (-1 = not clustered, ignored)
    group_by : column to group rows by (e.g. ``"reaction_temp_c"``); None = one group "all"
    n_clusters : number of clusters to report (default: 1 + the largest cluster id)

    Returns
    -------
    DataFrame with one row per group and columns ``C1..Ck`` (percent; rows sum to 100).
    """
    if cluster_column not in table.columns:
        raise ValueError(f"table has no {cluster_column!r} column: cluster the particles first")
    clusters = pd.to_numeric(table[cluster_column], errors="coerce").fillna(-1).astype(int)
    keep = clusters >= 0
    k = int(n_clusters) if n_clusters is not None else (int(clusters[keep].max()) + 1 if keep.any() else 0)
    columns = [f"C{i + 1}" for i in range(k)]
    if group_by is None:
        groups = pd.Series("all", index=table.index)
    elif group_by not in table.columns:
        raise ValueError(f"table has no column {group_by!r} to group by")
    else:
        groups = table[group_by]
    named = clusters[keep].map(lambda c: f"C{c + 1}")
    counts = pd.crosstab(groups[keep], named).reindex(columns=columns, fill_value=0)
    percent = 100.0 * counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    percent.columns.name = None
    percent.index.name = group_by
    return percent.fillna(0.0)


def plot_cluster_proportions(proportions: pd.DataFrame, *, ax=None, title: str | None = None, cmap: str = "tab10"):
    """Stacked bars of :func:`cluster_proportions` (one bar per group); returns the Figure.

    Uses ``matplotlib.figure.Figure`` directly (no pyplot state), so it is safe headless.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(1.2 + 0.6 * max(1, len(proportions)), 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    colours = colormaps[cmap]
    x = np.arange(len(proportions))
    bottom = np.zeros(len(proportions))
    for i, column in enumerate(proportions.columns):
        values = proportions[column].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, color=colours(i % colours.N), label=str(column), width=0.8)
        bottom += values
    ax.set_xticks(x, [str(g) for g in proportions.index])
    ax.set_ylim(0, 100)
    ax.set_ylabel("particles (%)")
    if proportions.index.name:
        ax.set_xlabel(str(proportions.index.name))
    if title:
        ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    return fig
