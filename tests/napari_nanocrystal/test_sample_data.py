"""The synthetic TEM sample: fixed, scaled in nm, with ground truth and a readable scale bar."""

from __future__ import annotations

import numpy as np
import pytest

from napari_nanocrystal._sample_data import SAMPLE_NM_PER_PX, make_synthetic_tem


@pytest.fixture(scope="module")
def layers():
    return make_synthetic_tem()


def test_layers_image_and_ground_truth_labels(layers):
    (image, image_kw, image_type), (labels, labels_kw, labels_type) = layers
    assert (image_type, labels_type) == ("image", "labels")
    assert image.shape == labels.shape == (512, 512) and image.dtype == np.uint8 and labels.dtype == np.int32
    assert image_kw["name"] == "synthetic TEM" and labels_kw["name"] == "synthetic TEM ground truth"
    assert image_kw["scale"] == labels_kw["scale"] == (SAMPLE_NM_PER_PX, SAMPLE_NM_PER_PX)
    assert image_kw["units"] == labels_kw["units"] == ("nm", "nm")
    meta = image_kw["metadata"]
    assert meta["nm_per_px"] == SAMPLE_NM_PER_PX and meta["calibration_source"] == "metadata"
    # the truth table describes the label image: every label present has a class and a size
    present = set(np.unique(labels[labels > 0]).tolist())
    truth = dict(zip(meta["particles"]["label"], meta["particles"]["shape_class"]))
    assert len(present) >= 30 and present <= set(truth)
    assert set(truth.values()) == {"sphere", "cube", "triangle", "hexagon", "rod"}
    assert all(10 < d < 25 for d in meta["particles"]["ecd_nm"])  # 15 ± 2 nm requested
    # particles are dark on a brighter film
    assert image[labels > 0].mean() < image[labels == 0].mean() - 30
    bar = meta["scale_bar"]
    assert bar["text"] == "50 nm" and bar["nm_per_px"] == pytest.approx(SAMPLE_NM_PER_PX)


def test_same_sample_every_time(layers):
    again = make_synthetic_tem()
    assert np.array_equal(again[0][0], layers[0][0]) and np.array_equal(again[1][0], layers[1][0])


def test_scale_bar_of_the_sample_reads_back_by_ocr(layers):
    """The burned-in bar gives the layer's pixel size (the sample demonstrates scale-bar calibration)."""
    import torch

    from napari_nanocrystal.scalebar import get_ocr_reader, read_scale_bar

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = read_scale_bar(layers[0][0], reader=get_ocr_reader())
    finally:
        torch.set_num_threads(threads)
    assert (result.value, result.unit, result.source) == (50.0, "nm", "ocr")
    assert result.nm_per_px == pytest.approx(SAMPLE_NM_PER_PX, rel=0.02)
