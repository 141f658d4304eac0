"""Data transforms of the seed/flow training pipeline (mmengine ``TRANSFORMS``).

A sample is a dict with

* ``image``: float32 (H, W), percentile-normalised gray at the network's diameter;
* ``kind``: ``'labelled'`` or ``'weak'``;
* labelled samples: ``targets`` float32 (3, H, W) [unit flow_y, unit flow_x, seed] and
  ``labels`` int32 (H, W) (0 = background);
* weak samples: ``weak`` uint8 (H, W), 0 = background, 1 = particle, 255 = uncertain;
* ``name``: str.

Transforms never modify the arrays they receive in place (datasets hand out shared arrays).

Flows under geometric augmentation
----------------------------------
:class:`RandomAffineCrop` warps the flow field like the image (bilinear) and then rotates
the flow *vectors* by the same rotation (and mirrors them with a flip), as cellpose's
``random_rotate_and_resize`` does.  The flows point to each particle's centre, which is
equivariant under rotation, flip, translation and isotropic scaling, so the warped field is
the flow field of the warped labels up to interpolation at particle edges; recomputing
flows after every augmentation would cost a heat diffusion per crop instead.
"""

from __future__ import annotations

import abc
import logging
import math

import cv2
import numpy as np
import torch
from ...label_files import UNCERTAIN
from .registry import TRANSFORMS

__all__ = [
    "PackSeedFlowInputs",
    "RandomAffineCrop",
    "RandomBrightnessContrast",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomInvert",
    "warp_sample",
]

logger = logging.getLogger(__name__)


