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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from nc_synthmodel.contract import SHAPE_CLASSES
from scipy import ndimage as ndi
from scipy.signal import find_peaks
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import find_contours

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

logger = logging.getLogger(__name__)

#: Shape descriptors of the particle table used for clustering by default.
DEFAULT_DESCRIPTORS: tuple[str, ...] = ("circularity", "solidity", "convexity", "eccentricity", "aspect_ratio")


# ----------------------------------------------------------------------------------------
# Unsupervised shape clusters


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
                "the UMAP embedding needs umap-learn: pip install umap-learn "
                "(or napari-nanocrystal[embedding]), or use embedding='tsne'"
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


# ----------------------------------------------------------------------------------------
# Named shape classes from mask geometry

IRREGULAR = SHAPE_CLASSES[0]  # "Irregular shape"

# thresholds (dimensionless, scale-free)
# concavities reported by shape_features (n_valleys, lobe_fill): valleys ≥ this × the deepest
_LOBE_DEFECT = 0.40
_NOISE_DEFECT = 0.04  # … and ≥ this × equivalent radius
_SPHERE_AR = 1.2
_ROD_AR = 2.5
# noise-robust rules (classify_shape → _decide); R_m = radial Fourier amplitudes
_MEDIUM_SMOOTH = 0.08  # outline smoothing (Gaussian σ, × equivalent radius) for R_m and the rectangle fill
_COARSE_SMOOTH = 0.15  # … and for the smoothed solidity
_STAR4_R_SMALL, _STAR4_SOLIDITY = 0.18, 0.86
_STAR6_R, _STAR6_SOLIDITY = 0.08, 0.92
_STAR6_R_SMALL, _STAR_SOLIDITY_SMALL = 0.09, 0.935
_PETAL_R, _PETAL_DOMINANCE = 0.03, 1.0
_CUSP, _CUSP6 = 0.0, -0.05  # in-phase part of R_2k / R_k at the petal order k: < 0 for cusps pointing inward
_TRIANGLE_R = 0.16
_ELONGATED_AR = 1.3
_RECT_FILL = 0.82
_RHOMBUS_R = 0.11
_CUBE_R = 0.08
_HEXAGON_R = 0.025
_HEXAGON_CONTRAST, _HEXAGON_VS_LOW = 1.2, 0.8
_HEXAGON_R_CORNERS, _CORNER_SIGN = 0.018, 0.6  # … lower when R12 is in phase with R6 (corners outward)
_ROUND_LOW = 0.08


def _outline(mask: np.ndarray) -> np.ndarray | None:
    """Outer contour (n, 2) of a mask, resampled to ~1 px steps and lightly smoothed."""
    padded = np.pad(np.asarray(mask, dtype=float), 3)
    smooth = ndi.gaussian_filter(padded, 1.0)
    contours = find_contours(smooth, 0.5)
    if not contours:
        return None
    contour = max(contours, key=len)
    if len(contour) < 8:
        return None
    closed = np.vstack([contour, contour[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed, axis=0).T))])
    n = max(64, int(round(arc[-1])))
    s = np.linspace(0.0, arc[-1], n, endpoint=False)
    points = np.column_stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])])
    return ndi.gaussian_filter1d(points, 1.0, axis=0, mode="wrap")


def _shoelace(points: np.ndarray) -> float:
    y, x = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _defects(points: np.ndarray) -> list[tuple[float, int]]:
    """Concavities between consecutive convex-hull vertices: (depth, valley index)."""
    try:
        hull = np.sort(ConvexHull(points).vertices)
    except QhullError:
        return []
    n = len(points)
    out = []
    for a, b in zip(hull, np.roll(hull, -1)):
        span = (b - a) % n
        if span < 2:
            continue
        idx = (a + np.arange(1, span)) % n
        p, d = points[a], points[b] - points[a]
        length = math.hypot(*d)
        if length == 0:
            continue
        dist = np.abs(d[1] * (points[idx, 0] - p[0]) - d[0] * (points[idx, 1] - p[1])) / length
        k = int(np.argmax(dist))
        out.append((float(dist[k]), int(idx[k])))
    return out


def _lobe_fill(points: np.ndarray, valleys: list[int]) -> float:
    """Median over the lobes between consecutive valleys of: area between the outline and
    the valley–valley chord / area of the triangle valley–tip–valley (tip = outline point
    farthest from the chord).  ≈ 1 for straight-flanked spikes, ~1.3 for round petals."""
    n = len(points)
    fills = []
    valleys = sorted(valleys)
    for a, b in zip(valleys, valleys[1:] + valleys[:1]):
        span = (b - a) % n or n
        seg = points[(a + np.arange(span + 1)) % n]
        p, d = seg[0], seg[-1] - seg[0]
        length = math.hypot(*d)
        if length == 0:
            continue
        dist = np.abs(d[1] * (seg[:, 0] - p[0]) - d[0] * (seg[:, 1] - p[1])) / length
        triangle = 0.5 * length * float(dist.max())
        fills.append(_shoelace(seg) / triangle if triangle > 0 else np.inf)
    return float(np.median(fills)) if fills else np.nan


