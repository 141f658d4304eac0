"""Segment particles in an image with a seed/flow network (Gu et al. 2025; Cellpose-style).

(Why past ~500 lines: the tiled network pass, the GIL-free flow QC kernel and the two diameter
rules of ``"auto"`` are one pipeline with shared options; the QC kernel could move out next.)

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
     the image is segmented once more at the measured diameter (cellpose's second step);
   * other models: segment at the input size and at a size where particles
     ``AUTO_DIAMETER_LARGE`` times the model's diameter fit, keep the pass whose median
     particle diameter agrees best with the diameter it assumed, then segment again at the
     measured diameter until the two agree within ``AUTO_DIAMETER_TOLERANCE`` (at most
     ``AUTO_DIAMETER_PASSES`` - 1 more passes).

   ``diameter_px=None`` runs the network at the input size.
3. **Network, tiled**: per axis the fewest tiles of at most ``tile_size`` px whose neighbours
   overlap by at least ``tile_overlap`` × ``tile_size``, shrunk to the smallest size that keeps
   that overlap and evenly spaced; run one at a time and blended: every tile's output is
   weighted by a separable linear ramp that rises from ~0 at the tile edge to 1 at
   ``tile_overlap`` × tile inwards, and the weighted sum is divided by the summed weights.
   Where one tile alone covers a pixel (image border) its output is used as is.  Memory is
   one tile plus the (3, H, W) float32 output.
4. **Masks**: cellpose ``dynamics.compute_masks`` on the whole (rescaled) image: pixels with
   seed probability > ``seed_threshold`` follow the flows for ``niter`` steps, converge into
   instances; instances whose flows disagree with their own shape by more than
   ``flow_threshold`` (cellpose's flow-error QC) are dropped.  On CPU its cost is the number
   of seed pixels × ``niter`` plus a few full-image int32 arrays (≈ 1 GB peak at 4096²).
5. **Back to the input size**: labels by nearest neighbour, seed probability and flows
   bilinearly; holes filled and objects below ``min_size_px`` (input pixels) removed.
6. **Confidence filter**: each instance's confidence is its mean seed probability; instances
   below ``confidence_threshold`` are dropped and labels renumbered 1..N.  The default pixel
   threshold (0.4) is below the default confidence threshold (0.5), so masks can grow into
   uncertain pixels while instances that are uncertain overall are removed.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass

import fastremap
import numba
import numpy as np
import torch
from cellpose import dynamics, utils
from scipy import ndimage

from .._progress import ProgressCallback
from ._image import DEFAULT_PERCENTILES, prepare_image, resize_image, resize_labels, scaled_shape
from .network import resolve_model

__all__ = [
    "AUTO_DIAMETER_LARGE",
    "AUTO_DIAMETER_PASSES",
    "AUTO_DIAMETER_TOLERANCE",
    "PRECISIONS",
    "REFINE_RATIO",
    "SCALE_BAND",
    "SegmentationResult",
    "bfloat16_supported",
    "mask_flows",
    "predict_flows",
    "refine_diameter",
    "remove_bad_flow_masks",
    "rescale_diameter",
    "second_pass_diameter",
    "segment",
]

logger = logging.getLogger(__name__)

_CPU = torch.device("cpu")

#: Arithmetic of the network pass (see :func:`predict_flows`).
PRECISIONS = ("auto", "float32", "bfloat16")

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
        Segmentation passes run (``"auto"`` may run more than one).
    """

    labels: np.ndarray
    confidence: np.ndarray
    seed_prob: np.ndarray
    flows: np.ndarray
    scale: float = 1.0
    diameter_px: float | None = None
    diameter_estimate_px: float | None = None
    passes: int = 1

    @property
    def n_objects(self) -> int:
        return int(self.confidence.size)

    def confidence_by_label(self) -> dict[int, float]:
        """{label: mean seed probability} for labels 1..N."""
        return {i + 1: float(c) for i, c in enumerate(self.confidence)}


def _report(progress: ProgressCallback | None, message: str, fraction: float) -> None:
    logger.debug("%s (%.0f %%)", message, 100 * fraction)
    if progress is not None:
        progress(message, float(fraction))


