"""Retrieval tokens for the synthesis transformer: the nearest training recipes and their outcomes.

A random forest wins on the paper's split because it recalls the nearest published twin of a
recipe; a network learns that recall only by fitting every training recipe closely.
:class:`NeighbourBank` hands it the twins directly: for each recipe the ``k`` nearest training
recipes with a known size, in the standardised flat-feature space the forest reads
(:func:`~nc_synthmodel.features.flat.flat_features`: conditions, product and reactant
descriptors, amounts per role), each as one extra token of :data:`TOKEN_WIDTH` numbers:

* the neighbour's size on the model's target scale (what the size head predicts);
* the neighbour's shape class, one-hot (zeros when unknown);
* its distance to the recipe (divided by the square root of the feature count), or with the
  ``forest`` metric one minus its forest proximity;
* the recipe's features minus the neighbour's for the conditions and the per-role amounts and
  counts (13 numbers): what differs between the twins, so the network can correct for it.

Two metrics pick the neighbours.  ``euclidean``: the standardised flat features, every column
alike.  ``forest``: a random forest fitted on the bank only (its features, its targets) decides,
and the nearest recipes are those sharing the most leaves with the recipe (the forest's
*proximity*: the recipes a forest's own prediction averages).  On dev splits carved from the
training folds the median size of the 4 most proximate recipes is 1.73 nm MAE against 2.18 nm
for the 4 Euclidean nearest (paper split; 3.85 vs 4.11 grouped).  A training recipe's own label
shaped the leaves of the trees it was drawn into, so a bank recipe measures its proximity on the
trees it was *out of bag* for only (as a new recipe, whose label no tree saw).

While training, a recipe never sees itself in its list (nor, with ``groups``, any recipe of its
own group - e.g. its publication when the evaluation holds whole publications out), so it cannot
copy its own label; augmented copies use their original's list.  At prediction time the
neighbours come from the bank, i.e. the training recipes only.

A training recipe's out-of-bag tokens are not made the way a new recipe's are (~37 of 100 trees
measure its proximity, in a forest grown on its neighbours).  *Cross-fitting* (:func:`crossfit_tokens`,
``SynthesisTransformer(retrieval_crossfit=K)``) makes them the same way: the bank is cut into ``K``
parts (whole groups per part when ``groups`` are given), and a recipe of part ``j`` retrieves, with
every tree of a forest fitted without part ``j``, from the bank of the other parts.  The model's own
bank and forest (what prediction uses) are unchanged.  Measured on the dev splits of the paper's
folds 0 and 1 (BENCHMARKS.md, issue 18, fourth round), cross-fitted training tokens are not more
telling than out-of-bag ones (a bank of (K - 1)/K of the recipes), and the network gains little.
"""

from __future__ import annotations

import numpy as np

from ..contract import SHAPE_CLASSES
from ..features.flat import flat_features

__all__ = [
    "METRICS",
    "RESIDUAL_MODES",
    "TOKEN_WIDTH",
    "NeighbourBank",
    "attach_neighbours",
    "check_retrieval_params",
    "crossfit_parts",
    "crossfit_tokens",
    "fit_proximity_forest",
    "recipe_tokens",
]

_N_CONDITIONS, _N_ROLE_COLUMNS = 4, 9
#: Numbers per retrieval token: target, shape one-hot, distance, feature differences.
TOKEN_WIDTH = 1 + len(SHAPE_CLASSES) + 1 + _N_CONDITIONS + _N_ROLE_COLUMNS
#: Neighbour metrics of :class:`NeighbourBank` (``SynthesisTransformer(retrieval_metric=...)``).
METRICS = ("euclidean", "forest")
#: ``SynthesisTransformer(retrieval_residual=...)``: none, the gated mean of the tokens, or the
#: aggregate token's outcome (the forest's estimate) with the correction starting at zero.
RESIDUAL_MODES = (False, True, "aggregate")
#: Trees of the proximity forest (each bank recipe is out of bag for ~37 % of them).
FOREST_TREES = 100
#: Proximity forests (``SynthesisTransformer(retrieval_forest=...)``): random forest, or extremely
#: randomised trees (no bootstrap, so no out-of-bag trees: needs ``retrieval_crossfit``).
FOREST_KINDS = ("random", "extra")
_FOREST = "forest_"


