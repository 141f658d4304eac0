"""Losses of the paper's segmentation model (Gu et al., ACS Nano 2025, Methods).

Network output ``y`` (B, 3, H, W): Y0 = flow_y, Y1 = flow_x, Y2 = seed logit.

* Labelled images (targets from :func:`~napari_nanocrystal.segmentation.targets.flow_targets`,
  (B, 3, H, W) = unit H (flow_y), unit V (flow_x), seed P ∈ {0, 1})::

      L = ‖Y0 − s·H‖² + ‖Y1 − s·V‖²  +  BCE(σ(Y2), P)

  with s = :data:`FLOW_SCALE` = 5, cellpose's scaling (the network's flows are 5 × unit
  vectors; ``dynamics.compute_masks`` divides by 5).  As in cellpose's training, the flow
  term is ``mse_loss(Y[:, :2], s·[H, V]) / 2`` = ¼ · mean over pixels of the squared flow
  error summed over both components; the BCE is the mean over pixels.  With that weighting a
  flow error of one unit vector (5 in network units) costs 6.25, so the flows dominate early
  training as in cellpose.

* Weak labels (B, H, W) uint8 with 0 = background, 1 = foreground, 255 = uncertain (the
  boundary band of the paper's detector-made labels)::

      L = BCE(σ(Y2'), P')   over pixels with P' ∈ {0, 1} only

  Uncertain pixels, and any other value, get no gradient.  A batch with no certain pixel
  gives a zero loss that still depends on ``y`` (so ``backward`` works).  With flow targets
  of the weak label's single particles (``WeakLabelDataset(flow_targets=True)``; their mask
  M in the target's seed channel) the flow term is added on those pixels only::

      L += Σ_M (‖Y0 − s·H‖² + ‖Y1 − s·V‖²) / (4 · |M|)

  (the labelled flow term's per-pixel weight, averaged over the particles' pixels).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ..label_files import UNCERTAIN  # weak-label value excluded from the loss (defined once, torch-free)
from .network import FLOW_SCALE

__all__ = ["FLOW_SCALE", "UNCERTAIN", "distillation_loss", "labelled_loss", "weak_loss"]

logger = logging.getLogger(__name__)


def labelled_loss(y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Flow + seed loss for fully labelled images.

    Parameters
    ----------
    y : float tensor (B, 3, H, W)
        Network output: flow_y, flow_x (× FLOW_SCALE), seed logit.
    targets : float tensor (B, 3, H, W)
        Unit flow_y, unit flow_x, seed (0/1), as from ``flow_targets``.

    Returns
    -------
    Scalar tensor; → 0 for ``y = [5·H, 5·V, L·(2P − 1)]`` as the logit margin L grows.
    """
    if y.ndim != 4 or y.shape[1] != 3 or targets.shape != y.shape:
        raise ValueError(f"expected y and targets of the same shape (B, 3, H, W); got {tuple(y.shape)} and {tuple(targets.shape)}")
    flow_loss = F.mse_loss(y[:, :2], FLOW_SCALE * targets[:, :2]) / 2.0
    seed_loss = F.binary_cross_entropy_with_logits(y[:, 2], (targets[:, 2] > 0.5).to(y.dtype))
    return flow_loss + seed_loss


def distillation_loss(y: torch.Tensor, teacher_y: torch.Tensor) -> torch.Tensor:
    """Loss pulling a student's output towards a teacher's on the same crops (knowledge distillation).

    ``y`` and ``teacher_y`` are network outputs (B, 3, H, W): the flows are matched as
    :func:`labelled_loss` matches its targets (half the squared error) and the seed logit
    against the teacher's seed probability (binary cross-entropy with soft targets).
    """
    if y.ndim != 4 or y.shape[1] != 3 or teacher_y.shape != y.shape:
        raise ValueError(f"expected y and teacher_y of the same shape (B, 3, H, W); got {tuple(y.shape)} and {tuple(teacher_y.shape)}")
    flow_loss = F.mse_loss(y[:, :2], teacher_y[:, :2]) / 2.0
    seed_loss = F.binary_cross_entropy_with_logits(y[:, 2], torch.sigmoid(teacher_y[:, 2]))
    return flow_loss + seed_loss


def weak_loss(
    y: torch.Tensor, weak_labels: torch.Tensor, flow_targets: torch.Tensor | None = None, *, flow_weight: float = 1.0
) -> torch.Tensor:
    """Loss for weakly labelled images: the seed, and the flows of the particles outlined.

    Parameters
    ----------
    y : float tensor (B, 3, H, W) or (B, H, W)
        Network output (channel 2 is the seed logit) or the seed logits alone.
    weak_labels : integer tensor (B, H, W)
        0 = background, 1 = foreground, :data:`UNCERTAIN` (255) = ignored.
    flow_targets : float tensor (B, 3, H, W) or None
        Unit flows of the weak label's single particles and their mask (seed channel > 0.5);
        needs ``y`` with flows.  None, or an empty mask: seed only.
    flow_weight : float
        Factor on the flow term.

    Returns
    -------
    Scalar tensor: mean binary cross-entropy over the certain pixels, plus the masked flow term.
    """
    logits = y[:, 2] if y.ndim == 4 else y
    if logits.shape != weak_labels.shape:
        raise ValueError(f"weak labels {tuple(weak_labels.shape)} do not match the seed map {tuple(logits.shape)}")
    certain = (weak_labels == 0) | (weak_labels == 1)
    loss = (
        F.binary_cross_entropy_with_logits(logits[certain], weak_labels[certain].to(logits.dtype))
        if bool(certain.any())
        else logits.sum() * 0.0
    )
    if flow_targets is None:
        return loss
    if y.ndim != 4 or flow_targets.shape != y.shape:
        raise ValueError(f"flow targets {tuple(flow_targets.shape)} need a network output of the same shape, got {tuple(y.shape)}")
    mask = flow_targets[:, 2] > 0.5
    if not bool(mask.any()):
        return loss
    error = (y[:, :2] - FLOW_SCALE * flow_targets[:, :2]) ** 2  # (B, 2, H, W)
    return loss + error.sum(dim=1)[mask].mean() * (float(flow_weight) / 4.0)
