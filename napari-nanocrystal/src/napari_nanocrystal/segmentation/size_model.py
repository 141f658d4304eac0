"""Particle size without being told: cellpose's size model for the seed/flow network.

The network's *style* (cellpose ``CPnet``: the spatial mean of the deepest encoder features,
L2-normalised) changes with the size of what the network sees.  As cellpose's ``SizeModel``
(Stringer et al., Nat. Methods 2021), a ridge regression from the style to the log of the
median particle diameter tells the scale to segment an image at.

* :func:`image_style`: the style of a normalised gray image at its own scale, from the
  encoder only, on its central ``PROBE_SIZE`` × ``PROBE_SIZE`` px (a 1024² image: 1/4 of its
  pixels, no decoder).
* :class:`SizeModel`: ``fit(styles, diameters)`` / ``predict(styles)``; its state is a few
  plain numbers kept in the network's JSON config (``config["size_model"]``), never pickled.
* :func:`fit_size_model`: styles of labelled images zoomed so that their median particle
  diameter spans ``DIAMETER_RANGE`` log-uniformly (cellpose trains its size model on random
  zooms of the training images the same way), then the regression.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import numpy as np
import torch

from ._image import prepare_image, resize_image, scaled_shape

__all__ = ["DIAMETER_RANGE", "PROBE_SIZE", "SizeModel", "fit_size_model", "image_style", "zoom_styles"]

logger = logging.getLogger(__name__)

#: The style is computed on the central crop of at most this many px per side (input scale).
PROBE_SIZE = 512
#: Median particle diameters (px) the size model is trained on and predicts within.
DIAMETER_RANGE = (6.0, 240.0)


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    rows, cols = image.shape
    top, left = max(0, (rows - size) // 2), max(0, (cols - size) // 2)
    return image[top : top + size, left : left + size]


def image_style(net, gray: np.ndarray, *, probe_size: int = PROBE_SIZE, bfloat16: bool = False) -> np.ndarray:
    """Style vector (float32, (nbase[-1],), unit length) of a normalised gray image.

    ``gray`` is float32 (H, W) as :func:`~._image.prepare_image` returns it; the style is
    computed on its central crop of at most ``probe_size`` px per side, at the image's scale.
    """
    crop = np.ascontiguousarray(_centre_crop(np.asarray(gray, np.float32), int(probe_size)))
    x = torch.from_numpy(crop)[None, None]
    if int(getattr(net, "in_channels", 1)) > 1:
        x = x.expand(1, net.in_channels, *crop.shape).contiguous()
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            if bfloat16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    style = net.style(x)
            else:
                style = net.style(x)
    finally:
        if was_training:
            net.train()
    return style.float()[0].numpy()


class SizeModel:
    """Ridge regression from the network's style to log(median particle diameter in px).

    Parameters
    ----------
    alpha : float
        Ridge penalty (scikit-learn ``Ridge``).

    Attributes
    ----------
    coef_ : np.ndarray (n_style,), intercept_ : float
        The fitted regression on log diameters.
    residual_std_ : float
        Standard deviation of the training residuals (log units).
    """

    def __init__(self, alpha: float = 1e-2):
        self.alpha = alpha

    def fit(self, styles, diameters) -> SizeModel:
        """Fit on (n, n_style) styles and (n,) median diameters in px (all > 0)."""
        from sklearn.linear_model import Ridge

        styles = np.asarray(styles, np.float64)
        diameters = np.asarray(diameters, np.float64)
        if styles.ndim != 2 or styles.shape[0] != diameters.shape[0]:
            raise ValueError(f"styles must be (n, n_style) and diameters (n,); got {styles.shape} and {diameters.shape}")
        if styles.shape[0] < 2 or not (diameters > 0).all():
            raise ValueError("need at least 2 samples with positive diameters")
        target = np.log(diameters)
        ridge = Ridge(alpha=float(self.alpha)).fit(styles, target)
        self.coef_ = ridge.coef_.astype(np.float64)
        self.intercept_ = float(ridge.intercept_)
        self.residual_std_ = float(np.std(target - ridge.predict(styles)))
        return self

    def predict(self, styles) -> np.ndarray:
        """Median particle diameters (px) of (n, n_style) styles, clipped to :data:`DIAMETER_RANGE`."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("this SizeModel is not fitted: call fit() first")
        styles = np.atleast_2d(np.asarray(styles, np.float64))
        if styles.shape[1] != self.coef_.size:
            raise ValueError(f"styles have {styles.shape[1]} features; the size model was fitted on {self.coef_.size}")
        return np.clip(np.exp(styles @ self.coef_ + self.intercept_), *DIAMETER_RANGE)

    def to_dict(self) -> dict:
        """Plain-number state for a JSON config."""
        return {
            "coef": [float(v) for v in self.coef_],
            "intercept": self.intercept_,
            "residual_std": self.residual_std_,
            "alpha": float(self.alpha),
        }

    @classmethod
    def from_dict(cls, state: dict) -> SizeModel:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` for a malformed state."""
        try:
            model = cls(alpha=float(state.get("alpha", 1e-2)))
            model.coef_ = np.asarray(state["coef"], np.float64).reshape(-1)
            model.intercept_ = float(state["intercept"])
            model.residual_std_ = float(state.get("residual_std", math.nan))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"malformed size model ({type(error).__name__}: {error})") from error
        if model.coef_.size == 0 or not np.isfinite(model.coef_).all() or not math.isfinite(model.intercept_):
            raise ValueError("malformed size model: coefficients must be finite numbers")
        return model


def zoom_styles(
    net, gray: np.ndarray, diameter: float, rng: np.random.Generator, *, zooms: int = 3, max_side: int = 2048, bfloat16: bool = False
) -> tuple[list[np.ndarray], list[float]]:
    """Training samples of the size model from one normalised image: ``zooms`` random zooms.

    Each zoom draws the zoomed median diameter log-uniformly from :data:`DIAMETER_RANGE`
    (limited so that the zoomed image has at most ``max_side`` px per side).  Returns the
    styles (:func:`image_style`) and the zoomed diameters (px).
    """
    low, high = (math.log(v) for v in DIAMETER_RANGE)
    largest = max_side / max(gray.shape)
    styles, diameters = [], []
    for _ in range(int(zooms)):
        zoom = min(math.exp(rng.uniform(low, high)) / diameter, largest)
        zoomed = resize_image(gray, scaled_shape(gray.shape, zoom)) if zoom != 1.0 else gray
        styles.append(image_style(net, zoomed, bfloat16=bfloat16))
        diameters.append(diameter * zoomed.shape[0] / gray.shape[0])
    return styles, diameters


def fit_size_model(
    net,
    samples: Iterable,
    *,
    zooms_per_image: int = 3,
    max_side: int = 2048,
    seed: int = 0,
    alpha: float = 1e-2,
    bfloat16: bool = False,
) -> tuple[SizeModel, dict]:
    """Fit a :class:`SizeModel` for ``net`` on labelled images at random zooms.

    Parameters
    ----------
    net : SeedFlowNet
    samples : iterable of (image, median_diameter_px)
        Images of any dtype/channels (as :func:`~._image.prepare_image` takes) with the
        median particle diameter of their labels (px).
    zooms_per_image : int
        Zooms per image; each draws the zoomed diameter log-uniformly from :data:`DIAMETER_RANGE`
        (limited so that the zoomed image has at most ``max_side`` px per side).

    Returns
    -------
    (SizeModel, info)
        ``info``: number of samples and the training error (median |log ratio|).
    """
    rng = np.random.default_rng(seed)
    percentiles = tuple(getattr(net, "config", {}).get("percentiles", (1.0, 99.0)))
    styles, diameters = [], []
    for image, diameter in samples:
        if not diameter > 0:
            continue
        zoom_styles_, zoom_diameters = zoom_styles(
            net, prepare_image(image, percentiles), diameter, rng, zooms=zooms_per_image, max_side=max_side, bfloat16=bfloat16
        )
        styles += zoom_styles_
        diameters += zoom_diameters
    model = SizeModel(alpha=alpha).fit(np.stack(styles), np.asarray(diameters))
    errors = np.abs(np.log(model.predict(np.stack(styles)) / np.asarray(diameters)))
    info = {"samples": len(diameters), "train_median_abs_log_error": float(np.median(errors))}
    logger.info("size model: %d samples, median |log error| %.3f on them", info["samples"], info["train_median_abs_log_error"])
    return model, info
