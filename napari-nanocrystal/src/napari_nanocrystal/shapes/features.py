"""Scale-free geometric features of one particle mask, the input of the shape classifier.

:func:`shape_features` measures a 2-D boolean mask (rows, columns): moment aspect ratio,
solidity, concavities of its outline, edge-direction harmonics and — the features
:func:`~napari_nanocrystal.shapes.classify_shape` decides on — Fourier harmonics of the
relative radius r(θ) of the outline smoothed at fixed fractions of the equivalent radius.
The private helpers (outline extraction, shoelace area, convexity defects, radial spectra,
minimum-area rectangle) are shared with :mod:`.render`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import find_peaks
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import find_contours

# thresholds (dimensionless, scale-free)
# concavities reported by shape_features (n_valleys, lobe_fill): valleys ≥ this × the deepest
_LOBE_DEFECT = 0.40
_NOISE_DEFECT = 0.04  # … and ≥ this × equivalent radius
_MEDIUM_SMOOTH = 0.08  # outline smoothing (Gaussian σ, × equivalent radius) for R_m and the rectangle fill
_COARSE_SMOOTH = 0.15  # … and for the smoothed solidity


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
