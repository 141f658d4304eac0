"""The paper's weak-label detector: Cascade R-CNN + HRNet + NWD, as mmdet components (extra ``detector``).

Importing this package registers in mmdet's registries (scope ``mmdet``):

========================  ==============================================================
registry                  name
========================  ==============================================================
``TASK_UTILS``            ``NWDOverlaps2D`` — NWD as the assigners' ``iou_calculator``
``MODELS``                ``NWDLoss`` — ``1 − NWD`` box-regression loss (decoded boxes)
``DATASETS``              ``ParticleDetDataset`` — boxes from image + instance-map pairs
``TRANSFORMS``            ``LoadTEMImage`` — any TEM image → uint8 3-channel input
========================  ==============================================================

Configs (``napari_nanocrystal/configs/detector``, composed from ``_base_`` parts, bringing
this package in with ``custom_imports``): ``cascade_rcnn_hrnet_nwd`` (paper-like,
HRNet-w32 as in the authors' code), ``cascade_rcnn_hrnet_w18_nwd``,
``cascade_rcnn_hrnet_cpu_nwd`` (narrow and short enough to train on 2 CPU cores) and
``cascade_rcnn_hrnet_tiny_nwd`` (CPU tests).  No pretrained weights are used: backbones
start from scratch (Kaiming init), with trainable BatchNorm statistics.

Verbs: :func:`train_detector` (mmengine ``Runner``), :func:`load_detector` and
:func:`detect_boxes` (mmdet ``inference_detector``).
"""

from __future__ import annotations

try:
    import mmdet  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "napari_nanocrystal.detection needs mmdet 3.3 and mmcv 2.1 with compiled ops: "
        "pip install 'napari-nanocrystal[detector]' (see the README for building mmcv)"
    ) from error

from .dataset import LoadTEMImage, ParticleDetDataset, detector_input, instances_from_labels
from .inference import detect_boxes, load_detector
from .nwd import NWDLoss, NWDOverlaps2D, nwd
from .training import available_configs, config_path, load_config, train_detector

__all__ = [
    "LoadTEMImage",
    "NWDLoss",
    "NWDOverlaps2D",
    "ParticleDetDataset",
    "available_configs",
    "config_path",
    "detect_boxes",
    "detector_input",
    "instances_from_labels",
    "load_config",
    "load_detector",
    "nwd",
    "train_detector",
]
