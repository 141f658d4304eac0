"""Retrieval tokens for the synthesis transformer: the nearest training recipes and their outcomes.

A random forest wins on the paper's split because it recalls the nearest published twin of a
recipe; a network learns that recall only by fitting every training recipe closely.
:class:`NeighbourBank` hands it the twins directly: for each recipe the ``k`` nearest training
recipes with a known size, in the standardised flat-feature space the forest reads
(:func:`~nc_synthmodel.features.flat.flat_features`: conditions, product and reactant
descriptors, amounts per role), each as one extra token of :data:`TOKEN_WIDTH` numbers:

* the neighbour's size on the model's target scale (what the size head predicts);
* the neighbour's shape class, one-hot (zeros when unknown);
* its distance to the recipe (divided by the square root of the feature count);
* the recipe's features minus the neighbour's for the conditions and the per-role amounts and
  counts (13 numbers): what differs between the twins, so the network can correct for it.

While training, a recipe never sees itself in its list (nor, with ``groups``, any recipe of its
own group - e.g. its publication when the evaluation holds whole publications out), so it cannot
copy its own label; augmented copies use their original's list.  At prediction time the
neighbours come from the bank, i.e. the training recipes only.
"""

from __future__ import annotations

import numpy as np

from ..contract import SHAPE_CLASSES
from ..features.flat import flat_features

__all__ = ["TOKEN_WIDTH", "NeighbourBank", "attach_neighbours", "recipe_tokens"]

_N_CONDITIONS, _N_ROLE_COLUMNS = 4, 9
#: Numbers per retrieval token: target, shape one-hot, distance, feature differences.
TOKEN_WIDTH = 1 + len(SHAPE_CLASSES) + 1 + _N_CONDITIONS + _N_ROLE_COLUMNS


