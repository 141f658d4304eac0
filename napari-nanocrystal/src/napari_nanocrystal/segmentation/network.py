"""The seed/flow segmentation network and its weight files.

:class:`SeedFlowNet` is the paper's segmentation model (Gu et al., ACS Nano 2025, Methods):
an encoder and a decoder that predict, for every pixel, a vertical and a horizontal flow
(towards the particle centre) and a seed logit (foreground probability after a sigmoid),
as in Cellpose.  It wraps cellpose's ``CPnet`` (residual U-Net with a global style vector):
the paper's separate seed and instance decoders are one shared decoder with three output
channels here, as in cellpose.

Output convention (axis 1 of the forward output), the cellpose one:

====  ==========  ======================================================================
0     flow_y      vertical flow, :data:`FLOW_SCALE` × the unit flow of the targets
1     flow_x      horizontal flow, same scale
2     seed logit  sigmoid → probability that the pixel belongs to a particle
====  ==========  ======================================================================

Weight files
------------
``SeedFlowNet.save(path)`` writes the state dict as ``.safetensors`` (if the ``safetensors``
package is installed) or with ``torch.save`` (a pure ``{name: tensor}`` dict, ``.pt``), plus
a JSON sidecar with the same stem holding :attr:`SeedFlowNet.config`.  :func:`load_model`
reads either format (detected from the file content) with ``torch.load(weights_only=True)``;
no pickle is ever executed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from cellpose.resnet_torch import CPnet
from nc_synthmodel.io import atomic_path, atomic_write_text
from torch import nn

from . import weights

__all__ = ["FLOW_SCALE", "SeedFlowNet", "available_models", "load_model", "resolve_model"]

logger = logging.getLogger(__name__)

#: Network flows are this factor × the unit flows of the targets (cellpose's convention:
#: ``dynamics.compute_masks`` divides by 5 before following the flows).
FLOW_SCALE = 5.0

#: Weight-file format version written into every config.
FORMAT_VERSION = 1

#: Folder of the weights shipped with the package (:mod:`.weights`); read at each call, so it can be patched.
MODELS_DIR = weights.MODELS_DIR

_WEIGHT_SUFFIXES = weights.WEIGHT_SUFFIXES


class NetworkConfig:
    """What a segmentation network's ``config`` (its weight file's) says, as properties: shared by the
    float network and its int8 copy (:class:`~.quantize.QuantizedSeedFlowNet`)."""

    config: dict

    @property
    def in_channels(self) -> int:
        return self.config["nbase"][0]

    @property
    def diameter_px(self) -> float:
        return self.config["diameter_px"]


class SeedFlowNet(NetworkConfig, nn.Module):
    """Encoder–decoder predicting flow_y, flow_x and a seed logit for every pixel.

    Parameters
    ----------
    nbase : sequence of int
        Channels per level; ``nbase[0]`` is the number of input channels (1 = gray).
        ``(1, 32, 64, 128, 256)`` is cellpose's width; the default is half of it (4× fewer
        parameters, ~4× faster on CPU).
    sz : int
        Convolution kernel size.
    diameter_px : float
        Object diameter (px) the network is trained at; inference rescales images so that
        particles have this diameter.
    percentiles : (float, float)
        Input normalisation: these percentiles of the gray image map to 0 and 1.
    max_pool : bool
        Max pooling (True) or average pooling in the encoder.

    Input: float32 tensor (B, nbase[0], H, W), any H, W (zero-padded internally to a
    multiple of :attr:`divisor` and cropped back).  Output: float32 (B, 3, H, W).
    """

    def __init__(
        self,
        nbase=(1, 16, 32, 64, 128),
        sz: int = 3,
        *,
        diameter_px: float = 30.0,
        percentiles=(1.0, 99.0),
        max_pool: bool = True,
    ):
        super().__init__()
        nbase = [int(n) for n in nbase]
        if len(nbase) < 3 or min(nbase) < 1:
            raise ValueError(f"nbase needs >= 3 positive channel counts, got {nbase}")
        if float(diameter_px) <= 0:
            raise ValueError(f"diameter_px must be positive, got {diameter_px}")
        self.config = {
            "kind": "SeedFlowNet",
            "format_version": FORMAT_VERSION,
            "nbase": nbase,
            "sz": int(sz),
            "nout": 3,
            "diameter_px": float(diameter_px),
            "percentiles": [float(percentiles[0]), float(percentiles[1])],
            "max_pool": bool(max_pool),
            "flow_scale": FLOW_SCALE,
        }
        # CPnet mutates nbase (append): give it its own list
        self.cpnet = CPnet(list(nbase), 3, int(sz), mkldnn=False, max_pool=bool(max_pool), diam_mean=float(diameter_px))
        #: H and W are padded to a multiple of this (one halving per encoder level but the first)
        self.divisor = 2 ** (len(nbase) - 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float → (B, 3, H, W): flow_y, flow_x (× FLOW_SCALE), seed logit."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        rows, cols = x.shape[-2:]
        pad_y = (-rows) % self.divisor
        pad_x = (-cols) % self.divisor
        if pad_y or pad_x:
            top, left = pad_y // 2, pad_x // 2
            x = F.pad(x, (left, pad_x - left, top, pad_y - top))
            y = self.cpnet(x)[0]
            return y[:, :, top : top + rows, left : left + cols]
        return self.cpnet(x)[0]

    def style(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, nbase[-1]): cellpose's style vector (encoder only, unit length)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        rows, cols = x.shape[-2:]
        pad_y, pad_x = (-rows) % self.divisor, (-cols) % self.divisor
        if pad_y or pad_x:
            x = F.pad(x, (pad_x // 2, pad_x - pad_x // 2, pad_y // 2, pad_y - pad_y // 2))
        return self.cpnet.make_style(self.cpnet.downsample(x)[-1])

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def save(self, path) -> Path:
        """Write the weights and a JSON config sidecar; return the weight file's path.

        The format follows the suffix: ``.safetensors`` (needs the ``safetensors`` package) or
        ``.pt``/``.pth`` (``torch.save`` of a pure state dict).  Without a suffix,
        ``.safetensors`` is used when available, else ``.pt``.  The sidecar is
        ``<stem>.json`` beside it.
        """
        path = Path(path)
        if path.suffix not in _WEIGHT_SUFFIXES:
            path = path.with_name(path.name + (".safetensors" if _has_safetensors() else ".pt"))
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        config_text = json.dumps(self.config, indent=2, sort_keys=True)
        with atomic_path(path) as tmp:
            if path.suffix == ".safetensors":
                if not _has_safetensors():
                    raise ImportError("saving .safetensors needs the 'safetensors' package (pip install safetensors); or save as .pt")
                from safetensors.torch import save_file

                save_file(state, str(tmp), metadata={"config": config_text})
            else:
                torch.save(state, tmp)
        atomic_write_text(_sidecar(path), config_text + "\n")
        logger.info("saved %s (%d parameters) to %s", self.config["kind"], self.n_parameters(), path)
        return path


def _has_safetensors() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _invalid(path, reason: str) -> ValueError:
    return ValueError(f"model file invalid: {path}: {reason}")


def _read_state(path: Path) -> tuple[dict, dict | None]:
    """Weights (name → tensor) and the config embedded in the file (safetensors) or None."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:2] == b"PK":  # torch.save zip archive
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling/zip error means a bad file
            raise _invalid(path, f"cannot be read as a torch state dict ({type(error).__name__}: {error})") from error
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise _invalid(path, "not a state dict (mapping of parameter names to tensors)")
        return state, None
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length, then JSON
        if not _has_safetensors():
            raise ImportError(f"{path} is a .safetensors file: install the 'safetensors' package to read it")
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = handle.metadata() or {}
                state = {name: handle.get_tensor(name) for name in handle.keys()}
        except Exception as error:  # noqa: BLE001
            raise _invalid(path, f"cannot be read as safetensors ({type(error).__name__}: {error})") from error
        config = json.loads(metadata["config"]) if "config" in metadata else None
        return state, config
    raise _invalid(path, "neither a safetensors file nor a torch state dict")


