"""An int8 copy of a :class:`~.network.SeedFlowNet` for the CPU network pass (post-training static quantisation).

The float network is rewritten as a graph ``torch.ao.quantization`` FX can trace (:class:`_TraceableCPnet`:
the same modules and sums as cellpose's ``CPnet``, outputs equal within ~1e-5), every op quantised (convs,
batch norms, adds, pooling; oneDNN's int8 kernels), the per-channel weight ranges taken from the float weights
at load and the activation ranges from a *calibration*: the quantisation parameters (scale, zero point) of
each activation observer after running calibration images (:func:`calibrate_int8`, EMPS grouped training
images), stored as JSON beside the float weights (``<stem>.int8.json``).  :func:`quantize_int8` builds the
int8 network from the float one and that JSON: nothing is unpickled, no int8 weights are shipped.

Not the default (benchmarks: ~1.3-1.5x faster network pass on an AVX2 CPU, EMPS grouped val and PbSe AP50 a little
lower; BENCHMARKS.md, "Speed, session 19").  ``torch.ao.quantization`` is marked deprecated in favour of torchao's
pt2e flow; it still ships with torch 2.13.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .network import NetworkConfig

__all__ = [
    "CALIBRATION_FORMAT",
    "ENGINE",
    "QuantizedSeedFlowNet",
    "calibrate_int8",
    "calibration_path",
    "int8_network",
    "int8_supported",
    "quantize_int8",
    "read_calibration",
]

logger = logging.getLogger(__name__)

#: Quantised engine the int8 network is built for and run with (oneDNN: the fastest of x86/fbgemm/onednn
#: on an AVX2 CPU, 2026-12-07).
ENGINE = "onednn"
#: Version of the calibration JSON.
CALIBRATION_FORMAT = 1


def int8_supported() -> bool:
    """Whether this torch build has the quantised engine :data:`ENGINE`."""
    return ENGINE in torch.backends.quantized.supported_engines


@contextlib.contextmanager
def _engine():
    """Run under the :data:`ENGINE` quantised engine, without torch's deprecation notices of ``torch.ao.quantization``."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = ENGINE
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization is deprecated|quantized tensor creation).*")
            yield
    finally:
        torch.backends.quantized.engine = previous


class _StyleConv(nn.Module):
    """cellpose's ``batchconvstyle`` (the style vector added before BN -> ReLU -> conv), traceable."""

    def __init__(self, block):
        super().__init__()
        self.conv, self.full = block.conv, block.full

    def forward(self, style, x, skip=None):
        if skip is not None:
            x = x + skip
        return self.conv(x + self.full(style)[:, :, None, None])


class _ResUp(nn.Module):
    """cellpose's ``resup``, traceable."""

    def __init__(self, block):
        super().__init__()
        self.conv0 = block.conv[0]
        self.conv1, self.conv2, self.conv3 = (_StyleConv(block.conv[k]) for k in (1, 2, 3))
        self.proj = block.proj

    def forward(self, x, skip, style):
        x = self.proj(x) + self.conv1(style, self.conv0(x), skip=skip)
        return x + self.conv3(style, self.conv2(style, x))


class _TraceableCPnet(nn.Module):
    """cellpose's ``CPnet`` forward (flows and seed logit only) over the same modules, without the
    shape-dependent Python that FX cannot trace.  Input (B, C, H, W) with H, W multiples of the net's divisor."""

    def __init__(self, cpnet):
        super().__init__()
        self.downsample = cpnet.downsample
        self.ups = nn.ModuleList(_ResUp(block) for block in cpnet.upsample.up)
        self.upsampling = cpnet.upsample.upsampling
        self.output = cpnet.output

    def forward(self, x):
        levels = self.downsample(x)
        style = levels[-1].mean(dim=(2, 3))
        style = style / torch.sum(style**2, dim=1, keepdim=True) ** 0.5
        last = len(self.ups) - 1
        y = self.ups[last](levels[-1], levels[-1], style)
        for k in range(last - 1, -1, -1):
            y = self.ups[k](self.upsampling(y), levels[k], style)
        return self.output(y)


