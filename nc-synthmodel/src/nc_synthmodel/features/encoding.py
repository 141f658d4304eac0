"""Recipes as model inputs: token sequences for sequence models (flat vectors: :mod:`.flat`).

(~520 lines: one class, :class:`RecipeEncoder`, with its scaling rules and serialisation.)

:class:`RecipeEncoder` turns recipes into :class:`EncodedRecipes`, a bundle of numpy
arrays.  A recipe becomes ``1 + max_chemicals`` tokens (the product first, then the
reactants in slot order, then padding), each ``[product flag, scaled amount,
descriptor...]`` of length ``2 + dim`` (514 with the Uni-Mol table) - the layout of the
authors' transformer input.  The reaction conditions are a separate ``(n, 4)`` array.

Scaling (learned in :meth:`RecipeEncoder.fit`, a robust scaler: (x - median) / IQR):

* amounts: ``ln(amount_mmol)`` over every reactant amount (placeholders excluded).
  The amounts of ``recipes.csv`` span 3.4e-7 to 5.6e4 mmol.  Robust-scaled raw amounts
  (what the authors' code does) reach 3,766 (99th percentile 32); ``log1p`` maps the
  ~10 % of amounts below 0.1 mmol (dopants: SbAc3 0.0004 vs 0.0017 mmol) onto almost the
  same value; ``ln`` keeps ratios and lands in about -4.5 .. 2.8 (1st-99th percentile
  -1.8 .. 1.4).  ``amount_transform`` selects ``"log"`` (default), ``"log1p"`` or
  ``"none"``;
* conditions, in the order of :data:`CONDITION_NAMES`: injection and reaction
  temperature (deg C) as they are, reaction time and heating rate as ``log1p`` (time spans
  0.0167 .. 14,400 min: raw robust values would reach 252, log1p ones 2.4).  76 % of
  the heating rates are 0 (hot injection), so their IQR is 0 and the scale falls back
  to 1 (scikit-learn's convention): the feature is ``log1p(rate)``.

Products missing from the descriptor table (15 names, 17 recipes of ``recipes.csv``) are
an error unless the table has a fallback or ``unknown_product="zeros"``: the authors'
code replaces a name missing from its feature file by ``PlaceHolder``, whose Uni-Mol
descriptor is the zero vector, so ``"zeros"`` reproduces the paper.  An unknown
*reactant* is always an error.

The product token carries flag 1 and amount 0 (a product has no amount).  ``mask`` is
True for real tokens; PyTorch's ``src_key_padding_mask`` wants the opposite (``~mask``).

:func:`~nc_synthmodel.features.flat.flat_features` (:mod:`.flat`) is the one fixed-length view used by every
non-sequence baseline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..contract import ROLES, SHAPE_CLASSES, Recipe
from ..descriptors import DescriptorTable, UnknownChemicalError
from ..files import atomic_write_bytes
from ..io import GU_SLOTS

__all__ = [
    "CONDITION_NAMES",
    "EncodedRecipes",
    "RecipeEncoder",
    "UnknownProductError",
]

logger = logging.getLogger(__name__)

#: Column order of :attr:`EncodedRecipes.conditions`.
CONDITION_NAMES: tuple[str, ...] = ("injection_temp_c", "reaction_temp_c", "time_min", "heating_rate_c_per_min")
_LOG1P_CONDITIONS = (False, False, True, True)

#: Number of leading token features before the descriptor: product flag, scaled amount.
TOKEN_PREFIX = 2

_REACTANT_ROLES = tuple(r for r in ROLES if r != "product")
_ROLE_INDEX = {role: i for i, role in enumerate(ROLES)}
_SCALERS = ("robust", "standard", "none")
_AMOUNT_TRANSFORMS = ("log", "log1p", "none")
_UNKNOWN_PRODUCT = ("raise", "zeros")
_FORMAT = "nc-synthmodel.RecipeEncoder"
_FORMAT_VERSION = 1
# ln of an amount is taken of at least this (mmol): a zero amount stays finite
_AMOUNT_FLOOR_MMOL = 1e-12


class UnknownProductError(UnknownChemicalError):
    """Products without a descriptor; ``names`` lists them."""

    def __str__(self) -> str:
        return super().__str__() + ' Or encode them as the zero vector, as the authors did: RecipeEncoder(..., unknown_product="zeros").'


@dataclass
class EncodedRecipes:
    """Recipes as arrays; row ``i`` is recipe ``i``, token 0 is the product.

    Attributes
    ----------
    tokens : float32 (n, 1 + max_chemicals, 2 + dim)
        ``[product flag, scaled amount, descriptor]`` per token; padding is all zero.
    mask : bool (n, 1 + max_chemicals)
        True for real tokens (product and reactants), False for padding.
    conditions : float32 (n, 4)
        Scaled conditions, columns :data:`CONDITION_NAMES`.
    size_nm, size_dispersion_pct : float64 (n,)
        Targets; NaN when unknown.
    n_particles, shape_index : int64 (n,)
        Particles measured and shape class index (into ``SHAPE_CLASSES``); -1 unknown.
    success : int8 (n,)
        1 for a successful synthesis, 0 for a failed one, -1 for a recipe without outcome.
    ids : str (n,)
        Recipe IDs.
    names : str (n, 1 + max_chemicals)
        Chemical name of each token ("" for padding).
    role_index : int8 (n, 1 + max_chemicals)
        Index of each token's role in ``contract.ROLES`` (0 = product); -1 for padding.
    amount_mmol : float64 (n, 1 + max_chemicals)
        Unscaled amounts (0 for the product token and padding).
    flat_basis : tuple (mean (dim,), components (k, dim)) or None
        Descriptor projection learned by the encoder, used by :func:`flat_features`.
    """

    tokens: np.ndarray
    mask: np.ndarray
    conditions: np.ndarray
    size_nm: np.ndarray
    size_dispersion_pct: np.ndarray
    n_particles: np.ndarray
    shape_index: np.ndarray
    success: np.ndarray
    ids: np.ndarray
    names: np.ndarray
    role_index: np.ndarray
    amount_mmol: np.ndarray
    flat_basis: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> EncodedRecipes:
        """The rows ``index`` (integer indices, a boolean mask or a slice)."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value if f.name == "flat_basis" else value[index]
        return EncodedRecipes(**values)


