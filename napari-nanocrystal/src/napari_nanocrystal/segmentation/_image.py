"""Image plumbing shared by training targets and inference: gray conversion, percentile
normalisation and resizing.

Every function takes and returns numpy arrays with axis order (rows, columns[, channels]).
Label images are integer arrays with 0 = background and 1..N = objects.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from cellpose import transforms

from ..images import to_gray  # noqa: F401 - the one grey conversion, public here too

logger = logging.getLogger(__name__)

#: Default lower/upper percentiles mapped to 0 and 1 (cellpose's ``normalize99``).
DEFAULT_PERCENTILES = (1.0, 99.0)


def normalize_percentiles(image: np.ndarray, percentiles=DEFAULT_PERCENTILES) -> np.ndarray:
    """Map the ``percentiles`` of a gray image to 0 and 1 (cellpose ``normalize99``), unclipped.

    Non-finite pixels are set to the lower percentile first.  A flat image becomes all zeros.
    Returns float32 (H, W).
    """
    image = np.array(image, dtype=np.float32, copy=True)
    finite = np.isfinite(image)
    if not finite.all():
        fill = np.percentile(image[finite], percentiles[0]) if finite.any() else 0.0
        image[~finite] = fill
    lower, upper = float(percentiles[0]), float(percentiles[1])
    # downsample=True: percentiles from a strided subsample on large images (cellpose)
    return transforms.normalize99(image, lower=lower, upper=upper, copy=False, downsample=True)


def prepare_image(image, percentiles=DEFAULT_PERCENTILES) -> np.ndarray:
    """Network input from any image: gray (see :func:`to_gray`), then percentile-normalised.

    Returns float32 (H, W) with the lower percentile at 0 and the upper at 1.
    """
    return normalize_percentiles(to_gray(image), percentiles)


def resize_image(image: np.ndarray, shape) -> np.ndarray:
    """Resize a float (H, W) or (C, H, W) image to ``shape`` = (rows, columns).

    Area averaging when shrinking (no aliasing), bilinear when enlarging.  Returns float32.
    """
    rows, cols = int(shape[0]), int(shape[1])
    image = np.asarray(image, dtype=np.float32)
    if image.shape[-2:] == (rows, cols):
        return image.copy()
    shrink = rows * cols < image.shape[-2] * image.shape[-1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    if image.ndim == 2:
        return cv2.resize(image, (cols, rows), interpolation=interpolation)
    return np.stack([cv2.resize(channel, (cols, rows), interpolation=interpolation) for channel in image])


def resize_labels(labels: np.ndarray, shape) -> np.ndarray:
    """Resize an integer label image (0 = background) to ``shape`` by nearest neighbour.

    Returns int32 (rows, columns).  Objects smaller than a pixel of the new grid may vanish;
    labels are not renumbered.
    """
    rows, cols = int(shape[0]), int(shape[1])
    labels = np.asarray(labels)
    if labels.max(initial=0) > np.iinfo(np.int32).max:
        raise ValueError("labels exceed the int32 range")
    labels = labels.astype(np.int32, copy=False)
    if labels.shape == (rows, cols):
        return labels.copy()
    return cv2.resize(labels, (cols, rows), interpolation=cv2.INTER_NEAREST)


def scaled_shape(shape, scale: float) -> tuple[int, int]:
    """(rows, columns) of an image of ``shape`` resized by ``scale`` (at least 1 px each)."""
    return max(1, int(round(shape[0] * scale))), max(1, int(round(shape[1] * scale)))
