"""mmengine components for training the seed/flow network (registered in child registries).

Importing this package registers, under the scope :data:`.registry.SCOPE`:

* model ``SeedFlowModel`` (:mod:`.model`): SeedFlowNet + the paper's losses;
* datasets ``LabelledFlowDataset``, ``WeakLabelDataset`` (:mod:`.datasets`);
* transforms ``RandomAffineCrop``, ``RandomBrightnessContrast``, ``PackSeedFlowInputs``
  (:mod:`.transforms`);
* hooks ``TrainingLogHook``, ``ProgressHook`` (:mod:`.hooks`);
* metric ``SeedFlowMetric`` (:mod:`.metric`);
* loop ``SeedFlowTrainLoop`` (:mod:`.loops`).

The two-stage recipe that drives mmengine's ``Runner`` with them is
:func:`napari_nanocrystal.segmentation.training.train`.
"""

from __future__ import annotations

from . import datasets, hooks, loops, metric, model, transforms  # noqa: F401  (registration)
from .registry import SCOPE

__all__ = ["SCOPE"]