class QuantizedSeedFlowNet(NetworkConfig, nn.Module):
    """The int8 network: (B, C, H, W) float → (B, 3, H, W) float, as :class:`~.network.SeedFlowNet`.

    Pads to the net's divisor and crops back like the float net; runs under the :data:`ENGINE` engine.
    ``config`` is the float net's (diameter, percentiles, size model); :meth:`style` is the float net's.
    """

    _channels_last_copy = True  # already built for channels-last input: tiling runs it as is

    def __init__(self, graph: nn.Module, float_net: nn.Module):
        super().__init__()
        self.graph, self.float_net = graph, float_net
        self.config, self.divisor = dict(float_net.config), int(float_net.divisor)

    def style(self, x: torch.Tensor) -> torch.Tensor:
        """The float network's style vector (the size estimate stays in float32)."""
        return self.float_net.style(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        rows, cols = x.shape[-2:]
        pad_y, pad_x = (-rows) % self.divisor, (-cols) % self.divisor
        top, left = pad_y // 2, pad_x // 2
        if pad_y or pad_x:
            x = F.pad(x, (left, pad_x - left, top, pad_y - top))
        with _engine():
            y = self.graph(x)
        return y[:, :, top : top + rows, left : left + cols].float()


def _prepared(net, observer):
    """The FX-prepared traceable copy of ``net`` with ``observer`` on every activation."""
    import copy

    from torch.ao.quantization import QConfig, QConfigMapping, default_per_channel_weight_observer
    from torch.ao.quantization.quantize_fx import prepare_fx

    if not int8_supported():
        raise RuntimeError(
            f"int8 inference needs torch's quantised engine {ENGINE!r}, not in this build ({torch.backends.quantized.supported_engines})"
        )
    graph = _TraceableCPnet(copy.deepcopy(net.cpnet)).eval()
    mapping = QConfigMapping().set_global(QConfig(activation=observer, weight=default_per_channel_weight_observer))
    divisor = int(net.divisor)
    example = torch.zeros(1, net.in_channels, 4 * divisor, 4 * divisor)
    with _engine():
        return prepare_fx(graph, mapping, (example,))


def _observers(prepared) -> dict:
    return {name: module for name, module in prepared.named_modules() if name.startswith("activation_post_process")}


def calibrate_int8(net, images, *, tile_size: int = 384) -> dict:
    """Activation quantisation parameters of ``net`` from calibration ``images`` (normalised gray float32 (H, W)).

    Each image is run in tiles of at most ``tile_size`` px (cropped to the net's divisor) through the
    prepared network with histogram observers.  Returns the JSON-ready calibration ``{"format", "engine",
    "torch", "tile_size", "images", "observers": {name: [scale, zero_point]}}``.
    """
    import numpy as np
    from torch.ao.quantization import HistogramObserver

    prepared = _prepared(net, HistogramObserver.with_args(dtype=torch.quint8, reduce_range=False))
    divisor, count = int(net.divisor), 0
    with torch.inference_mode(), _engine():
        for image in images:
            image = np.asarray(image, np.float32)
            if image.ndim != 2:
                raise ValueError(f"calibration images must be 2-D gray, got shape {image.shape}")
            for y0 in range(0, image.shape[0], tile_size):
                for x0 in range(0, image.shape[1], tile_size):
                    tile = image[y0 : y0 + tile_size, x0 : x0 + tile_size]
                    rows, cols = tile.shape[0] // divisor * divisor, tile.shape[1] // divisor * divisor
                    if rows and cols:
                        prepared(
                            torch.from_numpy(np.ascontiguousarray(tile[:rows, :cols]))[None, None].expand(1, net.in_channels, rows, cols)
                        )
            count += 1
    if not count:
        raise ValueError("calibrate_int8 needs at least one image")
    observers = {}
    for name, observer in _observers(prepared).items():
        scale, zero_point = observer.calculate_qparams()
        observers[name] = [float(scale.reshape(-1)[0]), int(zero_point.reshape(-1)[0])]
    return {
        "format": CALIBRATION_FORMAT,
        "engine": ENGINE,
        "torch": torch.__version__,
        "tile_size": int(tile_size),
        "images": count,
        "observers": observers,
    }


def quantize_int8(net, calibration: dict) -> QuantizedSeedFlowNet:
    """The int8 network of the float ``net`` with the activation ranges of ``calibration`` (:func:`calibrate_int8`).

    Raises ``ValueError`` naming the problem when the calibration does not fit this network.
    """
    from torch.ao.quantization import MinMaxObserver
    from torch.ao.quantization.quantize_fx import convert_fx

    if not isinstance(calibration, dict) or calibration.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"int8 calibration: expected a dict with format {CALIBRATION_FORMAT}, got {str(calibration)[:80]!r}")
    stored = calibration.get("observers")
    prepared = _prepared(net, MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=False))
    observers = _observers(prepared)
    if not isinstance(stored, dict) or set(stored) != set(observers):
        raise ValueError(
            f"int8 calibration does not fit this network: {len(stored) if isinstance(stored, dict) else 0} observers stored, "
            f"{len(observers)} in the graph (calibrated with torch {calibration.get('torch')}, this is {torch.__version__})"
        )
    for name, observer in observers.items():
        scale, zero_point = stored[name]
        if not (scale > 0 and 0 <= zero_point <= 255):
            raise ValueError(f"int8 calibration: bad quantisation parameters for {name}: scale {scale}, zero point {zero_point}")
        # a min/max pair whose quint8 parameters are exactly (scale, zero_point)
        observer.min_val = torch.tensor(-zero_point * scale)
        observer.max_val = torch.tensor((255 - zero_point) * scale)
    with _engine():
        graph = convert_fx(prepared)
    return QuantizedSeedFlowNet(graph, net)


