"""Particle detectors that give the boxes of the weak labels: a name → factory table.

:func:`load_box_detector` builds a detector ``image → (boxes, scores)`` from one of the
built-in backends of :data:`DETECTORS` or from any callable.  The backends are a table
(:data:`_BACKENDS`, name → factory); each factory imports its heavy dependencies (torch for
``"self"``, mmdet for ``"mmdet"``) when it is called, and ``"mmdet"`` resolves
:mod:`napari_nanocrystal.detection` by name at that moment, so this package never imports the
detector code while the detector code imports :mod:`.boxes` (no import circle).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .boxes import _as_boxes, boxes_from_labels
from .label_map import _gray

#: ``detector(image) -> (boxes (N, 4) float32 xyxy, scores (N,) float32)``.
BoxDetector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _split_detections(result, score_threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a detector's output to (boxes float32 (N, 4), scores float32 (N,)) above the threshold."""
    if isinstance(result, tuple) and len(result) == 2:
        boxes, scores = np.asarray(result[0], dtype=np.float64), np.asarray(result[1], dtype=np.float64).reshape(-1)
        boxes = _as_boxes(boxes)
        if len(scores) != len(boxes):
            raise ValueError(f"detector returned {len(boxes)} boxes but {len(scores)} scores")
    else:
        array = np.asarray(result, dtype=np.float64)
        if array.ndim == 2 and array.shape[1] == 5:
            boxes, scores = _as_boxes(array[:, :4]), array[:, 4]
        else:
            boxes = _as_boxes(array)
            scores = np.ones(len(boxes))
    if score_threshold is not None:
        keep = scores >= score_threshold
        boxes, scores = boxes[keep], scores[keep]
    return boxes.astype(np.float32), scores.astype(np.float32)


def _self_detector(model, score_threshold: float, diameter_px: float | str | None, confident_background: float | None) -> BoxDetector:
    from ..segmentation.inference import segment
    from ..segmentation.network import resolve_model

    net = resolve_model(model)

    def detect(image: np.ndarray):
        result = segment(image, model=net, diameter_px=diameter_px, confidence_threshold=score_threshold)
        boxes, scores = boxes_from_labels(result.labels), result.confidence.astype(np.float32)
        if confident_background is None:
            return boxes, scores
        return boxes, scores, result.seed_prob < confident_background  # (boxes, scores, background)

    return detect


def _otsu_detector(diameter_px: float | None, smooth_px: float) -> BoxDetector:
    from ..segmentation.evaluation import otsu_min_distance_px, otsu_watershed

    min_distance = otsu_min_distance_px(diameter_px)

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gray = _gray(image)
        if smooth_px > 0:
            gray = ndimage.gaussian_filter(gray, smooth_px)
        boxes = boxes_from_labels(otsu_watershed(gray, min_distance_px=min_distance))
        return boxes, np.ones(len(boxes), np.float32)

    return detect


def _mmdet_detector(checkpoint, config, score_threshold: float, device: str) -> BoxDetector:
    if checkpoint is None:
        raise ValueError(
            "detector='mmdet' needs checkpoint=<detector.pth>, the weights written by napari_nanocrystal.detection.train_detector"
        )
    try:
        detection = importlib.import_module("..detection", __package__)  # by name: detection imports .boxes
        detect_boxes, load_detector = detection.detect_boxes, detection.load_detector
    except ImportError as error:
        raise ImportError(
            f"detector='mmdet' needs mmdet 3.3 and mmcv 2.1 with compiled ops ({error}); "
            "install them with: pip install 'napari-nanocrystal[detector]' (mmcv must be built with ops, see README)"
        ) from error
    net = load_detector(checkpoint, config=config, device=device)

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return detect_boxes(net, image, score_threshold=score_threshold)

    return detect