class BaseTransform(abc.ABC):
    """A pipeline step: ``transform(results) -> results``; mmengine's ``Compose`` calls it."""

    def __call__(self, results: dict) -> dict:
        return self.transform(results)

    @abc.abstractmethod
    def transform(self, results: dict) -> dict:
        """Return a new sample dict (never modify ``results``' arrays in place)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _affine(shape, out_size, scale: float, angle_rad: float, flip: bool, shift_frac, rng=None) -> np.ndarray:
    """2×3 matrix mapping (x, y) of an image of ``shape`` to an ``out_size`` crop.

    The source is mirrored left-right (``flip``), rotated by ``angle_rad`` and scaled by
    ``scale`` about its centre; the crop is centred on the transformed image centre moved by
    ``shift_frac`` (each in [-0.5, 0.5]) × the part of the transformed image that sticks out
    of the crop.
    """
    rows, cols = shape
    out_rows, out_cols = out_size
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    linear = scale * np.array([[c, -s], [s, c]])
    if flip:
        linear = linear @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    # extent of the transformed image: projections of its half-diagonals
    half = np.abs(linear) @ np.array([cols / 2.0, rows / 2.0])
    slack = np.maximum(0.0, 2 * half - np.array([out_cols, out_rows]))
    centre_out = np.array([out_cols / 2.0, out_rows / 2.0]) - np.asarray(shift_frac) * slack
    offset = centre_out - linear @ np.array([cols / 2.0, rows / 2.0])
    return np.hstack([linear, offset[:, None]])


def warp_sample(sample: dict, matrix: np.ndarray, out_size, *, pad_value: float | None = None) -> dict:
    """Apply a similarity transform (2×3 ``matrix`` on (x, y)) to every array of a sample.

    Image: bilinear, outside filled with ``pad_value`` (default: the image median, a neutral
    gray rather than a dark or bright value that could look like a particle).  Flows
    (targets 0–1): bilinear, vectors rotated/mirrored by the linear part, 0 outside.  Seed,
    labels: nearest, 0 outside.  Weak labels: nearest, :data:`UNCERTAIN` outside (no loss
    there).  Returns a new dict; the input's arrays are not modified.
    """
    out_rows, out_cols = int(out_size[0]), int(out_size[1])
    dsize = (out_cols, out_rows)
    out = dict(sample)
    image = sample["image"]
    fill = float(np.median(image)) if pad_value is None else float(pad_value)
    out["image"] = cv2.warpAffine(image, matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    linear = matrix[:, :2]
    scale = math.sqrt(abs(np.linalg.det(linear)))
    if sample.get("targets") is not None:
        targets = sample["targets"]
        fy = cv2.warpAffine(targets[0], matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        fx = cv2.warpAffine(targets[1], matrix, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        seed = cv2.warpAffine(targets[2], matrix, dsize, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rot = linear / scale  # orthogonal: rotation, possibly with a mirror; acts on (x, y)
        new_fx = rot[0, 0] * fx + rot[0, 1] * fy
        new_fy = rot[1, 0] * fx + rot[1, 1] * fy
        out["targets"] = np.stack([new_fy, new_fx, seed]).astype(np.float32)
    if sample.get("labels") is not None:
        out["labels"] = cv2.warpAffine(
            sample["labels"].astype(np.int32, copy=False),
            matrix,
            dsize,
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    if sample.get("weak") is not None:
        out["weak"] = cv2.warpAffine(
            sample["weak"], matrix, dsize, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=UNCERTAIN
        )
    return out


@TRANSFORMS.register_module()
class RandomAffineCrop(BaseTransform):
    """Random rotation, isotropic scaling, mirror and translation, sampled as one fixed-size crop.

    Parameters
    ----------
    crop_size : int or (int, int)
        Output (rows, columns).
    scale_range : (float, float)
        Scale factor drawn log-uniformly from this range (1 = the network's diameter).
    rotate : bool
        Uniform rotation in [0, 2π).
    flip : bool
        Mirror left-right with probability 1/2.
    """

    def __init__(self, crop_size=256, scale_range=(0.75, 1.25), rotate: bool = True, flip: bool = True):
        self.crop_size = (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(c) for c in crop_size)
        self.scale_range = _check_range("scale_range", scale_range, positive=True)
        if min(self.crop_size) < 8:
            raise ValueError(f"crop_size must be at least 8 px, got {crop_size}")
        self.rotate = bool(rotate)
        self.flip = bool(flip)

    def transform(self, results: dict) -> dict:
        low, high = self.scale_range
        scale = float(np.exp(np.random.uniform(np.log(low), np.log(high))))
        angle = float(np.random.uniform(0, 2 * math.pi)) if self.rotate else 0.0
        flip = bool(self.flip and np.random.rand() < 0.5)
        shift = np.random.uniform(-0.5, 0.5, size=2)
        matrix = _affine(results["image"].shape, self.crop_size, scale, angle, flip, shift)
        return warp_sample(results, matrix, self.crop_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop_size={self.crop_size}, scale_range={self.scale_range}, rotate={self.rotate}, flip={self.flip})"


@TRANSFORMS.register_module()
class RandomBrightnessContrast(BaseTransform):
    """Intensity jitter of the normalised image: ``(x - m) · c + m + b``.

    ``m`` is the image mean, ``c`` drawn uniformly from ``contrast_range`` and ``b`` from
    ``[-brightness, brightness]`` (in normalised units: 1 = the 1st–99th percentile span).
    """

    def __init__(self, brightness: float = 0.1, contrast_range=(0.8, 1.2)):
        if brightness < 0:
            raise ValueError(f"brightness must be >= 0, got {brightness}")
        self.brightness = float(brightness)
        self.contrast_range = _check_range("contrast_range", contrast_range, positive=True)

    def transform(self, results: dict) -> dict:
        image = results["image"]
        contrast = np.random.uniform(*self.contrast_range)
        shift = np.random.uniform(-self.brightness, self.brightness)
        mean = float(image.mean())
        out = dict(results)
        out["image"] = ((image - mean) * contrast + mean + shift).astype(np.float32)
        return out


def _check_probability(prob: float) -> float:
    if not 0 <= prob <= 1:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    return float(prob)


def _check_range(name: str, value_range, *, positive: bool = False) -> tuple[float, float]:
    """``(low, high)`` as floats, with ``0 <= low <= high`` (``0 < low`` when ``positive``)."""
    low, high = (float(v) for v in value_range)
    if not (0 < low if positive else 0 <= low) or low > high:
        raise ValueError(f"{name} must be {'0 <' if positive else '0 <='} low <= high, got {value_range}")
    return low, high


@TRANSFORMS.register_module()
class RandomGaussianBlur(BaseTransform):
    """Defocus: with probability ``prob``, a Gaussian blur of σ drawn from ``sigma_range`` (px).

    Figures come from microscopes focused differently; the labels (and flows) stay as they are.
    """

    def __init__(self, sigma_range=(0.5, 1.5), prob: float = 0.3):
        self.sigma_range = _check_range("sigma_range", sigma_range)
        self.prob = _check_probability(prob)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        sigma = np.random.uniform(*self.sigma_range)
        out = dict(results)
        if sigma > 0:
            out["image"] = cv2.GaussianBlur(np.asarray(results["image"], np.float32), (0, 0), sigma)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma_range={self.sigma_range}, prob={self.prob})"


@TRANSFORMS.register_module()
class RandomGaussianNoise(BaseTransform):
    """Shot noise: with probability ``prob``, add Gaussian noise of standard deviation drawn
    from ``std_range`` (normalised units: 1 = the 1st–99th percentile span)."""

    def __init__(self, std_range=(0.02, 0.1), prob: float = 0.3):
        self.std_range = _check_range("std_range", std_range)
        self.prob = _check_probability(prob)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        image = np.asarray(results["image"], np.float32)
        std = np.random.uniform(*self.std_range)
        out = dict(results)
        out["image"] = (image + np.random.normal(0.0, std, image.shape)).astype(np.float32)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std_range={self.std_range}, prob={self.prob})"


@TRANSFORMS.register_module()
class RandomInvert(BaseTransform):
    """Polarity: with probability ``prob``, the crop becomes ``1 - image``.

    Figures show particles dark on bright (bright field) or bright on dark (dark field, inverted
    display).  On the percentile-normalised image ``1 - x`` is exactly the inverted raw image
    normalised the same way (its lower and upper percentiles swap), so the network sees a
    particle's other polarity at the same contrast; labels, flows and weak labels stay as they are.
    One random number is drawn per call whatever ``prob`` is, so ``prob=0`` leaves the rest of a
    pipeline's random stream unchanged (a control run).
    """

    def __init__(self, prob: float = 0.5):
        self.prob = _check_probability(prob)

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        out = dict(results)
        out["image"] = (1.0 - np.asarray(results["image"], np.float32)).astype(np.float32)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob={self.prob})"


@TRANSFORMS.register_module()
class PackSeedFlowInputs(BaseTransform):
    """Tensors for :class:`~.model.SeedFlowModel`.

    Training (``with_labels=False``): ``inputs`` float32 (1, H, W) and ``data_samples`` =
    ``targets`` (3, H, W) (weak samples: their single particles' flows and mask, see
    ``WeakLabelDataset(flow_targets=True)``, else zeros), ``weak`` (H, W) uint8 (all uncertain for
    labelled samples), ``is_weak`` bool — the same keys for both kinds, so that
    ``default_collate`` can stack mixed batches.  Validation (``with_labels=True``): the
    data sample also holds ``labels`` (int32 numpy, for the metric) and ``name``.
    """

    def __init__(self, with_labels: bool = False):
        self.with_labels = bool(with_labels)

    def transform(self, results: dict) -> dict:
        image = np.ascontiguousarray(results["image"], dtype=np.float32)
        rows, cols = image.shape
        is_weak = results.get("kind") == "weak"
        if is_weak:  # flow targets of the weak label's single particles, if the dataset made them
            given = results.get("targets")
            targets = np.zeros((3, rows, cols), np.float32) if given is None else np.ascontiguousarray(given, dtype=np.float32)
            weak = np.ascontiguousarray(results["weak"], dtype=np.uint8)
        else:
            targets = np.ascontiguousarray(results["targets"], dtype=np.float32)
            weak = np.full((rows, cols), UNCERTAIN, np.uint8)
        sample = {
            "targets": torch.from_numpy(targets),
            "weak": torch.from_numpy(weak),
            "is_weak": torch.tensor(is_weak),
        }
        if self.with_labels:
            if is_weak:
                raise ValueError("validation needs instance labels; weak samples cannot be validated")
            sample = {"labels": np.asarray(results["labels"], np.int32), "name": results.get("name", "")}
        return {"inputs": torch.from_numpy(image[None].copy()), "data_samples": sample}