#: int8 networks built by :func:`int8_network`, by (weights, calibration) file and their modification times.
_BUILT: dict = {}


def int8_network(net) -> QuantizedSeedFlowNet:
    """The int8 network of a float ``net`` loaded from a weight file (:func:`~.network.load_model`), whose
    calibration lies beside it (:func:`calibration_path`); built once per weight and calibration file.

    Raises ``ValueError`` when ``net`` came from no weight file or that file has no calibration.
    """
    if isinstance(net, QuantizedSeedFlowNet):
        return net
    weights_path = getattr(net, "weights_path", None)
    if weights_path is None:
        raise ValueError("precision='int8' needs a network loaded from a weight file with an int8 calibration beside it (<stem>.int8.json)")
    path = calibration_path(weights_path)
    if not path.is_file():
        raise ValueError(
            f"precision='int8': no int8 calibration for {weights_path} (expected {path}; "
            "benchmarks/segmentation_int8_calibration.py writes one)"
        )
    key = (str(Path(weights_path).resolve()), Path(weights_path).stat().st_mtime_ns, str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _BUILT:
        _BUILT.clear()  # one model at a time
        _BUILT[key] = quantize_int8(net, read_calibration(path))
        logger.info("int8 network built from %s and %s", weights_path, path)
    return _BUILT[key]


def calibration_path(weights_path) -> Path:
    """Where the int8 calibration of a weight file lives: ``<stem>.int8.json`` beside it."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.stem + ".int8.json")


def read_calibration(path) -> dict:
    """The calibration JSON at ``path`` (``ValueError`` naming the file when it is not one)."""
    path = Path(path)
    try:
        calibration = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"int8 calibration {path} cannot be read: {error}") from error
    if not isinstance(calibration, dict):
        raise ValueError(f"int8 calibration {path} is not a JSON object")
    return calibration
