"""Saving and loading a :class:`~nc_synthmodel.models.SynthesisTransformer` - no pickle.

A model is a directory: ``weights.safetensors`` (the state dict, and with retrieval tokens the
neighbour bank's arrays under ``retrieval.``), ``model.json`` (parameters,
encoder and target scaling, training history) and ``descriptors.npz`` (the descriptor table it
was trained with, names + vectors, read with ``allow_pickle=False``).  :data:`MODEL_BOUNDS`
refuses absurd saved configurations before anything is built.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..contract import SHAPE_CLASSES
from ..descriptors import DescriptorTable
from ..features.encoding import RecipeEncoder
from ..files import atomic_write_bytes
from .network import build_network
from .retrieval import TOKEN_WIDTH, NeighbourBank

_FORMAT = "nc-synthmodel.SynthesisTransformer"
_FORMAT_VERSION = 1
_WEIGHTS = "weights.safetensors"
_CONFIG = "model.json"
_DESCRIPTORS = "descriptors.npz"
#: Parameters added after models were first saved, with the value those models used.
_LEGACY_PARAMS = {
    "condition_tokens": False,
    "target_scale": "log",
    "ema_decay": None,
    "schedule": "cosine",
    "lr_scaling": "none",
    "precision": "fp32",
    "fused_optimizer": False,
    "retrieval_k": 0,
    "retrieval_metric": "euclidean",
    "retrieval_aggregate": False,
    "retrieval_dropout": 0.0,
    "retrieval_residual": False,
}
#: Prefix of the neighbour bank's arrays in ``weights.safetensors``.
_BANK = "retrieval."


class ModelFormatError(ValueError):
    """A model directory is missing files or holds something that is not a saved model."""


#: Upper bounds of a saved model's network size, checked by :meth:`SynthesisTransformer.load`
#: before anything is built (the shipped model: d_model 128, 4 layers, 4 heads, feed-forward 256).
MODEL_BOUNDS = {"d_model": 4096, "n_layers": 64, "n_heads": 64, "dim_feedforward": 16384, "parameters": 200_000_000, "retrieval_k": 1024}


def read_model_config(config_path: Path, model_format: str, format_version: int) -> dict:
    """The JSON config of a saved model, checked: its format, version and shape classes.

    Raises :class:`ModelFormatError` naming the file and what is wrong.
    """
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != model_format:
        raise ModelFormatError(f"{config_path}: not a {model_format} file")
    if config.get("format_version") != format_version:
        raise ModelFormatError(f"{config_path}: format version {config.get('format_version')!r}, this library reads {format_version}")
    if config.get("shape_classes") != list(SHAPE_CLASSES):
        raise ModelFormatError(f"{config_path}: trained with other shape classes {config.get('shape_classes')}")
    return config


def _check_saved_params(config_path: Path, params) -> dict:
    """The ``params`` of a saved config, refused (naming the file) if absurd or of the wrong type."""
    if not isinstance(params, dict):
        raise ModelFormatError(f'{config_path}: "params" must be an object, not {type(params).__name__}')
    for name in ("d_model", "n_layers", "n_heads", "dim_feedforward"):
        value = params.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MODEL_BOUNDS[name]:
            raise ModelFormatError(f"{config_path}: params.{name} = {value!r}; expected a whole number 1..{MODEL_BOUNDS[name]:,}")
    k = params.get("retrieval_k", 0)
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MODEL_BOUNDS["retrieval_k"]:
        raise ModelFormatError(f"{config_path}: params.retrieval_k = {k!r}; expected a whole number 0..{MODEL_BOUNDS['retrieval_k']}")
    d, layers, ff = params["d_model"], params["n_layers"], params["dim_feedforward"]
    n_parameters = layers * (4 * d * d + 2 * d * ff)
    if n_parameters > MODEL_BOUNDS["parameters"]:
        raise ModelFormatError(
            f"{config_path}: the configured network has ~{n_parameters:,} parameters (d_model {d}, {layers} layers, "
            f"feed-forward {ff}); at most {MODEL_BOUNDS['parameters']:,}"
        )
    if d % params["n_heads"]:
        raise ModelFormatError(f"{config_path}: params.d_model ({d}) is not divisible by params.n_heads ({params['n_heads']})")
    return params


def save_transformer(model, directory: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write ``weights.safetensors`` and ``model.json`` into ``directory`` (atomically each)."""
    from safetensors.torch import save as save_tensors

    check_is_fitted(model, "net_")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    import torch

    state = {k: v.detach().cpu().contiguous() for k, v in model.net_.state_dict().items()}
    if getattr(model, "retrieval_", None) is not None:
        state.update({_BANK + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.retrieval_.state().items()})
    config = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "params": {k: getattr(model, k) for k in model._SAVED_PARAMS},
        "encoder": model.encoder_.to_dict(),
        "target_mean": model.target_mean_,
        "target_std": model.target_std_,
        "has_success": model.has_success_,
        "shape_classes": list(SHAPE_CLASSES),
        "history": model.history_,
        "best_epoch": model.best_epoch_,
        "metadata": metadata or {},
    }
    table = io.BytesIO()
    np.savez(table, names=np.array(model.descriptors.names, dtype=str), descriptors=model.descriptors.lookup(list(model.descriptors.names)))
    atomic_write_bytes(directory / _DESCRIPTORS, table.getvalue())
    atomic_write_bytes(directory / _WEIGHTS, save_tensors(state))
    atomic_write_bytes(directory / _CONFIG, json.dumps(config, indent=1).encode("utf-8"))
    return directory