class RecipeEncoder:
    """Encode recipes as token sequences and scaled conditions (see the module docstring).

    Parameters
    ----------
    descriptors : DescriptorTable
        Descriptor of every chemical and product name.
    max_chemicals : int
        Reactant slots per recipe (13, the slots A..M of the Gu et al. CSV).
    amount_scaler, conditions_scaler : {"robust", "standard", "none"}
        Scaling of the (transformed) amounts and conditions.
    amount_transform : {"log", "log1p", "none"}
        Applied to amounts (mmol) before scaling.
    unknown_product : {"raise", "zeros"}
        What to do with a product that neither the table nor its fallback knows.
    n_flat_components : int or None
        Dimension of the PCA of descriptors used by :func:`flat_features`; None keeps
        the full descriptors.
    random_state : int
        Seed of the PCA solver.

    Attributes
    ----------
    amount_center_, amount_scale_ : float
    conditions_center_, conditions_scale_ : ndarray (4,)
    flat_mean_ : ndarray (dim,) or None
    flat_components_ : ndarray (k, dim) or None
    descriptor_fingerprint_ : str
        Hash of the table's names and vectors, checked by :meth:`from_dict`.

    Examples
    --------
    >>> encoder = RecipeEncoder(table).fit(train_recipes)  # doctest: +SKIP
    >>> encoded = encoder.transform(test_recipes)  # doctest: +SKIP
    >>> encoded.tokens.shape  # doctest: +SKIP
    (n, 14, 514)
    """

    def __init__(
        self,
        descriptors: DescriptorTable,
        max_chemicals: int = len(GU_SLOTS),
        amount_scaler: str = "robust",
        amount_transform: str = "log",
        conditions_scaler: str = "robust",
        unknown_product: str = "raise",
        n_flat_components: int | None = 32,
        random_state: int = 0,
    ):
        self.descriptors = descriptors
        self.max_chemicals = max_chemicals
        self.amount_scaler = amount_scaler
        self.amount_transform = amount_transform
        self.conditions_scaler = conditions_scaler
        self.unknown_product = unknown_product
        self.n_flat_components = n_flat_components
        self.random_state = random_state

    # ------------------------------------------------------------------ public

    @property
    def token_dim(self) -> int:
        """Features per token: ``2 + descriptors.dim``."""
        return TOKEN_PREFIX + self.descriptors.dim

    @property
    def n_tokens(self) -> int:
        """Tokens per recipe: ``1 + max_chemicals``."""
        return 1 + self.max_chemicals

    def fit(self, recipes: Sequence[Recipe], y=None) -> RecipeEncoder:
        """Learn the scalers (and the descriptor PCA) from ``recipes``; returns self."""
        self._check_params()
        recipes = _as_recipes(recipes)
        if not recipes:
            raise ValueError("cannot fit a RecipeEncoder on no recipes")
        self._check_sizes(recipes)
        vocabulary = self._vocabulary(recipes)  # raises for unknown names
        amounts = np.array([c.amount_mmol for r in recipes for c in r.chemicals], dtype=float)
        if amounts.size == 0:
            raise ValueError("the recipes hold no reactants to learn the amount scale from")
        self.amount_center_, self.amount_scale_ = (
            float(v[0]) for v in _fit_scaler(self.amount_scaler, self._amount_values(amounts)[:, None])
        )
        center, scale = _fit_scaler(self.conditions_scaler, self._condition_values(recipes))
        self.conditions_center_, self.conditions_scale_ = center, scale
        self.flat_mean_, self.flat_components_ = self._fit_flat_basis(vocabulary)
        self.descriptor_fingerprint_ = _fingerprint(self.descriptors)
        logger.info(
            "fitted RecipeEncoder on %d recipes (%d names; amount center %.3g scale %.3g)",
            len(recipes),
            len(vocabulary),
            self.amount_center_,
            self.amount_scale_,
        )
        return self

    def transform(self, recipes: Sequence[Recipe]) -> EncodedRecipes:
        """Encode ``recipes`` (see :class:`EncodedRecipes`)."""
        self._check_fitted()
        recipes = _as_recipes(recipes)
        self._check_sizes(recipes)
        n, n_tokens, dim = len(recipes), self.n_tokens, self.descriptors.dim
        names = np.full((n, n_tokens), "", dtype=object)
        role_index = np.full((n, n_tokens), -1, dtype=np.int8)
        amount_mmol = np.zeros((n, n_tokens), dtype=float)
        for i, recipe in enumerate(recipes):
            names[i, 0] = recipe.product.name if recipe.product is not None else ""
            role_index[i, 0] = _ROLE_INDEX["product"]
            for j, chemical in enumerate(recipe.chemicals, start=1):
                names[i, j] = chemical.name
                role_index[i, j] = _ROLE_INDEX[chemical.role]
                amount_mmol[i, j] = chemical.amount_mmol
        mask = role_index >= 0

        tokens = np.zeros((n, n_tokens, TOKEN_PREFIX + dim), dtype=np.float32)
        tokens[:, 0, TOKEN_PREFIX:] = self._product_vectors(names[:, 0])
        reactant = mask.copy()
        reactant[:, 0] = False
        reactant_names = names[reactant]
        unique = list(dict.fromkeys(reactant_names))
        code_of = {name: i for i, name in enumerate(unique)}
        vectors = self.descriptors.lookup(unique)  # raises UnknownChemicalError listing every unknown reactant
        tokens[reactant, TOKEN_PREFIX:] = vectors[[code_of[name] for name in reactant_names]]
        tokens[:, 0, 0] = 1.0
        tokens[reactant, 1] = (self._amount_values(amount_mmol[reactant]) - self.amount_center_) / self.amount_scale_

        conditions = ((self._condition_values(recipes) - self.conditions_center_) / self.conditions_scale_).astype(np.float32)
        targets = _targets(recipes)
        basis = None if self.flat_components_ is None else (self.flat_mean_, self.flat_components_)
        return EncodedRecipes(
            tokens=tokens,
            mask=mask,
            conditions=conditions,
            names=names.astype(str),
            role_index=role_index,
            amount_mmol=amount_mmol,
            flat_basis=basis,
            **targets,
        )

    def fit_transform(self, recipes: Sequence[Recipe], y=None) -> EncodedRecipes:
        """:meth:`fit`, then :meth:`transform` the same recipes."""
        return self.fit(recipes).transform(recipes)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        """Parameters and learned scaling as plain JSON types (the table is not included)."""
        self._check_fitted()
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "params": {
                "max_chemicals": self.max_chemicals,
                "amount_scaler": self.amount_scaler,
                "amount_transform": self.amount_transform,
                "conditions_scaler": self.conditions_scaler,
                "unknown_product": self.unknown_product,
                "n_flat_components": self.n_flat_components,
                "random_state": self.random_state,
            },
            "descriptor_dim": self.descriptors.dim,
            "descriptor_fingerprint": self.descriptor_fingerprint_,
            "condition_names": list(CONDITION_NAMES),
            "amount_center": self.amount_center_,
            "amount_scale": self.amount_scale_,
            "conditions_center": self.conditions_center_.tolist(),
            "conditions_scale": self.conditions_scale_.tolist(),
            "flat_mean": None if self.flat_mean_ is None else self.flat_mean_.tolist(),
            "flat_components": None if self.flat_components_ is None else self.flat_components_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, descriptors: DescriptorTable) -> RecipeEncoder:
        """A fitted encoder from :meth:`to_dict` output and the same descriptor table.

        Raises ``ValueError`` when the document is not an encoder or the table's
        dimension differs; a different table of the same dimension is logged as a warning.
        """
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f'not a RecipeEncoder document (expected "format": {_FORMAT!r})')
        if data.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"RecipeEncoder format_version {data.get('format_version')!r} is not supported ({_FORMAT_VERSION})")
        if data["descriptor_dim"] != descriptors.dim:
            raise ValueError(
                f"the encoder was fitted with descriptors of dimension {data['descriptor_dim']}, "
                f"the given table has dimension {descriptors.dim}"
            )
        if list(data["condition_names"]) != list(CONDITION_NAMES):
            raise ValueError(f"condition columns {data['condition_names']} differ from {list(CONDITION_NAMES)}")
        encoder = cls(descriptors, **data["params"])
        encoder._check_params()
        encoder.amount_center_ = float(data["amount_center"])
        encoder.amount_scale_ = float(data["amount_scale"])
        encoder.conditions_center_ = np.asarray(data["conditions_center"], dtype=float)
        encoder.conditions_scale_ = np.asarray(data["conditions_scale"], dtype=float)
        flat_mean, flat_components = data["flat_mean"], data["flat_components"]
        encoder.flat_mean_ = None if flat_mean is None else np.asarray(flat_mean, dtype=float)
        encoder.flat_components_ = None if flat_components is None else np.asarray(flat_components, dtype=float)
        encoder.descriptor_fingerprint_ = data["descriptor_fingerprint"]
        if _fingerprint(descriptors) != encoder.descriptor_fingerprint_:
            logger.warning("the descriptor table differs from the one the encoder was fitted with")
        return encoder

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        path = Path(path)
        atomic_write_bytes(path, (json.dumps(self.to_dict()) + "\n").encode("utf-8"))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, descriptors: DescriptorTable) -> RecipeEncoder:
        """Read an encoder written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, descriptors)

    # ------------------------------------------------------------------ internals

    def _check_params(self) -> None:
        if not isinstance(self.descriptors, DescriptorTable):
            raise TypeError(f"descriptors must be a DescriptorTable, got {type(self.descriptors).__name__}")
        if not isinstance(self.max_chemicals, (int, np.integer)) or isinstance(self.max_chemicals, bool) or self.max_chemicals < 1:
            raise ValueError(f"max_chemicals must be a positive integer, got {self.max_chemicals!r}")
        for name, allowed in (
            ("amount_scaler", _SCALERS),
            ("conditions_scaler", _SCALERS),
            ("amount_transform", _AMOUNT_TRANSFORMS),
            ("unknown_product", _UNKNOWN_PRODUCT),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        k = self.n_flat_components
        if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1):
            raise ValueError(f"n_flat_components must be a positive integer or None, got {k!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "amount_scale_"):
            raise RuntimeError("this RecipeEncoder is not fitted yet; call fit(recipes) first")

    def _check_sizes(self, recipes: list[Recipe]) -> None:
        too_long = [r.id for r in recipes if len(r.chemicals) > self.max_chemicals]
        if too_long:
            shown = ", ".join(too_long[:10]) + (" …" if len(too_long) > 10 else "")
            raise ValueError(f"{len(too_long)} recipe(s) have more than max_chemicals={self.max_chemicals} chemicals: {shown}")

    def _amount_values(self, amounts: np.ndarray) -> np.ndarray:
        amounts = np.asarray(amounts, dtype=float)
        if self.amount_transform == "log":
            return np.log(np.maximum(amounts, _AMOUNT_FLOOR_MMOL))
        if self.amount_transform == "log1p":
            return np.log1p(amounts)
        return amounts

    @staticmethod
    def _condition_values(recipes: list[Recipe]) -> np.ndarray:
        values = np.array([[getattr(r.conditions, name) for name in CONDITION_NAMES] for r in recipes], dtype=float).reshape(
            len(recipes), len(CONDITION_NAMES)
        )
        for column, use_log in enumerate(_LOG1P_CONDITIONS):
            if use_log:
                values[:, column] = np.log1p(values[:, column])
        return values

    def _vocabulary(self, recipes: list[Recipe]) -> list[str]:
        """Names of the fit recipes that have a descriptor; raises for unknown ones."""
        reactants = list(dict.fromkeys(c.name for r in recipes for c in r.chemicals))
        self.descriptors.lookup(reactants)  # raises UnknownChemicalError listing every unknown reactant
        products = list(dict.fromkeys(r.product.name for r in recipes if r.product is not None))
        self._product_vectors(np.array(products, dtype=object))  # raises for unknown products
        return list(dict.fromkeys(reactants + [p for p in products if self._has_descriptor(p)]))

    def _has_descriptor(self, name: str) -> bool:
        return name in self.descriptors or self.descriptors.fallback is not None

    def _product_vectors(self, products: np.ndarray) -> np.ndarray:
        """Descriptors of product names, (n, dim) float32.

        The empty name (a recipe without a product) and, under
        ``unknown_product="zeros"``, products without a descriptor get the zero vector.
        """
        unique = list(dict.fromkeys(products.tolist()))
        missing = sorted(n for n in unique if n and not self._has_descriptor(n))
        if missing and self.unknown_product == "raise":
            raise UnknownProductError(missing, self.descriptors.source)
        if missing:  # asked for: unknown_product="zeros"
            logger.info(
                "%d product(s) without a descriptor are encoded as the zero vector: %s",
                len(missing),
                ", ".join(missing),
            )
        zero = set(missing) | {""}
        known = [n for n in unique if n not in zero]
        vectors = np.zeros((len(known) + 1, self.descriptors.dim), dtype=np.float32)
        vectors[: len(known)] = self.descriptors.lookup(known)
        code_of = {name: i for i, name in enumerate(known)}
        return vectors[[code_of.get(name, len(known)) for name in products.tolist()]]

    def _fit_flat_basis(self, vocabulary: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.n_flat_components is None:
            return None, None
        from sklearn.decomposition import PCA
        from threadpoolctl import threadpool_limits

        matrix = self.descriptors.lookup(vocabulary).astype(float)
        k = int(min(self.n_flat_components, matrix.shape[0], matrix.shape[1]))
        # a ~1000 x 512 SVD: one BLAS thread is fastest and immune to oversubscribed cores
        with threadpool_limits(limits=1, user_api="blas"):
            pca = PCA(n_components=k, svd_solver="full", random_state=self.random_state).fit(matrix)
        logger.debug("descriptor PCA: %d components explain %.1f %%", k, 100 * pca.explained_variance_ratio_.sum())
        return pca.mean_.copy(), pca.components_.copy()


# ---------------------------------------------------------------------- helpers


def _as_recipes(recipes) -> list[Recipe]:
    recipes = list(getattr(recipes, "recipes", recipes))
    bad = [type(r).__name__ for r in recipes if not isinstance(r, Recipe)]
    if bad:
        raise TypeError(f"expected Recipe objects, got {bad[0]}")
    return recipes


def _fit_scaler(kind: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale of the columns of ``values`` (n, d) for a scaler kind."""
    if kind == "none":
        d = values.shape[1]
        return np.zeros(d), np.ones(d)
    from sklearn.preprocessing import RobustScaler, StandardScaler

    scaler = RobustScaler() if kind == "robust" else StandardScaler()
    scaler.fit(values)
    center = np.asarray(scaler.center_ if kind == "robust" else scaler.mean_, dtype=float)
    scale = np.asarray(scaler.scale_, dtype=float)  # 1 where the spread is 0
    return center, scale


