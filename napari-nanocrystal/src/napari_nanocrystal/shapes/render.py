"""Synthetic particle masks of every named shape class, for testing and fitting the classifier.

:func:`render_shape_mask` draws one noise-free or noisy outline of a class of
:data:`~nc_synthmodel.contract.SHAPE_CLASSES` at a given equivalent diameter, rotation and
aspect, filled by a vectorised scan-line fill; :func:`random_shape_mask` draws one in a random
style (:data:`RANDOM_SIZE_PX`, :data:`RANDOM_NOISE_LEVELS`, :data:`RANDOM_BLUR_SIGMAS`), the
distribution of the named-shape benchmark and of the round-family model's training set.
:mod:`napari_nanocrystal.synthetic` uses it for the particles of its TEM images.
"""

from __future__ import annotations

import math

import numpy as np
from nc_synthmodel.contract import SHAPE_CLASSES
from scipy import ndimage as ndi

from .features import _shoelace


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
