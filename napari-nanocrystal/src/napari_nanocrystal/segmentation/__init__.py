"""Particle instance segmentation: the seed/flow network of Gu et al. (ACS Nano 2025), built
on cellpose 3.1.

Modules: :mod:`.network` (``SeedFlowNet``, weight files), :mod:`.weights` (the shipped weights,
torch-free), :mod:`.targets` (flow/seed training targets, rescaling, on-disk cache), :mod:`.losses`,
:mod:`.inference` (``segment``), :mod:`.size_model`, :mod:`.evaluation` (AP, Otsu–watershed
baseline), :mod:`.data` (EMPS split and readers), :mod:`.training` (the package behind ``train``;
needs the mmengine training extra), :mod:`.engine` (its mmengine components).

The names below are imported lazily: importing this package does not load torch or cellpose.
"""

from __future__ import annotations

import lazy_loader

# module → the public names it defines, loaded on first use (lazy_loader)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "network": ["SeedFlowNet", "load_model", "available_models"],
        "inference": ["segment", "SegmentationResult"],
        "evaluation": ["evaluate", "otsu_watershed"],
        "targets": ["flow_targets", "rescale_to_diameter", "cached_targets"],
        "losses": ["labelled_loss", "weak_loss"],
        "data": ["emps_split", "load_emps_pair", "find_labelled_pairs", "find_weak_pairs", "read_weak_label"],
        "training": ["train", "TrainingResult", "load_config", "evaluate_model"],
        "baselines": ["train_cellpose_baseline", "evaluate_cellpose_baseline"],
    },
)
