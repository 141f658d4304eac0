"""The batch API: a detector over images, then weak label maps (generator and function).

:func:`iter_weak_labels` yields ``(message, fraction)`` and returns the maps (the form the
napari widget runs in a worker); :func:`generate_weak_labels` drives it with an optional
progress callback.  Paths are read when their turn comes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np

from .._progress import ProgressCallback, drive
from .backends import load_box_detector
from .label_map import weak_label_from_boxes

logger = logging.getLogger(__name__)


def _as_image_list(images) -> list:
    if isinstance(images, np.ndarray):
        return [images]
    if isinstance(images, (str, os.PathLike)):
        return [images]
    if isinstance(images, Sequence):
        return list(images)
    raise TypeError(f"images must be an array, a path or a sequence of them, not {type(images).__name__}")


def _load(image):
    if isinstance(image, (str, os.PathLike)):
        from ..segmentation.data import read_image

        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        return read_image(path)
    return np.asarray(image)


def detections(found) -> tuple[np.ndarray, np.ndarray | None]:
    """(boxes, background mask or None) of a :func:`load_box_detector` detector's output."""
    return found[0], (found[2] if len(found) > 2 else None)


def iter_weak_labels(
    images,
    detector="self",
    *,
    model="default",
    checkpoint=None,
    config=None,
    score_threshold: float = 0.5,
    erode_px: float = 1.5,
    dilate_px: float = 1.5,
    erode_frac: float = 0.0,
    dilate_frac: float = 0.0,
    polarity: str = "auto",
    diameter_px: float | None = None,
    device: str = "cpu",
    confident_background: float | None = None,
    otsu_background: float | None = None,
) -> Generator[tuple[str, float], None, list[np.ndarray]]:
    """Generator form of :func:`generate_weak_labels`: yields ``(message, fraction)``, returns the maps."""
    items = _as_image_list(images)
    options = dict(
        erode_px=erode_px,
        dilate_px=dilate_px,
        erode_frac=erode_frac,
        dilate_frac=dilate_frac,
        polarity=polarity,
        otsu_background=otsu_background,
    )
    name = detector if isinstance(detector, str) else getattr(detector, "__name__", "callable")
    yield f"loading detector {name}", 0.0
    detect = load_box_detector(
        detector,
        model=model,
        checkpoint=checkpoint,
        config=config,
        score_threshold=score_threshold,
        diameter_px=diameter_px,
        device=device,
        confident_background=confident_background,
    )
    maps: list[np.ndarray] = []
    n = len(items)
    for i, item in enumerate(items):
        image = _load(item)
        yield f"image {i + 1}/{n}: detecting", i / max(n, 1)
        boxes, background = detections(detect(image))
        yield f"image {i + 1}/{n}: {len(boxes)} boxes → weak label", (i + 0.5) / max(n, 1)
        maps.append(weak_label_from_boxes(image, boxes, background=background, **options))
        logger.info("image %d/%d: %d boxes", i + 1, n, len(boxes))
    yield f"done: {n} weak label(s)", 1.0
    return maps


def generate_weak_labels(
    images,
    detector="self",
    *,
    model="default",
    checkpoint=None,
    config=None,
    score_threshold: float = 0.5,
    erode_px: float = 1.5,
    dilate_px: float = 1.5,
    erode_frac: float = 0.0,
    dilate_frac: float = 0.0,
    polarity: str = "auto",
    diameter_px: float | None = None,
    device: str = "cpu",
    confident_background: float | None = None,
    otsu_background: float | None = None,
    progress: ProgressCallback | None = None,
) -> list[np.ndarray]:
    """Weak label maps (0 background, 1 particle, 255 uncertain) of unlabelled images.

    Parameters
    ----------
    images : array, path, or sequence of arrays/paths
        One image ((H, W) gray or (H, W, 3|4) RGB(A), any real dtype) or several; paths are
        read with :func:`napari_nanocrystal.segmentation.data.read_image`.  An array is always
        one image: pass a stack (N, H, W) as a list.
    detector : {"self", "mmdet", "otsu"} or callable
        Where the boxes come from (see :mod:`napari_nanocrystal.weak_labels` and :func:`load_box_detector`).
    model, checkpoint, config, score_threshold, diameter_px, device, confident_background
        Detector options (:func:`load_box_detector`).
    erode_px, dilate_px, erode_frac, dilate_frac, polarity, otsu_background
        Weak-label options (:func:`weak_label_from_boxes`).
    progress : callable(message: str, fraction: float) or None
        Progress callback.

    Returns
    -------
    list of np.ndarray
        One uint8 (H, W) map per image, in order.
    """
    return drive(
        iter_weak_labels(
            images,
            detector,
            model=model,
            checkpoint=checkpoint,
            config=config,
            score_threshold=score_threshold,
            erode_px=erode_px,
            dilate_px=dilate_px,
            erode_frac=erode_frac,
            dilate_frac=dilate_frac,
            polarity=polarity,
            diameter_px=diameter_px,
            device=device,
            confident_background=confident_background,
            otsu_background=otsu_background,
        ),
        progress,
    )