#: The built-in backends: name → factory(options) → :data:`BoxDetector`, ``options`` being the
#: keyword arguments of :func:`load_box_detector`.
_BACKENDS: dict[str, Callable[[dict], BoxDetector]] = {
    "self": lambda o: _self_detector(o["model"], o["score_threshold"], o["diameter_px"], o["confident_background"]),
    "mmdet": lambda o: _mmdet_detector(o["checkpoint"], o["config"], o["score_threshold"], o["device"]),
    "otsu": lambda o: _otsu_detector(o["diameter_px"], float(o["smooth_px"])),
}

#: Names of the built-in detector backends.
DETECTORS: tuple[str, ...] = tuple(_BACKENDS)


def load_box_detector(
    detector="self",
    *,
    model="default",
    checkpoint=None,
    config=None,
    score_threshold: float = 0.5,
    diameter_px: float | None = None,
    smooth_px: float = 1.0,
    device: str = "cpu",
    confident_background: float | None = None,
) -> BoxDetector:
    """A particle detector ``image → (boxes, scores)`` of one of the backends.

    Parameters
    ----------
    detector : {"self", "mmdet", "otsu"} or callable
        See :mod:`napari_nanocrystal.weak_labels`.  A callable receives the image as given and returns boxes
        ``(N, 4)``, ``(N, 5)`` (score last) or ``(boxes, scores)``.
    model : "default", path or module
        Segmentation model of the ``"self"`` backend (as for :func:`napari_nanocrystal.segment`).
    checkpoint, config : path
        ``"mmdet"``: the weights exported by ``train_detector`` (``detector.pth``) and its config
        (default: the ``config.py`` beside the weights).
    score_threshold : float
        Keep detections scoring at least this (mmdet score, "self" instance confidence, a
        callable's scores).
    diameter_px : float, "auto" or None
        Typical particle diameter: rescaling for "self" ("auto": estimated per image by the
        model, see :func:`napari_nanocrystal.segment`), watershed marker spacing for "otsu".
    smooth_px : float
        Gaussian sigma (px) of the "otsu" backend's pre-smoothing.
    device : str
        torch device of the "mmdet" backend.
    confident_background : float, optional
        "self" only: pixels whose seed probability is below this are background, other
        pixels outside the detections uncertain (default: all of them background, as in the
        paper).  The detector then also returns that mask: ``(boxes, scores, background)``.

    Returns
    -------
    callable
        ``detect(image) -> (boxes float32 (N, 4) xyxy, scores float32 (N,))`` (plus the
        background mask with ``confident_background``).
    """
    score_threshold = float(score_threshold)
    if not math.isfinite(score_threshold) or (not callable(detector) and not 0.0 <= score_threshold <= 1.0):
        raise ValueError(f"score_threshold must be within [0, 1] (any finite number for a callable detector), got {score_threshold}")
    if confident_background is not None:
        if detector != "self":
            raise ValueError(f"confident_background needs the 'self' detector (its seed probabilities), not {detector!r}")
        if not 0.0 < float(confident_background) < 1.0:
            raise ValueError(f"confident_background must be in (0, 1), got {confident_background}")
        confident_background = float(confident_background)
    if diameter_px == "auto":
        if detector != "self":
            raise ValueError(f"diameter_px='auto' needs the 'self' detector (the model estimates the diameter), not {detector!r}")
    elif diameter_px is not None and not diameter_px > 0:
        raise ValueError(f"diameter_px must be positive, 'auto' (self detector) or None, got {diameter_px}")
    if callable(detector):
        user = detector
        return lambda image: _split_detections(user(image), score_threshold)
    if detector not in _BACKENDS:
        raise ValueError(f"detector must be one of {DETECTORS} or a callable, not {detector!r}")
    options = dict(
        model=model,
        checkpoint=checkpoint,
        config=config,
        score_threshold=score_threshold,
        diameter_px=diameter_px,
        smooth_px=smooth_px,
        device=device,
        confident_background=confident_background,
    )
    return _BACKENDS[detector](options)