def fit_proximity_forest(
    features, target, *, n_trees: int = FOREST_TREES, random_state: int = 0, kind: str = "random", max_features: float = 1 / 3
):
    """A forest on the bank (``features`` raw, ``target`` its outcomes) as tree arrays.

    Returns ``(trees, out_of_bag)``: :class:`~nc_synthmodel.models.trees.TreeArrays` and an
    (n, n_trees) boolean array, True where a recipe was not drawn into that tree's bootstrap
    (all False for ``kind="extra"``: extremely randomised trees see every recipe).  Fully grown
    trees, ``max_features`` of the features per split (1/3: the benchmark's random forest).
    """
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    from .trees import tree_arrays

    if kind not in FOREST_KINDS:
        raise ValueError(f"the proximity forest must be one of {FOREST_KINDS}, got {kind!r}")
    features = np.asarray(features, dtype=np.float32)
    cls = RandomForestRegressor if kind == "random" else ExtraTreesRegressor
    forest = cls(n_estimators=n_trees, max_features=max_features, random_state=random_state, n_jobs=1)
    forest.fit(features, np.asarray(target, dtype=float))
    out_of_bag = np.zeros((len(features), n_trees), dtype=bool)
    if kind == "random":
        out_of_bag[:] = True
        for t, drawn in enumerate(forest.estimators_samples_):
            out_of_bag[drawn, t] = False
    return tree_arrays(forest), out_of_bag


def _forest_params(model) -> dict:
    """``fit_proximity_forest`` keywords of a model (models saved before the options: a random forest, p/3)."""
    return {"kind": getattr(model, "retrieval_forest", "random"), "max_features": float(getattr(model, "retrieval_max_features", 1 / 3))}


def _group_kwargs(groups, query, bank) -> dict:
    """``NeighbourBank.tokens`` keywords keeping the rows ``query`` from retrieving bank rows ``bank``
    (indices or masks into ``groups``) of their own group; none without ``groups``."""
    if groups is None:
        return {}
    groups = np.asarray(groups, dtype=object)
    return {"groups": groups[query], "bank_groups": groups[bank]}