def _radial_harmonics(points: np.ndarray) -> tuple[int, float]:
    """Dominant angular order (3..16) of the radius r(θ) about the centroid and the share
    of the variance of r(θ) (orders ≥ 2) in that order and its multiples."""
    local = points - points.mean(axis=0)  # meaningful for outlines star-shaped about the centroid
    theta = np.unwrap(np.arctan2(local[:, 0], local[:, 1]))
    radius = np.hypot(local[:, 0], local[:, 1])
    if theta[-1] < theta[0]:
        theta, radius = theta[::-1], radius[::-1]
    grid = np.linspace(theta[0], theta[0] + 2 * math.pi, 512, endpoint=False)
    profile = np.interp(grid, theta, radius, period=2 * math.pi)
    power = np.abs(np.fft.rfft(profile / profile.mean() - 1.0)) ** 2
    order = 3 + int(np.argmax(power[3:17]))
    total = float(power[2:].sum())
    share = float(power[order::order].sum()) / total if total > 0 else 0.0
    return order, share


def _edge_directions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direction (rad) and length fraction of each step of a closed outline."""
    step = np.roll(points, -1, axis=0) - points
    length = np.hypot(step[:, 0], step[:, 1])
    return np.arctan2(step[:, 0], step[:, 1]), length / length.sum()


def _parallel_sides(angle: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """The two main side directions modulo 180°: (fraction of the outline within ±12° of
    them, angle between them in degrees, ≤ 90)."""
    axial = np.degrees(angle) % 180.0
    hist, _ = np.histogram(axial, bins=180, range=(0.0, 180.0), weights=weight)
    smooth = ndi.gaussian_filter1d(hist, 4.0, mode="wrap")
    peaks, _ = find_peaks(np.concatenate([smooth, smooth, smooth]), distance=20)
    peaks = peaks[(peaks >= 180) & (peaks < 360)] - 180
    if len(peaks) < 2:
        return 0.0, 0.0
    top = peaks[np.argsort(smooth[peaks])[::-1][:2]]
    mass = sum(float(hist[np.arange(q - 12, q + 13) % 180].sum()) for q in top)
    between = abs(int(top[0]) - int(top[1]))
    return mass, float(min(between, 180 - between))


def _largest_filled(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a mask, holes filled (segmentation and
    boundary noise can leave specks and pinholes that are no part of the outline)."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    return ndi.binary_fill_holes(mask)


def _radial_spectrum(points: np.ndarray, n_orders: int = 13) -> np.ndarray:
    """Complex Fourier coefficients 0..n_orders-1 of the relative radius r(θ)/mean − 1
    about the centroid (a cosine of amplitude a in r/mean gives |c| = a).  Linear in the
    outline, so fine-grained boundary noise barely reaches the low orders."""
    local = points - points.mean(axis=0)
    theta = np.unwrap(np.arctan2(local[:, 0], local[:, 1]))
    radius = np.hypot(local[:, 0], local[:, 1])
    if theta[-1] < theta[0]:
        theta, radius = theta[::-1], radius[::-1]
    grid = np.linspace(theta[0], theta[0] + 2 * math.pi, 256, endpoint=False)
    profile = np.interp(grid, theta, radius, period=2 * math.pi)
    return (np.fft.rfft(profile / profile.mean() - 1.0) * (2.0 / len(grid)))[:n_orders]


def _min_rect_fill(points: np.ndarray) -> float:
    """Area of a closed outline over that of its minimum-area bounding rectangle (one side
    of which lies along a convex-hull edge): ≈ 1 for rectangles, π/4 for ellipses."""
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:
        return math.nan
    edge = np.roll(hull, -1, axis=0) - hull
    angle = np.arctan2(edge[:, 0], edge[:, 1])
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    u = c * hull[None, :, 1] + s * hull[None, :, 0]  # (edges, vertices)
    v = -s * hull[None, :, 1] + c * hull[None, :, 0]
    areas = np.ptp(u, axis=1) * np.ptp(v, axis=1)
    best = float(areas.min())
    return _shoelace(points) / best if best > 0 else math.nan


def shape_features(mask: np.ndarray) -> dict[str, float]:
    """Geometric features used by :func:`classify_shape` (for inspection and tuning).

    Keys: ``aspect_ratio`` (moments), ``solidity``; concavities of the outline smoothed
    at 1 % of its length — ``max_defect`` (deepest, over the equivalent radius),
    ``n_valleys`` (concavities ≥ 40 % of the deepest), ``lobe_fill`` (median lobe area over
    its valley–tip–valley triangle; ≈ 1 for straight-flanked spikes, > 1.2 for round
    petals), ``lobe_order`` (dominant angular order 3..16 of the radius r(θ)) and
    ``lobe_regularity`` (share of the variance of r(θ) in that order and its multiples,
    ≈ 1 for stars and flowers); straight sides of the outline smoothed at 2 % of its length —
    ``F2``…``F8``, the magnitudes of the m-th circular harmonics of the length-weighted
    edge-direction distribution (a regular k-gon has F_k ≈ 1, a disc ≈ 0),
    ``parallel_fraction`` (share of the outline along its two main side directions),
    ``side_angle_deg`` (angle between those, 90 for a rectangle) and ``ellipse_residual``
    (RMS relative radial deviation from the ellipse with the same second moments).

    The keys :func:`classify_shape` decides on are measured on the largest connected
    component of the mask with its holes filled, on the outline smoothed at 8 % of the
    equivalent radius r_eq (≥ 1 px): ``R2``…``R8``, the amplitudes of the Fourier
    harmonics of the relative radius r(θ)/r̄ about the centroid; ``corner_sign6`` (cosine
    of the phase of R12 against R6: +1 when the six maxima are sharp corners);
    ``rect_fill`` (area over the minimum-area bounding rectangle); ``smooth_solidity``
    (solidity of the outline smoothed at 15 % of r_eq); and on the 1 px-smoothed outline
    ``petal_order`` (k = 5…8 with the strongest harmonic), ``petal_R`` (its amplitude),
    ``petal_low`` (the strongest of orders 2–4) and ``petal_cusp`` (the part of harmonic
    2k in phase with harmonic k, over R_k: < 0 when the outline's minima are cusps).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, not {mask.ndim}-D")
    if mask.any():
        mask = _largest_filled(mask)
    area = float(mask.sum())
    features: dict[str, float] = {"area_px": area, "valid": 0.0, "r_eq_px": math.sqrt(area / math.pi)}
    if area < 9:
        return features
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.vstack([ys, xs]).astype(float)) + np.eye(2) / 12.0  # pixels are unit squares
    eig, axes = np.linalg.eigh(cov)  # ascending: minor, major
    features["aspect_ratio"] = float(math.sqrt(eig[1] / eig[0]))
    points = _outline(mask)
    if points is None:
        return features
    features["valid"] = 1.0
    n = len(points)
    r_eq = math.sqrt(area / math.pi)

    # concavities: stars, flowers, irregular outlines
    outline = ndi.gaussian_filter1d(points, max(1.0, 0.01 * n), axis=0, mode="wrap")
    try:
        hull_area = ConvexHull(outline).volume
    except QhullError:
        hull_area = _shoelace(outline)
    features["solidity"] = float(min(1.0, _shoelace(outline) / hull_area)) if hull_area > 0 else 1.0
    defects = _defects(outline)
    max_depth = max((d for d, _ in defects), default=0.0)
    features["max_defect"] = max_depth / r_eq
    valleys = [v for d, v in defects if d >= _LOBE_DEFECT * max_depth and d >= _NOISE_DEFECT * r_eq]
    features["n_valleys"] = float(len(valleys))
    features["lobe_fill"] = _lobe_fill(outline, valleys) if len(valleys) >= 2 else np.nan
    order, share = _radial_harmonics(outline)
    features["lobe_order"], features["lobe_regularity"] = float(order), share
    # roundness: radial deviation from the moment ellipse (semi-axes 2√λ), centred on the centroid
    local = (outline - [ys.mean() + 3.0, xs.mean() + 3.0]) @ axes  # _outline pads by 3 px
    theta = np.arctan2(local[:, 0], local[:, 1])
    semi_minor, semi_major = 2.0 * np.sqrt(eig)
    r_ellipse = 1.0 / np.sqrt((np.cos(theta) / semi_major) ** 2 + (np.sin(theta) / semi_minor) ** 2)
    features["ellipse_residual"] = float(np.sqrt(np.mean((np.hypot(local[:, 0], local[:, 1]) / r_ellipse - 1.0) ** 2)))

    # straight sides: the edge-direction distribution of a more strongly smoothed outline
    outline = ndi.gaussian_filter1d(points, max(1.0, 0.02 * n), axis=0, mode="wrap")
    angle, weight = _edge_directions(outline)
    for m in range(2, 9):
        features[f"F{m}"] = float(abs(np.sum(weight * np.exp(1j * m * angle))))
    features["parallel_fraction"], features["side_angle_deg"] = _parallel_sides(angle, weight)

    # noise-robust descriptors used by classify_shape: the outline smoothed at scales
    # proportional to the particle's equivalent radius, then linear (Fourier) measures
    medium = ndi.gaussian_filter1d(points, max(1.0, _MEDIUM_SMOOTH * r_eq), axis=0, mode="wrap")
    coarse = ndi.gaussian_filter1d(points, max(1.0, _COARSE_SMOOTH * r_eq), axis=0, mode="wrap")
    spectrum = _radial_spectrum(medium)
    for m in range(2, 9):
        features[f"R{m}"] = float(abs(spectrum[m]))
    c6, c12 = spectrum[6], spectrum[12]
    features["corner_sign6"] = float((c12 * np.conj(c6) ** 2).real / (abs(c6) ** 2 * abs(c12) + 1e-12))
    fine_c = _radial_spectrum(points, 17)  # petals need the finest (1 px) smoothing
    fine = np.abs(fine_c)
    order = 5 + int(np.argmax(fine[5:9]))
    features["petal_order"], features["petal_R"] = float(order), float(fine[order])
    # harmonic 2k in phase with k: sharp maxima (corners, tips) > 0, sharp minima (cusps) < 0
    c, c2 = fine_c[order], fine_c[2 * order]
    features["petal_cusp"] = float((c2 * np.conj(c) ** 2).real / (abs(c) ** 3 + 1e-12))
    features["petal_low"] = float(fine[2:5].max())
    try:
        hull_area = ConvexHull(coarse).volume
    except QhullError:
        hull_area = 0.0
    features["smooth_solidity"] = float(min(1.0, _shoelace(coarse) / hull_area)) if hull_area > 0 else 1.0
    features["rect_fill"] = _min_rect_fill(medium)
    return features