def _targets(recipes: list[Recipe]) -> dict[str, np.ndarray]:
    n = len(recipes)
    size = np.full(n, np.nan)
    dispersion = np.full(n, np.nan)
    count = np.full(n, -1, dtype=np.int64)
    shape = np.full(n, -1, dtype=np.int64)
    success = np.full(n, -1, dtype=np.int8)
    for i, recipe in enumerate(recipes):
        outcome = recipe.outcome
        if outcome is None:
            continue
        success[i] = int(outcome.success)
        if outcome.size_nm is not None:
            size[i] = outcome.size_nm
        if outcome.size_dispersion_pct is not None:
            dispersion[i] = outcome.size_dispersion_pct
        if outcome.n_particles is not None:
            count[i] = outcome.n_particles
        if outcome.shape is not None:
            shape[i] = SHAPE_CLASSES.index(outcome.shape)
    return {
        "size_nm": size,
        "size_dispersion_pct": dispersion,
        "n_particles": count,
        "shape_index": shape,
        "success": success,
        "ids": np.array([r.id for r in recipes], dtype=str),
    }


def _fingerprint(table: DescriptorTable) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(table.names).encode("utf-8"))
    digest.update(np.ascontiguousarray(table.lookup(list(table.names))).tobytes())
    return digest.hexdigest()[:16]