def _tile_layout(length: int, tile: int, overlap_px: int, multiple: int = 16) -> tuple[int, list[int]]:
    """Tile edge and start offsets along one axis.

    The fewest tiles of at most ``tile`` px whose neighbours overlap by at least
    ``overlap_px``; the tiles are then shrunk to the smallest size (a multiple of
    ``multiple`` where possible) that keeps that overlap, and spaced evenly.
    """
    if length <= tile:
        return length, [0]
    count = int(math.ceil((length - overlap_px) / (tile - overlap_px)))
    size = int(math.ceil((length + (count - 1) * overlap_px) / count))
    size = min(tile, -(-size // multiple) * multiple)
    return size, [int(s) for s in np.linspace(0, length - size, count).round().astype(int)]


def _ramp(length: int, ramp: int) -> np.ndarray:
    """1-D blending weight: linear from 1/(ramp+1) at both ends to 1 at ``ramp`` px inwards."""
    index = np.arange(length, dtype=np.float32)
    return np.minimum(1.0, np.minimum(index + 1, length - index) / (ramp + 1.0)).astype(np.float32)


def bfloat16_supported() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN with AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _use_bfloat16(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return precision == "bfloat16" or (precision == "auto" and bfloat16_supported())


def _call_network(net, tile: np.ndarray, in_channels: int, bfloat16: bool = False) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))[None, None]
    if in_channels > 1:
        x = x.expand(1, in_channels, *tile.shape).contiguous()
    if bfloat16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x.contiguous(memory_format=torch.channels_last))
        y = y.float() if isinstance(y, torch.Tensor) else [t.float() if isinstance(t, torch.Tensor) else t for t in y]
    else:
        y = net(x)
    if isinstance(y, (tuple, list)):  # e.g. a bare cellpose CPnet returns (y, style, ...)
        y = y[0]
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.shape != (1, 3, *tile.shape):
        raise ValueError(f"network returned shape {y.shape} for a tile of {tile.shape}; expected (1, 3, {tile.shape[0]}, {tile.shape[1]})")
    return y[0].astype(np.float32, copy=False)


