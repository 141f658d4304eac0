"""Recipes as model inputs: token sequences (:mod:`.encoding`), flat vectors (:mod:`.flat`), augmentation.

:class:`RecipeEncoder` turns recipes into arrays (tokens, mask, scaled conditions, targets);
:func:`flat_features` is the fixed-length view of the tree and MLP baselines;
:class:`IntermediateAugmenter` makes reaction-intermediate copies of recipes for pretraining.
"""

from .augment import IntermediateAugmenter
from .encoding import CONDITION_NAMES, TOKEN_PREFIX, EncodedRecipes, RecipeEncoder, UnknownProductError
from .flat import flat_feature_names, flat_features

__all__ = [
    "CONDITION_NAMES",
    "TOKEN_PREFIX",
    "EncodedRecipes",
    "IntermediateAugmenter",
    "RecipeEncoder",
    "UnknownProductError",
    "flat_feature_names",
    "flat_features",
]
