"""mmengine model wrapper of :class:`~napari_nanocrystal.segmentation.network.SeedFlowNet`.

``forward(inputs, data_samples, mode)`` follows mmengine's ``BaseModel`` contract:

* ``mode='loss'`` (training): ``inputs`` float (B, 1, H, W); ``data_samples`` a dict of
  batched tensors ``targets`` (B, 3, H, W) [unit flow_y, unit flow_x, seed], ``weak`` (B, H, W)
  uint8 (0 / 1 / 255) and ``is_weak`` (B,) bool, as packed by ``PackSeedFlowInputs`` and
  stacked by ``default_collate``.  Returns ``{'loss_labelled', 'loss_weak'}``: the paper's
  losses (:func:`~napari_nanocrystal.segmentation.losses.labelled_loss` on the labelled
  samples, :func:`~napari_nanocrystal.segmentation.losses.weak_loss` on the weak ones), each
  weighted by its share of the batch, so that their sum is the mean per-sample loss; with a
  ``teacher``, also ``'loss_distill'`` (:func:`~napari_nanocrystal.segmentation.losses.distillation_loss`
  on every sample).
* ``mode='predict'`` (validation): ``inputs`` a list of (1, H, W) tensors of any size and
  ``data_samples`` a list of dicts with the true ``labels``; every image goes through
  :func:`~napari_nanocrystal.segmentation.inference.segment` (tiled network pass, cellpose
  flow following, the shipped filters) and the result is a list of dicts
  ``pred_labels``, ``gt_labels``, ``confidence``, ``name`` for ``SeedFlowMetric``.
* ``mode='tensor'``: the raw network output (B, 3, H, W).
"""

from __future__ import annotations

import logging

import torch
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS

from ..inference import segment
from ..losses import distillation_loss, labelled_loss, weak_loss
from ..network import SeedFlowNet, resolve_model
from .registry import MODELS

__all__ = ["SeedFlowDistributedDataParallel", "SeedFlowModel"]

logger = logging.getLogger(__name__)


