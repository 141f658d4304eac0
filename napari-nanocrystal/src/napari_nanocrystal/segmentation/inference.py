"""Segment particles in an image with a seed/flow network (Gu et al. 2025; Cellpose-style).

(Why past ~500 lines: the passes and the two diameter rules of ``"auto"`` that drive them share one
set of options and timings; the tiled network pass (:mod:`.tiling`) and the flow following with its
QC kernel (:mod:`.masks`) are split out.)

Pipeline of :func:`segment`:

1. **Normalise** any input (uint8/uint16/float, gray, RGB or RGBA channel-last) to one gray
   float32 channel whose 1st/99th percentiles (the model's ``percentiles``) map to 0/1.
2. **Rescale**: with ``diameter_px`` given, resize the image by ``model diameter /
   diameter_px`` so particles have the diameter the network was trained at.  The default,
   ``diameter_px="auto"``, estimates it:

   * models with a size model (``config["size_model"]``, :mod:`.size_model`; the shipped
     default has one): cellpose's procedure — the network's style on the central
     ``PROBE_SIZE``² px (encoder only) gives the median diameter; the image is rescaled to it
     unless it lies within ``SCALE_BAND`` × of the model's diameter (the network is trained
     on zooms over that band and more), and segmented once; when the area-weighted median
     diameter of the particles found (``targets.area_weighted_diameter_px``: small pieces do
     not outvote large particles) disagrees with the one used by more than ``REFINE_RATIO`` ×,
     the image is segmented once more at the measured diameter (cellpose's second step).
     That first pass only measures, so it runs on the central tiles (``PROBE_FIRST_PASS``:
     the tiles whose centres lie in the same central ``PROBE_SIZE``² px; their network
     outputs are kept): the rest of the image is run only when no second pass follows, and
     the whole first pass decides as before when those tiles are the whole image or hold
     fewer than ``PROBE_MIN_PARTICLES`` particles not cut by their edges;
   * other models: segment at the input size and at a size where particles
     ``AUTO_DIAMETER_LARGE`` times the model's diameter fit, keep the pass whose median
     particle diameter agrees best with the diameter it assumed, then segment again at the
     measured diameter until the two agree within ``AUTO_DIAMETER_TOLERANCE`` (at most
     ``AUTO_DIAMETER_PASSES`` - 1 more passes).

   ``diameter_px=None`` runs the network at the input size.
3. **Network, tiled** (:mod:`.tiling`): per axis the fewest tiles of at most ``tile_size`` px whose neighbours
   overlap by at least ``tile_overlap`` × ``tile_size``, shrunk to the smallest size that keeps
   that overlap and evenly spaced; run one at a time and blended: every tile's output is
   weighted by a separable linear ramp that rises from ~0 at the tile edge to 1 at
   ``tile_overlap`` × tile inwards, and the weighted sum is divided by the summed weights.
   Where one tile alone covers a pixel (image border) its output is used as is.  Memory is
   one tile plus the (3, H, W) float32 output.  Weights and tensors are channels-last (oneDNN's
   faster convolutions, float32 or bfloat16); ``precision="int8"`` runs the model's int8 copy
   (:mod:`.quantize`: calibrated on training images, built at load from the float weights).
4. **Masks** (:mod:`.masks`): cellpose ``dynamics.compute_masks``: pixels with seed probability
   > ``seed_threshold`` follow the flows for ``niter`` steps, converge into instances; instances
   whose flows disagree with their own shape by more than ``flow_threshold`` (cellpose's
   flow-error QC) are dropped.  On CPU its cost is the number of seed pixels × ``niter`` plus a
   few full-image int32 arrays (≈ 1 GB peak at 4096²).  Run at the network's scale, except for
   an enlarged image (``MASKS_AT_INPUT_SCALE``): its flows and seed logits are resized back first
   and followed for ``niter`` / scale steps (cellpose's ``resample``; 1/scale³ of the work).
5. **Back to the input size**: labels by nearest neighbour (seed probability and flows
   bilinearly), unless the masks were computed there; holes filled and objects below
   ``min_size_px`` (input pixels) removed.
6. **Confidence filter**: each instance's confidence is its mean seed probability; instances
   below ``confidence_threshold`` are dropped and labels renumbered 1..N.  The default pixel
   threshold (0.4) is below the default confidence threshold (0.5), so masks can grow into
   uncertain pixels while instances that are uncertain overall are removed.

``SegmentationResult.timings`` holds the seconds of each stage of each pass (the size estimate, the
probe, the network, flow following, flow QC, ...): ``benchmarks/segmentation_speed.py`` reports them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import fastremap
import numpy as np
import torch
from cellpose import utils
from scipy import ndimage

from .._progress import ProgressCallback
from ._image import DEFAULT_PERCENTILES, prepare_image, resize_image, resize_labels, scaled_shape
from .masks import flows_to_masks, mask_flows, remove_bad_flow_masks
from .network import resolve_model
from .tiling import (
    PRECISIONS,
    _report,
    _use_bfloat16,
    bfloat16_supported,
    channels_last_copy,
    network_for_precision,
    predict_flows,
    tile_grid,
)

__all__ = [
    "AUTO_DIAMETER_LARGE",
    "AUTO_DIAMETER_PASSES",
    "AUTO_DIAMETER_TOLERANCE",
    "PRECISIONS",
    "REFINE_RATIO",
    "SCALE_BAND",
    "SegmentationResult",
    "bfloat16_supported",
    "channels_last_copy",
    "flows_to_masks",
    "mask_flows",
    "predict_flows",
    "refine_diameter",
    "remove_bad_flow_masks",
    "rescale_diameter",
    "second_pass_diameter",
    "segment",
    "tile_grid",
]

logger = logging.getLogger(__name__)

#: ``diameter_px="auto"`` with a size model: no rescaling when the estimate is within this
#: factor of the model's diameter (the default model is trained on zooms 0.5-2) ...
SCALE_BAND = 1.5
#: ... and a second pass at the particles' measured diameter when it differs from the one
#: used by more than this factor.  Chosen on training data only (benchmarks/size_rule_selection.py):
#: on the EMPS training images with out-of-fold size estimates 2.0 scores higher (AP50 0.767 vs
#: 0.726: a second pass fragments large particles the first got right), but on the weakly labelled
#: real TEM training image 1-0021 (~16 px particles) it skips the pass they need (particle-pixel
#: recall 0.27 vs 0.70); the target domain wins, so 1.5.  The diameter measured is the
#: area-weighted median (same benchmark: EMPS-train AP50 0.782 vs 0.726 for the count median, and on the
#: weak real TEM images the stars of 1-0007 are segmented whole, recall 0.90 vs 0.61).
REFINE_RATIO = 1.5

#: ``diameter_px="auto"`` with a size model: the first pass, which only measures the particles, runs on the
#: central tiles (:func:`_probe_diameter`; the rest of the image only when no second pass follows) ...
PROBE_FIRST_PASS = True
#: ... unless they hold fewer than this many whole particles (then the whole image decides).
PROBE_MIN_PARTICLES = 10

#: An enlarged image's masks are computed at the input size (its flows and seed logits resized back,
#: ``niter`` / scale steps: cellpose's ``resample``), not at the network's.
MASKS_AT_INPUT_SCALE = True

#: ``diameter_px="auto"`` without a size model: after the two starting passes, at most this many - 1 refinements ...
AUTO_DIAMETER_PASSES = 3
#: ... stopping once the median diameter found is within this fraction of the diameter used.
AUTO_DIAMETER_TOLERANCE = 0.15
#: ... the second starting pass assumes particles this many times the model's diameter.
AUTO_DIAMETER_LARGE = 4.0


@dataclass
class SegmentationResult:
    """Output of :func:`segment`; every image has the input's (H, W).

    Attributes
    ----------
    labels : np.ndarray
        int32 (H, W); 0 = background, 1..N = particles (consecutive).
    confidence : np.ndarray
        float32 (N,); ``confidence[i - 1]`` is the mean seed probability of label i.
    seed_prob : np.ndarray
        float32 (H, W); per-pixel foreground probability.
    flows : np.ndarray
        float32 (2, H, W); predicted (flow_y, flow_x) in network units (5 × unit vectors,
        the cellpose convention).
    scale : float
        Factor the image was resized by for the network (1.0 without ``diameter_px``).
    diameter_px : float or None
        Particle diameter (input px) the image was segmented at: the one given, the
        estimate of ``diameter_px="auto"``, or None (native size).
    diameter_estimate_px : float or None
        ``diameter_px="auto"`` with a size model: the size model's estimate (input px).
    passes : int
        Segmentation passes run (``"auto"`` may run more than one; a probe counts as one).
    timings : dict
        Seconds per stage, e.g. ``{"size estimate": 0.1, "pass 1: network": 0.9, ...}``.
    """

    labels: np.ndarray
    confidence: np.ndarray
    seed_prob: np.ndarray
    flows: np.ndarray
    scale: float = 1.0
    diameter_px: float | None = None
    diameter_estimate_px: float | None = None
    passes: int = 1
    timings: dict = field(default_factory=dict)

    @property
    def n_objects(self) -> int:
        return int(self.confidence.size)

    def confidence_by_label(self) -> dict[int, float]:
        """{label: mean seed probability} for labels 1..N."""
        return {i + 1: float(c) for i, c in enumerate(self.confidence)}


def _model_settings(net) -> tuple[float, tuple[float, float]]:
    config = getattr(net, "config", None) or {}
    diameter = float(config.get("diameter_px", 30.0))
    percentiles = tuple(config.get("percentiles", DEFAULT_PERCENTILES))
    return diameter, percentiles


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float32)
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def segment(
    image,
    model="default",
    *,
    diameter_px: float | str | None = "auto",
    confidence_threshold: float | None = 0.5,
    flow_threshold: float | None = 0.4,
    seed_threshold: float = 0.4,
    tile_size: int = 512,
    tile_overlap: float = 0.1,
    min_size_px: int = 15,
    niter: int = 50,
    precision: str = "auto",
    progress: ProgressCallback | None = None,
) -> SegmentationResult:
    """Segment the particles of one image into an instance label image.

    Parameters
    ----------
    image : array_like
        (H, W) gray of any dtype (uint8, uint16, float, …) or (H, W, 3|4) RGB/RGBA,
        channel last (converted to gray).
    model : "default", str/path or torch module
        A shipped model name, a weight file written by ``SeedFlowNet.save``, a
        ``SeedFlowNet``, or any callable mapping (1, 1, h, w) → (1, 3, h, w) tensors
        (flow_y, flow_x, seed logit; cellpose scale).  ``"default"`` is the model shipped in
        ``napari_nanocrystal/models`` (see its model card there).
    diameter_px : float, "auto" or None
        Typical particle diameter in input pixels.  The image is resized so that particles
        have the model's training diameter (``model.config["diameter_px"]``, 30 px); outputs
        are resized back.  "auto" (default): estimated (the model's size model, see the module
        docstring; usually one segmentation plus an encoder pass on 512² px).  None: run at
        the input size.
    confidence_threshold : float or None
        Drop instances whose mean seed probability is below it (None/0: keep all).
    flow_threshold : float or None
        Cellpose flow-error QC: drop instances whose flows disagree more than this (None/0: off).
    seed_threshold : float
        Seed probability above which a pixel is assigned to a particle.
    tile_size, tile_overlap : int, float
        Tiling of the network pass (px at network scale; fraction of a tile).
    min_size_px : int
        Remove instances smaller than this many input pixels (after hole filling).
    niter : int
        Flow-following steps (at network scale, where particles are ~30 px across).  50 (since
        2026-12-07; was 100, cellpose's 200 before that) halves the flow following: EMPS grouped val
        AP50/AP75 0.736/0.638 → 0.735/0.635, the PbSe crop and the real TEM images' counts and
        sizes unchanged (BENCHMARKS.md, "Speed, session 19").  An enlarged image's flows are followed
        at the input size for ``niter`` / scale steps.
    precision : {"auto", "float32", "bfloat16", "int8"}
        Arithmetic of the network pass (:func:`predict_flows`); "auto" uses bfloat16 on CPUs
        that run it natively; "int8": the model's int8 copy (:mod:`.quantize`; the size estimate
        stays float32).
    progress : callable(message: str, fraction: float) or None
        Progress callback.

    Returns
    -------
    SegmentationResult
        ``labels`` int32 (H, W), ``confidence`` float32 (N,), ``seed_prob`` float32 (H, W),
        ``flows`` float32 (2, H, W), ``scale``.
    """
    from ..validation import check_segment_inputs  # one validation layer for API, CLI and widgets

    check_segment_inputs(
        image, model, diameter_px=diameter_px, confidence_threshold=confidence_threshold, flow_threshold=flow_threshold, tile_size=tile_size
    )
    if not 0.0 < seed_threshold < 1.0:
        raise ValueError(f"seed_threshold must be in (0, 1), got {seed_threshold}")
    net = resolve_model(model)
    if isinstance(net, torch.nn.Module):  # once for the size estimate and every pass (the caller's module is left as is)
        net = network_for_precision(channels_last_copy(net), precision)
    options = dict(
        confidence_threshold=confidence_threshold,
        flow_threshold=flow_threshold,
        seed_threshold=seed_threshold,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        min_size_px=min_size_px,
        niter=niter,
        precision=precision,
    )
    _use_bfloat16(precision)  # validates
    if diameter_px == "auto" and (getattr(net, "config", None) or {}).get("size_model") is not None:
        return _segment_size_model(image, net, options, progress)
    if diameter_px == "auto":
        return _segment_auto_diameter(image, net, options, progress)
    return _segment_once(image, net, diameter_px, progress=progress, **options)


def rescale_diameter(estimate: float, net_diameter: float, band: float | None = None) -> float | None:
    """The diameter to rescale to for a size estimate: None (no rescaling) within ``band`` (default
    :data:`SCALE_BAND`) × of the network's diameter, else the estimate."""
    band = SCALE_BAND if band is None else band
    return None if abs(math.log(estimate / net_diameter)) <= math.log(band) else estimate


