"""Bounding boxes of particles: from an instance label image, and checked when given.

Boxes are ``(N, 4)`` float arrays ``(x0, y0, x1, y1)`` in pixel-edge coordinates
(mmdet/COCO ``xyxy``, exclusive ends): a particle covering columns ``c0 … c1 - 1`` and rows
``r0 … r1 - 1`` has the box ``(c0, r0, c1, r1)``.  A numpy/scipy leaf: the detector code
(:mod:`napari_nanocrystal.detection`) imports it for its training targets.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def boxes_from_labels(labels) -> np.ndarray:
    """Bounding boxes of the objects of an instance label image.

    Parameters
    ----------
    labels : array_like, int (H, W)
        0 = background, objects > 0.

    Returns
    -------
    np.ndarray
        float32 (N, 4) ``(x0, y0, x1, y1)`` pixel-edge boxes (exclusive ends), one row per
        label value present, in ascending label order.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 2-D integer image, got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative (0 = background)")
    rows = [
        (float(s[1].start), float(s[0].start), float(s[1].stop), float(s[0].stop))
        for s in ndimage.find_objects(labels.astype(np.int64, copy=False))
        if s is not None
    ]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def _as_boxes(boxes) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(f"boxes must be an (N, 4) array of (x0, y0, x1, y1) (or (N, 5) with scores), got shape {boxes.shape}")
    boxes = boxes[:, :4]
    if not np.isfinite(boxes).all():
        raise ValueError("boxes contain NaN or infinite coordinates")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"{int(bad.sum())} box(es) have x1 < x0 or y1 < y0; boxes are (x0, y0, x1, y1), e.g. {boxes[bad][0].tolist()}")
    return boxes
