"""Normalized Gaussian Wasserstein Distance (NWD) for tiny, dense objects, as mmdet components.

Wang, Xu, Yang & Yu, "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection"
(arXiv 2110.13389, 2021).  A box ``(x0, y0, x1, y1)`` is modelled as the 2-D Gaussian
``N(c, diag(w²/4, h²/4))`` with centre ``c``.  Between two such Gaussians the squared
2-Wasserstein distance has the closed form

    W₂² = ‖c_a − c_b‖² + ((w_a − w_b)/2)² + ((h_a − h_b)/2)²

and the similarity is ``NWD = exp(−√(W₂²) / C)``, in (0, 1], 1 for identical boxes.  ``C``
(px) sets the scale: a centre offset of ``C · ln 2`` px halves the NWD.  Wang et al. use the
mean absolute object size of their dataset (12.8 px on AI-TOD).  Unlike IoU, NWD is smooth
and non-zero for disjoint boxes and depends on absolute pixel offsets, not on their ratio to
the box size: a 2-px shift costs a 6-px particle as much as a 60-px one, where IoU would
punish the small one far more.  Scaling all coordinates and ``C`` by the same factor leaves
it unchanged.

Registered (importing :mod:`napari_nanocrystal.detection` registers them):

* ``TASK_UTILS`` ``NWDOverlaps2D`` — an overlaps calculator with the interface of mmdet's
  ``BboxOverlaps2D``, for the ``iou_calculator`` of ``MaxIoUAssigner`` (RPN and every
  cascade stage in our configs).  The assigners' thresholds are then NWD values.
* ``MODELS`` ``NWDLoss`` — ``1 − NWD(pred, target)`` for box regression on decoded boxes
  (``reg_decoded_bbox=True``), with mmdet's weighting/reduction conventions.

NMS stays IoU-based (mmcv's compiled op).
"""

from __future__ import annotations

import torch
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor
from torch import Tensor, nn

__all__ = ["DEFAULT_CONSTANT", "NWDLoss", "NWDOverlaps2D", "nwd"]

#: Wang et al.'s normalising constant C (px): the mean absolute object size of AI-TOD.
DEFAULT_CONSTANT = 12.8


def nwd(bboxes1: Tensor, bboxes2: Tensor, constant: float = DEFAULT_CONSTANT, is_aligned: bool = False, eps: float = 0.0) -> Tensor:
    """Normalized Gaussian Wasserstein Distance between boxes.

    Parameters
    ----------
    bboxes1, bboxes2 : Tensor (..., m, 4) and (..., n, 4)
        Boxes ``(x0, y0, x1, y1)`` with the same leading batch dimensions.
    constant : float
        ``C`` in px (> 0).
    is_aligned : bool
        Pairwise (m == n) instead of all pairs.
    eps : float
        Added to W₂² under the square root (> 0 keeps the gradient finite at identical boxes;
        the loss uses it, the assigners do not).

    Returns
    -------
    Tensor
        (..., m, n), or (..., m) when aligned; values in (0, 1].
    """
    if not constant > 0:
        raise ValueError(f"the NWD constant C must be positive, got {constant}")
    if bboxes1.size(-1) != 4 or bboxes2.size(-1) != 4:
        raise ValueError(f"boxes must have 4 coordinates in the last dimension, got {tuple(bboxes1.shape)} and {tuple(bboxes2.shape)}")
    if bboxes1.shape[:-2] != bboxes2.shape[:-2]:
        raise ValueError(f"batch dimensions differ: {tuple(bboxes1.shape)} vs {tuple(bboxes2.shape)}")
    centre1 = (bboxes1[..., :2] + bboxes1[..., 2:]) / 2
    centre2 = (bboxes2[..., :2] + bboxes2[..., 2:]) / 2
    half1 = (bboxes1[..., 2:] - bboxes1[..., :2]) / 2
    half2 = (bboxes2[..., 2:] - bboxes2[..., :2]) / 2
    if is_aligned:
        if bboxes1.size(-2) != bboxes2.size(-2):
            raise ValueError(f"aligned NWD needs as many boxes on both sides, got {bboxes1.size(-2)} and {bboxes2.size(-2)}")
        d_centre, d_half = centre1 - centre2, half1 - half2
    else:
        d_centre = centre1[..., :, None, :] - centre2[..., None, :, :]
        d_half = half1[..., :, None, :] - half2[..., None, :, :]
    w2_squared = (d_centre**2).sum(-1) + (d_half**2).sum(-1)
    return torch.exp(-torch.sqrt(w2_squared + eps) / constant)


