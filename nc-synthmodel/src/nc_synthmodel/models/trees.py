"""Fitted tree ensembles as plain arrays: saved in ``.npz`` (no pickle) and predicted with numpy.

:func:`tree_arrays` reads a fitted scikit-learn ``RandomForestRegressor``,
``RandomForestClassifier``, ``ExtraTreesRegressor``, ``ExtraTreesClassifier`` or ``HistGradientBoostingRegressor`` into a :class:`TreeArrays` -
every tree's nodes concatenated (split feature, threshold, children, where a missing value goes,
leaf values) - and :meth:`TreeArrays.predict` walks them for all samples and trees at once.
The arrays hold only numbers, so :meth:`TreeArrays.to_npz_dict` / :meth:`TreeArrays.from_npz_dict`
round-trip through ``np.savez`` and ``np.load(allow_pickle=False)``: a saved model can never
run code when it is loaded.  Predictions equal scikit-learn's (same comparisons: forests compare
``float32`` inputs, as scikit-learn's trees do; boosting compares ``float64``); a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TreeArrays", "tree_arrays"]

_FIELDS = ("feature", "threshold", "left", "right", "missing_left", "value", "roots")


@dataclass
class TreeArrays:
    """Concatenated nodes of an ensemble of binary trees.

    ``feature`` is -1 at a leaf; ``left``/``right`` index the concatenated arrays; ``value``
    (nodes, k) is the leaf output; ``roots`` the first node of each tree.  ``kind`` is
    ``"mean"`` (forest: average of the trees) or ``"sum"`` (boosting: ``baseline`` + sum);
    ``float32`` makes inputs float32 before comparing (scikit-learn's forests do).
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    kind: str
    baseline: float = 0.0
    float32: bool = True
    n_features: int = 0

    def predict(self, X) -> np.ndarray:
        """Ensemble output (n, k): mean or baseline + sum of the trees' leaf values."""
        leaves = self.value[self.apply(X)]  # (n, trees, k)
        if self.kind == "mean":
            return leaves.mean(axis=1)
        return self.baseline + leaves.sum(axis=1)

    def apply(self, X) -> np.ndarray:
        """(n, trees) leaf each row reaches in each tree, as an index of the concatenated arrays
        (scikit-learn's ``apply``)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features per row, got array of shape {X.shape}")
        if self.float32:
            X = X.astype(np.float32).astype(np.float64)
        n = len(X)
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        while True:
            feature = self.feature[node]
            inner = feature >= 0
            if not inner.any():
                return node
            x = X[rows, np.where(inner, feature, 0)]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)

    def leaf_means(self, X, values) -> np.ndarray:
        """(nodes,) mean of ``values`` over the rows of ``X`` that reach each leaf (0 where none does):
        the leaves re-valued by another target of the same rows, e.g. another model's residuals."""
        leaves = self.apply(X)
        weights = np.repeat(np.asarray(values, dtype=float), leaves.shape[1])
        sums = np.bincount(leaves.ravel(), weights=weights, minlength=len(self.feature))
        counts = np.bincount(leaves.ravel(), minlength=len(self.feature))
        return sums / np.maximum(counts, 1)

    def to_npz_dict(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays (and the scalars) under ``prefix + name``, stored compactly without changing a prediction.

        Children are stored as offsets from their parent (mostly 1: compresses to almost
        nothing), inner nodes' values as 0, and - for ``float32`` ensembles, whose inputs are
        float32 - each threshold as the largest float32 not above it, which sends every float32
        input the same way.
        """
        index = np.arange(len(self.feature))
        inner = self.feature >= 0
        threshold = self.threshold
        if self.float32:
            threshold = threshold.astype(np.float32)
            above = threshold.astype(np.float64) > self.threshold
            threshold[above] = np.nextafter(threshold[above], np.float32(-np.inf))
        out = {
            prefix + "feature": self.feature.astype(np.int16 if self.n_features < 2**15 else np.int32),
            prefix + "threshold": np.where(inner, threshold, 0).astype(threshold.dtype),
            prefix + "left": np.where(inner, self.left - index, 0).astype(np.int32),
            prefix + "right": np.where(inner, self.right - index, 0).astype(np.int32),
            prefix + "missing_left": self.missing_left.astype(np.uint8),
            prefix + "value": np.where(inner[:, None], 0.0, self.value),
            prefix + "roots": self.roots.astype(np.int64),
        }
        out[prefix + "meta"] = np.array([self.baseline, float(self.float32), float(self.n_features), float(self.kind == "sum")])
        return out

    @classmethod
    def from_npz_dict(cls, arrays, prefix: str, source: str = "model") -> TreeArrays:
        """Rebuild from :meth:`to_npz_dict`'s arrays; a missing or inconsistent array is a ``ValueError``."""
        try:
            parts = {name: np.asarray(arrays[prefix + name]) for name in (*_FIELDS, "meta")}
        except KeyError as exc:
            raise ValueError(f"{source}: tree arrays {prefix!r} incomplete ({exc.args[0]} missing)") from None
        baseline, float32, n_features, is_sum = parts.pop("meta").tolist()
        n_nodes = len(parts["feature"])
        index = np.arange(n_nodes)
        parts["left"] = parts["left"].astype(np.int64) + index  # stored as offsets from the parent
        parts["right"] = parts["right"].astype(np.int64) + index
        ok = (
            all(len(parts[k]) == n_nodes for k in ("threshold", "left", "right", "missing_left", "value"))
            and parts["value"].ndim == 2
            and len(parts["roots"]) > 0
            and np.all((parts["roots"] >= 0) & (parts["roots"] < n_nodes))
        )
        inner = parts["feature"] >= 0
        ok = ok and bool(np.all(parts["feature"] < n_features))
        for side in ("left", "right"):
            ok = ok and bool(np.all((parts[side][inner] > np.flatnonzero(inner)) & (parts[side][inner] < n_nodes)))
        if not ok:
            raise ValueError(f"{source}: tree arrays {prefix!r} are inconsistent (node indices out of range)")
        return cls(
            feature=parts["feature"].astype(np.int64),
            threshold=parts["threshold"].astype(np.float64),
            left=parts["left"].astype(np.int64),
            right=parts["right"].astype(np.int64),
            missing_left=parts["missing_left"].astype(bool),
            value=parts["value"].astype(np.float64),
            roots=parts["roots"].astype(np.int64),
            kind="sum" if is_sum else "mean",
            baseline=float(baseline),
            float32=bool(float32),
            n_features=int(n_features),
        )


def _concat(trees, kind: str, baseline: float, float32: bool, n_features: int) -> TreeArrays:
    feature, threshold, left, right, missing, value, roots = [], [], [], [], [], [], []
    offset = 0
    for f, t, lo, hi, m, v in trees:
        roots.append(offset)
        inner = f >= 0
        feature.append(np.where(inner, f, -1))
        threshold.append(t)
        left.append(np.where(inner, lo + offset, -1))
        right.append(np.where(inner, hi + offset, -1))
        missing.append(m.astype(bool))
        value.append(v)
        offset += len(f)
    return TreeArrays(
        np.concatenate(feature).astype(np.int64),
        np.concatenate(threshold).astype(np.float64),
        np.concatenate(left).astype(np.int64),
        np.concatenate(right).astype(np.int64),
        np.concatenate(missing),
        np.concatenate(value).astype(np.float64),
        np.asarray(roots, dtype=np.int64),
        kind,
        float(baseline),
        float32,
        int(n_features),
    )


def tree_arrays(estimator) -> TreeArrays:
    """The fitted ``estimator`` (random forest or extra-trees regressor/classifier, histogram gradient boosting) as arrays."""
    from sklearn.base import is_classifier
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    if isinstance(estimator, (RandomForestRegressor, RandomForestClassifier, ExtraTreesRegressor, ExtraTreesClassifier)):
        trees = []
        for tree in estimator.estimators_:
            t = tree.tree_
            inner = t.children_left >= 0
            if is_classifier(estimator):
                v = t.value[:, 0, :]
                v = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-300)
            else:
                v = t.value[:, 0, :1]
            missing = np.asarray(getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8)))
            trees.append((np.where(inner, t.feature, -1), t.threshold, t.children_left, t.children_right, missing, v))
        return _concat(trees, "mean", 0.0, True, estimator.n_features_in_)
    if isinstance(estimator, HistGradientBoostingRegressor):
        if getattr(estimator, "is_categorical_", None) is not None and np.any(estimator.is_categorical_):
            raise ValueError("categorical features are not supported")
        trees = []
        for (predictor,) in estimator._predictors:
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(
                (
                    np.where(leaf, -1, nodes["feature_idx"]),
                    nodes["num_threshold"],
                    nodes["left"].astype(np.int64),
                    nodes["right"].astype(np.int64),
                    nodes["missing_go_to_left"],
                    nodes["value"][:, None],
                )
            )
        baseline = float(np.ravel(estimator._baseline_prediction)[0])
        return _concat(trees, "sum", baseline, False, estimator.n_features_in_)
    raise TypeError(f"cannot convert {type(estimator).__name__} to tree arrays")