@MODELS.register_module()
class SeedFlowModel(BaseModel):
    """Training wrapper: a :class:`SeedFlowNet` plus the paper's losses.

    Parameters
    ----------
    net : dict
        Keyword arguments of :class:`SeedFlowNet` (``nbase``, ``sz``, ``diameter_px``,
        ``percentiles``, ``max_pool``).
    weak_weight : float
        Factor on the weak-label loss.
    weak_flow_weight : float
        Factor on the flow term inside it (weak samples with flow targets only): the flows of a
        weak image's particles outweigh its seed term several times over.
    split_batches : bool
        Run the labelled and the weak samples of a mixed batch through the network separately,
        so that batch normalisation uses each kind's own statistics (weak crops then cannot
        shift the normalisation of the labelled ones).
    teacher : str or None
        A trained network (``"default"``, a shipped name or a weight file) whose outputs on the
        same crops the network also learns (knowledge distillation, e.g. a narrower network from
        the shipped one).  Frozen, not part of this model's parameters or checkpoints.
    distill_weight : float
        Factor on the distillation loss (with ``teacher`` only).
    test_cfg : dict or None
        Keyword arguments of :func:`segment` used by ``mode='predict'`` (e.g.
        ``confidence_threshold``, ``flow_threshold``, ``seed_threshold``, ``tile_size``,
        ``niter``); validation images are already at the network's diameter, so
        ``diameter_px`` is not allowed here.
    data_preprocessor, init_cfg : dict or None
        As in mmengine's ``BaseModel``.
    """

    def __init__(
        self,
        net: dict | None = None,
        weak_weight: float = 1.0,
        weak_flow_weight: float = 1.0,
        split_batches: bool = False,
        teacher: str | None = None,
        distill_weight: float = 1.0,
        test_cfg: dict | None = None,
        data_preprocessor=None,
        init_cfg=None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = SeedFlowNet(**dict(net or {}))
        if not float(weak_weight) >= 0:
            raise ValueError(f"weak_weight must be >= 0, got {weak_weight}")
        self.weak_weight = float(weak_weight)
        if not float(weak_flow_weight) >= 0:
            raise ValueError(f"weak_flow_weight must be >= 0, got {weak_flow_weight}")
        self.weak_flow_weight = float(weak_flow_weight)
        self.split_batches = bool(split_batches)
        if not float(distill_weight) >= 0:
            raise ValueError(f"distill_weight must be >= 0, got {distill_weight}")
        self.distill_weight = float(distill_weight)
        # a plain list keeps the frozen teacher out of parameters(), state_dict() and the optimiser
        self._teacher = [] if teacher is None else [resolve_model(teacher).eval().requires_grad_(False)]
        if self._teacher and self._teacher[0].config["percentiles"] != self.net.config["percentiles"]:
            raise ValueError("teacher and network must normalise images alike (same percentiles)")
        self.test_cfg = dict(test_cfg or {})
        if "diameter_px" in self.test_cfg:
            raise ValueError("test_cfg must not set diameter_px: validation images are already rescaled to the network's diameter")

    def forward(self, inputs, data_samples=None, mode: str = "tensor"):
        if mode == "loss":
            return self._loss(inputs, data_samples)
        if mode == "predict":
            return self._predict(inputs, data_samples)
        if mode == "tensor":
            return self.net(inputs if isinstance(inputs, torch.Tensor) else torch.stack(list(inputs)))
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', not {mode!r}")

    def _loss(self, inputs, data_samples) -> dict[str, torch.Tensor]:
        if not isinstance(data_samples, dict) or not {"targets", "weak", "is_weak"} <= set(data_samples):
            raise ValueError(
                "training batches need data_samples with 'targets', 'weak' and 'is_weak' (PackSeedFlowInputs + default_collate)"
            )
        x = inputs if isinstance(inputs, torch.Tensor) else torch.stack(list(inputs))
        is_weak = data_samples["is_weak"].to(torch.bool).reshape(-1)
        n = is_weak.numel()
        n_weak = int(is_weak.sum())
        labelled = ~is_weak
        if self.split_batches and 0 < n_weak < n:
            y_labelled, y_weak = self.net(x[labelled]), self.net(x[is_weak])
        else:
            y = self.net(x)
            y_labelled, y_weak = y[labelled], y[is_weak]
        zero = (y_labelled.sum() + y_weak.sum()) * 0.0
        targets = data_samples["targets"][labelled].to(y_labelled.dtype)
        loss_labelled = labelled_loss(y_labelled, targets) * ((n - n_weak) / n) if n_weak < n else zero
        if n_weak and self.weak_weight > 0:
            weak_targets = data_samples["targets"][is_weak].to(y_weak.dtype)  # zeros unless the dataset made flow targets
            loss_weak = weak_loss(y_weak, data_samples["weak"][is_weak], weak_targets, flow_weight=self.weak_flow_weight)
            loss_weak = loss_weak * (self.weak_weight * n_weak / n)
        else:
            loss_weak = zero
        losses = {"loss_labelled": loss_labelled, "loss_weak": loss_weak}
        if self._teacher:
            with torch.no_grad():
                teacher_y = self._teacher[0](x)
            parts = [(y_part, teacher_y[mask]) for y_part, mask in ((y_labelled, labelled), (y_weak, is_weak)) if len(y_part)]
            distill = sum(distillation_loss(y_part, t_part) * (len(y_part) / n) for y_part, t_part in parts)
            losses["loss_distill"] = distill * self.distill_weight
        return losses

    def _predict(self, inputs, data_samples) -> list[dict]:
        images = [inputs[i] for i in range(len(inputs))]
        if data_samples is None:
            samples = [{} for _ in images]
        elif isinstance(data_samples, dict):  # pseudo_collate of dicts: a dict of lists
            samples = [dict(zip(data_samples, values)) for values in zip(*data_samples.values())]
        else:
            samples = list(data_samples)
        outputs = []
        for image, sample in zip(images, samples):
            gray = image.detach().cpu().numpy()
            gray = gray[0] if gray.ndim == 3 else gray
            result = segment(gray, self.net, diameter_px=None, **self.test_cfg)
            outputs.append(
                {
                    "pred_labels": result.labels,
                    "gt_labels": sample.get("labels"),
                    "confidence": result.confidence,
                    "name": sample.get("name", ""),
                }
            )
        return outputs


# registered in mmengine's root registry: the Runner looks model wrappers up there directly
@MMENGINE_MODEL_WRAPPERS.register_module()
class SeedFlowDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper that also works for a model on the CPU.

    mmengine's ``Runner`` always passes ``device_ids=[LOCAL_RANK]``, which torch's
    ``DistributedDataParallel`` rejects for CPU modules; they get ``device_ids=None`` here
    (one process per worker, gradients all-reduced over gloo).
    """

    def __init__(self, module, device_ids=None, **kwargs):
        if all(p.device.type == "cpu" for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