def classify_shape(mask: np.ndarray) -> str:
    """Name the shape of one particle mask: one of ``SHAPE_CLASSES``.

    Parameters
    ----------
    mask : (rows, columns) bool array
        One particle (True) on background, ideally ≥ 30 px across.  Only its largest
        connected component, with holes filled, is used.

    Notes
    -----
    The decision uses scale-free features of :func:`shape_features` measured on the
    outline smoothed at a fixed fraction of the equivalent radius r_eq (8 % for the
    harmonics and the bounding rectangle, 15 % for the solidity), so that rough or
    blurred outlines keep their large-scale geometry.  The main descriptors are the
    amplitudes R_m of the m-th Fourier harmonic of the relative radius r(θ)/r̄ about
    the centroid: linear in the outline, so fine-grained boundary noise barely reaches
    the low orders, while a regular k-gon or k-pointed star concentrates its deviation
    from a circle in order k.

    1. Moment aspect ratio ≥ 2.5 → ``rod``.
    2. Concave, with the strongest harmonic of order 3–8 at order 4 (R4 ≥ 0.18, smoothed
       solidity < 0.86, or < 0.935 when not elongated) → ``four-pointed star``; R6 ≥ 0.08
       above R3, R4 with solidity < 0.92 (or R6 ≥ 0.09, solidity < 0.935 and R12 in
       phase with R6: sharp tips outward) → ``six-pointed star``.  Smoothing at 15 % of
       r_eq rounds the spikes of small stars, hence the second, harmonic-led test.
    3. A harmonic of order k = 5–8 of the 1 px-smoothed outline ≥ 0.03 that dominates
       orders 2–4, with cusps pointing inward (the part of harmonic 2k in phase with
       harmonic k is < 0, for k = 6 < −0.05, else they are a hexagon's corners) →
       ``flower shape``.
    4. R3 ≥ 0.16 and stronger than R2, R4 → ``triangle``.
    5. Aspect ratio ≥ 1.3: fills ≥ 82 % of its minimum-area rectangle with R4 < 0.11 →
       ``rectangle``; R4 ≥ 0.1 and fill < 80 % → ``rhombus``; else irregular.
    6. Otherwise R4 ≥ 0.08 above R2, R3 and fill ≥ 82 % → ``cube``; R6 ≥ 0.025 (0.018
       with R12 in phase: corners outward), ≥ 1.2 × R5 and R7 (its neighbouring orders,
       where boundary noise puts about as much as in order 6) and ≥ 0.8 × R3, R4 on an
       outline with weak orders 2–4 → ``hexagon``; aspect < 1.2 and weak orders 2–4
       (√(R2² + R3² + R4²) < 0.08) → ``sphere``; anything else → ``Irregular shape``.
    7. Sphere, hexagon and flower — the round family, which the rules separate from the
       other classes but not reliably from each other when boundary noise is as large as a
       hexagon's corners — are then re-decided by a multinomial logistic regression on the
       same features plus the particle size (``models/round_shapes.json``, fitted on
       synthetic masks by :func:`fit_round_shape_model`; ``benchmarks/fit_round_shapes.py``).

    On synthetic masks (:func:`render_shape_mask`, 15–80 px, boundary noise 0–3 % of
    the diameter, blur σ ≤ 1.5 px; ``benchmarks/shapes_benchmark.py``) most classes are
    recognised with ≥ 95 % accuracy; small (< 25 px) flowers with many petals and
    hexagons under 3 % noise are the hardest, as their outline is then nearly a circle.
    """
    return _decide(shape_features(mask))


