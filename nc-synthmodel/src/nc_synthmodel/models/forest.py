"""Tree-ensemble synthesis model: recipe → size (forest / boosting / their ensemble), shape, success.

:class:`SynthesisForest` has the transformer's interface (``fit``, ``predict`` in nm,
``predict_outcomes`` with size, shape probabilities and success probability, ``save``/``load``)
and is built from the baselines that the nested model selection of issue 18 compares
(``benchmarks/synthesis_selection.py``):

* size - ``size_model="RF"``, ``"ET"`` or ``"GB"``: the :data:`~nc_synthmodel.models.baselines.BASELINES`
  regressor of that name (log target, flat features; the forests try ``max_features`` of the
  features at each split), trained on the recipes with a known size up to ``train_max_size_nm`` (20 nm, the paper's fine-tuning limit, as in the benchmark);
  ``"weighted"`` / ``"stack"``: the regressors named by ``members`` (default RF and GB; e.g. ET
  and GB) and the training mean combined with convex weights (MAE) or a non-negative linear
  stack with intercept, fitted on their out-of-fold predictions over the training recipes' paper
  pool (``inner_folds`` folds, the paper's fold rule) - the exact procedure the selection
  benchmarks score; ``"blend"``: extra trees (ET) and gradient boosting (GB), the boosting corrected
  by the mean in-sample boosting residual of the recipes sharing the extra trees' leaves (a
  recipe's published twins), blended in ln size: ``(1 - w) ln ET + w (ln GB + twins' residual)``
  with ``w = blend_weight`` (issue 18, tenth round: ``benchmarks/synthesis_residual.py``);
* shape - a random-forest classifier over the 11 classes of
  :data:`~nc_synthmodel.contract.SHAPE_CLASSES` (recipes with a shape);
* success - a random-forest classifier, successful recipes against ``failed_recipes``.

Saved without pickle: ``model.json`` (parameters, each member's encoder, the combination),
``trees.npz`` (every tree's nodes as numeric arrays, :mod:`.trees`) and ``descriptors.npz``;
loading reads arrays with ``allow_pickle=False`` and predicts with numpy - it never builds a
scikit-learn object from the file.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..contract import SHAPE_CLASSES, Recipe
from ..descriptors import DescriptorTable
from ..features.encoding import RecipeEncoder, _fingerprint
from ..features.flat import flat_features
from ..files import atomic_write_bytes
from ..targets import size_fit_targets
from .persistence import ModelFormatError, read_model_config
from .trees import TreeArrays, tree_arrays

__all__ = ["FOREST_FORMAT", "SIZE_MODELS", "SynthesisForest", "combine_members", "fit_combination"]

FOREST_FORMAT = "nc-synthmodel.SynthesisForest"
_FORMAT_VERSION = 1
_CONFIG, _TREES, _DESCRIPTORS = "model.json", "trees.npz", "descriptors.npz"
#: Size models: a single regressor, or an ensemble of regressors and the training mean.
SIZE_MODELS = ("RF", "ET", "GB", "weighted", "stack", "blend")
#: The size models that are one regressor (and the regressors an ensemble can combine).
_SINGLE = ("RF", "ET", "GB")
#: Members of the ensembles by default (``members=None``; every model saved before ``members``
#: existed), in the order of their weights; the training mean is always the last member.
ENSEMBLE_MEMBERS = ("RF", "GB", "mean")
#: The regressors of ``size_model="blend"``: the extra trees (whose leaves carry the twins' residual
#: as a second output column) and the boosting.
BLEND_MEMBERS = ("ET", "GB")
_MIN_SIZE_NM = 0.1


# ---------------------------------------------------------------------- combinations


def fit_combination(kind: str, P: np.ndarray, y: np.ndarray, step: float = 0.05) -> dict[str, Any]:
    """Weights of an ensemble of the prediction columns ``P`` (n, m) for targets ``y``.

    ``"weighted"``: convex weights on a grid of ``step`` minimising the mean absolute error;
    ``"stack"``: least squares with non-negative coefficients and an intercept.
    """
    import itertools

    P, y = np.asarray(P, dtype=float), np.asarray(y, dtype=float)
    if kind == "weighted":
        k = int(round(1 / step))
        best, weights = np.inf, None
        for combo in itertools.product(range(k + 1), repeat=P.shape[1] - 1):
            rest = k - sum(combo)
            if rest < 0:
                continue
            w = np.array([*combo, rest], dtype=float) / k
            mae = float(np.mean(np.abs(P @ w - y)))
            if mae < best - 1e-12:
                best, weights = mae, w
        return {"intercept": 0.0, "weights": weights.tolist()}
    if kind == "stack":
        from sklearn.linear_model import LinearRegression

        reg = LinearRegression(positive=True).fit(P, y)
        return {"intercept": float(reg.intercept_), "weights": np.asarray(reg.coef_, dtype=float).tolist()}
    raise ValueError(f"unknown combination {kind!r}; choose 'weighted' or 'stack'")


def combine_members(combination: dict[str, Any], P: np.ndarray) -> np.ndarray:
    """Ensemble prediction ``intercept + P @ weights``."""
    return float(combination["intercept"]) + np.asarray(P, dtype=float) @ np.asarray(combination["weights"], dtype=float)


# ---------------------------------------------------------------------- members


class _TreeMember:
    """A fitted member as arrays: its encoder, its trees, how to read their output."""

    def __init__(self, encoder: RecipeEncoder, trees: TreeArrays, output: str, classes: list[int] | None = None):
        self.encoder, self.trees, self.output, self.classes = encoder, trees, output, classes

    def raw(self, recipes: list[Recipe]) -> np.ndarray:
        return self.trees.predict(flat_features(self.encoder.transform(recipes)))

    def size_nm(self, recipes: list[Recipe]) -> np.ndarray:
        value = self.raw(recipes)[:, 0]
        return np.exp(value) if self.output == "log" else np.maximum(value, _MIN_SIZE_NM)

    def probabilities(self, recipes: list[Recipe], n_classes: int) -> np.ndarray:
        out = np.zeros((len(recipes), n_classes))
        out[:, self.classes] = self.raw(recipes)
        return out

    def to_dict(self) -> dict:
        return {"encoder": self.encoder.to_dict(), "output": self.output, "classes": self.classes}


def _member_from_regressor(regressor) -> _TreeMember:
    return _TreeMember(regressor.encoder_, tree_arrays(regressor.estimator_), "log" if regressor.log_target else "nm")


# ---------------------------------------------------------------------- estimator


class SynthesisForest(RegressorMixin, BaseEstimator):
    """Tree ensembles predicting size (nm), shape class and success of recipes.

    Parameters
    ----------
    descriptors : DescriptorTable
    size_model : {"RF", "ET", "GB", "weighted", "stack", "blend"}
        The size regressor (see the module docstring): random forest, extremely randomised
        trees, gradient boosting, an ensemble, or the blend of extra trees and twin-corrected boosting.
    members : sequence of {"RF", "ET", "GB"} or None
        The regressors an ensemble combines (with the training mean, always its last member), in
        the order of their weights; None: RF and GB (:data:`ENSEMBLE_MEMBERS`).  Only ensembles use it.
    blend_weight : float
        ``size_model="blend"``: the weight in [0, 1] of the twin-corrected boosting (1 - it: the extra trees).
    train_max_size_nm : float or None
        Size regressors train on recipes up to this size (unknown sizes are skipped).
    inner_folds : int
        Folds of the out-of-fold predictions that fit an ensemble's combination.
    n_estimators, gb_max_iter : int
        Trees of the size forest and iterations of the size boosting (the ``RF`` / ``GB`` presets' values).
    max_features : float
        Fraction of the features the size forest (``RF``/``ET``, and the ensembles' forests) tries
        at each split, in (0, 1]; 1/3 is the ``RF`` preset's.
    classifier_estimators, classifier_min_samples_leaf : int
        Trees of the shape and success forests, and their smallest leaf (2 halves the saved size).
    unknown_product : {"zeros", "raise"}
    random_state : int
    n_jobs : int or None
        Threads of the random forests while fitting.

    Attributes
    ----------
    size_members_ : dict name -> fitted member; combination_ : dict or None
    shape_ : fitted member; success_ : fitted member or None; has_success_ : bool
    oob_accuracy_ : dict
        Out-of-bag accuracy of the shape and success forests (after ``fit``; saved in ``model.json``).
    encoder_ : RecipeEncoder
        The broadest of the members' encoders (recipes + failed recipes): a recipe it cannot
        encode cannot be predicted.
    """

    def __init__(
        self,
        descriptors: DescriptorTable,
        size_model: str = "RF",
        members: Sequence[str] | None = None,
        train_max_size_nm: float | None = 20.0,
        inner_folds: int = 5,
        n_estimators: int = 300,
        gb_max_iter: int = 500,
        max_features: float = 1 / 3,
        blend_weight: float = 0.75,
        classifier_estimators: int = 100,
        classifier_min_samples_leaf: int = 2,
        unknown_product: str = "zeros",
        random_state: int = 0,
        n_jobs: int | None = None,
    ):
        self.descriptors = descriptors
        self.size_model = size_model
        self.members = members
        self.train_max_size_nm = train_max_size_nm
        self.inner_folds = inner_folds
        self.n_estimators = n_estimators
        self.gb_max_iter = gb_max_iter
        self.max_features = max_features
        self.blend_weight = blend_weight
        self.classifier_estimators = classifier_estimators
        self.classifier_min_samples_leaf = classifier_min_samples_leaf
        self.unknown_product = unknown_product
        self.random_state = random_state
        self.n_jobs = n_jobs

    _SAVED_PARAMS = (
        "size_model",
        "members",
        "train_max_size_nm",
        "inner_folds",
        "n_estimators",
        "gb_max_iter",
        "max_features",
        "blend_weight",
        "classifier_estimators",
        "classifier_min_samples_leaf",
        "unknown_product",
        "random_state",
    )

    # ------------------------------------------------------------------ fit

    def _check_params(self) -> None:
        if self.size_model not in SIZE_MODELS:
            raise ValueError(f"size_model must be one of {SIZE_MODELS}, got {self.size_model!r}")
        if self.members is not None:
            members = self.members
            if isinstance(members, str) or not isinstance(members, Sequence) or not members:
                raise ValueError(f"members must be a non-empty list of {_SINGLE} (or None: RF and GB), got {members!r}")
            if any(m not in _SINGLE for m in members) or len(set(members)) != len(members):
                raise ValueError(f"members must name distinct regressors of {_SINGLE}, got {list(members)!r}")
        mf = self.max_features
        if isinstance(mf, bool) or not isinstance(mf, (int, float, np.integer, np.floating)) or not 0 < mf <= 1:
            raise ValueError(f"max_features must be a fraction of the features in (0, 1], got {mf!r}")
        w = self.blend_weight
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) or not 0 <= w <= 1:
            raise ValueError(f"blend_weight must be a number in [0, 1], got {w!r}")
        if not isinstance(self.classifier_min_samples_leaf, (int, np.integer)) or self.classifier_min_samples_leaf < 1:
            raise ValueError(f"classifier_min_samples_leaf must be an integer >= 1, got {self.classifier_min_samples_leaf!r}")
        for name in ("inner_folds", "n_estimators", "gb_max_iter", "classifier_estimators"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")

    def _regressor(self, name: str):
        from .baselines import BASELINES

        params = {"random_state": self.random_state, "unknown_product": self.unknown_product}
        if name in ("RF", "ET"):
            params.update(n_jobs=self.n_jobs, n_estimators=self.n_estimators, max_features=float(self.max_features))
        else:
            params["max_iter"] = self.gb_max_iter
        return BASELINES[name](self.descriptors, **params)

    def _ensemble_members(self) -> list[str]:
        """The regressors of an ensemble, in the order of their weights (the mean follows them)."""
        return list(ENSEMBLE_MEMBERS[:-1] if self.members is None else self.members)

    def _size_names(self) -> list[str]:
        """The size regressors this configuration fits (and a saved model must hold)."""
        if self.size_model == "blend":
            return list(BLEND_MEMBERS)
        return [self.size_model] if self.size_model in _SINGLE else self._ensemble_members()

    def _size_rows(self, y: np.ndarray) -> np.ndarray:
        keep = np.ones(len(y), dtype=bool) if self.train_max_size_nm is None else ~(y > self.train_max_size_nm)
        return np.flatnonzero(keep)

    def _fit_size(self, recipes: list[Recipe], y: np.ndarray) -> None:
        rows = self._size_rows(y)
        members = {}
        for name in self._size_names():
            members[name] = self._regressor(name).fit([recipes[i] for i in rows], y[rows])
        self.size_members_ = {name: _member_from_regressor(m) for name, m in members.items()}
        if self.size_model == "blend":
            self._add_twin_residuals([recipes[i] for i in rows], y[rows])
        known = rows[np.isfinite(y[rows])]
        self.train_mean_nm_ = float(np.mean(y[known]))
        self.combination_ = None
        if self.size_model in ("weighted", "stack"):
            self.combination_ = fit_combination(self.size_model, *self._out_of_fold(recipes, y))

    def _add_twin_residuals(self, recipes: list[Recipe], y: np.ndarray) -> None:
        """Blend: give every extra-trees leaf a second output, the mean in-sample ln-residual of the boosting
        over the training recipes in it (the same rows the regressors trained on: known sizes > 0)."""
        known = np.flatnonzero(np.isfinite(y) & (y > 0))
        known_recipes = [recipes[i] for i in known]
        et, gb = (self.size_members_[name] for name in BLEND_MEMBERS)
        residual = np.log(y[known]) - gb.raw(known_recipes)[:, 0]
        column = et.trees.leaf_means(flat_features(et.encoder.transform(known_recipes)), residual)
        et.trees.value = np.column_stack([et.trees.value[:, 0], column])

    def _out_of_fold(self, recipes: list[Recipe], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions of the ensemble's regressors and the mean over the training recipes' paper pool."""
        from ..evaluation.splits import paper_folds  # the paper's fold rule; imported only for ensembles

        P, truth = [], []
        for train, val in paper_folds(recipes, n_splits=self.inner_folds, random_state=self.random_state):
            train = train[self._size_rows(y[train])]
            column = [
                self._regressor(name).fit([recipes[i] for i in train], y[train]).predict([recipes[i] for i in val])
                for name in self._ensemble_members()
            ]
            known = train[np.isfinite(y[train])]
            column.append(np.full(len(val), float(np.mean(y[known]))))
            P.append(np.column_stack(column))
            truth.append(y[val])
        return np.concatenate(P), np.concatenate(truth)

    def fit(self, recipes: Sequence[Recipe], y=None, *, failed_recipes: Sequence[Recipe] | None = None) -> SynthesisForest:
        """Fit size, shape and (with ``failed_recipes``) success on ``recipes``; returns self."""
        from sklearn.ensemble import RandomForestClassifier

        self._check_params()
        recipes, y = size_fit_targets(recipes, y)
        failed = list(failed_recipes or [])
        self._fit_size(recipes, y)

        def forest():  # out-of-bag accuracy: an estimate of the classifiers' quality at no extra cost
            return RandomForestClassifier(
                n_estimators=self.classifier_estimators,
                min_samples_leaf=self.classifier_min_samples_leaf,
                oob_score=True,
                random_state=self.random_state,
                n_jobs=self.n_jobs,
            )

        encoder = RecipeEncoder(self.descriptors, unknown_product=self.unknown_product).fit(recipes + failed)
        shaped = [r for r in recipes if r.outcome is not None and r.outcome.shape is not None]
        if not shaped:
            raise ValueError("no recipe has a shape to train the shape classifier on")
        shape_y = np.array([SHAPE_CLASSES.index(r.outcome.shape) for r in shaped])
        shape = forest().fit(flat_features(encoder.transform(shaped)), shape_y)
        self.shape_ = _TreeMember(encoder, tree_arrays(shape), "classes", [int(c) for c in shape.classes_])
        self.oob_accuracy_ = {"shape": float(shape.oob_score_), "success": None}
        self.success_ = None
        if failed:
            success_y = np.r_[np.ones(len(recipes), dtype=int), np.zeros(len(failed), dtype=int)]
            success = forest().fit(flat_features(encoder.transform(recipes + failed)), success_y)
            self.success_ = _TreeMember(encoder, tree_arrays(success), "classes", [int(c) for c in success.classes_])
            self.oob_accuracy_["success"] = float(success.oob_score_)
        self.has_success_ = self.success_ is not None
        self.encoder_ = encoder
        self.metadata_ = {}
        return self

    # ------------------------------------------------------------------ predict

    def predict(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """Predicted mean size (nm) of each recipe, float64 (n,)."""
        check_is_fitted(self, "size_members_")
        recipes = list(recipes)
        if not recipes:
            return np.zeros(0)
        if self.size_model == "blend":
            et, gb = (self.size_members_[name] for name in BLEND_MEMBERS)
            ln_et, twins = et.raw(recipes).T
            ln_size = (1.0 - self.blend_weight) * ln_et + self.blend_weight * (gb.raw(recipes)[:, 0] + twins)
            return np.maximum(np.exp(ln_size), _MIN_SIZE_NM)
        if self.combination_ is None:
            return self.size_members_[self.size_model].size_nm(recipes)
        P = np.column_stack(
            [self.size_members_[name].size_nm(recipes) for name in self._ensemble_members()] + [np.full(len(recipes), self.train_mean_nm_)]
        )
        return np.maximum(combine_members(self.combination_, P), _MIN_SIZE_NM)

    def predict_outcomes(self, recipes: Sequence[Recipe]) -> list[dict[str, Any]]:
        """Size, shape (with class probabilities) and success probability per recipe (as the transformer's)."""
        recipes = list(recipes)
        if not recipes:
            return []
        sizes = self.predict(recipes)
        shapes = self.shape_.probabilities(recipes, len(SHAPE_CLASSES))
        success = self.success_.probabilities(recipes, 2)[:, 1] if self.success_ is not None else None
        return [
            {
                "id": recipe.id,
                "size_nm": float(sizes[i]),
                "shape": SHAPE_CLASSES[int(np.argmax(shapes[i]))],
                "shape_probabilities": {c: float(p) for c, p in zip(SHAPE_CLASSES, shapes[i])},
                "success_probability": None if success is None else float(success[i]),
            }
            for i, recipe in enumerate(recipes)
        ]

    # ------------------------------------------------------------------ save / load

    def _members(self) -> dict[str, _TreeMember]:
        members = {f"size_{name}": m for name, m in self.size_members_.items()}
        members["shape"] = self.shape_
        if self.success_ is not None:
            members["success"] = self.success_
        return members

    def save(self, directory: str | os.PathLike, *, metadata: dict | None = None) -> Path:
        """Write ``model.json``, ``trees.npz`` and ``descriptors.npz`` into ``directory`` (atomically each)."""
        check_is_fitted(self, "size_members_")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        members = self._members()
        arrays: dict[str, np.ndarray] = {}
        for name, member in members.items():
            arrays.update(member.trees.to_npz_dict(f"{name}/"))
        config = {
            "format": FOREST_FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": {
                k: list(v) if k == "members" and v is not None else v for k, v in ((k, getattr(self, k)) for k in self._SAVED_PARAMS)
            },
            "members": {name: m.to_dict() for name, m in members.items()},
            "combination": self.combination_,
            "train_mean_nm": self.train_mean_nm_,
            "oob_accuracy": getattr(self, "oob_accuracy_", None),
            "shape_classes": list(SHAPE_CLASSES),
            "metadata": metadata or {},
        }
        trees, table = io.BytesIO(), io.BytesIO()
        np.savez_compressed(trees, **arrays)
        np.savez(
            table, names=np.array(self.descriptors.names, dtype=str), descriptors=self.descriptors.lookup(list(self.descriptors.names))
        )
        atomic_write_bytes(directory / _DESCRIPTORS, table.getvalue())
        atomic_write_bytes(directory / _TREES, trees.getvalue())
        atomic_write_bytes(directory / _CONFIG, json.dumps(config, indent=1).encode("utf-8"))
        self.metadata_ = metadata or {}
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, descriptors: DescriptorTable | None = None, *, fallback=None) -> SynthesisForest:
        """Load a model saved by :meth:`save` (arrays only: nothing is unpickled).

        ``descriptors`` defaults to the table saved with the model (``fallback``, a function
        name -> vector, is attached to it for chemicals it lacks); an explicit table must match.
        """
        directory = Path(directory)
        for name in (_CONFIG, _TREES, _DESCRIPTORS):
            if not (directory / name).is_file():
                raise ModelFormatError(f"{directory}: not a saved SynthesisForest ({name} missing)")
        config_path = directory / _CONFIG
        config = read_model_config(config_path, FOREST_FORMAT, _FORMAT_VERSION)
        if descriptors is None:
            descriptors = DescriptorTable.from_npz(directory / _DESCRIPTORS, fallback=fallback)
        params = config.get("params")
        if not isinstance(params, dict) or sorted(set(params) - set(cls._SAVED_PARAMS)):
            raise ModelFormatError(f'{config_path}: "params" must be an object of {list(cls._SAVED_PARAMS)}')
        model = cls(descriptors, **params)
        try:
            model._check_params()
            with np.load(directory / _TREES, allow_pickle=False) as arrays:
                members = {}
                for name, spec in config["members"].items():
                    encoder = RecipeEncoder.from_dict(spec["encoder"], descriptors)
                    if spec["encoder"].get("descriptor_fingerprint") != _fingerprint(descriptors):
                        raise ModelFormatError(
                            f"{directory}: the descriptor table given differs from the one the "
                            f"model was trained with; load without `descriptors`"
                        )
                    trees = TreeArrays.from_npz_dict(arrays, f"{name}/", source=str(directory / _TREES))
                    classes = spec.get("classes")
                    members[name] = _TreeMember(encoder, trees, str(spec["output"]), None if classes is None else [int(c) for c in classes])
            model.size_members_ = {n[len("size_") :]: m for n, m in members.items() if n.startswith("size_")}
            model.shape_ = members["shape"]
            model.success_ = members.get("success")
            model.combination_ = config.get("combination")
            model.train_mean_nm_ = float(config["train_mean_nm"])
            model.oob_accuracy_ = config.get("oob_accuracy")
        except ModelFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{directory}: damaged model ({type(exc).__name__}: {exc})") from None
        expected = set(model._size_names())
        combined = model.size_model in ("weighted", "stack")
        if set(model.size_members_) != expected or (model.combination_ is not None) != combined:
            raise ModelFormatError(f"{config_path}: members {sorted(model.size_members_)} do not fit size_model {model.size_model!r}")
        if model.size_model == "blend" and model.size_members_["ET"].trees.value.shape[1] != 2:
            raise ModelFormatError(f"{config_path}: a blend's extra trees need two outputs (ln size, the twins' residual)")
        weights = model.combination_.get("weights") if isinstance(model.combination_, dict) else None
        if model.combination_ is not None and (not isinstance(weights, list) or len(weights) != len(expected) + 1):
            raise ModelFormatError(f"{config_path}: the combination needs one weight for each of {sorted(expected)} and the mean")
        model.has_success_ = model.success_ is not None
        model.encoder_ = model.shape_.encoder
        model.metadata_ = config.get("metadata", {})
        return model
