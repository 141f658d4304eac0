"""Named shape classes: one of :data:`~nc_synthmodel.contract.SHAPE_CLASSES` per particle.

:func:`classify_shape` names one mask from its :func:`~.features.shape_features` by
decision rules (aspect ratio, radial Fourier harmonics, smoothed solidity, rectangle fill),
then re-decides the round family (sphere, hexagon, flower) with a small logistic-regression
model shipped in ``models/round_shapes.json`` (:func:`fit_round_shape_model` refits it on
synthetic masks).  :func:`classify_shapes` and :func:`assign_shape_classes` apply it to every
particle of a label image (integers, 0 = background).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from nc_synthmodel.contract import SHAPE_CLASSES

from .features import shape_features
from .render import random_shape_mask

IRREGULAR = SHAPE_CLASSES[0]  # "Irregular shape"

# thresholds (dimensionless, scale-free)
_SPHERE_AR = 1.2
_ROD_AR = 2.5
# noise-robust rules (classify_shape → _decide); R_m = radial Fourier amplitudes
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
    *(f"R{m}" for m in range(2, 9)),
    "corner_sign6",
    "petal_R",
    "petal_cusp",
    "petal_low",
    "smooth_solidity",
    "rect_fill",
    "aspect_ratio",
    "solidity",
    "max_defect",
    "ellipse_residual",
    "log_r_eq",
)
ROUND_MODEL_FILE = Path(__file__).parent.parent / "models" / "round_shapes.json"
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
        "training": {
            "n_per_class": int(n_per_class),
            "seed": int(seed),
            "C": float(C),
            "samples": len(y),
            "command": "python benchmarks/fit_round_shapes.py",
        },
    }


def _round_model() -> dict | None:
    global _ROUND_MODEL
    if _ROUND_MODEL is None and ROUND_MODEL_FILE.is_file():
        import json

        model = json.loads(ROUND_MODEL_FILE.read_text(encoding="utf-8"))
        if model.get("features") != list(ROUND_FEATURES) or set(model.get("classes", ())) != set(ROUND_FAMILY):
            raise ValueError(
                f"{ROUND_MODEL_FILE} does not match this version's features/classes: refit it (benchmarks/fit_round_shapes.py)"
            )
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