def load_transformer(cls, directory: str | os.PathLike, descriptors: DescriptorTable | None = None, *, fallback=None):
    """Load a model saved by :meth:`save`.

    ``descriptors`` defaults to the table saved with the model; ``fallback`` (a
    function name → vector of the same length, e.g. computed descriptors) is attached to
    it for chemicals the table lacks.  An explicit table must match the saved one.
    """
    from safetensors.torch import load_file

    from ..features.encoding import _fingerprint

    directory = Path(directory)
    if descriptors is None:
        if not (directory / _DESCRIPTORS).is_file():
            raise ModelFormatError(f"{directory}: not a saved SynthesisTransformer ({_DESCRIPTORS} missing)")
        descriptors = DescriptorTable.from_npz(directory / _DESCRIPTORS, fallback=fallback)
    config_path, weights_path = directory / _CONFIG, directory / _WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ModelFormatError(f"{directory}: not a saved SynthesisTransformer ({path.name} missing)")
    config = read_model_config(config_path, _FORMAT, _FORMAT_VERSION)
    if not isinstance(config.get("encoder"), dict):
        raise ModelFormatError(f'{config_path}: "encoder" is missing or not an object')
    if _fingerprint(descriptors) != config["encoder"].get("descriptor_fingerprint"):
        raise ModelFormatError(
            f"{directory}: the descriptor table given ({descriptors!r}) differs from the one the model was "
            f"trained with; load without `descriptors` to use the table saved in {_DESCRIPTORS}"
        )
    params = _check_saved_params(config_path, config.get("params"))
    unknown = sorted(set(params) - set(cls._SAVED_PARAMS))
    if unknown:
        raise ModelFormatError(f"{config_path}: unknown parameter(s) {unknown}")
    model = cls(descriptors, **{**_LEGACY_PARAMS, **params})
    try:
        model.encoder_ = RecipeEncoder.from_dict(config["encoder"], descriptors)
        model.target_mean_, model.target_std_ = float(config["target_mean"]), float(config["target_std"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{config_path}: bad encoder or target scale ({type(exc).__name__}: {exc})") from None
    model.has_success_ = bool(config["has_success"])
    model.history_ = config.get("history", {})
    model.best_epoch_ = config.get("best_epoch", {})
    model.metadata_ = config.get("metadata", {})
    net = build_network(
        model.encoder_.token_dim,
        4,
        model.d_model,
        model.n_layers,
        model.n_heads,
        model.dim_feedforward,
        model.dropout,
        len(SHAPE_CLASSES),
        model.condition_tokens,
        TOKEN_WIDTH if model.retrieval_k else 0,
        model.retrieval_residual if model.retrieval_k else False,
    )
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFormatError(f"{weights_path}: unreadable weights ({exc})") from None
    bank = {k[len(_BANK) :]: state.pop(k).numpy() for k in [k for k in state if k.startswith(_BANK)]}
    model.retrieval_ = None
    if model.retrieval_k:
        try:
            model.retrieval_ = NeighbourBank.from_state(bank)
        except ValueError as exc:
            raise ModelFormatError(
                f"{weights_path}: retrieval_k = {model.retrieval_k} but the neighbour bank is unusable ({exc})"
            ) from None
        if model.retrieval_.metric != model.retrieval_metric:
            raise ModelFormatError(
                f"{weights_path}: retrieval_metric = {model.retrieval_metric!r} but the neighbour bank is {model.retrieval_.metric!r}"
            )
        if len(model.retrieval_) <= model.retrieval_k:
            raise ModelFormatError(
                f"{weights_path}: a neighbour bank of {len(model.retrieval_)} recipes for retrieval_k = {model.retrieval_k}"
            )
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"{weights_path}: weights do not fit the saved configuration ({exc})") from None
    net.eval()
    model.net_ = net
    return model