def refine_diameter(found: float, assumed: float, ratio: float | None = None) -> float | None:
    """The diameter of a second pass: the particles' measured diameter ``found`` when it differs from
    the ``assumed`` one by more than ``ratio`` (default :data:`REFINE_RATIO`) ×, else None."""
    ratio = REFINE_RATIO if ratio is None else ratio
    return found if found > 0 and abs(math.log(found / assumed)) > math.log(ratio) else None


def second_pass_diameter(labels: np.ndarray, assumed: float, ratio: float | None = None) -> float | None:
    """The diameter of a second pass from the particles a first pass found at ``assumed`` px.

    The area-weighted median diameter (:func:`~.targets.area_weighted_diameter_px`: small pieces
    do not outvote large particles) decides through :func:`refine_diameter`.
    """
    from .targets import area_weighted_diameter_px

    found = area_weighted_diameter_px(labels) if labels.max(initial=0) else 0.0
    return refine_diameter(found, assumed, ratio)


def _probe_diameter(gray: np.ndarray, net, used, options: dict, cache: dict, clock: _Clock) -> tuple[float | None, np.ndarray]:
    """The first pass of ``"auto"`` on the central tiles only: (diameter, image at the scale of ``used``).

    The tiles of the layout at that scale whose centres lie in the central :data:`~.size_model.PROBE_SIZE`²
    input px (the size estimate's crop; at least the tile nearest the centre) are run through the network
    (outputs kept in ``cache`` for the full pass) and their masks filtered as a full pass would be; the
    diameter is the area-weighted median of the particles not cut by the probe's edges, in input px.
    None when those tiles are the whole image or hold fewer than :data:`PROBE_MIN_PARTICLES` particles
    (then the whole first pass decides, as before).
    """
    from .size_model import PROBE_SIZE
    from .targets import area_weighted_diameter_px

    net_diameter, _ = _model_settings(net)
    scale = 1.0 if used is None else net_diameter / float(used)
    scaled = gray if scale == 1.0 else resize_image(gray, scaled_shape(gray.shape, scale))
    clock.lap("normalise + resize")
    th, ys, tw, xs, _ = tile_grid(scaled.shape, options["tile_size"], options["tile_overlap"])
    rows, cols = scaled.shape
    half = PROBE_SIZE * scale / 2.0
    layout = [(y0, x0) for y0 in ys for x0 in xs]
    chosen = [(y0, x0) for y0, x0 in layout if abs(y0 + th / 2 - rows / 2) <= half and abs(x0 + tw / 2 - cols / 2) <= half]
    chosen = chosen or [min(layout, key=lambda t: (t[0] + th / 2 - rows / 2) ** 2 + (t[1] + tw / 2 - cols / 2) ** 2)]
    if len(chosen) == len(layout):
        return None, scaled
    maps = predict_flows(
        net,
        scaled,
        tile_size=options["tile_size"],
        tile_overlap=options["tile_overlap"],
        precision=options["precision"],
        tiles=chosen,
        cache=cache,
    )
    clock.lap("network")
    masks = flows_to_masks(
        maps[:2],
        maps[2],
        niter=options["niter"],
        seed_threshold=options["seed_threshold"],
        flow_threshold=options["flow_threshold"],
        lap=clock.lap,
    )
    labels, _ = _filter_instances(masks, _sigmoid(maps[2]), options["min_size_px"] * scale**2, options["confidence_threshold"])
    top, left = min(y0 for y0, _ in chosen), min(x0 for _, x0 in chosen)
    edges = [
        edge
        for edge, inside in (
            (labels[0], top > 0),
            (labels[-1], top + labels.shape[0] < rows),
            (labels[:, 0], left > 0),
            (labels[:, -1], left + labels.shape[1] < cols),
        )
        if inside
    ]
    cut = np.unique(np.concatenate(edges)) if edges else np.zeros(0, np.int32)
    labels[np.isin(labels, cut[cut > 0])] = 0
    count = len(np.unique(labels)) - 1
    clock.lap("holes, size and confidence filters")
    if count < PROBE_MIN_PARTICLES:
        logger.info("probe: %d whole particles on %d of %d tiles, too few: the whole image decides", count, len(chosen), len(layout))
        return None, scaled
    found = area_weighted_diameter_px(labels) / scale
    logger.info("probe: %d particles on %d of %d tiles, area-weighted median %.1f px", count, len(chosen), len(layout), found)
    return found, scaled