def predict_flows(
    net,
    image: np.ndarray,
    *,
    tile_size: int = 512,
    tile_overlap: float = 0.1,
    precision: str = "auto",
    progress: ProgressCallback | None = None,
    progress_span=(0.0, 1.0),
) -> np.ndarray:
    """Run a network over a normalised gray image in blended overlapping tiles.

    Parameters
    ----------
    net : callable
        Maps a float32 tensor (1, C, h, w) to (1, 3, h, w): flow_y, flow_x, seed logit.
        ``C`` is ``net.in_channels`` if present, else 1 (the gray image is repeated).
    image : np.ndarray
        float32 (H, W), already normalised (see ``prepare_image``).
    tile_size : int
        Largest tile edge (px); images up to this size are run in one piece.  Larger images
        get the fewest tiles that overlap by ``tile_overlap``, shrunk to the smallest size
        that keeps the overlap (less work than full-size tiles).
    tile_overlap : float
        Minimum overlap of neighbouring tiles as a fraction of ``tile_size``, in [0.05, 0.5]
        (clipped, as in cellpose); also the width of the blending ramp.
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the network pass.  "bfloat16": autocast to bfloat16 with channels-last
        tensors (~3× faster on CPUs with native bfloat16; outputs differ from float32 by
        ~1 % of their spread); "auto": bfloat16 where :func:`bfloat16_supported`, else float32.

    Returns
    -------
    np.ndarray
        float32 (3, H, W): flow_y, flow_x, seed logit.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, columns), got shape {image.shape}")
    tile_size = int(tile_size)
    if tile_size < 16:
        raise ValueError(f"tile_size must be >= 16 px, got {tile_size}")
    overlap_px = max(1, int(round(min(0.5, max(0.05, float(tile_overlap))) * tile_size)))
    rows, cols = image.shape
    th, ys = _tile_layout(rows, tile_size, overlap_px)
    tw, xs = _tile_layout(cols, tile_size, overlap_px)
    ramp = overlap_px
    weight = _ramp(th, ramp)[:, None] * _ramp(tw, ramp)[None, :]
    in_channels = int(getattr(net, "in_channels", 1))

    bfloat16 = _use_bfloat16(precision) and isinstance(net, torch.nn.Module)
    if bfloat16:  # a channels-last copy: the caller's module keeps its memory format
        net = copy.deepcopy(net).to(memory_format=torch.channels_last)
    was_training = isinstance(net, torch.nn.Module) and net.training
    if isinstance(net, torch.nn.Module):
        net.eval()
    n_tiles, done = len(ys) * len(xs), 0
    start, span = progress_span[0], progress_span[1] - progress_span[0]
    try:
        with torch.inference_mode():
            if n_tiles == 1:
                return _call_network(net, image, in_channels, bfloat16)
            output = np.zeros((3, rows, cols), np.float32)
            total = np.zeros((rows, cols), np.float32)
            for y0 in ys:
                for x0 in xs:
                    tile_out = _call_network(net, image[y0 : y0 + th, x0 : x0 + tw], in_channels, bfloat16)
                    output[:, y0 : y0 + th, x0 : x0 + tw] += tile_out * weight
                    total[y0 : y0 + th, x0 : x0 + tw] += weight
                    done += 1
                    _report(progress, f"network: tile {done}/{n_tiles}", start + span * done / n_tiles)
    finally:
        if was_training:
            net.train()
    output /= total
    return output


@numba.njit(nogil=True)
def _diffuse_from_centre(T, y, x, ymed, xmed, lx, niter):  # pragma: no cover - compiled
    """cellpose's ``dynamics._extend_centers`` as scalar loops: same sums, same order, bitwise the
    same result, without the nine temporary arrays per step (3x faster)."""
    n = y.size
    new = np.empty(n, np.float64)
    for _ in range(niter):
        T[ymed * lx + xmed] += 1
        for k in range(n):
            i = y[k] * lx + x[k]
            new[k] = (
                1
                / 9.0
                * (T[i] + T[i - lx] + T[i + lx] + T[i - 1] + T[i + 1] + T[i - lx - 1] + T[i - lx + 1] + T[i + lx - 1] + T[i + lx + 1])
            )
        for k in range(n):
            T[y[k] * lx + x[k]] = new[k]
    return T


def mask_flows(masks: np.ndarray) -> np.ndarray:
    """Unit flows (2, H, W) of an instance map: ``cellpose.dynamics.masks_to_flows_cpu(masks)[0]``.

    The same heat diffusion from each mask's centre pixel (tested bitwise equal), with the
    diffusion kernel written as scalar loops; releases the GIL.
    """
    Ly, Lx = masks.shape
    mu = np.zeros((2, Ly, Lx), np.float64)
    for i, si in enumerate(ndimage.find_objects(masks)):
        if si is None:
            continue
        sr, sc = si
        ly, lx = sr.stop - sr.start + 2, sc.stop - sc.start + 2
        y, x = np.nonzero(masks[sr, sc] == (i + 1))
        y = y.astype(np.int32) + 1
        x = x.astype(np.int32) + 1
        nearest = ((x - x.mean()) ** 2 + (y - y.mean()) ** 2).argmin()
        ymed, xmed = y[nearest], x[nearest]
        T = _diffuse_from_centre(np.zeros(ly * lx, np.float64), y, x, np.int32(ymed), np.int32(xmed), np.int32(lx), np.int32(2 * (ly + lx)))
        dy = T[(y + 1) * lx + x] - T[(y - 1) * lx + x]
        dx = T[y * lx + x + 1] - T[y * lx + x - 1]
        mu[:, sr.start + y - 1, sc.start + x - 1] = np.stack((dy, dx))
    mu /= 1e-60 + (mu**2).sum(axis=0) ** 0.5
    return mu


def remove_bad_flow_masks(masks: np.ndarray, flows: np.ndarray, threshold: float, workers: int | None = None) -> np.ndarray:
    """Cellpose's flow-error QC, with the masks' flows computed on ``workers`` threads.

    As ``cellpose.dynamics.remove_bad_flow_masks``: the flows of each mask (:func:`mask_flows`,
    which releases the GIL) are compared with the predicted ``flows`` (cellpose scale, 5 × unit
    vectors); masks whose mean squared difference exceeds ``threshold`` are set to 0 (in place;
    labels are not renumbered).
    """
    n = int(masks.max(initial=0))
    if n == 0:
        return masks
    workers = max(1, min(int(workers or torch.get_num_threads()), n))
    if workers == 1:
        parts = [mask_flows(masks)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        groups = [np.where(masks % workers == k, masks, 0) for k in range(workers)]  # disjoint label sets
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(mask_flows, groups))
    own = parts[0]
    for part in parts[1:]:  # disjoint masks: adding the parts in place joins them
        own += part
    index = np.arange(1, n + 1)
    errors = sum(ndimage.mean((own[i] - flows[i] / 5.0) ** 2, masks, index=index) for i in range(2))
    bad = index[np.asarray(errors) > threshold]
    if bad.size:
        masks[np.isin(masks, bad)] = 0
    return masks


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
    niter: int = 100,
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
        Flow-following steps (at network scale, where particles are ~30 px across; 100 gives
        the same EMPS validation AP as cellpose's 200 in half the time).
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the network pass (:func:`predict_flows`); "auto" uses bfloat16 on CPUs
        that run it natively.
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


def _segment_size_model(image, net, options: dict, progress: ProgressCallback | None) -> SegmentationResult:
    """``diameter_px="auto"`` with the model's size model (see the module docstring)."""
    from .size_model import SizeModel, image_style

    net_diameter, percentiles = _model_settings(net)
    _report(progress, "estimating the particle size", 0.0)
    gray = prepare_image(image, percentiles)  # normalised once, for the estimate and the passes
    style = image_style(net, gray, bfloat16=_use_bfloat16(options["precision"]))
    estimate = float(SizeModel.from_dict(net.config["size_model"]).predict(style)[0])
    used = rescale_diameter(estimate, net_diameter)
    logger.info("size model: median particle diameter %.1f px (%s)", estimate, "no rescaling" if used is None else "rescaling")

    def _span(start, stop):
        return None if progress is None else (lambda message, fraction: progress(message, start + (stop - start) * fraction))

    result = _segment_once(gray, net, used, progress=_span(0.05, 0.7), prepared=True, **options)
    passes = 1
    assumed = net_diameter if used is None else used
    found = second_pass_diameter(result.labels, assumed)
    if found is not None:
        logger.info("particles found measure %.1f px, segmented at %.1f px: segmenting again", found, assumed)
        again = _segment_once(gray, net, found, progress=_span(0.7, 1.0), prepared=True, **options)
        passes = 2
        if again.n_objects:
            result = again
    result.diameter_estimate_px = estimate
    result.passes = passes
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
) -> SegmentationResult:
    """One segmentation at ``diameter_px``; ``prepared=True``: ``image`` is already the normalised gray."""
    net_diameter, percentiles = _model_settings(net)

    _report(progress, "normalising image", 0.0)
    gray = image if prepared else prepare_image(image, percentiles)
    shape = gray.shape
    scale = 1.0 if diameter_px is None else net_diameter / float(diameter_px)
    if scale != 1.0:
        gray = resize_image(gray, scaled_shape(shape, scale))
        logger.info("resized %s → %s for the network (scale %.3f)", shape, gray.shape, scale)

    maps = predict_flows(
        net, gray, tile_size=tile_size, tile_overlap=tile_overlap, precision=precision, progress=progress, progress_span=(0.05, 0.8)
    )
    flows, logits = maps[:2], maps[2]

    _report(progress, "following flows", 0.8)
    cellprob_threshold = math.log(seed_threshold / (1.0 - seed_threshold))
    cellpose_log = logging.getLogger("cellpose.dynamics")
    level = cellpose_log.level
    cellpose_log.setLevel(logging.ERROR)  # "no seeds found": an empty image is a valid answer here
    try:
        with warnings.catch_warnings():  # cellpose builds a sparse tensor; torch warns about unchecked invariants
            warnings.filterwarnings("ignore", message="Sparse invariant checks", category=UserWarning)
            masks = dynamics.compute_masks(
                np.ascontiguousarray(flows),
                logits,
                niter=int(niter),
                cellprob_threshold=cellprob_threshold,
                flow_threshold=0.0,  # the QC below, on all cores
                min_size=-1,
                device=_CPU,
            )
    finally:
        cellpose_log.setLevel(level)
    if flow_threshold:
        masks = remove_bad_flow_masks(masks, flows, float(flow_threshold))
    seed_prob = _sigmoid(logits)
    del maps, logits

    _report(progress, "filtering instances", 0.95)
    if scale != 1.0:
        labels = resize_labels(masks, shape)
        seed_prob = np.clip(resize_image(seed_prob, shape), 0.0, 1.0)
        flows = resize_image(flows, shape)
    else:
        labels = masks.astype(np.int32)
    labels = utils.fill_holes_and_remove_small_masks(labels, min_size=int(min_size_px))
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
    labels = lut[labels]
    _report(progress, f"done: {int(keep.sum())} particles", 1.0)
    return SegmentationResult(
        labels=labels,
        confidence=confidence[keep],
        seed_prob=seed_prob.astype(np.float32, copy=False),
        flows=flows.astype(np.float32, copy=False),
        scale=scale,
        diameter_px=None if diameter_px is None else float(diameter_px),
    )
