"""Training configs: the presets shipped in ``napari_nanocrystal/configs`` and :func:`load_config`."""

from __future__ import annotations

import copy
from os import PathLike
from pathlib import Path

__all__ = ["CONFIGS_DIR", "PRESETS", "load_config", "mmengine_config"]

#: Folder of the shipped configs.
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"

#: Preset name → config file in :data:`CONFIGS_DIR`.
PRESETS = {
    "paper": "seedflow_paper.py",
    "cpu-small": "seedflow_cpu_small.py",
    "tiny": "seedflow_tiny_test.py",
    "default-model": "seedflow_default.py",
    "fast-model": "seedflow_fast.py",
}

_STAGE_KEYS = {"data", "max_epochs", "max_iters", "warmup", "val_interval", "optim_wrapper", "train_pipeline", "weak_dataset", "model"}
_STAGE_DATA = ("mixed", "labelled")
LOG_NAME = "training_log.json"
_MODEL_NAME = "model.safetensors"


def mmengine_config():
    """mmengine's ``Config`` class; an ``ImportError`` that says how to install it when it is missing."""
    try:
        from mmengine.config import Config
    except ImportError as error:
        raise ImportError(
            f"training needs mmengine ({error}): install it with pip install 'napari-nanocrystal[training]' (or 'mmengine>=0.10')"
        ) from error
    return Config


def load_config(config="cpu-small", cfg_options: dict | None = None):
    """An mmengine ``Config`` from a preset name, a shipped config name or a config file.

    Parameters
    ----------
    config : str, path or mmengine Config
        A preset (:data:`PRESETS`: ``paper``, ``cpu-small``, ``tiny``), the name of a file in
        :data:`CONFIGS_DIR` (``seedflow_paper`` or ``seedflow_paper.py``), or a path to a
        ``.py``/``.json``/``.yaml`` config.  Python configs are executed by mmengine: only
        use config files you trust.
    cfg_options : dict or None
        ``{"dotted.key": value}`` overrides (mmengine ``merge_from_dict``; list items by
        index, e.g. ``train_pipeline.0.crop_size``).

    Raises ``ValueError`` naming the known presets for an unknown name.
    """
    Config = mmengine_config()
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, (str, PathLike)):
        text = str(config)
        path = Path(text)
        if text in PRESETS:
            path = CONFIGS_DIR / PRESETS[text]
        elif not path.is_file() and (CONFIGS_DIR / text).is_file():
            path = CONFIGS_DIR / text
        elif not path.is_file() and (CONFIGS_DIR / f"{text}.py").is_file():
            path = CONFIGS_DIR / f"{text}.py"
        if not path.is_file():
            shipped = sorted(p.stem for p in CONFIGS_DIR.glob("*.py"))
            raise ValueError(
                f"unknown config {text!r}: not a preset ({', '.join(PRESETS)}), not a shipped config "
                f"({', '.join(shipped)}) and no such file"
            )
        cfg = Config.fromfile(str(path))
    else:
        raise TypeError(f"config must be a preset name, a config path or an mmengine Config, not {type(config).__name__}")
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options), allow_list_keys=True)
    _check_config(cfg)
    return cfg


def _check_config(cfg) -> None:
    missing = [k for k in ("model", "stages", "optim_wrapper", "train_dataloader", "train_pipeline") if k not in cfg]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)} (compose it from the _base_ files in {CONFIGS_DIR})")
    if not isinstance(cfg.stages, dict) or not cfg.stages:
        raise ValueError("config 'stages' must be a non-empty dict: stage name -> dict(data=..., max_epochs=... or max_iters=...)")
    for name, stage in cfg.stages.items():
        unknown = set(stage) - _STAGE_KEYS
        if unknown:
            raise ValueError(f"stage {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(_STAGE_KEYS)}")
        if stage.get("data") not in _STAGE_DATA:
            raise ValueError(f"stage {name!r}: data must be one of {_STAGE_DATA}, not {stage.get('data')!r}")
        epochs, iters = stage.get("max_epochs"), stage.get("max_iters")
        if (epochs is None) == (iters is None):
            raise ValueError(f"stage {name!r}: give exactly one of max_epochs and max_iters")
        length = epochs if epochs is not None else iters
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"stage {name!r}: max_epochs/max_iters must be a positive integer, not {length!r}")
        warmup = stage.get("warmup", 0)
        if not isinstance(warmup, int) or not 0 <= warmup < length:
            raise ValueError(f"stage {name!r}: warmup must be an integer in [0, {length}) (same unit as the length), not {warmup!r}")
        for key in ("optim_wrapper", "model"):
            override = stage.get(key)
            if override is not None and not isinstance(override, dict):
                raise ValueError(f"stage {name!r}: {key} must be a dict merged into the global one, not {override!r}")
        if "net" in dict(stage.get("model") or {}):
            raise ValueError(f"stage {name!r}: a stage cannot change model.net (every stage trains the same network)")
        weak = stage.get("weak_dataset")
        if weak is not None and not isinstance(weak, dict):
            raise ValueError(f"stage {name!r}: weak_dataset must be a dict merged into the global one, not {weak!r}")
        pipeline = stage.get("train_pipeline")
        if pipeline is not None and (not isinstance(pipeline, (list, tuple)) or not all(isinstance(step, dict) for step in pipeline)):
            raise ValueError(
                f"stage {name!r}: train_pipeline must be a list of transform dicts (it replaces the global one), not {pipeline!r}"
            )
        interval = stage.get("val_interval")
        if interval is not None and (not isinstance(interval, int) or interval < 1):
            raise ValueError(f"stage {name!r}: val_interval must be a positive integer or None, not {interval!r}")
    net = cfg.model.get("net", {})
    if not float(net.get("diameter_px", 30.0)) > 0:
        raise ValueError("model.net.diameter_px must be positive")