def _segment_size_model(image, net, options: dict, progress: ProgressCallback | None) -> SegmentationResult:
    """``diameter_px="auto"`` with the model's size model (see the module docstring)."""
    from .size_model import SizeModel, image_style

    timings: dict = {}
    clock = _Clock(timings)
    net_diameter, percentiles = _model_settings(net)
    _report(progress, "estimating the particle size", 0.0)
    gray = prepare_image(image, percentiles)  # normalised once, for the estimate and the passes
    style = image_style(net, gray, bfloat16=_use_bfloat16(options["precision"]))
    estimate = float(SizeModel.from_dict(net.config["size_model"]).predict(style)[0])
    clock.lap("size estimate")
    used = rescale_diameter(estimate, net_diameter)
    logger.info("size model: median particle diameter %.1f px (%s)", estimate, "no rescaling" if used is None else "rescaling")

    def _span(start, stop):
        return None if progress is None else (lambda message, fraction: progress(message, start + (stop - start) * fraction))

    assumed = net_diameter if used is None else used
    cache: dict = {}  # network tiles at the scale of `used`: the probe's are not run twice
    probed, scaled = (None, None)
    if PROBE_FIRST_PASS:
        probed, scaled = _probe_diameter(gray, net, used, options, cache, _Clock(timings, "pass 1 (probe): "))
    first = dict(prepared=True, scaled=scaled, cache=cache, timings=timings, **options)
    if probed is None:  # the whole first pass decides
        result = _segment_once(gray, net, used, progress=_span(0.05, 0.7), name="pass 1", **first)
        found = second_pass_diameter(result.labels, assumed)
    else:
        result, found = None, refine_diameter(probed, assumed)
    passes = 1
    if found is not None:
        logger.info("particles found measure %.1f px, segmented at %.1f px: segmenting again", found, assumed)
        again = _segment_once(gray, net, found, progress=_span(0.7, 1.0), prepared=True, timings=timings, name="pass 2", **options)
        passes = 2
        if again.n_objects:
            result = again
    if result is None:  # the probe decided against a second pass (or the second found nothing): the whole first pass
        result = _segment_once(gray, net, used, progress=_span(0.05, 1.0), name="pass 1", **first)
    result.diameter_estimate_px = estimate
    result.passes = passes
    result.timings = timings
    if result.diameter_px is None:
        result.diameter_px = estimate
    _report(progress, f"done: {result.n_objects} particles (diameter {result.diameter_px:.1f} px)", 1.0)
    return result