#: Classes told apart by the round-family model (:func:`fit_round_shape_model`): the rules
#: separate them from the others reliably, but not from each other under boundary noise.
ROUND_FAMILY = ("sphere", "hexagon", "flower shape")
#: Features of the round-family model (keys of :func:`shape_features`).
ROUND_FEATURES = (
    *(f"R{m}" for m in range(2, 9)), "corner_sign6", "petal_R", "petal_cusp", "petal_low", "smooth_solidity",
    "rect_fill", "aspect_ratio", "solidity", "max_defect", "ellipse_residual", "log_r_eq",
)
ROUND_MODEL_FILE = Path(__file__).parent / "models" / "round_shapes.json"
_ROUND_MODEL: dict | None = None


def _feature_vector(f: dict[str, float], names=ROUND_FEATURES) -> np.ndarray:
    values = {**f, "log_r_eq": math.log(max(f.get("r_eq_px", 1.0), 1e-6))}
    return np.array([values[name] for name in names], dtype=float)


def fit_round_shape_model(n_per_class: int = 800, seed: int = 50000, C: float = 100.0) -> dict:
    """Fit the round-family model: a multinomial logistic regression on :data:`ROUND_FEATURES`.

    Trained on :func:`random_shape_mask` samples (classes in turn, ``n_per_class`` each; seed
    ``seed`` + j, disjoint from the benchmark's and the tests') whose true class and rule
    decision are both in :data:`ROUND_FAMILY`.  Returns the JSON-able model (standardisation,
    coefficients, provenance) that :func:`classify_shape` reads from :data:`ROUND_MODEL_FILE`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = [], []
    for j in range(len(SHAPE_CLASSES) * int(n_per_class)):
        truth = SHAPE_CLASSES[j % len(SHAPE_CLASSES)]
        if truth not in ROUND_FAMILY:
            continue
        f = shape_features(random_shape_mask(truth, np.random.default_rng(seed + j))[0])
        if _rules(f) in ROUND_FAMILY:
            X.append(_feature_vector(f))
            y.append(truth)
    X = np.asarray(X)
    scaler = StandardScaler().fit(X)
    model = LogisticRegression(C=float(C), max_iter=5000).fit(scaler.transform(X), y)
    return {
        "kind": "round-family logistic regression",
        "features": list(ROUND_FEATURES),
        "classes": [str(c) for c in model.classes_],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "training": {"n_per_class": int(n_per_class), "seed": int(seed), "C": float(C), "samples": len(y),
                     "command": "python benchmarks/fit_round_shapes.py"},
    }


def _round_model() -> dict | None:
    global _ROUND_MODEL
    if _ROUND_MODEL is None and ROUND_MODEL_FILE.is_file():
        import json

        model = json.loads(ROUND_MODEL_FILE.read_text(encoding="utf-8"))
        if model.get("features") != list(ROUND_FEATURES) or set(model.get("classes", ())) != set(ROUND_FAMILY):
            raise ValueError(f"{ROUND_MODEL_FILE} does not match this version's features/classes: refit it (benchmarks/fit_round_shapes.py)")
        _ROUND_MODEL = {k: np.asarray(model[k], dtype=float) for k in ("mean", "scale", "coef", "intercept")}
        _ROUND_MODEL["classes"] = list(model["classes"])
    return _ROUND_MODEL


def _decide(f: dict[str, float]) -> str:
    """:func:`classify_shape`'s decision: the rules, then the round-family model within that family."""
    name = _rules(f)
    model = _round_model() if name in ROUND_FAMILY else None
    if model is None:
        return name
    z = (_feature_vector(f) - model["mean"]) / model["scale"]
    return model["classes"][int(np.argmax(model["coef"] @ z + model["intercept"]))]


