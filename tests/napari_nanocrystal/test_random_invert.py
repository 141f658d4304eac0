"""Polarity augmentation (``RandomInvert``): what it changes, what it keeps, its random stream."""

from __future__ import annotations

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from napari_nanocrystal.segmentation._image import normalize_percentiles
from napari_nanocrystal.segmentation.engine.registry import SCOPE, TRANSFORMS
from napari_nanocrystal.segmentation.targets import flow_targets
from skimage.draw import disk


def _sample():
    labels = np.zeros((64, 64), np.int32)
    rr, cc = disk((32, 32), 10, shape=labels.shape)
    labels[rr, cc] = 1
    raw = np.where(labels > 0, 40.0, 200.0).astype(np.float32) + np.random.default_rng(0).normal(0, 5, labels.shape).astype(np.float32)
    weak = (labels > 0).astype(np.uint8)
    image = normalize_percentiles(raw)
    return raw, {"image": image, "labels": labels, "targets": flow_targets(labels), "weak": weak, "kind": "labelled"}


def _build(**kwargs):
    with DefaultScope.overwrite_default_scope(SCOPE):
        return TRANSFORMS.build(dict(type="RandomInvert", **kwargs))


def test_invert_is_the_inverted_raw_image_normalised_and_keeps_the_targets():
    raw, sample = _sample()
    before = sample["image"].copy()
    out = _build(prob=1.0)(sample)
    # 1 - x of the normalised crop == the inverted raw image normalised the same way
    np.testing.assert_allclose(out["image"], normalize_percentiles(-raw), atol=1e-5)
    assert out["image"].dtype == np.float32
    assert out["image"][32, 32] > 0.9 and out["image"][2, 2] < 0.1  # dark particle became bright
    assert out["labels"] is sample["labels"] and out["targets"] is sample["targets"] and out["weak"] is sample["weak"]
    np.testing.assert_array_equal(sample["image"], before)  # the input sample is not modified


def test_prob_zero_never_inverts_but_draws_like_prob_half():
    _, sample = _sample()
    never, half = _build(prob=0.0), _build(prob=0.5)
    np.random.seed(3)
    assert all(never(sample)["image"] is sample["image"] for _ in range(20))
    after_never = np.random.rand()
    np.random.seed(3)
    flipped = sum(half(sample)["image"] is not sample["image"] for _ in range(20))
    assert np.random.rand() == after_never  # one draw per call either way: a control run keeps its stream
    assert 4 <= flipped <= 16
    np.random.seed(0)
    rate = np.mean([half(sample)["image"] is not sample["image"] for _ in range(2000)])
    assert 0.46 < rate < 0.54


def test_bad_probability_is_named():
    with pytest.raises(ValueError, match=r"prob must be in \[0, 1\], got 1.5"):
        TRANSFORMS.get("RandomInvert")(prob=1.5)
    assert repr(TRANSFORMS.get("RandomInvert")(prob=0.25)) == "RandomInvert(prob=0.25)"
