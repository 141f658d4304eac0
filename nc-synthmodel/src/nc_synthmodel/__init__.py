"""nc-synthmodel: learn which colloidal nanocrystal synthesis gives which size and shape."""

from .contract import (
    SCHEMA_VERSION,
    SHAPE_CLASSES,
    Chemical,
    Conditions,
    Outcome,
    Provenance,
    Recipe,
    RecipeValidationError,
    outcome_from_particles,
)
from .augment import IntermediateAugmenter
from .dataset import summarize
from .descriptors import DescriptorTable, UnknownChemicalError
from .io import RecipeSet, append_recipes, read_recipes, read_roles, write_recipes

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "SHAPE_CLASSES",
    "Chemical",
    "Conditions",
    "Outcome",
    "Provenance",
    "Recipe",
    "RecipeValidationError",
    "RecipeSet",
    "outcome_from_particles",
    "read_recipes",
    "read_roles",
    "write_recipes",
    "append_recipes",
    "summarize",
    "DescriptorTable",
    "UnknownChemicalError",
    "IntermediateAugmenter",
]