def _rules(f: dict[str, float]) -> str:
    """The decision rules of :func:`classify_shape` on :func:`shape_features`."""
    if not f.get("valid"):
        return IRREGULAR
    R = {m: f[f"R{m}"] for m in range(2, 9)}
    ar, solidity, fill = f["aspect_ratio"], f["smooth_solidity"], f["rect_fill"]
    low = math.sqrt(R[2] ** 2 + R[3] ** 2 + R[4] ** 2)
    if ar >= _ROD_AR:
        return "rod"
    strongest = max(R[m] for m in range(3, 9))
    # small stars: smoothing at 15 % of r_eq (≥ 1 px) rounds their spikes, so a strong
    # harmonic also counts at a higher solidity (R12 in phase with R6: sharp tips outward)
    spiky4 = solidity < _STAR4_SOLIDITY or (R[4] >= _STAR4_R_SMALL and solidity < _STAR_SOLIDITY_SMALL and ar < _ELONGATED_AR)
    if R[4] >= _STAR4_R_SMALL and spiky4 and R[4] == strongest:
        return "four-pointed star"
    spiky6 = solidity < _STAR6_SOLIDITY or (R[6] >= _STAR6_R_SMALL and solidity < _STAR_SOLIDITY_SMALL and f["corner_sign6"] > _CORNER_SIGN)
    if R[6] >= _STAR6_R and spiky6 and R[6] > max(R[3], R[4]):
        return "six-pointed star"
    # petals: a harmonic of order 5–8 that dominates orders 2–4, with cusps pointing inward
    # (its double harmonic in antiphase); six of them must also not be a hexagon's corners
    cusp = _CUSP if f["petal_order"] != 6 else _CUSP6
    petals = f["petal_R"] >= _PETAL_R and f["petal_R"] > _PETAL_DOMINANCE * f["petal_low"] and f["petal_cusp"] < cusp
    if petals:
        return "flower shape"
    if R[3] >= _TRIANGLE_R and R[3] > max(R[2], R[4]):
        return "triangle"
    if ar >= _ELONGATED_AR:
        if fill >= _RECT_FILL and R[4] < _RHOMBUS_R:
            return "rectangle"
        if R[4] >= _RHOMBUS_R - 0.01 and fill < _RECT_FILL - 0.02:
            return "rhombus"
        return IRREGULAR
    if R[4] >= _CUBE_R and fill >= _RECT_FILL and R[4] > max(R[2], R[3]):
        return "cube"
    # a hexagon's R6 stands out against its neighbouring orders (where boundary noise
    # puts about as much as in order 6), more clearly with R12 in phase (corners outward)
    hexagon_r = _HEXAGON_R if f["corner_sign6"] < _CORNER_SIGN else _HEXAGON_R_CORNERS
    if R[6] >= hexagon_r and R[6] > _HEXAGON_CONTRAST * max(R[5], R[7]) and R[6] > _HEXAGON_VS_LOW * max(R[3], R[4]) and low < _ROUND_LOW:
        return "hexagon"
    if ar < _SPHERE_AR and low < _ROUND_LOW:
        return "sphere"
    return IRREGULAR