def load_model(path) -> SeedFlowNet:
    """Load a :class:`SeedFlowNet` written by :meth:`SeedFlowNet.save`, in eval mode on CPU.

    The config comes from the JSON sidecar (``<stem>.json``) or, for safetensors files, from
    the file's metadata.  Raises ``FileNotFoundError`` for a missing file and
    ``ValueError("model file invalid: …")`` for anything that is not a matching weight file.
    """
    from ..validation import check_model_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    check_model_file(path)  # bounds the config before anything is built
    state, config = _read_state(path)
    sidecar = _sidecar(path)
    if sidecar.is_file():
        try:
            config = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise _invalid(path, f"config sidecar {sidecar.name} is not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise _invalid(path, f"no config: expected the JSON sidecar {sidecar.name} beside it")
    if config.get("kind") != "SeedFlowNet":
        raise _invalid(path, f"config kind is {config.get('kind')!r}, expected 'SeedFlowNet'")
    if int(config.get("format_version", -1)) > FORMAT_VERSION:
        raise _invalid(path, f"format_version {config.get('format_version')} is newer than this package reads ({FORMAT_VERSION})")
    try:
        net = SeedFlowNet(
            config["nbase"],
            config["sz"],
            diameter_px=config["diameter_px"],
            percentiles=config["percentiles"],
            max_pool=config["max_pool"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _invalid(path, f"bad config ({type(error).__name__}: {error})") from error
    if config.get("size_model") is not None:
        from .size_model import SizeModel

        try:
            SizeModel.from_dict(config["size_model"])
        except ValueError as error:
            raise _invalid(path, str(error)) from error
        net.config["size_model"] = config["size_model"]
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise _invalid(path, f"weights do not match the config: {error}") from error
    net.eval()
    net.weights_path = path  # where it came from: an int8 calibration beside it (.quantize) is found from it
    logger.info("loaded SeedFlowNet nbase=%s from %s", config["nbase"], path)
    return net


def available_models() -> dict[str, Path]:
    """Weights shipped with the package: name → weight file under ``napari_nanocrystal/models``."""
    return weights.shipped_weights(MODELS_DIR)


def resolve_model(model) -> nn.Module:
    """A network from ``"default"``/a shipped name, a weight-file path, or a module (returned as is)."""
    if isinstance(model, nn.Module):
        return model
    if callable(model):
        return model
    if isinstance(model, (str, os.PathLike)):
        shipped = available_models()
        if str(model) in shipped:
            return load_model(shipped[str(model)])
        if str(model) == "default":
            raise FileNotFoundError(
                f"no default segmentation model in this installation ({MODELS_DIR / 'default.safetensors'} is missing). "
                "Train one with `nanocrystal train cpu-small --labeled DATA --out RUN` and pass "
                "model='RUN/model.safetensors'."
            )
        return load_model(model)
    raise TypeError(f"model must be 'default', a weight-file path or a torch module, not {type(model).__name__}")