def _one_hot(leaves: np.ndarray, n_nodes: int, use=None):
    """Sparse (n, n_nodes) indicator of the leaves (only the trees where ``use`` is True)."""
    from scipy.sparse import csr_matrix

    n, n_trees = leaves.shape
    data = np.ones(leaves.size, dtype=np.float32) if use is None else np.asarray(use, dtype=np.float32).ravel()
    indptr = np.arange(0, n * n_trees + 1, n_trees)
    return csr_matrix((data, leaves.ravel(), indptr), shape=(n, n_nodes))


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
    trees : TreeArrays, optional
        A forest fitted on this bank (:func:`fit_proximity_forest`, raw features): neighbours
        are then the recipes of highest forest proximity (``metric == "forest"``), not the
        Euclidean nearest.
    """

    def __init__(self, features, target, shape_index, *, mean=None, std=None, trees=None):
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
        self.trees = trees
        self.leaves = None
        if trees is not None:
            if trees.n_features != features.shape[1]:
                raise ValueError(f"the proximity forest reads {trees.n_features} features, the bank has {features.shape[1]}")
            self.leaves = trees.apply(features)

    @property
    def metric(self) -> str:
        """``"forest"`` (proximity of a forest fitted on the bank) or ``"euclidean"``."""
        return "euclidean" if self.trees is None else "forest"

    def __len__(self) -> int:
        return len(self.features)

    def _standardise(self, features) -> np.ndarray:
        return ((np.asarray(features, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def tokens(
        self, features, k: int, *, exclude=None, groups=None, bank_groups=None, trees_used=None, aggregate=False, chunk: int = 512
    ) -> np.ndarray:
        """Retrieval tokens (n, k, :data:`TOKEN_WIDTH`) float32 of recipes with raw ``features``.

        ``exclude`` (n,) int: a bank row each recipe must not retrieve (itself; -1: none).
        ``trees_used`` (n, n_trees) bool, forest metric only: the trees each recipe's proximity
        counts (a bank recipe's out-of-bag trees; default all).
        ``groups`` (n,) with ``bank_groups`` (len(bank),): a recipe retrieves no bank row of its
        own group.  Fewer than ``k`` admissible rows is an error (the bank is too small).
        ``aggregate`` (forest metric only) appends one more token, (n, k + 1, ...): the whole
        admissible bank averaged with the forest's weights (per used tree, the recipe's leaf
        shared equally by the bank recipes in it) - outcome, shape distribution, feature
        differences; its distance slot is the nearest's.  Its outcome is what the forest itself
        predicts (bootstrap counts aside), computed without the recipe itself and its group.
        """
        q = self._standardise(features)
        n = len(q)
        k = int(k)
        if aggregate and self.trees is None:
            raise ValueError("the aggregate token needs the forest metric (proximity weights)")
        out = np.zeros((n, k + bool(aggregate), TOKEN_WIDTH), dtype=np.float32)
        bank_sq = (self.features.astype(np.float64) ** 2).sum(1)
        if groups is not None:
            groups, bank_groups = np.asarray(groups, dtype=object), np.asarray(bank_groups, dtype=object)
            if len(groups) != n or len(bank_groups) != len(self):
                raise ValueError(f"{len(groups)} groups for {n} recipes / {len(bank_groups)} for a bank of {len(self)}")
        scale = 1.0 / np.sqrt(q.shape[1])
        if self.trees is not None:
            n_nodes = len(self.trees.feature)
            bank_hot = _one_hot(self.leaves, n_nodes).T.tocsr()
            if aggregate:  # each leaf's bank recipes share its weight, as in the forest's leaf means
                per_leaf = np.bincount(self.leaves.ravel(), minlength=n_nodes).astype(np.float64)
                leaf_share = bank_hot.multiply(1.0 / np.maximum(per_leaf, 1.0)[:, None]).tocsr()
            query_leaves = self.trees.apply(features)
            if trees_used is None:
                trees_used = np.ones(query_leaves.shape, dtype=bool)
            trees_used = np.asarray(trees_used, dtype=bool)
            if trees_used.shape != query_leaves.shape:
                raise ValueError(f"trees_used must be (n, {query_leaves.shape[1]}), got shape {trees_used.shape}")
            if not trees_used.any(axis=1).all():
                raise ValueError("every recipe needs at least one tree to measure its forest proximity")
        elif trees_used is not None:
            raise ValueError("trees_used applies to the forest metric only")
        for start in range(0, n, chunk):
            part = slice(start, min(n, start + chunk))
            qp = q[part].astype(np.float64)
            if self.trees is None:
                dist2 = (qp**2).sum(1)[:, None] + bank_sq[None, :] - 2.0 * qp @ self.features.T.astype(np.float64)
                np.maximum(dist2, 0.0, out=dist2)
            else:  # 1 - share of the (used) trees where the two recipes reach the same leaf
                query_hot = _one_hot(query_leaves[part], n_nodes, trees_used[part])
                shared = (query_hot @ bank_hot).toarray()
                dist2 = 1.0 - shared / trees_used[part].sum(1, keepdims=True)
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
            token = out[part, :k]
            token[:, :, 0] = self.target[idx]
            shape = self.shape_index[idx]
            known = shape >= 0
            rows_, slots = np.nonzero(known)
            token[rows_, slots, 1 + shape[known]] = 1.0
            token[:, :, 1 + len(SHAPE_CLASSES)] = np.sqrt(d) * scale if self.trees is None else d
            diff = qp[:, None, :].astype(np.float32) - self.features[idx]
            columns = np.r_[np.arange(_N_CONDITIONS), np.arange(q.shape[1] - _N_ROLE_COLUMNS, q.shape[1])]
            token[:, :, 2 + len(SHAPE_CLASSES) :] = diff[:, :, columns]
            if aggregate:
                weight = np.where(np.isfinite(dist2), (query_hot @ leaf_share).toarray(), 0.0)
                alone = weight.sum(1) <= 0  # shares no leaf with any admissible recipe: the k nearest alike
                weight[alone] = 0.0
                weight[np.flatnonzero(alone)[:, None], idx[alone]] = 1.0
                weight /= weight.sum(1, keepdims=True)
                summary = out[part, k]
                summary[:, 0] = weight @ self.target.astype(np.float64)
                one_hot = np.zeros((len(self), len(SHAPE_CLASSES)))
                known = self.shape_index >= 0
                one_hot[np.flatnonzero(known), self.shape_index[known]] = 1.0
                summary[:, 1 : 1 + len(SHAPE_CLASSES)] = weight @ one_hot
                summary[:, 1 + len(SHAPE_CLASSES)] = d[:, 0]
                summary[:, 2 + len(SHAPE_CLASSES) :] = qp[:, columns] - weight @ self.features[:, columns].astype(np.float64)
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that rebuild the bank (:meth:`from_state`)."""
        state = {
            "features": self.features * self.std + self.mean,
            "target": self.target,
            "shape_index": self.shape_index,
            "mean": self.mean,
            "std": self.std,
        }
        if self.trees is not None:
            state.update(self.trees.to_npz_dict(_FOREST))
        return state

    @classmethod
    def from_state(cls, state: dict) -> NeighbourBank:
        """Rebuild a bank from :meth:`state` arrays (missing or inconsistent arrays raise ``ValueError``).

        A state without forest arrays (every bank saved before the forest metric) is Euclidean."""
        from .trees import TreeArrays

        try:
            trees = None
            if any(key.startswith(_FOREST) for key in state):
                trees = TreeArrays.from_npz_dict(state, _FOREST, source="neighbour bank")
            return cls(state["features"], state["target"], state["shape_index"], mean=state["mean"], std=state["std"], trees=trees)
        except KeyError as exc:
            raise ValueError(f"neighbour bank array {exc} missing") from None


