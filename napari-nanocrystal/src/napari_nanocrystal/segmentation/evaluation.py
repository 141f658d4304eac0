"""Instance-segmentation scores and the classical baseline.

:func:`evaluate` scores predicted label images against ground truth with cellpose's
"average precision" ``AP = TP / (TP + FP + FN)`` (``cellpose.metrics.average_precision``;
one-to-one matching by IoU, Hungarian assignment) at several IoU thresholds.
:func:`otsu_watershed` is the classical baseline (Otsu threshold, distance transform,
``peak_local_max`` markers, watershed): the floor a learned model must clear (AP50 ≈ 0.15
on EMPS).

Label images are integer (H, W) arrays, 0 = background, objects > 0 (any numbering: they are
renumbered 1..N before scoring, as cellpose's metrics count objects by the maximum label).
"""

from __future__ import annotations

import logging

import fastremap
import numpy as np
from cellpose import metrics
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed

from ._image import prepare_image

__all__ = [
    "count_merges",
    "evaluate",
    "half_contrast_areas",
    "merged_pairs",
    "otsu_min_distance_px",
    "otsu_watershed",
    "weak_label_agreement",
]

logger = logging.getLogger(__name__)


def _as_labels(labels, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what} must be 2-D integer label images; got shape {labels.shape}, dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{what} must be non-negative (0 = background)")
    return fastremap.renumber(labels.astype(np.int32), in_place=True)[0].astype(np.int32, copy=False)


def _threshold_key(threshold: float) -> str:
    return f"ap{round(100 * threshold):d}"


def merged_pairs(pred_labels, true_labels, min_cover: float = 0.5) -> np.ndarray:
    """(2, K) int array of (predicted, true) label pairs in which the predicted object holds at least
    ``min_cover`` of the true object's area and so holds two or more true objects (touching particles
    segmented as one).

    Both are (H, W) integer label images of equal shape, 0 = background.
    """
    pred, true = np.asarray(pred_labels, np.int64), np.asarray(true_labels, np.int64)
    if pred.shape != true.shape:
        raise ValueError(f"predicted {pred.shape} and true {true.shape} labels differ in shape")
    both = (pred > 0) & (true > 0)
    if not both.any():
        return np.zeros((2, 0), np.int64)
    pairs, overlap = np.unique(np.stack([pred[both], true[both]]), axis=1, return_counts=True)
    true_area = np.bincount(true.ravel())
    covered = pairs[:, overlap >= min_cover * true_area[pairs[1]]]
    holders, counts = np.unique(covered[0], return_counts=True)
    return covered[:, np.isin(covered[0], holders[counts >= 2])]


def count_merges(pred_labels, true_labels, min_cover: float = 0.5) -> int:
    """Merged instances: predicted objects holding at least ``min_cover`` of the area of two or
    more true objects each (:func:`merged_pairs`)."""
    return int(np.unique(merged_pairs(pred_labels, true_labels, min_cover)[0]).size)


def weak_label_agreement(pred_labels, weak_label, image=None) -> dict:
    """Agreement of a segmentation with a weak label (0 background, 1 particle, 255 uncertain).

    Pixels: ``recall``, the share of the weak label's particle pixels inside a predicted object;
    ``precision``, the share of the predicted pixels outside the uncertain band that the weak
    label calls particle.  Objects (pixels weigh a large blob more than a small particle):
    ``object_recall``, the share of the single particles the weak label outlines
    (:func:`~.targets.weak_label_instances`, ``n_weak_particles`` of them) matched by a predicted
    object at IoU ≥ 0.5; ``false_objects``, predicted objects lying mostly (≥ 50 %) on what the
    weak label calls background.  Edges: ``weak_area_ratio``, the median area of a matched
    predicted object over its weak particle's (NaN when none matched); with the ``image``,
    ``contrast_area_ratio``, the same over the particle's extent by contrast
    (:func:`half_contrast_areas`) - the edge a sizing tool should find.  The score for images
    that have weak labels only (the real TEM training images).
    """
    from .targets import weak_label_instances

    pred, weak = _as_labels(pred_labels, "predicted labels"), np.asarray(weak_label)
    if pred.shape != weak.shape:
        raise ValueError(f"predicted labels {pred.shape} and weak label {weak.shape} differ in shape")
    found, particle = pred > 0, weak == 1
    hit = int((found & particle).sum())
    singles = weak_label_instances(weak)
    n_singles = int(singles.max())
    on_background = np.bincount(pred.ravel(), weights=(weak == 0).ravel(), minlength=pred.max() + 1)[1:]
    sizes = np.bincount(pred.ravel(), minlength=pred.max() + 1)[1:]
    iou, match = metrics.mask_ious(singles, pred) if n_singles and pred.max() else (np.zeros(n_singles), np.zeros(n_singles, int))
    is_matched = iou >= 0.5
    pred_area = sizes[match[is_matched] - 1].astype(float)
    row = {
        "recall": hit / max(1, int(particle.sum())),
        "precision": hit / max(1, int((found & (weak != 255)).sum())),
        "object_recall": int(is_matched.sum()) / max(1, n_singles),
        "n_weak_particles": n_singles,
        "false_objects": int(((sizes > 0) & (on_background >= 0.5 * sizes)).sum()),
        "weak_area_ratio": _median_ratio(pred_area, np.bincount(singles.ravel(), minlength=n_singles + 1)[1:][is_matched]),
    }
    if image is not None:
        contrast = half_contrast_areas(image, weak, singles)
        row["contrast_area_ratio"] = _median_ratio(pred_area, contrast[is_matched])
    return row


