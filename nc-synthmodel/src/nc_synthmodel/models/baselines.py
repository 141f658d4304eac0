"""Baseline size regressors (paper Extended Data Table 1), all with one interface.

Every estimator takes recipes: ``fit(recipes, y)`` with ``y`` the sizes in nm (NaN where
unknown) and ``predict(recipes) -> (n,) nm``, so :func:`~nc_synthmodel.evaluation.cross_validate`
treats them and the transformer alike.  The recipe encoder is fitted inside ``fit`` on
the training recipes only.

* :class:`FlatFeatureRegressor` - any scikit-learn regressor on
  :func:`~nc_synthmodel.encoding.flat_features`: decision tree ("DT"), random forest
  ("RF"), extremely randomised trees ("ET"), histogram gradient boosting ("GB") and an MLP ("DNN").
* :class:`LSTMRegressor` - a small LSTM (torch, CPU) over the token sequence, product
  first, with the scaled conditions joined to its last state.

Conventions:

* training uses every recipe with a known size, whatever its particle count; the
  scikit-learn models cannot use the paper's ±15 % tolerance for recipes with fewer than
  300 particles and weight all rows alike; the LSTM applies it
  (:func:`~nc_synthmodel.evaluation.tolerant_size_mask`);
* by default the models learn ``ln(size_nm)`` and predict ``exp`` of it: sizes run from
  0.9 to 5,822 nm in the training rows, and squared errors in nm would be dominated by
  the few µm-sized products (``log_target=False`` learns nm);
* products without a descriptor are encoded as zero vectors, as in the authors' code
  (``unknown_product="zeros"``).

:data:`BASELINES` maps a name to a factory ``factory(descriptors, **params)``;
:func:`nc_synthmodel.models.make_model` builds any of them (or a transformer) by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ..contract import Recipe
from ..descriptors import DescriptorTable
from ..features.encoding import RecipeEncoder
from ..features.flat import flat_features
from ..targets import PAPER_TOLERANCE, size_targets, tolerant_size_mask
from .threads import torch_threads

__all__ = [
    "BASELINES",
    "FlatFeatureRegressor",
    "LSTMRegressor",
]

logger = logging.getLogger(__name__)


def _training_rows(recipes: list[Recipe], y, log_target: bool) -> tuple[np.ndarray, np.ndarray]:
    """Indices of recipes with a usable target, and all targets (nm)."""
    y = size_targets(recipes) if y is None else np.asarray(y, dtype=float).ravel()
    if len(y) != len(recipes):
        raise ValueError(f"{len(y)} targets for {len(recipes)} recipes")
    usable = np.isfinite(y) & (y > 0 if log_target else True)
    if not usable.any():
        raise ValueError("no recipe has a known size to train on")
    return np.flatnonzero(usable), y


def _encoder(descriptors: DescriptorTable, unknown_product: str, encoder_params: dict | None) -> RecipeEncoder:
    params = {"unknown_product": unknown_product, **(encoder_params or {})}
    return RecipeEncoder(descriptors, **params)


class FlatFeatureRegressor(RegressorMixin, BaseEstimator):
    """A scikit-learn regressor on :func:`~nc_synthmodel.encoding.flat_features`.

    Parameters
    ----------
    descriptors : DescriptorTable
    estimator : scikit-learn regressor, optional
        Cloned in ``fit``; default a ``RandomForestRegressor(random_state=0)``.
    log_target : bool
        Learn ``ln(size_nm)`` instead of nm.
    unknown_product : {"zeros", "raise"}
        Passed to the :class:`~nc_synthmodel.encoding.RecipeEncoder`.
    encoder_params : dict, optional
        Further :class:`~nc_synthmodel.encoding.RecipeEncoder` parameters.

    Attributes
    ----------
    encoder_ : RecipeEncoder
    estimator_ : fitted regressor
    n_features_in_ : int
    n_train_ : int
        Recipes with a known size used for training.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> model = FlatFeatureRegressor(table, RandomForestRegressor()).fit(recipes, sizes)  # doctest: +SKIP
    >>> model.predict(new_recipes)  # doctest: +SKIP
    """

    def __init__(
        self,
        descriptors: DescriptorTable,
        estimator: Any = None,
        log_target: bool = True,
        unknown_product: str = "zeros",
        encoder_params: dict | None = None,
    ):
        self.descriptors = descriptors
        self.estimator = estimator
        self.log_target = log_target
        self.unknown_product = unknown_product
        self.encoder_params = encoder_params

    def fit(self, recipes: Sequence[Recipe], y=None) -> FlatFeatureRegressor:
        """Fit the encoder on ``recipes`` and the regressor on those with a known size."""
        recipes = list(recipes)
        rows, y = _training_rows(recipes, y, self.log_target)
        self.encoder_ = _encoder(self.descriptors, self.unknown_product, self.encoder_params).fit(recipes)
        features = flat_features(self.encoder_.transform([recipes[i] for i in rows]))
        target = np.log(y[rows]) if self.log_target else y[rows]
        if self.estimator is None:
            from sklearn.ensemble import RandomForestRegressor

            estimator = RandomForestRegressor(random_state=0)
        else:
            estimator = clone(self.estimator)
        self.estimator_ = estimator.fit(features, target)
        self.n_features_in_ = features.shape[1]
        self.n_train_ = len(rows)
        logger.debug("%s fitted on %d recipes, %d features", type(estimator).__name__, len(rows), features.shape[1])
        return self

    def predict(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """Predicted mean size (nm) of each recipe, float64 (n,)."""
        check_is_fitted(self, "estimator_")
        recipes = list(recipes)
        if not recipes:
            return np.zeros(0)
        pred = np.asarray(self.estimator_.predict(flat_features(self.encoder_.transform(recipes))), dtype=float)
        return np.exp(pred) if self.log_target else pred


class LSTMRegressor(RegressorMixin, BaseEstimator):
    """LSTM over the recipe's token sequence (product first), conditions joined at the end.

    Tokens ``[flag, amount, descriptor]`` go through a linear embedding and ReLU, an
    LSTM reads the real tokens (padding is packed away), and an MLP maps the last hidden
    state and the scaled conditions to the (standardised log) size.  (Joining the
    conditions to every token as well was tried and was worse on the paper folds.)  The loss is Huber
    (delta 1) on that scale, skipping recipes with fewer than 300 particles whose
    prediction is within ``tolerance`` of the label (paper convention).

    Parameters
    ----------
    descriptors : DescriptorTable
    embed_size, hidden_size, n_layers : int
        Embedding width, LSTM width and depth.
    n_epochs, batch_size : int
    learning_rate, weight_decay : float
        Adam; the learning rate decays by cosine to 5 % over the epochs.
    tolerance : float or None
        Relative tolerance for recipes with few particles; None trains on all alike.
    log_target : bool
        Learn ``ln(size_nm)`` (standardised) instead of nm (standardised).
    unknown_product : {"zeros", "raise"}
    encoder_params : dict, optional
    random_state : int
        Seeds initialisation and batch order (the global torch RNG is left untouched).
    n_threads : int or None
        Torch intra-op threads during fit / predict (restored afterwards).  The network
        is small: one thread is fastest, and several slow it down ~10x on busy cores.
        None leaves torch's setting.

    Attributes
    ----------
    encoder_ : RecipeEncoder
    model_ : torch.nn.Module
        The trained network (CPU, eval mode).
    target_mean_, target_std_ : float
        Standardisation of the (log) target.
    loss_curve_ : list of float
        Mean training loss per epoch.
    """

    def __init__(
        self,
        descriptors: DescriptorTable,
        embed_size: int = 64,
        hidden_size: int = 64,
        n_layers: int = 1,
        n_epochs: int = 60,
        batch_size: int = 64,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        tolerance: float | None = PAPER_TOLERANCE,
        log_target: bool = True,
        unknown_product: str = "zeros",
        encoder_params: dict | None = None,
        random_state: int = 0,
        n_threads: int | None = 1,
    ):
        self.descriptors = descriptors
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.tolerance = tolerance
        self.log_target = log_target
        self.unknown_product = unknown_product
        self.encoder_params = encoder_params
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, recipes: Sequence[Recipe], y=None) -> LSTMRegressor:
        """Train on the recipes with a known size; returns self."""
        import torch

        for name in ("embed_size", "hidden_size", "n_layers", "n_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        recipes = list(recipes)
        rows, y = _training_rows(recipes, y, self.log_target)
        self.encoder_ = _encoder(self.descriptors, self.unknown_product, self.encoder_params).fit(recipes)
        encoded = self.encoder_.transform([recipes[i] for i in rows])
        size_nm = y[rows]
        target = np.log(size_nm) if self.log_target else size_nm
        self.target_mean_, self.target_std_ = float(target.mean()), float(target.std() or 1.0)

        with torch_threads(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            tokens = torch.from_numpy(encoded.tokens)
            lengths = torch.from_numpy(encoded.mask.sum(axis=1))
            conditions = torch.from_numpy(encoded.conditions)
            scaled = torch.from_numpy(((target - self.target_mean_) / self.target_std_).astype(np.float32))
            truth_nm = torch.from_numpy(size_nm.astype(np.float32))
            counts = torch.from_numpy(encoded.n_particles)
            model = _lstm_net(encoded.tokens.shape[2], encoded.conditions.shape[1], self.embed_size, self.hidden_size, self.n_layers)
            optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.n_epochs, eta_min=0.05 * self.learning_rate)
            huber = torch.nn.HuberLoss(delta=1.0, reduction="none")
            self.loss_curve_ = []
            n = len(rows)
            model.train()
            for _ in range(self.n_epochs):
                order = torch.randperm(n)
                total, seen = 0.0, 0
                for start in range(0, n, self.batch_size):
                    batch = order[start : start + self.batch_size]
                    pred = model(tokens[batch], lengths[batch], conditions[batch])
                    loss = huber(pred, scaled[batch])
                    if self.tolerance is not None:
                        keep = tolerant_size_mask(
                            self._to_nm(pred.detach()), truth_nm[batch], counts[batch], tolerance=self.tolerance
                        ).float()
                        loss = (loss * keep).sum() / keep.sum().clamp(min=1.0)
                    else:
                        loss = loss.mean()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(batch)
                    seen += len(batch)
                scheduler.step()
                self.loss_curve_.append(total / seen)
            model.eval()
        self.model_ = model
        self.n_train_ = n
        logger.debug("LSTM trained on %d recipes, final loss %.4f", n, self.loss_curve_[-1])
        return self

    def predict(self, recipes: Sequence[Recipe]) -> np.ndarray:
        """Predicted mean size (nm) of each recipe, float64 (n,)."""
        import torch

        check_is_fitted(self, "model_")
        recipes = list(recipes)
        if not recipes:
            return np.zeros(0)
        encoded = self.encoder_.transform(recipes)
        out = []
        with torch_threads(self.n_threads), torch.no_grad():
            tokens = torch.from_numpy(encoded.tokens)
            lengths = torch.from_numpy(encoded.mask.sum(axis=1))
            conditions = torch.from_numpy(encoded.conditions)
            for start in range(0, len(recipes), 1024):
                part = slice(start, start + 1024)
                out.append(self._to_nm(self.model_(tokens[part], lengths[part], conditions[part])).numpy())
        return np.concatenate(out).astype(float)

    def _to_nm(self, scaled):
        value = scaled * self.target_std_ + self.target_mean_
        return value.exp() if self.log_target else value


def _lstm_net(token_dim: int, n_conditions: int, embed_size: int, hidden_size: int, n_layers: int):
    """The LSTM network (built on demand: torch is imported only when needed)."""
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    class _LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(token_dim, embed_size), nn.ReLU())
            self.lstm = nn.LSTM(embed_size, hidden_size, num_layers=n_layers, batch_first=True)
            self.head = nn.Sequential(nn.Linear(hidden_size + n_conditions, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

        def forward(self, tokens, lengths, conditions):
            packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
            _, (hidden, _) = self.lstm(packed)
            return self.head(torch.cat([hidden[-1], conditions], dim=1)).squeeze(1)

    return _LSTMNet()


# ---------------------------------------------------------------------- registry


def _dt(descriptors: DescriptorTable, random_state: int = 0, **params) -> FlatFeatureRegressor:
    from sklearn.tree import DecisionTreeRegressor

    return FlatFeatureRegressor(descriptors, DecisionTreeRegressor(random_state=random_state), **params)


def _forest(
    kind: str,
    descriptors: DescriptorTable,
    random_state: int = 0,
    n_estimators: int = 300,
    max_features: float = 1 / 3,
    min_samples_leaf: int = 1,
    n_jobs: int | None = None,
    **params,
) -> FlatFeatureRegressor:
    """``kind`` "RF" (random forest) or "ET" (extremely randomised trees: random thresholds as well
    as random features, no bootstrap sample) on the flat features.  p/3 features per split
    (Breiman's choice for regression) is as good as all 109 for the random forest here, 3x faster."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    cls = {"RF": RandomForestRegressor, "ET": ExtraTreesRegressor}[kind]
    forest = cls(
        n_estimators=n_estimators,
        max_features=max_features,
        min_samples_leaf=min_samples_leaf,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    return FlatFeatureRegressor(descriptors, forest, **params)


def _gb(
    descriptors: DescriptorTable,
    random_state: int = 0,
    max_iter: int = 500,
    min_samples_leaf: int = 20,
    max_leaf_nodes: int = 31,
    **params,
) -> FlatFeatureRegressor:
    """Histogram gradient boosting, learning rate 0.05, no early stopping; leaves and leaf count default to
    scikit-learn's (20 recipes, 31 leaves: the preset)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    boosting = HistGradientBoostingRegressor(
        max_iter=max_iter,
        learning_rate=0.05,
        min_samples_leaf=min_samples_leaf,
        max_leaf_nodes=max_leaf_nodes,
        early_stopping=False,
        random_state=random_state,
    )
    return FlatFeatureRegressor(descriptors, boosting, **params)


def _dnn(descriptors: DescriptorTable, random_state: int = 0, max_iter: int = 500, **params) -> FlatFeatureRegressor:
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mlp = MLPRegressor(
        hidden_layer_sizes=(256, 128),
        alpha=1e-3,
        learning_rate_init=1e-3,
        max_iter=max_iter,
        early_stopping=True,  # on a 10 % split of the training recipes, never the validation fold
        n_iter_no_change=20,
        random_state=random_state,
    )
    return FlatFeatureRegressor(descriptors, make_pipeline(StandardScaler(), mlp), **params)


def _lstm(descriptors: DescriptorTable, random_state: int = 0, **params) -> LSTMRegressor:
    return LSTMRegressor(descriptors, random_state=random_state, **params)


#: Baseline name → factory ``factory(descriptors, random_state=0, **params)``.
BASELINES: dict[str, Callable[..., Any]] = {
    "DT": _dt,
    "RF": partial(_forest, "RF"),
    "ET": partial(_forest, "ET"),
    "GB": _gb,
    "DNN": _dnn,
    "LSTM": _lstm,
}