def check_retrieval_params(model) -> None:
    """Refuse inconsistent retrieval parameters of a ``SynthesisTransformer`` (``ValueError`` naming them)."""
    k, metric = model.retrieval_k, model.retrieval_metric
    if metric not in METRICS:
        raise ValueError(f"retrieval_metric must be one of {METRICS}, got {metric!r}")
    if not 0.0 <= model.retrieval_dropout < 1.0:
        raise ValueError(f"retrieval_dropout must be in [0, 1), got {model.retrieval_dropout!r}")
    if model.retrieval_aggregate and (not k or metric != "forest"):
        raise ValueError("retrieval_aggregate=True needs retrieval tokens with retrieval_metric='forest'")
    residual = model.retrieval_residual
    if not any(residual is mode or (isinstance(mode, str) and residual == mode) for mode in RESIDUAL_MODES):
        raise ValueError(f"retrieval_residual must be one of {RESIDUAL_MODES}, got {residual!r}")
    if residual is not False and not k:
        raise ValueError("retrieval_residual needs retrieval tokens (retrieval_k >= 1)")
    if residual == "aggregate" and not model.retrieval_aggregate:
        raise ValueError("retrieval_residual='aggregate' needs the aggregate token (retrieval_aggregate=True)")
    crossfit = model.retrieval_crossfit
    if not isinstance(crossfit, (int, np.integer)) or isinstance(crossfit, bool) or crossfit < 0 or crossfit == 1:
        raise ValueError(f"retrieval_crossfit must be 0 (off) or a whole number of parts >= 2, got {crossfit!r}")
    if crossfit and (not k or metric != "forest"):
        raise ValueError("retrieval_crossfit needs retrieval tokens with retrieval_metric='forest'")
    forest, max_features = model.retrieval_forest, model.retrieval_max_features
    if forest not in FOREST_KINDS:
        raise ValueError(f"retrieval_forest must be one of {FOREST_KINDS}, got {forest!r}")
    if isinstance(max_features, bool) or not isinstance(max_features, (int, float, np.integer, np.floating)) or not 0 < max_features <= 1:
        raise ValueError(f"retrieval_max_features must be a fraction of the features in (0, 1], got {max_features!r}")
    if (forest != "random" or max_features != 1 / 3) and metric != "forest":
        raise ValueError("retrieval_forest / retrieval_max_features need retrieval_metric='forest'")
    if forest == "extra" and not crossfit:
        raise ValueError("retrieval_forest='extra' has no out-of-bag trees for the training recipes: it needs retrieval_crossfit >= 2")


def crossfit_parts(n: int, n_parts: int, *, groups=None, random_state: int = 0) -> np.ndarray:
    """Part (0 .. n_parts - 1) of each of ``n`` bank recipes: random, about equal sizes; with
    ``groups`` whole groups per part (the largest first, each to the smallest part so far)."""
    if n_parts < 2 or n < 2 * n_parts:
        raise ValueError(f"cross-fitting {n} bank recipes in {n_parts} parts needs n_parts >= 2 and >= 2 recipes per part")
    rng = np.random.default_rng(random_state)
    if groups is None:
        return rng.permutation(n) % n_parts
    groups = np.asarray(groups, dtype=object)
    names, inverse, sizes = np.unique(groups.astype(str), return_inverse=True, return_counts=True)
    if len(names) < n_parts:
        raise ValueError(f"cross-fitting in {n_parts} parts needs at least {n_parts} groups in the bank, got {len(names)}")
    shuffled = rng.permutation(len(names))
    filled = np.zeros(n_parts, dtype=np.int64)
    part_of = np.empty(len(names), dtype=np.int64)
    for g in shuffled[np.argsort(-sizes[shuffled], kind="stable")]:
        part_of[g] = int(np.argmin(filled))
        filled[part_of[g]] += sizes[g]
    return part_of[inverse]