def _median_ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    ok = np.isfinite(denominator) & (denominator > 0)
    return float(np.median(numerator[ok] / denominator[ok])) if ok.any() else float("nan")


def half_contrast_areas(image, weak_label, instances, *, territory_px: float = 12.0, min_contrast: float = 0.05) -> np.ndarray:
    """Each weak particle's area by image contrast (px; NaN where it cannot be measured).

    The image is smoothed (Gaussian σ = 1 px) and percentile-normalised; each particle of
    ``instances`` (from :func:`~.targets.weak_label_instances`) owns the pixels nearer to it than
    to any other within ``territory_px``; its level is the median over its weak core (label 1),
    the background's the median over the weak background (label 0) in its territory, and its
    extent the territory's pixels past the level half-way between, connected to its core - the
    half-contrast edge a microscopist sizes by.  NaN when the core or the background is missing
    or the two levels differ by less than ``min_contrast`` (normalised units).
    """
    from skimage.segmentation import expand_labels

    weak, instances = np.asarray(weak_label), np.asarray(instances)
    gray = ndimage.gaussian_filter(prepare_image(image), 1.0)
    if gray.shape != weak.shape or weak.shape != instances.shape:
        raise ValueError(f"image {gray.shape}, weak label {weak.shape} and instances {instances.shape} differ in shape")
    territory = expand_labels(instances, distance=float(territory_px))
    areas = np.full(int(instances.max()), np.nan)
    for index, window in enumerate(ndimage.find_objects(territory)):
        if window is None:
            continue
        own = territory[window] == index + 1
        core, background = own & (weak[window] == 1) & (instances[window] == index + 1), own & (weak[window] == 0)
        if not core.any() or not background.any():
            continue
        level, ground = float(np.median(gray[window][core])), float(np.median(gray[window][background]))
        if abs(level - ground) < min_contrast:
            continue
        past = own & ((gray[window] - (level + ground) / 2) * np.sign(level - ground) > 0)
        parts, _ = ndimage.label(past)
        touching = np.unique(parts[core & past])
        areas[index] = float(np.isin(parts, touching[touching > 0]).sum())
    return areas


