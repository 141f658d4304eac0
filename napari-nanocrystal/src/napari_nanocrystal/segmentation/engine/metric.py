"""Validation metric (mmengine ``METRICS``): AP at IoU 0.5/0.75/0.9 and the mean matched IoU."""

from __future__ import annotations

import logging
import math

import numpy as np
from mmengine.evaluator import BaseMetric

from ..evaluation import evaluate
from .registry import METRICS

__all__ = ["SeedFlowMetric"]

logger = logging.getLogger(__name__)


@METRICS.register_module()
class SeedFlowMetric(BaseMetric):
    """Instance-segmentation scores of ``SeedFlowModel`` predictions (``mode='predict'``).

    Uses :func:`~napari_nanocrystal.segmentation.evaluation.evaluate` (cellpose's AP =
    TP / (TP + FP + FN), pooled over the images).  Returns ``ap50``, ``ap75``, ``ap90``
    (pooled), ``ap50_per_image`` (mean of the per-image AP50), ``mean_iou`` (mean IoU of the
    true objects matched at IoU ≥ 0.5), ``n_images``, ``n_true``, ``n_pred``.
    """

    default_prefix = ""  # metric names as they are: ap50, ap75, …

    def __init__(self, thresholds=(0.5, 0.75, 0.9), collect_device: str = "cpu", prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, data_batch, data_samples) -> None:
        for output in data_samples:
            if output.get("gt_labels") is None:
                raise ValueError("SeedFlowMetric needs true labels: validation samples must be packed with with_labels=True")
            self.results.append((np.asarray(output["pred_labels"], np.int32), np.asarray(output["gt_labels"], np.int32)))

    def compute_metrics(self, results: list) -> dict:
        preds = [p for p, _ in results]
        trues = [t for _, t in results]
        scores = evaluate(preds, trues, thresholds=self.thresholds)
        metrics = {f"ap{round(100 * t)}": float(v) for t, v in zip(self.thresholds, scores["ap"])}
        first = scores["ap_mean_per_image"][0] if scores["ap_mean_per_image"] else float("nan")
        metrics[f"ap{round(100 * self.thresholds[0])}_per_image"] = float(first)
        metrics["mean_iou"] = float(scores["mean_iou_matched"])
        metrics.update(n_images=scores["n_images"], n_true=scores["n_true"], n_pred=scores["n_pred"])
        logger.info(
            "validation: %s",
            ", ".join(f"{k}={v:.3f}" if isinstance(v, float) and not math.isnan(v) else f"{k}={v}" for k, v in metrics.items()),
        )
        return metrics
