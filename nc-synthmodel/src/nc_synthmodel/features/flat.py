"""Fixed-length recipe features for trees and MLPs: :func:`flat_features` of :class:`~.encoding.EncodedRecipes`."""

from __future__ import annotations

import numpy as np

from .encoding import _REACTANT_ROLES, _ROLE_INDEX, CONDITION_NAMES, TOKEN_PREFIX, EncodedRecipes

__all__ = ["flat_feature_names", "flat_features"]


def flat_features(encoded: EncodedRecipes) -> np.ndarray:
    """Fixed-length features of encoded recipes for tree / MLP baselines.

    Columns (see :func:`flat_feature_names`), with descriptors projected by
    ``encoded.flat_basis`` (k PCA components) when the encoder learned one:

    * the 4 scaled conditions;
    * the product descriptor (k);
    * the amount-weighted mean descriptor of the reactants, weights = mole fractions (k);
    * the unweighted mean descriptor of the reactants, so that minor components count (k);
    * per reactant role (precursor, ligand, solvent, other): ``log1p`` of the total
      amount (mmol) and the number of chemicals (8);
    * the number of reactants (1).

    Returns
    -------
    ndarray float64 (n, 4 + 3k + 9)
    """
    tokens = encoded.tokens
    raw = tokens[:, :, TOKEN_PREFIX:]
    if encoded.flat_basis is not None:
        mean, components = encoded.flat_basis
        components = np.asarray(components, dtype=np.float32)
        offset = np.asarray(mean, dtype=np.float32) @ components.T
        descriptors = (raw @ components.T - offset).astype(float)
        # padding and zero-vector (unknown) products stay exactly zero
        descriptors[~encoded.mask] = 0.0
        descriptors[~raw[:, 0].any(axis=1), 0] = 0.0
    else:
        descriptors = raw.astype(float)
    reactant = encoded.mask.copy()
    reactant[:, 0] = False
    n_reactants = reactant.sum(axis=1)
    amounts = np.where(reactant, encoded.amount_mmol, 0.0)
    total = amounts.sum(axis=1, keepdims=True)
    weights = np.divide(amounts, total, out=np.zeros_like(amounts), where=total > 0)
    weighted = np.einsum("nt,ntd->nd", weights, descriptors)
    plain = np.einsum("nt,ntd->nd", reactant.astype(float), descriptors) / np.maximum(n_reactants, 1)[:, None]
    role_columns = []
    for role in _REACTANT_ROLES:
        is_role = reactant & (encoded.role_index == _ROLE_INDEX[role])
        role_columns.append(np.log1p(np.where(is_role, encoded.amount_mmol, 0.0).sum(axis=1)))
        role_columns.append(is_role.sum(axis=1).astype(float))
    return np.concatenate(
        [
            encoded.conditions.astype(float),
            descriptors[:, 0],
            weighted,
            plain,
            np.stack(role_columns, axis=1),
            n_reactants[:, None].astype(float),
        ],
        axis=1,
    )


def flat_feature_names(encoded: EncodedRecipes) -> list[str]:
    """Column names of :func:`flat_features` for ``encoded``."""
    k = encoded.flat_basis[1].shape[0] if encoded.flat_basis is not None else encoded.tokens.shape[2] - TOKEN_PREFIX
    names = list(CONDITION_NAMES)
    for block in ("product", "reactants_weighted", "reactants_mean"):
        names += [f"{block}_{i}" for i in range(k)]
    for role in _REACTANT_ROLES:
        names += [f"{role}_log1p_mmol", f"{role}_count"]
    names.append("n_reactants")
    return names