def _segment_auto_diameter(image, net, options: dict, progress: ProgressCallback | None) -> SegmentationResult:
    """Estimate the particle diameter with the model itself, then segment at it (see module docs)."""
    from .targets import median_diameter_px

    net_diameter, _ = _model_settings(net)
    starts = (None, AUTO_DIAMETER_LARGE * net_diameter)
    total = len(starts) + AUTO_DIAMETER_PASSES - 1
    done = [0]

    def run(diameter):
        index = done[0]
        done[0] += 1

        def _pass_progress(message, fraction):
            if progress is not None:
                progress(f"diameter pass {index + 1}: {message}", (index + fraction) / total)

        result = _segment_once(image, net, diameter, progress=_pass_progress, **options)
        found = median_diameter_px(result.labels) if result.n_objects else 0.0
        used = diameter if diameter is not None else net_diameter
        logger.info("auto diameter pass %d: segmented at %.1f px, median particle %.1f px", index + 1, used, found)
        return result, used, found

    # two starting scales: the input's, and one where particles 4x the model's diameter fit
    # (large particles fragment at the input's scale); keep the self-consistent one
    tried = [run(d) for d in starts]
    found_any = [t for t in tried if t[2] > 0]
    if not found_any:
        return tried[0][0]
    result, used, found = min(found_any, key=lambda t: abs(math.log(t[2] / t[1])))
    for _ in range(AUTO_DIAMETER_PASSES - 1):
        if abs(found / used - 1.0) <= AUTO_DIAMETER_TOLERANCE:
            break
        again, again_used, again_found = run(found)
        if again_found == 0:
            break
        result, used, found = again, again_used, again_found
    _report(progress, f"done: {result.n_objects} particles (diameter {used:.1f} px)", 1.0)
    return result