def classify_shapes(labels: np.ndarray) -> dict[int, str]:
    """Shape class of every particle of a label image: {label: class}."""
    from skimage.measure import regionprops

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 2-D integer image; got ndim={labels.ndim}, dtype {labels.dtype}")
    return {int(r.label): classify_shape(r.image) for r in regionprops(labels)}


def assign_shape_classes(table: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """A copy of a particle table with ``shape_class`` filled from the label image."""
    classes = classify_shapes(labels)
    out = table.copy()
    out["shape_class"] = [classes.get(int(lab)) for lab in out["label"]]
    out["shape_class"] = out["shape_class"].astype(object)
    return out


# ----------------------------------------------------------------------------------------
# Synthetic shape masks


def _regular_polygon(k: int, phase: float = 0.0) -> np.ndarray:
    t = phase + 2 * math.pi * np.arange(k) / k
    return np.column_stack([np.cos(t), np.sin(t)])


def _rounded(vertices: np.ndarray, radius: float, n_arc: int = 24) -> np.ndarray:
    """Outline of a convex polygon (CCW vertices, x/y) dilated by a disc of ``radius``."""
    if radius <= 0:
        return vertices
    out = []
    k = len(vertices)
    for i in range(k):
        prev, cur, nxt = vertices[i - 1], vertices[i], vertices[(i + 1) % k]
        e_in, e_out = cur - prev, nxt - cur
        a0 = math.atan2(e_in[1], e_in[0]) - math.pi / 2  # outward normal of a CCW polygon edge
        a1 = math.atan2(e_out[1], e_out[0]) - math.pi / 2
        turn = (a1 - a0) % (2 * math.pi)
        t = a0 + np.linspace(0.0, turn, n_arc)
        out.append(cur + radius * np.column_stack([np.cos(t), np.sin(t)]))
    return np.vstack(out)


def _densify(outline: np.ndarray, step: float) -> np.ndarray:
    closed = np.vstack([outline, outline[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(16, int(math.ceil(arc[-1] / step)))
    s = np.linspace(0.0, arc[-1], n, endpoint=False)
    return np.column_stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])])