@TASK_UTILS.register_module()
class NWDOverlaps2D:
    """NWD "overlaps" calculator, a drop-in for mmdet's ``BboxOverlaps2D``.

    ``dict(type='NWDOverlaps2D', constant=12.8)`` as the ``iou_calculator`` of an assigner.

    Modes: ``"iou"`` (what the assigners ask for) and ``"nwd"`` return the NWD;
    ``"iof"`` (ignore regions, ``ignore_iof_thr``) returns the ordinary
    intersection-over-foreground, for which NWD has no counterpart; other modes are refused.

    Parameters
    ----------
    constant : float
        ``C`` in px.
    """

    def __init__(self, constant: float = DEFAULT_CONSTANT):
        if not constant > 0:
            raise ValueError(f"the NWD constant C must be positive, got {constant}")
        self.constant = float(constant)

    def __call__(self, bboxes1, bboxes2, mode: str = "iou", is_aligned: bool = False) -> Tensor:
        """NWD between ``bboxes1`` (m, 4|5) and ``bboxes2`` (n, 4|5) (a 5th score column is dropped).

        Returns (m, n), or (m,) when ``is_aligned``.
        """
        bboxes1, bboxes2 = get_box_tensor(bboxes1), get_box_tensor(bboxes2)
        for boxes in (bboxes1, bboxes2):
            if boxes.size(-1) not in (0, 4, 5):
                raise ValueError(f"boxes must be (n, 4) or (n, 5), got {tuple(boxes.shape)}")
        bboxes1, bboxes2 = bboxes1[..., :4], bboxes2[..., :4]
        if mode == "iof":
            return bbox_overlaps(bboxes1, bboxes2, mode="iof", is_aligned=is_aligned)
        if mode not in ("iou", "nwd"):
            raise ValueError(f"NWDOverlaps2D supports mode 'iou'/'nwd' (NWD) and 'iof', not {mode!r}")
        rows, cols = bboxes1.size(-2), bboxes2.size(-2)
        if rows * cols == 0:
            shape = bboxes1.shape[:-2] + ((rows,) if is_aligned else (rows, cols))
            return bboxes1.new_zeros(shape)
        return nwd(bboxes1, bboxes2, self.constant, is_aligned=is_aligned)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(constant={self.constant})"


@weighted_loss
def nwd_loss(pred: Tensor, target: Tensor, constant: float = DEFAULT_CONSTANT, eps: float = 1e-7) -> Tensor:
    """Element-wise ``1 − NWD(pred, target)`` of aligned (n, 4) boxes (mmdet ``weighted_loss``)."""
    return 1.0 - nwd(pred, target, constant, is_aligned=True, eps=eps)


@MODELS.register_module()
class NWDLoss(nn.Module):
    """Box-regression loss ``1 − NWD`` on decoded boxes.

    Use with ``reg_decoded_bbox=True`` in the head, e.g.
    ``loss_bbox=dict(type='NWDLoss', constant=12.8, loss_weight=10.0)``.

    Parameters
    ----------
    constant : float
        ``C`` in px.
    eps : float
        Keeps the gradient finite for identical boxes.
    reduction : {"none", "mean", "sum"}
    loss_weight : float
    """

    def __init__(self, constant: float = DEFAULT_CONSTANT, eps: float = 1e-7, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        if not constant > 0:
            raise ValueError(f"the NWD constant C must be positive, got {constant}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', not {reduction!r}")
        self.constant, self.eps = float(constant), float(eps)
        self.reduction, self.loss_weight = reduction, float(loss_weight)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
        **kwargs,
    ) -> Tensor:
        """Weighted, reduced ``1 − NWD``; ``weight`` may be (n,) or (n, 4) (averaged, as mmdet's IoU losses)."""
        if reduction_override not in (None, "none", "mean", "sum"):
            raise ValueError(f"reduction_override must be None, 'none', 'mean' or 'sum', not {reduction_override!r}")
        if weight is not None and not torch.any(weight > 0):
            if pred.dim() == weight.dim() + 1:
                weight = weight.unsqueeze(1)
            return (pred * weight).sum()  # zero that keeps the graph
        reduction = reduction_override or self.reduction
        if weight is not None and weight.dim() > 1:
            weight = weight.mean(-1)
        return self.loss_weight * nwd_loss(
            pred, target, weight, constant=self.constant, eps=self.eps, reduction=reduction, avg_factor=avg_factor, **kwargs
        )