def _filter_instances(masks: np.ndarray, seed_prob: np.ndarray, min_size_px: float, confidence_threshold) -> tuple[np.ndarray, np.ndarray]:
    """Holes filled, objects under ``min_size_px`` removed, instances with mean seed probability under
    ``confidence_threshold`` dropped; returns (labels int32 1..N, confidence float32 (N,))."""
    labels = utils.fill_holes_and_remove_small_masks(masks.astype(np.int32, copy=False), min_size=int(min_size_px))
    labels = fastremap.renumber(labels, in_place=True)[0].astype(np.int32, copy=False)  # 1..n, no gaps
    n = int(labels.max(initial=0))
    confidence = (
        np.asarray(ndimage.mean(seed_prob, labels, index=np.arange(1, n + 1)), dtype=np.float32).reshape(-1)
        if n
        else np.zeros(0, np.float32)
    )
    keep = np.ones(n, bool) if not confidence_threshold else confidence >= confidence_threshold
    if not keep.all():
        logger.info("confidence filter dropped %d of %d instances", int((~keep).sum()), n)
    lut = np.zeros(n + 1, np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels], confidence[keep]


class _Clock:
    """Seconds per stage, added up under ``prefix`` + stage name into ``timings``."""

    def __init__(self, timings: dict | None, prefix: str = ""):
        self.timings, self.prefix, self.last = timings, prefix, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            key = self.prefix + stage
            self.timings[key] = self.timings.get(key, 0.0) + now - self.last
        self.last = now


