"""Particle instance segmentation: the seed/flow network of Gu et al. (ACS Nano 2025), built
on cellpose 3.1.

Modules: :mod:`.network` (``SeedFlowNet``, weight files), :mod:`.targets` (flow/seed training
targets, rescaling, on-disk cache), :mod:`.losses`, :mod:`.inference` (``segment``),
:mod:`.evaluation` (AP, Otsu–watershed baseline), :mod:`.data` (EMPS split and readers).

The names below are imported lazily: importing this package does not load torch or cellpose.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SeedFlowNet": "network",
    "load_model": "network",
    "available_models": "network",
    "segment": "inference",
    "SegmentationResult": "inference",
    "evaluate": "evaluation",
    "otsu_watershed": "evaluation",
    "flow_targets": "targets",
    "rescale_to_diameter": "targets",
    "cached_targets": "targets",
    "labelled_loss": "losses",
    "weak_loss": "losses",
    "emps_split": "data",
    "load_emps_pair": "data",
    "find_labelled_pairs": "data",
    "find_weak_pairs": "data",
    "read_weak_label": "data",
    "train": "training",
    "TrainingResult": "training",
    "load_config": "training",
    "evaluate_model": "training",
    "train_cellpose_baseline": "baselines",
    "evaluate_cellpose_baseline": "baselines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
