"""The network pass of :func:`~.inference.segment`: a normalised gray image through the network in
blended overlapping tiles (see :func:`predict_flows`), channels-last, in bfloat16 where the CPU has it.

Split from :mod:`.inference` (which re-exports the public names); :func:`predict_flows` can run a subset of
the tiles and keep their outputs, so the first pass of ``diameter_px="auto"`` can look at the centre only.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch

from .._progress import ProgressCallback

__all__ = ["PRECISIONS", "bfloat16_supported", "channels_last_copy", "network_for_precision", "predict_flows", "tile_grid"]

logger = logging.getLogger(__name__)

#: Arithmetic of the network pass (see :func:`predict_flows`).
PRECISIONS = ("auto", "float32", "bfloat16", "int8")


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


def channels_last_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` with channels-last weights: oneDNN's faster convolutions on CPU, in float32
    (~1.2-1.5× on an AVX2 CPU, outputs within ~1e-5 of the contiguous ones) and bfloat16 alike."""
    if getattr(net, "_channels_last_copy", False):
        return net
    net = copy.deepcopy(net).to(memory_format=torch.channels_last)
    net._channels_last_copy = True
    return net


def _use_bfloat16(precision: str) -> bool:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return precision == "bfloat16" or (precision == "auto" and bfloat16_supported())


def network_for_precision(net, precision: str):
    """``net`` itself, or for ``precision="int8"`` its int8 copy (:func:`~.quantize.int8_network`)."""
    _use_bfloat16(precision)  # validates
    if precision != "int8":
        return net
    from .quantize import int8_network

    if not isinstance(net, torch.nn.Module) or not hasattr(net, "cpnet") and not hasattr(net, "float_net"):
        raise ValueError(f"precision='int8' needs a SeedFlowNet loaded from a weight file, not {type(net).__name__}")
    return int8_network(net)


def _call_network(net, tile: np.ndarray, in_channels: int, bfloat16: bool = False, channels_last: bool = False) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))[None, None]
    if in_channels > 1:
        x = x.expand(1, in_channels, *tile.shape).contiguous()
    if channels_last or bfloat16:
        x = x.contiguous(memory_format=torch.channels_last)
    if bfloat16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x)
        y = y.float() if isinstance(y, torch.Tensor) else [t.float() if isinstance(t, torch.Tensor) else t for t in y]
    else:
        y = net(x)
    if isinstance(y, (tuple, list)):  # e.g. a bare cellpose CPnet returns (y, style, ...)
        y = y[0]
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.shape != (1, 3, *tile.shape):
        raise ValueError(f"network returned shape {y.shape} for a tile of {tile.shape}; expected (1, 3, {tile.shape[0]}, {tile.shape[1]})")
    return y[0].astype(np.float32, copy=False)


def tile_grid(shape, tile_size: int = 512, tile_overlap: float = 0.1) -> tuple[int, list[int], int, list[int], int]:
    """Tiling of an image of ``shape`` (rows, columns) for :func:`predict_flows`.

    Returns (tile rows, row offsets, tile columns, column offsets, overlap px).
    """
    tile_size = int(tile_size)
    if tile_size < 16:
        raise ValueError(f"tile_size must be >= 16 px, got {tile_size}")
    overlap_px = max(1, int(round(min(0.5, max(0.05, float(tile_overlap))) * tile_size)))
    th, ys = _tile_layout(int(shape[0]), tile_size, overlap_px)
    tw, xs = _tile_layout(int(shape[1]), tile_size, overlap_px)
    return th, ys, tw, xs, overlap_px


def predict_flows(
    net,
    image: np.ndarray,
    *,
    tile_size: int = 512,
    tile_overlap: float = 0.1,
    precision: str = "auto",
    progress: ProgressCallback | None = None,
    progress_span=(0.0, 1.0),
    tiles=None,
    cache: dict | None = None,
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
    precision : {"auto", "float32", "bfloat16", "int8"}
        Arithmetic of the network pass.  "bfloat16": autocast to bfloat16 (~3× faster on CPUs
        with native bfloat16; outputs differ from float32 by ~1 % of their spread); "auto":
        bfloat16 where :func:`bfloat16_supported`, else float32; "int8": the network's int8 copy
        (:mod:`.quantize`; a SeedFlowNet from a weight file with its int8 calibration beside it).
        A torch module runs on a channels-last copy (:func:`channels_last_copy`) in each.
    tiles : list of (row, column) offsets or None
        Run only these tiles of the layout (:func:`tile_grid`); the output then covers the
        box from their smallest to their largest offset + tile (None: all tiles, the whole image).
    cache : dict or None
        Raw tile outputs by (row, column) offset: a tile found there is not run again, and each
        tile run is stored.  One dict per image array (and scale).

    Returns
    -------
    np.ndarray
        float32 (3, H, W) (or (3, h, w) of the box of ``tiles``): flow_y, flow_x, seed logit.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, columns), got shape {image.shape}")
    th, ys, tw, xs, overlap_px = tile_grid(image.shape, tile_size, tile_overlap)
    layout = [(y0, x0) for y0 in ys for x0 in xs]
    chosen = layout if tiles is None else [(int(y0), int(x0)) for y0, x0 in tiles]
    if not chosen or not set(chosen) <= set(layout):
        raise ValueError(f"tiles must be offsets of the layout {layout}, got {tiles}")
    top, left = min(y0 for y0, _ in chosen), min(x0 for _, x0 in chosen)
    rows, cols = max(y0 for y0, _ in chosen) + th - top, max(x0 for _, x0 in chosen) + tw - left
    weight = _ramp(th, overlap_px)[:, None] * _ramp(tw, overlap_px)[None, :]
    in_channels = int(getattr(net, "in_channels", 1))
    cache = {} if cache is None else cache
    run_net, bfloat16, was_training = None, False, False
    if not all(offset in cache for offset in chosen):  # else nothing to run: no copy of the network
        run_net = network_for_precision(net, precision)
        bfloat16 = _use_bfloat16(precision) and isinstance(net, torch.nn.Module)
        if isinstance(run_net, torch.nn.Module):  # a channels-last copy: the caller's module keeps its memory format
            run_net = channels_last_copy(run_net)
        was_training = isinstance(run_net, torch.nn.Module) and run_net.training
        if isinstance(run_net, torch.nn.Module):
            run_net.eval()

    def tile_output(y0, x0):
        if (y0, x0) not in cache:
            cache[(y0, x0)] = _call_network(
                run_net, image[y0 : y0 + th, x0 : x0 + tw], in_channels, bfloat16, isinstance(run_net, torch.nn.Module)
            )
        return cache[(y0, x0)]

    n_tiles = len(chosen)
    start, span = progress_span[0], progress_span[1] - progress_span[0]
    try:
        with torch.inference_mode():
            if len(layout) == 1:
                return tile_output(0, 0)
            output = np.zeros((3, rows, cols), np.float32)
            total = np.zeros((rows, cols), np.float32)
            for done, (y0, x0) in enumerate(chosen, start=1):
                window = (slice(y0 - top, y0 - top + th), slice(x0 - left, x0 - left + tw))
                output[(slice(None), *window)] += tile_output(y0, x0) * weight
                total[window] += weight
                _report(progress, f"network: tile {done}/{n_tiles}", start + span * done / n_tiles)
    finally:
        if was_training:
            run_net.train()
    output /= total
    return output
