"""Moved to :mod:`nc_synthmodel.features.encoding` (and :mod:`~nc_synthmodel.features.flat`); names stay importable."""

from .features.encoding import (  # noqa: F401 - private names used by callers of the old module
    _AMOUNT_FLOOR_MMOL,
    _FORMAT,
    _FORMAT_VERSION,
    CONDITION_NAMES,
    TOKEN_PREFIX,
    EncodedRecipes,
    RecipeEncoder,
    UnknownProductError,
    _fingerprint,
    _fit_scaler,
    _targets,
)
from .features.flat import flat_feature_names, flat_features

__all__ = ["CONDITION_NAMES", "EncodedRecipes", "RecipeEncoder", "UnknownProductError", "flat_features", "flat_feature_names"]
