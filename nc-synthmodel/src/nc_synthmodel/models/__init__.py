"""Size, shape and success models: the synthesis transformer, the baselines, a registry.

Modules: :mod:`.network` (the transformer network), :mod:`.trainer` (its training loop),
:mod:`.transformer` (the scikit-learn estimator :class:`SynthesisTransformer`),
:mod:`.persistence` (save/load without pickle), :mod:`.baselines` (trees, MLP, LSTM on the same
recipes), :mod:`.forest` (:class:`SynthesisForest`: size, shape and success from tree ensembles),
:mod:`.trees` (fitted trees as arrays: saved without pickle, predicted with numpy), :mod:`.threads`
(torch thread count while fitting).  :func:`make_model` builds a size model by name;
:func:`load_model` loads a saved model of either kind; :func:`default_model` loads the one shipped
in the package (a :class:`SynthesisForest`, see its model card).  torch is
imported only when a network is built or run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..descriptors import DescriptorTable
from .forest import FOREST_FORMAT, SynthesisForest
from .persistence import MODEL_BOUNDS, ModelFormatError
from .threads import torch_threads
from .trainer import _Batches, _Compact
from .transformer import SynthesisTransformer

__all__ = [
    "DEFAULT_MODEL_DIR",
    "MODEL_BOUNDS",
    "ModelFormatError",
    "SynthesisForest",
    "SynthesisTransformer",
    "TRANSFORMER_PRESETS",
    "default_model",
    "load_model",
    "make_model",
    "model_names",
    "torch_threads",
]
_PRIVATE_REEXPORTS = (_Batches, _Compact)  # tests reach these through nc_synthmodel.models

#: Where the shipped default model lives (inside the installed package).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "default_model"
_CONFIG = "model.json"


def load_model(directory, descriptors: DescriptorTable | None = None, *, fallback=None):
    """A saved model of either kind (:class:`SynthesisForest` or :class:`SynthesisTransformer`), by its ``model.json``.

    ``descriptors`` / ``fallback`` as in the classes' ``load``.  Nothing is unpickled.
    """
    import json

    config_path = Path(directory) / _CONFIG
    kind = None
    if config_path.is_file():
        try:
            kind = json.loads(config_path.read_text(encoding="utf-8")).get("format")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            kind = None  # the transformer's loader names the problem
    loader = SynthesisForest if kind == FOREST_FORMAT else SynthesisTransformer
    return loader.load(directory, descriptors, fallback=fallback)


def default_model():
    """The model shipped in the package (see its model card, ``data/default_model/README.md``).

    Chemicals outside its saved descriptor vocabulary get descriptors computed from structure
    when the ``[chem]`` extra is installed.
    """
    if not (DEFAULT_MODEL_DIR / _CONFIG).is_file():
        raise FileNotFoundError(
            f"no default model is installed at {DEFAULT_MODEL_DIR}; train one with `nc-synthmodel train` "
            "and load it with nc_synthmodel.models.load_model(directory)"
        )
    fallback = None
    try:  # chemicals outside the saved vocabulary: computed from structure (needs the [chem] extra)
        from ..computed import ComputedDescriptors

        fallback = ComputedDescriptors().fit().descriptor
    except ImportError:
        pass
    return load_model(DEFAULT_MODEL_DIR, fallback=fallback)


# ---------------------------------------------------------------------- registry

#: Transformer presets: the paper's architecture, and the same without augmentation.
TRANSFORMER_PRESETS: dict[str, dict[str, Any]] = {
    "transformer": {},
    "transformer-noaug": {"augment": False},
}


def make_model(name: str, descriptors: DescriptorTable, **params) -> Any:
    """An unfitted size model by name: a transformer preset or a baseline (DT, RF, GB, DNN, LSTM)."""
    from .baselines import BASELINES

    if name in TRANSFORMER_PRESETS:
        return SynthesisTransformer(descriptors, **{**TRANSFORMER_PRESETS[name], **params})
    if name in BASELINES:
        return BASELINES[name](descriptors, **params)
    raise ValueError(f"unknown model {name!r}; choose from {sorted(TRANSFORMER_PRESETS) + sorted(BASELINES)}")


def model_names() -> list[str]:
    """Names accepted by :func:`make_model`."""
    from .baselines import BASELINES

    return list(TRANSFORMER_PRESETS) + list(BASELINES)
