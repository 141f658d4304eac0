"""Weak labels for unlabelled TEM images: detector boxes → Otsu inside each box → a band of uncertainty.

Gu, Liang et al. (ACS Nano 2025, Methods, "The generation of weak labels") train the seed map
of their segmentation network on unlabelled images with labels made this way: a detector
(Cascade R-CNN, HRNet backbone, NWD instead of IoU) finds the particles; inside each box an
Otsu threshold separates particle from background; the mask is eroded and dilated, and the
band between the two is "uncertain" (excluded from the loss).

Label map convention (uint8, (H, W)): ``0`` background, ``1`` particle, ``255``
(:data:`UNCERTAIN`, defined once in :mod:`napari_nanocrystal.label_files`)
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

The package imports neither torch nor mmdet; the backends load them when first used.

Modules: :mod:`.boxes` (boxes of a label image), :mod:`.label_map` (boxes → weak label map),
:mod:`.backends` (the detectors, a name → factory table), :mod:`.batch` (over images).
"""

from __future__ import annotations

from ..label_files import BACKGROUND, FOREGROUND, UNCERTAIN
from .backends import DETECTORS, BoxDetector, load_box_detector
from .batch import detections, generate_weak_labels, iter_weak_labels
from .boxes import boxes_from_labels
from .label_map import weak_label_from_boxes

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