def crossfit_tokens(
    bank: NeighbourBank,
    features,
    target,
    shape_index,
    k: int,
    n_parts: int,
    *,
    groups=None,
    aggregate=False,
    random_state: int = 0,
    forest: dict | None = None,
) -> np.ndarray:
    """Tokens (n, k (+1), :data:`TOKEN_WIDTH`) of the ``bank``'s own recipes, cross-fitted.

    ``features`` (raw), ``target`` and ``shape_index`` are the bank's rows in its order.  Each part
    of :func:`crossfit_parts` retrieves from the other parts with a forest fitted on them only,
    all its trees counted - what a new recipe gets from the whole bank.  Features keep the whole
    bank's standardisation; ``groups`` (one per bank row) put whole groups in one part; ``forest``:
    :func:`fit_proximity_forest` keywords (kind, max_features).
    """
    features = np.asarray(features, dtype=np.float32)
    target = np.asarray(target, dtype=np.float32)
    shape_index = np.asarray(shape_index, dtype=np.int64)
    if not (len(features) == len(target) == len(shape_index) == len(bank)):
        raise ValueError(f"cross-fitting needs the bank's {len(bank)} rows, got {len(features)} / {len(target)} / {len(shape_index)}")
    part = crossfit_parts(len(bank), int(n_parts), groups=groups, random_state=random_state)
    out = np.zeros((len(bank), int(k) + bool(aggregate), TOKEN_WIDTH), dtype=np.float32)
    for j in range(int(n_parts)):
        fit, query = part != j, part == j
        trees, _ = fit_proximity_forest(features[fit], target[fit], random_state=random_state + 1 + j, **(forest or {}))
        others = NeighbourBank(features[fit], target[fit], shape_index[fit], mean=bank.mean, std=bank.std, trees=trees)
        out[query] = others.tokens(features[query], k, aggregate=aggregate, **_group_kwargs(groups, query, fit))
    return out


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
    target = model._target(train_y[rows])
    trees, trees_used = None, None
    if getattr(model, "retrieval_metric", "euclidean") == "forest":
        trees, out_of_bag = fit_proximity_forest(features[rows], target, random_state=model.random_state, **_forest_params(model))
        trees_used = np.ones((len(train_recipes), len(trees.roots)), dtype=bool)
        trees_used[rows] = out_of_bag  # a bank recipe's own label shaped its in-bag trees
        lonely = ~trees_used.any(axis=1)
        trees_used[lonely] = True  # (in every bootstrap: vanishingly rare; all trees then)
    bank = NeighbourBank(features[rows], target, originals.shape_index[rows], trees=trees)
    exclude = np.full(len(train_recipes), -1)
    exclude[rows] = np.arange(len(rows))  # a training recipe never retrieves itself
    bank_groups = None if groups is None else np.asarray(groups, dtype=object)[rows]
    aggregate = bool(getattr(model, "retrieval_aggregate", False))
    crossfit = int(getattr(model, "retrieval_crossfit", 0) or 0)
    if not crossfit:
        originals.neighbours = bank.tokens(
            features, k, exclude=exclude, groups=groups, bank_groups=bank_groups, trees_used=trees_used, aggregate=aggregate
        )
    else:  # bank recipes: cross-fitted tokens; the others (no size, too large) retrieve as a new recipe does
        originals.neighbours = np.zeros((len(train_recipes), k + aggregate, TOKEN_WIDTH), dtype=np.float32)
        rest = np.flatnonzero(~in_bank)
        if len(rest):
            originals.neighbours[rest] = bank.tokens(features[rest], k, aggregate=aggregate, **_group_kwargs(groups, rest, rows))
        originals.neighbours[rows] = crossfit_tokens(
            bank,
            features[rows],
            target,
            originals.shape_index[rows],
            k,
            crossfit,
            groups=bank_groups,
            aggregate=aggregate,
            random_state=model.random_state,
            forest=_forest_params(model),
        )
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
    aggregate = bool(getattr(model, "retrieval_aggregate", False))
    return model.retrieval_.tokens(flat_features(model.encoder_.transform(recipes)), model.retrieval_k, aggregate=aggregate)