def _polar(radius_fn, n: int = 720) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = radius_fn(t)
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


def _star(points: int, inner: float) -> np.ndarray:
    t = math.pi / 2 + math.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.column_stack([r * np.cos(t), r * np.sin(t)])


def _flower_radius(n_petals: int, petal: float):
    """Polar radius of the union of ``n_petals`` discs (radius ``petal``) on the unit circle."""
    centres = 2 * math.pi * np.arange(n_petals) / n_petals

    def radius(t):
        d = t[:, None] - centres[None, :]
        disc = petal**2 - np.sin(d) ** 2
        r = np.where(disc >= 0, np.cos(d) + np.sqrt(np.clip(disc, 0, None)), 0.0)
        return r.max(axis=1)

    return radius


_ASPECT_DEFAULT = {"sphere": (1.0, 1.08), "cube": (1.0, 1.06), "rectangle": (1.4, 2.2), "rhombus": (1.4, 1.9), "rod": (3.0, 6.0)}


def render_shape_mask(
    shape_class: str,
    diameter_px: float,
    rotation_deg: float = 0.0,
    aspect: float | None = None,
    rng=None,
    *,
    boundary_noise: float = 0.01,
    corner_rounding: float | None = None,
) -> np.ndarray:
    """Draw a synthetic particle mask of one of ``SHAPE_CLASSES``.

    Parameters
    ----------
    shape_class : str
        One of :data:`~nc_synthmodel.contract.SHAPE_CLASSES`.
    diameter_px : float
        Equivalent circle diameter (px) of the noise-free outline.
    rotation_deg : float
        Counter-clockwise rotation (as displayed, rows down).
    aspect : float, optional
        Elongation: major/minor for ``sphere`` (an ellipse), side ratio for ``cube`` and
        ``rectangle``, diagonal ratio for ``rhombus``, length/width for ``rod``; ignored
        otherwise.  Default: drawn from a class-typical range.
    rng : numpy Generator or seed, optional
        Source of the random parameters (aspect, corner rounding, star depth, petal
        count, irregular outline) and of the boundary noise.
    boundary_noise : float
        Standard deviation of the smooth normal displacement of the outline, as a
        fraction of ``diameter_px`` (at least 0.3 px when non-zero).
    corner_rounding : float, optional
        Corner radius of polygons as a fraction of their circumradius (default
        random in [0, 0.12]; triangles at most 0.06).

    Returns
    -------
    (rows, columns) bool array with the particle centred and a margin of ≥ 3 px.
    """
    if shape_class not in SHAPE_CLASSES:
        raise ValueError(f"unknown shape class {shape_class!r}; expected one of {list(SHAPE_CLASSES)}")
    if not (np.isfinite(diameter_px) and diameter_px > 2):
        raise ValueError(f"diameter_px must be a finite number > 2, not {diameter_px!r}")
    rng = np.random.default_rng(rng)
    if aspect is None and shape_class in _ASPECT_DEFAULT:
        aspect = float(rng.uniform(*_ASPECT_DEFAULT[shape_class]))
    aspect = 1.0 if aspect is None else float(aspect)
    if aspect < 1:
        raise ValueError(f"aspect must be ≥ 1, not {aspect}")
    rounding = corner_rounding
    if rounding is None:
        rounding = float(rng.uniform(0.0, 0.06 if shape_class == "triangle" else 0.12))

    if shape_class == "sphere":
        outline = _polar(lambda t: np.ones_like(t)) * [aspect, 1.0]
    elif shape_class in ("cube", "rectangle"):
        square = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        outline = _rounded(square * [aspect, 1.0], rounding * math.hypot(aspect, 1.0))
    elif shape_class == "rhombus":
        outline = _rounded(np.array([[aspect, 0.0], [0.0, 1.0], [-aspect, 0.0], [0.0, -1.0]]), rounding * aspect)
    elif shape_class == "triangle":
        outline = _rounded(_regular_polygon(3, math.pi / 2), rounding)
    elif shape_class == "hexagon":
        outline = _rounded(_regular_polygon(6), rounding)
    elif shape_class == "rod":
        end = float(rng.uniform(0.7, 0.95))  # end-cap radius / half-width: 1 = hemispherical
        core = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) * [aspect - end, 1 - end]
        outline = _rounded(core, end)
    elif shape_class == "four-pointed star":
        outline = _star(4, float(rng.uniform(0.35, 0.5)))
    elif shape_class == "six-pointed star":
        outline = _star(6, float(rng.uniform(0.45, 0.6)))
    elif shape_class == "flower shape":
        n_petals = int(rng.integers(5, 9))
        petal = math.sin(math.pi / n_petals) * float(rng.uniform(1.1, 1.3))  # > 1: petals overlap
        outline = _polar(_flower_radius(n_petals, petal))
    else:  # Irregular shape: a lumpy, asymmetric outline (low-order Fourier modes)
        orders = np.arange(2, 6)
        amplitudes = rng.uniform(0.06, 0.16, len(orders)) / np.sqrt(orders - 1)
        phases = rng.uniform(0, 2 * math.pi, len(orders))
        outline = _polar(lambda t: 1.0 + (amplitudes[None, :] * np.cos(orders[None, :] * t[:, None] + phases)).sum(axis=1))

    outline = np.asarray(outline, dtype=float)
    outline *= (diameter_px / 2) / math.sqrt(_shoelace(outline) / math.pi)  # area → ECD
    theta = math.radians(rotation_deg)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    outline = outline @ rot.T
    outline = _densify(outline, step=0.5)
    if boundary_noise > 0:
        sigma_px = max(0.3, boundary_noise * diameter_px)
        tangent = np.roll(outline, -1, axis=0) - np.roll(outline, 1, axis=0)
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        noise = ndi.gaussian_filter1d(rng.normal(size=len(outline)), 4.0, mode="wrap")  # ~2 px correlation
        noise *= sigma_px / (noise.std() + 1e-12)
        outline = outline + noise[:, None] * normal
    x, y = outline[:, 0], -outline[:, 1]  # y up → rows down
    margin = 4
    col0, row0 = x.min() - margin, y.min() - margin
    shape = (int(math.ceil(y.max() - row0 + margin)), int(math.ceil(x.max() - col0 + margin)))
    return _fill_polygon(y - row0, x - col0, shape)


