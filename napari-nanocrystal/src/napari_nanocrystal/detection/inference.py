"""Load a trained particle detector and detect boxes in an image.

:func:`load_detector` reads the weights exported by
:func:`~napari_nanocrystal.detection.train_detector` with ``torch.load(weights_only=True)``
(tensors and plain values only; no pickled objects are executed) and builds the model of its
config.  :func:`detect_boxes` runs mmdet's ``inference_detector`` on the detector input
(:func:`~napari_nanocrystal.detection.dataset.detector_input`) and returns boxes in the
input's pixel coordinates.

The same files also work with mmdet's own API:
``init_detector("out/config.py", "out/detector.pth", device="cpu")`` then
``inference_detector(model, image)`` (mmengine's loader reads them with torch's default
``weights_only=True``).  ``DetInferencer`` does not accept our configs: it requires a
``LoadImageFromFile`` step, and ours load images with ``LoadTEMImage``.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .dataset import PARTICLE_METAINFO, detector_input
from .training import CONFIG_NAME, load_config

__all__ = ["detect_boxes", "load_detector"]

logger = logging.getLogger(__name__)


def _read_weights(path: Path) -> tuple[dict, dict]:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: not a detector weight file written by train_detector (weights-only load failed: {error})") from error
    if not isinstance(content, dict) or not isinstance(content.get("state_dict"), dict):
        raise ValueError(f"{path}: not a detector weight file: expected a dict with a 'state_dict' entry")
    state = content["state_dict"]
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: the 'state_dict' entry must map parameter names to tensors")
    meta = content.get("meta") if isinstance(content.get("meta"), dict) else {}
    return state, meta


def load_detector(checkpoint, config=None, *, device: str = "cpu") -> nn.Module:
    """The trained detector, in eval mode, ready for :func:`detect_boxes`.

    Parameters
    ----------
    checkpoint : path
        ``detector.pth`` written by ``train_detector``.
    config : str, path or Config, optional
        Its config; default the ``config.py`` beside the weights.  A config file is Python
        code executed by mmengine: use configs you trust (ours, or your own).
    device : str
        torch device.

    The config's R-CNN ``score_thr`` is set to 0 so that :func:`detect_boxes` alone decides
    which scores are kept.
    """
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import DefaultScope

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"detector weights not found: {checkpoint}")
    if config is None:
        config = checkpoint.parent / CONFIG_NAME
        if not config.is_file():
            raise FileNotFoundError(f"no {CONFIG_NAME} beside {checkpoint}; pass config= (the config the detector was trained with)")
    cfg = load_config(config)
    state, meta = _read_weights(checkpoint)

    rcnn_test = cfg.model.get("test_cfg", {}).get("rcnn")
    if rcnn_test is not None:
        rcnn_test.score_thr = 0.0  # detect_boxes applies the caller's score_threshold
    backbone = cfg.model.get("backbone", {})
    if "init_cfg" in backbone:
        backbone.init_cfg = None  # weights come from the checkpoint
    # build in mmdet's scope without leaving it set for the rest of the process
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "mmdet")):
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{checkpoint} does not match the config {cfg.filename or config}: {str(error)[:600]}") from error
    model.cfg = cfg
    classes = meta.get("dataset_meta", {}).get("classes", PARTICLE_METAINFO["classes"])
    model.dataset_meta = {"classes": tuple(classes), "palette": PARTICLE_METAINFO["palette"]}
    model.to(device)
    model.eval()
    logger.info("loaded detector %s (%s)", checkpoint, Path(cfg.filename).name if cfg.filename else "config")
    return model


def detect_boxes(model: nn.Module, image, *, score_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Particle boxes of one image.

    Parameters
    ----------
    model : the detector of :func:`load_detector` (or of mmdet's ``init_detector``)
    image : array_like
        (H, W) gray or (H, W, 3|4) RGB(A), any real dtype.
    score_threshold : float
        Keep boxes scoring at least this.

    Returns
    -------
    (boxes, scores)
        float32 (N, 4) ``(x0, y0, x1, y1)`` in the input's pixels, float32 (N,), by
        decreasing score.
    """
    from mmdet.apis import inference_detector
    from mmengine.registry import DefaultScope

    image = detector_input(image)
    scope = getattr(getattr(model, "cfg", None), "default_scope", None) or "mmdet"
    with torch.inference_mode(), DefaultScope.overwrite_default_scope(scope):  # mmdet's test pipeline
        result = inference_detector(model, image)
    instances = result.pred_instances
    boxes = instances.bboxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 4)
    scores = instances.scores.detach().cpu().numpy().astype(np.float32).reshape(-1)
    keep = scores >= float(score_threshold)
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]
