"""The one JSON sanitiser (nc_synthmodel.files.json_safe), used by both packages' reports and logs."""

import json
from pathlib import Path

import numpy as np

from nc_synthmodel.files import json_safe


def test_numpy_paths_and_non_finite_values_become_strict_json():
    value = {"a": np.float32(1.5), "b": np.arange(3), 1: (np.int64(4), Path("x/y")), "c": [float("nan"), np.float64("inf")]}
    safe = json_safe(value)
    assert safe == {"a": 1.5, "b": [0, 1, 2], "1": [4, "x/y"], "c": [None, None]}
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe


def test_segmentation_reports_use_the_same_function():
    from napari_nanocrystal.segmentation import training
    from napari_nanocrystal.segmentation.engine import hooks

    assert training.json_safe is json_safe and hooks.json_safe is json_safe
