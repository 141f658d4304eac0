"""Weak labels for unlabelled TEM images: detector boxes → Otsu inside each box → a band of uncertainty.

Gu, Liang et al. (ACS Nano 2025, Methods, "The generation of weak labels") train the seed map
of their segmentation network on unlabelled images with labels made this way: a detector
(Cascade R-CNN, HRNet backbone, NWD instead of IoU) finds the particles; inside each box an
Otsu threshold separates particle from background; the mask is eroded and dilated, and the
band between the two is "uncertain" (excluded from the loss).

Label map convention (uint8, (H, W)): ``0`` background, ``1`` particle, ``255``
(:data:`UNCERTAIN`, the same value as :data:`napari_nanocrystal.segmentation.losses.UNCERTAIN`)
uncertain.  Boxes are ``(N, 4)`` float arrays ``(x0, y0, x1, y1)`` in pixel-edge coordinates
(mmdet/COCO ``xyxy``): a particle covering columns ``c0 … c1 - 1`` and rows ``r0 … r1 - 1``
has the box ``(c0, r0, c1, r1)``.

:func:`weak_label_from_boxes` (the procedure, for any boxes):

1. The image is converted to gray and median-filtered (``median_size``, 3 × 3 by default, as in
   the authors' code) against shot noise.
2. **Otsu in each box.**  The threshold is computed from the box's pixels only.  Polarity
   (which Otsu phase is the particle) is one per image, as in the microscope: ``"dark"``
   (bright-field TEM), ``"bright"`` (dark-field, HAADF), or ``"auto"``: every box votes
   "dark" when the mean of its central half (where the detected particle is) is below the
   mean of its one-pixel border (mostly background), and the majority wins; a tie falls
   back to the whole-image rule (the Otsu phase covering less of the image is the
   particles).  A vote over boxes is robust to the few boxes that are poor detections
   (a per-box choice flips on those and turns their background into "particle").  Small holes
   (``max_hole_frac`` of the box) are filled.  The box's particle is the connected piece of
   its mask covering most of the box centre; other particle-phase pieces in the box
   (neighbours cut by the box edge, noise) are uncertain (``other_components``; the authors'
   code kept them as foreground).
3. **Overlapping boxes.**  The foreground ``F`` is the union of the boxes' particles.  Where
   boxes overlap and one calls a pixel particle while another calls it background, the pixel
   is uncertain.
4. **Erosion/dilation** with Euclidean discs, per box: radius ``erode_px + erode_frac ×
   min(box width, height)`` inwards and ``dilate_px + dilate_frac × min(width, height)``
   outwards.  A pixel of box *i* is *core* when no background pixel of ``F`` lies within the
   erosion radius (distance transform of ``F``; the image edge is not a particle edge); the
   *outer* region of box *i* is ``F ∩ box`` grown by the dilation radius.  Output: outer and
   other pieces → 255, core → 1 (except disagreement pixels, which stay 255), everything
   else → 0 (pixels outside every box are background, as in the paper).  With the defaults
   (1.5 px each) the band equals the authors' 3 × 3 erosion and dilation: the particle's
   outermost pixel ring plus the ring just outside it.

:func:`generate_weak_labels` runs a detector and that procedure over images.  Detectors:

* ``"mmdet"`` — the paper's: a Cascade R-CNN with an HRNet backbone and NWD assignment,
  trained with :func:`napari_nanocrystal.detection.train_detector` (install extra
  ``detector``); ``checkpoint`` is the exported ``detector.pth``.
* ``"self"`` — self-training, fast on CPU: the current segmentation model's own instances
  (:func:`napari_nanocrystal.segment`), those with confidence ≥ ``score_threshold``, give
  boxes; the masks are **not** used directly: each box goes through the same Otsu/erosion/
  dilation procedure, so the weak label is an independent image-based reading of the model's
  detections (the model's own mask boundaries would only teach it its own mistakes).
  ``confident_background=P`` makes only pixels with seed probability < P background and the
  rest outside the detections uncertain: a model that misses particles would otherwise teach
  them as background (on EMPS, a model trained on a quarter of the labels gave weak labels
  with foreground recall 0.34, and training on them collapsed).
* ``"otsu"`` — no learning: the classical Otsu + watershed instances
  (:func:`napari_nanocrystal.segmentation.evaluation.otsu_watershed`, after a Gaussian
  smoothing of ``smooth_px``) give the boxes.  For images where no trained model exists.
* any callable ``image → boxes`` (``(N, 4)``, or ``(N, 5)`` with a score column, or a tuple
  ``(boxes, scores)``).

Any backend can check its background against the image (``otsu_background=F``): a pixel is
background only in the background phase of the whole image's Otsu threshold (the polarity the
boxes voted for), and an image whose detected particles cover less than ``F`` of the particle
phase gets no background at all (the detector missed most of its particles; only its
detections are taught).  On EMPS with a model trained on a quarter of the labels, ``F = 0.2``
lifted the self backend's background precision from 0.74 to 0.95 and its foreground recall
from 0.34 to 0.83 (foreground precision 0.99), with 47 % of the pixels uncertain instead of 3 %.

The module imports neither torch nor mmdet; the backends load them when first used.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from ._progress import ProgressCallback, drive

__all__ = [
    "BACKGROUND",
    "DETECTORS",
    "FOREGROUND",
    "UNCERTAIN",
    "boxes_from_labels",
    "generate_weak_labels",
    "iter_weak_labels",
    "load_box_detector",
    "weak_label_from_boxes",
]

logger = logging.getLogger(__name__)

BACKGROUND = 0
FOREGROUND = 1
#: Weak-label value of uncertain pixels (excluded from the loss; as ``segmentation.losses.UNCERTAIN``).
UNCERTAIN = 255

#: Names of the built-in detector backends.
DETECTORS: tuple[str, ...] = ("self", "mmdet", "otsu")

_POLARITIES = ("auto", "dark", "bright")

#: ``progress(message, fraction)`` with fraction in [0, 1].
#: ``detector(image) -> (boxes (N, 4) float32 xyxy, scores (N,) float32)``.
BoxDetector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------------------
# boxes


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


# ----------------------------------------------------------------------------------------
# boxes → weak label map


def _gray(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"image must be a real-valued array, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] in (1, 2):
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        from skimage.color import rgb2gray

        image = rgb2gray(image[..., :3].astype(np.float32))
    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"image must be (H, W) gray or (H, W, 3|4) RGB(A), got shape {image.shape}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    return image


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values))


def _global_dark(gray: np.ndarray) -> bool:
    """Whole-image rule: the Otsu phase covering less of the image is the particles."""
    if float(gray.max()) <= float(gray.min()):
        return True
    return bool((gray > _otsu(gray)).mean() >= 0.5)


def _centre_minus_border(crop: np.ndarray) -> float:
    """Mean of the crop's central half minus the mean of its one-pixel border."""
    h, w = crop.shape
    centre = crop[h // 4 : h - h // 4, w // 4 : w - w // 4]
    ring = np.concatenate([crop[0], crop[-1], crop[1:-1, 0], crop[1:-1, -1]])
    return float(centre.mean()) - float(ring.mean())


def _image_is_dark(smooth: np.ndarray, windows: list[tuple[int, int, int, int]], polarity: str) -> bool:
    """Particles darker than the background? Fixed, or voted by the boxes (see the module docs)."""
    if polarity != "auto":
        return polarity == "dark"
    votes = [np.sign(_centre_minus_border(smooth[r0:r1, c0:c1])) for r0, c0, r1, c1 in windows]
    dark, bright = sum(v < 0 for v in votes), sum(v > 0 for v in votes)
    if dark == bright:
        return _global_dark(smooth)
    logger.debug("polarity vote: %d boxes darker inside, %d brighter", dark, bright)
    return dark > bright


def _fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill the holes (background not connected to the crop edge) of at most ``max_area`` px."""
    holes = ndimage.binary_fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    labels, n = ndimage.label(holes)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    small = areas <= max_area
    small[0] = False
    return mask | small[labels]


def _main_component(mask: np.ndarray) -> np.ndarray:
    """The 8-connected component of ``mask`` with most pixels in the box's central half (else the largest)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    h, w = mask.shape
    centre = labels[h // 4 : h - h // 4, w // 4 : w - w // 4]
    counts = np.bincount(centre.ravel(), minlength=n + 1)
    counts[0] = 0
    if counts.max() == 0:
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        counts[0] = 0
    return labels == int(np.argmax(counts))


def _radius(px: float, frac: float, box_h: int, box_w: int) -> float:
    return float(px) + float(frac) * min(box_h, box_w)


def _check_radius(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value}")
    return value


def weak_label_from_boxes(
    image,
    boxes,
    *,
    erode_px: float = 1.5,
    dilate_px: float = 1.5,
    erode_frac: float = 0.0,
    dilate_frac: float = 0.0,
    polarity: str = "auto",
    median_size: int = 3,
    fill_holes: bool = True,
    max_hole_frac: float = 0.1,
    other_components: str = "uncertain",
    min_box_px: int = 3,
    background=None,
    otsu_background: float | None = None,
) -> np.ndarray:
    """Weak label map of one image from particle boxes (Otsu per box, erosion/dilation band).

    Parameters
    ----------
    image : array_like
        (H, W) gray of any real dtype, or (H, W, 3|4) RGB(A) channel-last.
    boxes : array_like
        (N, 4) ``(x0, y0, x1, y1)`` pixel-edge boxes (or (N, 5), the 5th column ignored).
        Parts outside the image are clipped; boxes narrower or shorter than ``min_box_px``
        after clipping, and boxes of constant intensity, are skipped.
    erode_px, dilate_px : float
        Radii (px, Euclidean) of the uncertain band inside and outside each particle edge.
        The defaults (1.5, 1.5) equal the authors' 3 × 3 erosion and dilation.  0 = no band
        on that side.
    erode_frac, dilate_frac : float
        Added to the radii as a fraction of each box's shorter side (band relative to size).
    polarity : {"auto", "dark", "bright"}
        Which Otsu phase is the particle: voted by the boxes (centre vs border, "auto"), or
        fixed ("dark": bright-field TEM; "bright": dark-field / HAADF).
    median_size : int
        Median filter size (px) applied before thresholding; 1 = none.
    fill_holes : bool
        Fill holes in each box's mask smaller than ``max_hole_frac`` × the box area (thin
        particle centres; larger "holes" are background enclosed by neighbours).
    max_hole_frac : float
        Largest hole filled, as a fraction of the box area.
    other_components : {"uncertain", "foreground"}
        The box's particle is the connected component of its mask covering most of the
        box centre; other particle-phase pieces in the box (neighbours cut by the box edge,
        noise) are "uncertain" (default) or, as in the authors' code, "foreground".
    min_box_px : int
        Smallest usable box side (px), at least 3.
    background : (H, W) bool array, optional
        Pixels known to be background.  By default (as in the paper) every pixel outside the
        boxes' particles is background; with this mask, the others outside are uncertain —
        for detectors that miss particles, whose missed particles would otherwise be taught
        as background.
    otsu_background : float in [0, 1], optional
        Check the background against the image: background only in the background phase of
        the whole image's Otsu threshold, and none at all when the particles found (grown by
        :data:`EXPLAINED_MARGIN_PX`) cover less than this fraction of the particle phase.
        None (default): no check, as in the paper.

    Returns
    -------
    np.ndarray
        uint8 (H, W): 0 background, 1 particle, 255 uncertain.
    """
    gray = _gray(image)
    if background is not None:
        background = np.asarray(background, dtype=bool)
        if background.shape != gray.shape:
            raise ValueError(f"background mask {background.shape} and image {gray.shape} differ in size")
    boxes = _as_boxes(boxes)
    if polarity not in _POLARITIES:
        raise ValueError(f"polarity must be one of {_POLARITIES}, not {polarity!r}")
    erode_px, dilate_px = _check_radius("erode_px", erode_px), _check_radius("dilate_px", dilate_px)
    erode_frac, dilate_frac = _check_radius("erode_frac", erode_frac), _check_radius("dilate_frac", dilate_frac)
    median_size, min_box_px = int(median_size), max(3, int(min_box_px))
    if median_size < 1:
        raise ValueError(f"median_size must be ≥ 1, got {median_size}")
    if other_components not in ("uncertain", "foreground"):
        raise ValueError(f"other_components must be 'uncertain' or 'foreground', not {other_components!r}")
    max_hole_frac = _check_radius("max_hole_frac", max_hole_frac)
    if otsu_background is not None:
        otsu_background = float(otsu_background)
        if not 0.0 <= otsu_background <= 1.0:
            raise ValueError(f"otsu_background must be within [0, 1], got {otsu_background}")

    H, W = gray.shape
    smooth = ndimage.median_filter(gray, size=median_size, mode="nearest") if median_size > 1 else gray
    windows: list[tuple[int, int, int, int]] = []
    skipped = 0
    for x0, y0, x1, y1 in boxes:
        c0, r0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
        c1, r1 = min(W, int(math.ceil(x1))), min(H, int(math.ceil(y1)))
        if r1 - r0 < min_box_px or c1 - c0 < min_box_px or float(np.ptp(smooth[r0:r1, c0:c1])) == 0.0:
            skipped += 1
            continue
        windows.append((r0, c0, r1, c1))
    if skipped:
        logger.debug("skipped %d of %d boxes (too small, outside the image or flat)", skipped, len(boxes))
    dark = _image_is_dark(smooth, windows, polarity) if windows else True

    said_fg = np.zeros((H, W), bool)
    said_bg = np.zeros((H, W), bool)
    unsure = np.zeros((H, W), bool)
    for r0, c0, r1, c1 in windows:
        crop = smooth[r0:r1, c0:c1]
        threshold = _otsu(crop)
        mask = crop <= threshold if dark else crop > threshold
        if fill_holes:
            mask = _fill_small_holes(mask, max_hole_frac * mask.size)
        particle = _main_component(mask) if other_components == "uncertain" else mask
        said_fg[r0:r1, c0:c1] |= particle
        said_bg[r0:r1, c0:c1] |= ~mask
        unsure[r0:r1, c0:c1] |= mask & ~particle

    foreground = said_fg
    disagree = said_fg & said_bg
    core = np.zeros((H, W), bool)
    outer = np.zeros((H, W), bool)
    for r0, c0, r1, c1 in windows:
        box_h, box_w = r1 - r0, c1 - c0
        r_in = _radius(erode_px, erode_frac, box_h, box_w)
        r_out = _radius(dilate_px, dilate_frac, box_h, box_w)
        margin = int(math.ceil(max(r_in, r_out))) + 1
        wr0, wc0, wr1, wc1 = max(0, r0 - margin), max(0, c0 - margin), min(H, r1 + margin), min(W, c1 + margin)
        window = foreground[wr0:wr1, wc0:wc1]
        inner = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
        # core: no background of F within r_in (out-of-image pixels do not count as background)
        if window.all():
            core[r0:r1, c0:c1] = True
        else:
            core[r0:r1, c0:c1] |= ndimage.distance_transform_edt(window)[inner] > r_in
        # outer: this box's part of F, grown by r_out
        own = np.zeros_like(window)
        own[inner] = window[inner]
        if own.any():
            outer[wr0:wr1, wc0:wc1] |= ndimage.distance_transform_edt(~own) <= r_out

    weak = np.zeros((H, W), np.uint8)
    if background is not None:
        weak[~background] = UNCERTAIN
    if otsu_background is not None:
        weak[~_background_phase(smooth, dark, foreground | outer | unsure, otsu_background)] = UNCERTAIN
    weak[outer | unsure] = UNCERTAIN
    weak[core & ~disagree] = FOREGROUND
    return weak


#: Distance (px) within which a particle-phase pixel counts as explained by a detected particle.
EXPLAINED_MARGIN_PX = 3.0


def _background_phase(smooth: np.ndarray, dark: bool, found: np.ndarray, min_explained: float) -> np.ndarray:
    """Pixels that may be background: the image's Otsu background phase, if the detections explain its particle phase."""
    if float(smooth.max()) <= float(smooth.min()):
        return np.ones(smooth.shape, bool)  # flat image: nothing to check against
    threshold = _otsu(smooth)
    particle_phase = smooth <= threshold if dark else smooth > threshold
    near = ndimage.distance_transform_edt(~found) <= EXPLAINED_MARGIN_PX if found.any() else np.zeros_like(found)
    explained = float((particle_phase & near).sum()) / max(1, int(particle_phase.sum()))
    if explained < min_explained:
        logger.debug("detections explain %.2f of the particle phase (< %.2f): no background", explained, min_explained)
        return np.zeros(smooth.shape, bool)
    return ~particle_phase


# ----------------------------------------------------------------------------------------
# detectors


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
    from .segmentation.inference import segment
    from .segmentation.network import resolve_model

    net = resolve_model(model)

    def detect(image: np.ndarray):
        result = segment(image, model=net, diameter_px=diameter_px, confidence_threshold=score_threshold)
        boxes, scores = boxes_from_labels(result.labels), result.confidence.astype(np.float32)
        if confident_background is None:
            return boxes, scores
        return boxes, scores, result.seed_prob < confident_background  # (boxes, scores, background)

    return detect


def _otsu_detector(diameter_px: float | None, smooth_px: float) -> BoxDetector:
    from .segmentation.evaluation import otsu_watershed

    min_distance = 20 if diameter_px is None else max(2, int(round(diameter_px / 2)))

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
            "detector='mmdet' needs checkpoint=<detector.pth>, the weights written by "
            "napari_nanocrystal.detection.train_detector"
        )
    try:
        from .detection import detect_boxes, load_detector
    except ImportError as error:
        raise ImportError(
            f"detector='mmdet' needs mmdet 3.3 and mmcv 2.1 with compiled ops ({error}); "
            "install them with: pip install 'napari-nanocrystal[detector]' (mmcv must be built with ops, see README)"
        ) from error
    net = load_detector(checkpoint, config=config, device=device)

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return detect_boxes(net, image, score_threshold=score_threshold)

    return detect


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
        See the module docstring.  A callable receives the image as given and returns boxes
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
    factories: dict[str, Callable[[], BoxDetector]] = {
        "self": lambda: _self_detector(model, score_threshold, diameter_px, confident_background),
        "mmdet": lambda: _mmdet_detector(checkpoint, config, score_threshold, device),
        "otsu": lambda: _otsu_detector(diameter_px, float(smooth_px)),
    }
    if detector not in factories:
        raise ValueError(f"detector must be one of {DETECTORS} or a callable, not {detector!r}")
    return factories[detector]()


# ----------------------------------------------------------------------------------------
# the batch API


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
        from .segmentation.data import read_image

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
    options = dict(erode_px=erode_px, dilate_px=dilate_px, erode_frac=erode_frac, dilate_frac=dilate_frac, polarity=polarity,
                   otsu_background=otsu_background)
    name = detector if isinstance(detector, str) else getattr(detector, "__name__", "callable")
    yield f"loading detector {name}", 0.0
    detect = load_box_detector(
        detector, model=model, checkpoint=checkpoint, config=config, score_threshold=score_threshold, diameter_px=diameter_px, device=device,
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
        Where the boxes come from (see the module docstring and :func:`load_box_detector`).
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