#: Style ranges of :func:`random_shape_mask`: equivalent diameter (px), boundary noise
#: (fraction of the diameter) and Gaussian blur (px) before re-thresholding.
RANDOM_SIZE_PX = (15.0, 80.0)
RANDOM_NOISE_LEVELS = (0.0, 0.01, 0.02, 0.03)
RANDOM_BLUR_SIGMAS = (0.0, 0.75, 1.5)


def random_shape_mask(shape_class: str, rng) -> tuple[np.ndarray, dict]:
    """A mask of ``shape_class`` in a random style: size, rotation, boundary noise, blur and
    class-typical aspect drawn from ``rng`` (:data:`RANDOM_SIZE_PX` …).  Returns (mask, style).

    The distribution of the named-shape benchmark and of the round-family model's training set.
    """
    rng = np.random.default_rng(rng)
    size = float(rng.uniform(*RANDOM_SIZE_PX))
    rotation = float(rng.uniform(0.0, 360.0))
    noise = float(rng.choice(RANDOM_NOISE_LEVELS))
    blur = float(rng.choice(RANDOM_BLUR_SIGMAS))
    aspect = float(rng.uniform(*_ASPECT_DEFAULT[shape_class])) if shape_class in _ASPECT_DEFAULT else None
    mask = render_shape_mask(shape_class, size, rotation, aspect=aspect, rng=rng, boundary_noise=noise)
    if blur > 0:
        mask = ndi.gaussian_filter(np.pad(mask, 4).astype(float), blur) > 0.5
    return mask, {"size": size, "rotation": rotation, "noise": noise, "blur": blur, "aspect": aspect}


def _fill_polygon(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Even–odd scan-line fill of a closed polygon (pixel centres at integer coordinates).

    Vectorised over edges, so it stays fast for outlines with thousands of vertices
    (``skimage.draw.polygon`` tests every pixel against every edge).
    """
    r0, c0 = rows, cols
    r1, c1 = np.roll(rows, -1), np.roll(cols, -1)
    lo, hi = np.minimum(r0, r1), np.maximum(r0, r1)
    first = np.ceil(lo).astype(int)  # rows y with lo <= y < hi cross the edge
    count = np.maximum(np.ceil(hi).astype(int) - first, 0)
    edge = np.repeat(np.arange(len(rows)), count)
    y = np.repeat(first, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
    x = c0[edge] + (y - r0[edge]) * (c1[edge] - c0[edge]) / (r1[edge] - r0[edge])
    inside = (y >= 0) & (y < shape[0])
    toggles = np.zeros((shape[0], shape[1] + 1), dtype=np.int32)
    np.add.at(toggles, (y[inside], np.clip(np.ceil(x[inside]).astype(int), 0, shape[1])), 1)
    return (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)