def evaluate(pred_labels_list, true_labels_list, thresholds=(0.5, 0.75, 0.9)) -> dict:
    """Average precision (cellpose definition) of predicted vs true label images.

    Parameters
    ----------
    pred_labels_list, true_labels_list : sequence of int arrays (H, W), or one array each
        Predicted and ground-truth instance labels, pairwise of equal shape.
    thresholds : sequence of float
        IoU thresholds of a true positive.

    Returns
    -------
    dict (JSON-serialisable)
        ``thresholds``; ``ap`` pooled over images, ``sum TP / (sum TP + sum FP + sum FN)``,
        one value per threshold (also as ``ap50``, ``ap75``, … keys); ``ap_mean_per_image``
        (mean of the per-image AP, images with neither true nor predicted objects skipped);
        ``ap_per_image`` (n_images × n_thresholds; NaN for such empty images); ``tp``,
        ``fp``, ``fn`` summed per threshold; ``mean_iou_matched``, the mean IoU of the true
        objects matched at IoU ≥ 0.5 (NaN if none); ``n_images``, ``n_true``, ``n_pred``;
        ``n_merged``, predicted objects that hold two or more true ones (:func:`count_merges`).
    """
    if isinstance(pred_labels_list, np.ndarray) and pred_labels_list.ndim == 2:
        pred_labels_list, true_labels_list = [pred_labels_list], [true_labels_list]
    preds = [_as_labels(p, "predicted labels") for p in pred_labels_list]
    trues = [_as_labels(t, "true labels") for t in true_labels_list]
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predicted vs {len(trues)} true label images")
    for i, (p, t) in enumerate(zip(preds, trues)):
        if p.shape != t.shape:
            raise ValueError(f"image {i}: predicted {p.shape} and true {t.shape} labels differ in shape")
    thresholds = [float(t) for t in thresholds]
    n_thr = len(thresholds)
    if preds:
        with np.errstate(invalid="ignore", divide="ignore"):
            ap, tp, fp, fn = metrics.average_precision(trues, preds, threshold=thresholds)
    else:
        ap = tp = fp = fn = np.zeros((0, n_thr), np.float32)

    ious = []
    for p, t in zip(preds, trues):
        if p.max() > 0 and t.max() > 0:
            iou, _ = metrics.mask_ious(t, p)
            ious.extend(iou[iou >= 0.5].tolist())

    tp_sum, fp_sum, fn_sum = tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0)
    denominator = tp_sum + fp_sum + fn_sum
    pooled = np.where(denominator > 0, tp_sum / np.maximum(denominator, 1), np.nan)
    per_image = np.asarray(ap, dtype=float).reshape(len(preds), n_thr)
    scored = ~np.isnan(per_image).all(axis=1)
    mean_per_image = per_image[scored].mean(axis=0) if scored.any() else np.full(n_thr, np.nan)

    result = {
        "thresholds": thresholds,
        "ap": [float(v) for v in pooled],
        "ap_mean_per_image": [float(v) for v in mean_per_image],
        "ap_per_image": per_image.tolist(),
        "tp": [int(v) for v in tp_sum],
        "fp": [int(v) for v in fp_sum],
        "fn": [int(v) for v in fn_sum],
        "mean_iou_matched": float(np.mean(ious)) if ious else float("nan"),
        "n_images": len(preds),
        "n_true": int(sum(t.max(initial=0) for t in trues)),
        "n_pred": int(sum(p.max(initial=0) for p in preds)),
        "n_merged": int(sum(count_merges(p, t) for p, t in zip(preds, trues))),
    }
    for threshold, value in zip(thresholds, pooled):
        result[_threshold_key(threshold)] = float(value)
    return result


def otsu_min_distance_px(diameter_px: float | None) -> int:
    """The marker distance of :func:`otsu_watershed` for particles of ``diameter_px``: half a diameter.

    At least 2 px; 20 px (the value measured best on EMPS, see :func:`otsu_watershed`) when
    the diameter is not known (None).
    """
    return 20 if diameter_px is None else max(2, int(round(float(diameter_px) / 2)))


def otsu_watershed(image, *, min_distance_px: int = 20, min_size_px: int = 15, dark_objects: bool | None = None) -> np.ndarray:
    """Classical baseline: Otsu foreground, distance-transform peaks as markers, watershed.

    Parameters
    ----------
    image : array_like
        (H, W) gray of any dtype or (H, W, 3|4) RGB/RGBA.
    min_distance_px : int
        Minimum distance between two markers of the same connected blob; every blob gets at
        least one.  On the EMPS-train validation split (74 images) 20 px gives AP50 0.10
        pooled / 0.16 mean per image (5 px: 0.03 / 0.08, over-split; 30 px: 0.12 / 0.18).
    min_size_px : int
        Foreground specks smaller than this are removed before splitting.
    dark_objects : bool or None
        Whether particles are darker than the background (bright-field TEM).  None: the
        phase covering less of the image is taken as the particles.

    Returns
    -------
    np.ndarray
        int32 (H, W), 0 = background, 1..N = particles.
    """
    gray = prepare_image(image)
    if float(gray.max()) <= float(gray.min()):
        return np.zeros(gray.shape, np.int32)
    bright = gray > threshold_otsu(gray)
    if dark_objects is None:
        dark_objects = bright.mean() > 0.5
    foreground = ~bright if dark_objects else bright
    foreground = remove_small_objects(foreground, max_size=max(0, int(min_size_px) - 1))
    if not foreground.any():
        return np.zeros(gray.shape, np.int32)
    distance = ndimage.distance_transform_edt(foreground)
    components, _ = ndimage.label(foreground)
    peaks = peak_local_max(distance, min_distance=int(min_distance_px), labels=components, exclude_border=False)
    markers = np.zeros(gray.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=foreground)
    return fastremap.renumber(labels.astype(np.int32), in_place=True)[0].astype(np.int32, copy=False)