class NeighbourBank:
    """The training recipes a model may retrieve: standardised features and outcomes.

    Parameters
    ----------
    features : array (n, f)
        Flat features of the bank recipes (raw; standardised here with their own mean and std).
    target : array (n,)
        Their sizes on the model's target scale.
    shape_index : array (n,) int
        Their shape class index into :data:`~nc_synthmodel.contract.SHAPE_CLASSES`, -1 unknown.
    """

    def __init__(self, features, target, shape_index, *, mean=None, std=None):
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] < _N_CONDITIONS + _N_ROLE_COLUMNS:
            raise ValueError(f"bank features must be (n, >= {_N_CONDITIONS + _N_ROLE_COLUMNS}), got shape {features.shape}")
        if len(features) < 2:
            raise ValueError(f"a neighbour bank needs at least 2 recipes with a known size, got {len(features)}")
        self.mean = features.mean(0) if mean is None else np.asarray(mean, dtype=np.float32)
        if std is None:  # a column constant over the bank keeps its raw scale: a new value must not blow up
            std = features.std(0)
            std = np.where(std < 1e-6, 1.0, std)
        self.std = np.asarray(std, dtype=np.float32)
        self.features = ((features - self.mean) / self.std).astype(np.float32)
        self.target = np.asarray(target, dtype=np.float32).ravel()
        self.shape_index = np.asarray(shape_index, dtype=np.int64).ravel()
        if not (len(self.target) == len(self.shape_index) == len(self.features)):
            raise ValueError("bank features, targets and shapes must have one row per recipe")
        if not np.isfinite(self.target).all():
            raise ValueError("bank targets must be finite (only recipes with a known size belong in the bank)")

    def __len__(self) -> int:
        return len(self.features)

    def _standardise(self, features) -> np.ndarray:
        return ((np.asarray(features, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def tokens(self, features, k: int, *, exclude=None, groups=None, bank_groups=None, chunk: int = 512) -> np.ndarray:
        """Retrieval tokens (n, k, :data:`TOKEN_WIDTH`) float32 of recipes with raw ``features``.

        ``exclude`` (n,) int: a bank row each recipe must not retrieve (itself; -1: none).
        ``groups`` (n,) with ``bank_groups`` (len(bank),): a recipe retrieves no bank row of its
        own group.  Fewer than ``k`` admissible rows is an error (the bank is too small).
        """
        q = self._standardise(features)
        n = len(q)
        k = int(k)
        out = np.zeros((n, k, TOKEN_WIDTH), dtype=np.float32)
        bank_sq = (self.features.astype(np.float64) ** 2).sum(1)
        if groups is not None:
            groups, bank_groups = np.asarray(groups, dtype=object), np.asarray(bank_groups, dtype=object)
            if len(groups) != n or len(bank_groups) != len(self):
                raise ValueError(f"{len(groups)} groups for {n} recipes / {len(bank_groups)} for a bank of {len(self)}")
        scale = 1.0 / np.sqrt(q.shape[1])
        for start in range(0, n, chunk):
            part = slice(start, min(n, start + chunk))
            qp = q[part].astype(np.float64)
            dist2 = (qp**2).sum(1)[:, None] + bank_sq[None, :] - 2.0 * qp @ self.features.T.astype(np.float64)
            np.maximum(dist2, 0.0, out=dist2)
            if exclude is not None:
                rows = np.asarray(exclude[part], dtype=np.int64)
                hit = rows >= 0
                dist2[np.flatnonzero(hit), rows[hit]] = np.inf
            if groups is not None:
                dist2[groups[part][:, None] == bank_groups[None, :]] = np.inf
            admissible = np.isfinite(dist2).sum(1)
            if (admissible < k).any():
                raise ValueError(f"a recipe has only {int(admissible.min())} admissible neighbours in the bank; k = {k}")
            idx = np.argpartition(dist2, k - 1, axis=1)[:, :k]
            d = np.take_along_axis(dist2, idx, 1)
            order = np.argsort(d, axis=1, kind="stable")
            idx, d = np.take_along_axis(idx, order, 1), np.take_along_axis(d, order, 1)
            token = out[part]
            token[:, :, 0] = self.target[idx]
            shape = self.shape_index[idx]
            known = shape >= 0
            rows_, slots = np.nonzero(known)
            token[rows_, slots, 1 + shape[known]] = 1.0
            token[:, :, 1 + len(SHAPE_CLASSES)] = np.sqrt(d) * scale
            diff = qp[:, None, :].astype(np.float32) - self.features[idx]
            columns = np.r_[np.arange(_N_CONDITIONS), np.arange(q.shape[1] - _N_ROLE_COLUMNS, q.shape[1])]
            token[:, :, 2 + len(SHAPE_CLASSES) :] = diff[:, :, columns]
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that rebuild the bank (:meth:`from_state`)."""
        return {
            "features": self.features * self.std + self.mean,
            "target": self.target,
            "shape_index": self.shape_index,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_state(cls, state: dict) -> NeighbourBank:
        """Rebuild a bank from :meth:`state` arrays (missing or inconsistent arrays raise ``ValueError``)."""
        try:
            return cls(state["features"], state["target"], state["shape_index"], mean=state["mean"], std=state["std"])
        except KeyError as exc:
            raise ValueError(f"neighbour bank array {exc} missing") from None


def attach_neighbours(model, train_recipes, train_y, originals, copies, copy_owner, others, groups=None) -> NeighbourBank:
    """Build ``model``'s bank from its training recipes and give every training set its tokens.

    The bank holds the training recipes with a known size (up to ``finetune_max_size_nm`` when
    set).  ``originals`` (the training recipes, a ``_Compact``) retrieve from it without
    themselves (and, with ``groups``, without their own group); ``copies`` take their original's
    tokens; ``others`` - pairs (``_Compact`` or None, its recipes) - retrieve from all of it.
    """
    k = model.retrieval_k
    train_y = np.asarray(train_y, dtype=float)
    in_bank = np.isfinite(train_y) & (train_y > 0)
    if model.finetune_max_size_nm is not None:
        in_bank &= train_y <= model.finetune_max_size_nm
    rows = np.flatnonzero(in_bank)
    if len(rows) <= k:
        raise ValueError(f"retrieval_k={k} needs more than {k} training recipes with a known size, got {len(rows)}")
    features = flat_features(model.encoder_.transform(list(train_recipes)))
    bank = NeighbourBank(features[rows], model._target(train_y[rows]), originals.shape_index[rows])
    exclude = np.full(len(train_recipes), -1)
    exclude[rows] = np.arange(len(rows))  # a training recipe never retrieves itself
    bank_groups = None if groups is None else np.asarray(groups, dtype=object)[rows]
    originals.neighbours = bank.tokens(features, k, exclude=exclude, groups=groups, bank_groups=bank_groups)
    if copies is not None:
        copies.neighbours = originals.neighbours[copy_owner]
    model.retrieval_ = bank
    for data, members in others:
        if data is not None:
            data.neighbours = recipe_tokens(model, members)
    return bank


def recipe_tokens(model, recipes) -> np.ndarray:
    """Retrieval tokens of ``recipes`` from ``model``'s whole bank ((n, 0, 0) without retrieval)."""
    recipes = list(recipes)
    if getattr(model, "retrieval_", None) is None:
        return np.zeros((len(recipes), 0, 0), dtype=np.float32)
    return model.retrieval_.tokens(flat_features(model.encoder_.transform(recipes)), model.retrieval_k)
