"""Boxes → weak label map: Otsu inside each box, then a band of uncertainty.

:func:`weak_label_from_boxes` is the procedure of Gu, Liang et al. (ACS Nano 2025, Methods)
described in :mod:`napari_nanocrystal.weak_labels`: gray conversion and median filter, an
Otsu threshold per box with one polarity per image, the box's main particle, erosion and
dilation per box, and (``otsu_background``) the background checked against the whole
image's Otsu phase.  Output maps are uint8 (H, W): :data:`BACKGROUND` 0, :data:`FOREGROUND`
1, :data:`UNCERTAIN` 255.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from ..images import to_gray
from ..label_files import FOREGROUND, UNCERTAIN
from .boxes import _as_boxes

logger = logging.getLogger(__name__)

# the weak-label values (0, 1, 255) are defined once, in the torch-free label_files module

_POLARITIES = ("auto", "dark", "bright")


def _gray(image) -> np.ndarray:
    """Finite float32 gray (:func:`napari_nanocrystal.images.to_gray`)."""
    image = to_gray(image)
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
