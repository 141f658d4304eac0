"""Moved to :mod:`nc_synthmodel.models.baselines`; this name stays importable."""

from .models.baselines import BASELINES, FlatFeatureRegressor, LSTMRegressor
from .models.threads import torch_threads as _torch_threads  # noqa: F401 - the old private name

__all__ = ["BASELINES", "FlatFeatureRegressor", "LSTMRegressor"]
