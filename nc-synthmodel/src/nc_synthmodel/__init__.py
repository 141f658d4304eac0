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
from .features.augment import IntermediateAugmenter
from .dataset import summarize
from .descriptors import DescriptorTable, UnknownChemicalError
from .io import RecipeSet, append_recipes, read_recipes, read_roles, write_recipes

__version__ = "0.1.0"

# heavy modules (torch, RDKit) load on first use: name -> module
_LAZY = {
    "SynthesisTransformer": "models",
    "SynthesisForest": "models",
    "load_model": "models",
    "make_model": "models",
    "model_names": "models",
    "default_model": "models",
    "ModelFormatError": "models",
    "ComputedDescriptors": "computed",
    "UniMolDescriptors": "computed",
    "Structure": "computed",
    "read_structures": "computed",
    "UnknownStructureError": "computed",
}

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
__all__ += sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