def _segment_once(
    image,
    net,
    diameter_px,
    *,
    confidence_threshold,
    flow_threshold,
    seed_threshold,
    tile_size,
    tile_overlap,
    min_size_px,
    niter,
    precision,
    progress,
    prepared: bool = False,
    scaled: np.ndarray | None = None,
    cache: dict | None = None,
    timings: dict | None = None,
    name: str = "pass 1",
) -> SegmentationResult:
    """One segmentation at ``diameter_px``; ``prepared=True``: ``image`` is already the normalised gray.

    ``scaled``: that gray already resized for ``diameter_px``; ``cache``: tile outputs of the network
    at this scale (:func:`predict_flows`); ``timings``: seconds per stage added under ``name``.
    """
    net_diameter, percentiles = _model_settings(net)
    timings = {} if timings is None else timings
    clock = _Clock(timings, f"{name}: ")

    _report(progress, "normalising image", 0.0)
    gray = image if prepared else prepare_image(image, percentiles)
    shape = gray.shape
    scale = 1.0 if diameter_px is None else net_diameter / float(diameter_px)
    if scaled is not None:
        gray = scaled
    elif scale != 1.0:
        gray = resize_image(gray, scaled_shape(shape, scale))
        logger.info("resized %s → %s for the network (scale %.3f)", shape, gray.shape, scale)
    clock.lap("normalise + resize")

    maps = predict_flows(
        net,
        gray,
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        precision=precision,
        progress=progress,
        progress_span=(0.05, 0.8),
        cache=cache,
    )
    flows, logits = maps[:2], maps[2]
    clock.lap("network")

    _report(progress, "following flows", 0.8)
    seed_prob = _sigmoid(logits)
    at_input = scale > 1.0 and MASKS_AT_INPUT_SCALE  # enlarged: flows followed at the input size, as cellpose does
    if at_input:
        seed_prob = np.clip(resize_image(seed_prob, shape), 0.0, 1.0)
        flows, logits = resize_image(flows, shape), resize_image(logits, shape)
        clock.lap("back to the input size")
    steps = max(1, int(round(niter / scale))) if at_input else niter
    masks = flows_to_masks(flows, logits, niter=steps, seed_threshold=seed_threshold, flow_threshold=flow_threshold, lap=clock.lap)
    if not at_input:
        if scale != 1.0:
            masks = resize_labels(masks, shape)
            seed_prob = np.clip(resize_image(seed_prob, shape), 0.0, 1.0)
            flows = resize_image(flows, shape)
        clock.lap("back to the input size")
    del maps, logits

    _report(progress, "filtering instances", 0.95)
    labels, confidence = _filter_instances(masks, seed_prob, min_size_px, confidence_threshold)
    clock.lap("holes, size and confidence filters")
    _report(progress, f"done: {confidence.size} particles", 1.0)
    return SegmentationResult(
        labels=labels,
        confidence=confidence,
        seed_prob=seed_prob.astype(np.float32, copy=False),
        flows=flows.astype(np.float32, copy=False),
        scale=scale,
        diameter_px=None if diameter_px is None else float(diameter_px),
        timings=timings,
    )
