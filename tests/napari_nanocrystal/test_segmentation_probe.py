"""segment()'s speed paths: tiles run once and reused, the probe first pass of "auto", masks at the input size."""

import numpy as np
import pytest
import torch

from napari_nanocrystal.segmentation import inference
from napari_nanocrystal.segmentation.evaluation import evaluate
from napari_nanocrystal.segmentation.inference import predict_flows, segment, tile_grid
from napari_nanocrystal.segmentation.network import SeedFlowNet

from test_segmentation_inference import PerfectNet, _discs
from test_size_model import SizedPerfectNet

TINY = (1, 4, 8, 8, 8)


def test_a_tile_subset_is_the_network_on_those_tiles_and_its_cache_is_reused():
    torch.manual_seed(0)
    net = SeedFlowNet(TINY).eval()
    image = np.random.default_rng(0).random((300, 280)).astype(np.float32)
    th, ys, tw, xs, _ = tile_grid(image.shape, 128, 0.1)
    assert len(ys) == 3 and len(xs) == 3
    cache = {}
    centre = predict_flows(net, image, tile_size=128, tiles=[(ys[1], xs[1])], cache=cache, precision="float32")
    with torch.inference_mode():
        alone = net(torch.from_numpy(image[ys[1] : ys[1] + th, xs[1] : xs[1] + tw].copy())[None, None])[0].numpy()
    np.testing.assert_allclose(centre, alone, atol=1e-5)
    assert list(cache) == [(ys[1], xs[1])]
    whole = predict_flows(net, image, tile_size=128, precision="float32")
    reused = predict_flows(net, image, tile_size=128, cache=cache, precision="float32")
    assert len(cache) == 9
    np.testing.assert_array_equal(reused, whole)
    with pytest.raises(ValueError, match="offsets of the layout"):
        predict_flows(net, image, tile_size=128, tiles=[(1, 1)])


def _run(image, net, probe: bool, monkeypatch, **kwargs):
    """segment() with or without the probe, on tiles of 256 px; the probe looks at the central 256² px
    (the 2 x 2 central tiles of 4 x 4 for a 700-px image) instead of 512²."""
    from napari_nanocrystal.segmentation import size_model

    monkeypatch.setattr(size_model, "PROBE_SIZE", 256)
    monkeypatch.setattr(inference, "PROBE_FIRST_PASS", probe)
    return segment(image, net, tile_size=256, **kwargs)


def test_probe_measures_small_particles_on_the_centre_and_skips_the_whole_first_pass(monkeypatch):
    image, labels = _discs((720, 720), radius=9, spacing=30)  # ~18 px particles; the estimate says 30
    result = _run(image, SizedPerfectNet(30.0), True, monkeypatch)
    assert result.passes == 2 and result.diameter_px == pytest.approx(18.5, abs=1.5)
    assert "pass 1 (probe): network" in result.timings and "pass 1: network" not in result.timings
    assert "pass 2: network" in result.timings
    scores = evaluate([result.labels], [labels])
    assert scores["ap50"] == 1.0
    whole = _run(image, SizedPerfectNet(30.0), False, monkeypatch)  # as before: the whole first pass decides
    assert whole.passes == 2 and whole.diameter_px == pytest.approx(result.diameter_px, rel=0.05)


def test_probe_without_a_second_pass_gives_the_same_labels_as_the_whole_first_pass(monkeypatch):
    image, _ = _discs((700, 700), radius=15, spacing=40)  # ~30 px particles: no second pass
    probed = _run(image, SizedPerfectNet(30.0), True, monkeypatch)
    whole = _run(image, SizedPerfectNet(30.0), False, monkeypatch)
    assert probed.passes == whole.passes == 1
    assert "pass 1 (probe): network" in probed.timings and "pass 1 (probe): network" not in whole.timings
    np.testing.assert_array_equal(probed.labels, whole.labels)
    np.testing.assert_array_equal(probed.confidence, whole.confidence)


def test_probe_with_too_few_particles_leaves_the_decision_to_the_whole_image(monkeypatch):
    from skimage.draw import disk

    image = np.zeros((700, 700), np.float32)
    for centre in [(40, 40), (40, 660), (660, 40), (660, 660), (40, 350), (350, 40)]:  # none in the centre
        image[disk(centre, 9, shape=image.shape)] = 1.0
    probed = _run(image, SizedPerfectNet(30.0), True, monkeypatch)
    whole = _run(image, SizedPerfectNet(30.0), False, monkeypatch)
    assert "pass 1 (probe): network" in probed.timings and "pass 1: network" in probed.timings
    assert probed.passes == whole.passes
    np.testing.assert_array_equal(probed.labels, whole.labels)


@pytest.mark.parametrize("at_input", [True, False])
def test_an_enlarged_image_is_segmented_whole_with_masks_at_either_size(monkeypatch, at_input):
    monkeypatch.setattr(inference, "MASKS_AT_INPUT_SCALE", at_input)
    image, labels = _discs((200, 240), radius=8, spacing=30)  # ~16 px particles, enlarged ~1.9x
    result = segment(image, PerfectNet(), diameter_px=16)
    assert result.scale == pytest.approx(30 / 16)
    assert result.labels.shape == labels.shape and result.flows.shape == (2, *labels.shape)
    scores = evaluate([result.labels], [labels])
    assert scores["ap50"] == 1.0 and scores["mean_iou_matched"] > 0.85
    assert set(result.timings) >= {"pass 1: network", "pass 1: flow following", "pass 1: flow QC"}
