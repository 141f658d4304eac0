"""segment(): input types, the flow-following pipeline end to end, confidence filter, tiling."""

import resource

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.draw import disk

from napari_nanocrystal.segmentation.evaluation import evaluate
from napari_nanocrystal.segmentation.inference import (
    SegmentationResult,
    bfloat16_supported,
    predict_flows,
    remove_bad_flow_masks,
    segment,
)
from napari_nanocrystal.segmentation.network import FLOW_SCALE, SeedFlowNet
from napari_nanocrystal.segmentation.targets import flow_targets
from napari_nanocrystal.segmentation.tiling import _tile_layout

TINY = (1, 4, 8, 8, 8)


class PerfectNet(torch.nn.Module):
    """Stands in for a trained network: reads particles off its (normalised) input.

    Pixels brighter than 0.2 are particles (connected components are instances); the seed
    probability is the input intensity clipped to [0.01, 0.99] and the flows are the exact
    cellpose flows of those instances, so flow following must give the instances back.
    """

    def forward(self, x):
        image = x[0, 0].numpy()
        labels, _ = ndimage.label(image > 0.2)
        t = flow_targets(labels)
        prob = np.clip(image, 0.01, 0.99)
        logit = np.log(prob / (1 - prob))
        return torch.from_numpy(np.stack([FLOW_SCALE * t[0], FLOW_SCALE * t[1], logit]).astype(np.float32))[None]


def _discs(shape, radius, spacing, brightness=None, jitter=2, seed=0):
    """Separate bright discs on a dark background; returns (image float, labels int32)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    image = np.zeros(shape, np.float32)
    k = 0
    for cy in range(spacing // 2, shape[0] - radius, spacing):
        for cx in range(spacing // 2, shape[1] - radius, spacing):
            k += 1
            rr, cc = disk((cy + rng.integers(-jitter, jitter + 1), cx + rng.integers(-jitter, jitter + 1)), radius, shape=shape)
            labels[rr, cc] = k
            image[rr, cc] = 1.0 if brightness is None else brightness.get(k, 1.0)
    return image, labels


def test_perfect_network_recovers_the_instances():
    image, labels = _discs((160, 192), radius=11, spacing=32)
    result = segment(image, PerfectNet(), diameter_px=None)  # at the input size
    assert isinstance(result, SegmentationResult)
    assert result.labels.dtype == np.int32 and result.labels.shape == labels.shape
    scores = evaluate([result.labels], [labels])
    assert scores["ap50"] == 1.0 and scores["ap90"] == 1.0
    assert result.confidence.shape == (labels.max(),) and np.all(result.confidence > 0.9)
    assert result.seed_prob.shape == labels.shape and result.flows.shape == (2, *labels.shape)


def test_rescaling_to_the_model_diameter_and_back():
    image, labels = _discs((240, 240), radius=26, spacing=80)  # diameter ~52 px
    result = segment((image * 65535).astype(np.uint16), PerfectNet(), diameter_px=52)
    assert result.scale == pytest.approx(30 / 52)
    assert result.labels.shape == labels.shape and result.seed_prob.shape == labels.shape
    scores = evaluate([result.labels], [labels])
    assert scores["ap75"] == 1.0 and scores["mean_iou_matched"] > 0.9


def test_auto_diameter_is_estimated_by_the_model_and_used():
    image, labels = _discs((240, 240), radius=26, spacing=80)  # diameter ~52 px, the model's is 30
    messages = []
    result = segment(image, PerfectNet(), diameter_px="auto", progress=lambda m, f: messages.append((m, f)))
    assert result.diameter_px == pytest.approx(52, rel=0.05)  # second pass at the measured diameter
    assert result.scale == pytest.approx(30 / result.diameter_px)
    assert evaluate([result.labels], [labels])["ap75"] == 1.0
    assert any(m.startswith("diameter pass 2") for m, _ in messages)
    assert [f for _, f in messages] == sorted(f for _, f in messages) and messages[-1][1] == 1.0


def test_auto_diameter_keeps_the_native_pass_when_particles_already_fit():
    image, labels = _discs((160, 192), radius=15, spacing=40)  # diameter ~30 px = the model's
    result = segment(image, PerfectNet(), diameter_px="auto")
    assert result.diameter_px is None and result.scale == 1.0
    assert evaluate([result.labels], [labels])["ap90"] == 1.0


def test_auto_diameter_on_an_empty_image_returns_no_particles():
    result = segment(np.zeros((64, 64), np.float32), PerfectNet(), diameter_px="auto")
    assert result.n_objects == 0 and not result.labels.any()


@pytest.mark.skipif(not bfloat16_supported(), reason="this CPU has no native bfloat16 (float32 is then used)")
def test_bfloat16_network_pass_matches_float32():
    torch.manual_seed(0)
    net = SeedFlowNet(TINY)
    image = np.random.default_rng(0).random((96, 128)).astype(np.float32)
    full = predict_flows(net, image, precision="float32")
    fast = predict_flows(net, image, precision="bfloat16")
    assert fast.dtype == np.float32 and fast.shape == full.shape
    assert np.abs(fast - full).max() < 0.05 * full.std() + 1e-3
    assert next(net.parameters()).is_contiguous()  # the caller's module is not converted to channels-last


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        segment(np.zeros((32, 32)), PerfectNet(), precision="float16")


def test_flow_quality_control_matches_cellpose():
    from cellpose import dynamics

    image, labels = _discs((160, 192), radius=11, spacing=32)
    flows = 5.0 * flow_targets(labels)[:2]
    flows[:, :64, :64] *= -1  # flows pointing away from the centres: those masks must go
    reference = dynamics.remove_bad_flow_masks(labels.copy(), flows, threshold=0.4)
    for workers in (1, 2, 3):
        ours = remove_bad_flow_masks(labels.copy(), flows, 0.4, workers=workers)
        assert np.array_equal(ours, reference)
    assert 0 < len(np.unique(reference)) - 1 < labels.max()


def test_mask_flows_equal_cellpose_bitwise():
    from cellpose import dynamics

    from napari_nanocrystal.segmentation.inference import mask_flows
    from napari_nanocrystal.synthetic import make_tem_image

    labels = make_tem_image(
        (200, 240),
        n_particles=40,
        shape_classes=("sphere", "rod", "triangle"),
        diameter_nm=(12.0, 3.0),
        touching_fraction=0.5,
        scale_bar=False,
        rng=4,
    ).labels
    labels[labels == 5] = 0  # a missing label in the middle of the range
    assert np.array_equal(mask_flows(labels), dynamics.masks_to_flows_cpu(labels)[0])
    assert not mask_flows(np.zeros((16, 16), np.int32)).any()


def test_confidence_filter_drops_low_confidence_instances():
    dim = {3: 0.45, 7: 0.45}  # seed probability 0.45: above the pixel threshold, below 0.5
    image, labels = _discs((128, 128), radius=11, spacing=32, brightness=dim)
    kept = segment(image, PerfectNet(), diameter_px=None)
    assert kept.labels.max() == labels.max() - 2
    assert np.array_equal(np.unique(kept.labels), np.arange(kept.labels.max() + 1))  # renumbered 1..N
    assert np.all(kept.confidence >= 0.5)
    for low in dim:
        assert not kept.labels[labels == low].any()
    expected = labels.copy()
    expected[np.isin(labels, list(dim))] = 0
    assert evaluate([kept.labels], [expected])["ap50"] == 1.0
    everything = segment(image, PerfectNet(), diameter_px=None, confidence_threshold=None)
    assert everything.labels.max() == labels.max()
    assert sorted(everything.confidence)[:2] == pytest.approx([0.45, 0.45], abs=1e-3)
    assert everything.confidence_by_label()[1] == pytest.approx(float(everything.confidence[0]))


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (50, 70), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 65536, (50, 70), dtype=np.uint16),
        np.random.default_rng(2).normal(size=(50, 70)),
        np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8),
        np.random.default_rng(4).random((50, 70, 4)).astype(np.float32),
        np.zeros((50, 70), np.float32),
    ],
    ids=["uint8", "uint16", "float64", "rgb", "rgba", "flat"],
)
def test_any_input_type_gives_int32_labels(image):
    torch.manual_seed(0)
    progress = []
    result = segment(image, SeedFlowNet(TINY), diameter_px=None, progress=lambda message, fraction: progress.append(fraction))
    assert result.labels.dtype == np.int32 and result.labels.shape == (50, 70)
    assert result.seed_prob.dtype == np.float32 and result.seed_prob.shape == (50, 70)
    assert result.flows.shape == (2, 50, 70)
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)


def test_model_from_path_and_bad_arguments(tmp_path, monkeypatch):
    from napari_nanocrystal.segmentation import network

    path = SeedFlowNet(TINY).save(tmp_path / "tiny")
    assert segment(np.zeros((32, 32)), str(path)).labels.shape == (32, 32)
    monkeypatch.setattr(network, "MODELS_DIR", tmp_path / "no-models")  # an installation without weights
    with pytest.raises(FileNotFoundError, match="no default segmentation model"):
        segment(np.zeros((32, 32)))
    monkeypatch.undo()
    with pytest.raises(ValueError, match="image must be"):
        segment(np.zeros((4, 32, 32)), SeedFlowNet(TINY))
    with pytest.raises(ValueError, match="diameter_px"):
        segment(np.zeros((32, 32)), SeedFlowNet(TINY), diameter_px=0)
    with pytest.raises(ValueError, match="diameter_px must be a number, not 'large'"):
        segment(np.zeros((32, 32)), SeedFlowNet(TINY), diameter_px="large")


class LocalNet(torch.nn.Module):
    """A fixed 3-layer 3×3 conv net: output depends on a 7×7 neighbourhood only."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Conv2d(8, 8, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Conv2d(8, 3, 3, padding=1),
        )

    def forward(self, x):
        return 4 * self.body(x)


def test_tiled_equals_untiled_away_from_tile_borders():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((200, 232)), 2).astype(np.float32)
    image = (image - image.mean()) / image.std()
    net = LocalNet()
    whole = predict_flows(net, image, tile_size=256)
    tiled = predict_flows(net, image, tile_size=64, tile_overlap=0.25)
    assert tiled.shape == whole.shape == (3, 200, 232)
    assert len(_tile_layout(200, 64, 16)[1]) == 4 and len(_tile_layout(232, 64, 16)[1]) == 5
    # tile edges inside the image: within 3 px of them a tile sees zero padding
    edges_y = {s for s in range(1, 200) if _is_tile_edge(s, 200, 64, 0.25)}
    edges_x = {s for s in range(1, 232) if _is_tile_edge(s, 232, 64, 0.25)}
    near = np.zeros((200, 232), bool)
    for e in edges_y:
        near[max(0, e - 3) : e + 3, :] = True
    for e in edges_x:
        near[:, max(0, e - 3) : e + 3] = True
    assert near.mean() < 0.7
    np.testing.assert_allclose(tiled[:, ~near], whole[:, ~near], atol=1e-5)
    # near tile edges the blending keeps the error small (low weight on the padded tile)
    seed_whole, seed_tiled = 1 / (1 + np.exp(-whole[2])), 1 / (1 + np.exp(-tiled[2]))
    assert np.abs(seed_tiled - seed_whole).max() < 0.1


def _is_tile_edge(position, length, tile, overlap):
    size, starts = _tile_layout(length, tile, round(overlap * tile))
    return any(position in (s, s + size) for s in starts)


def test_large_image_runs_tiled_with_bounded_memory():
    torch.manual_seed(0)
    image = np.random.default_rng(0).integers(0, 65536, (2048, 2048), dtype=np.uint16)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: kB)
    tiles = []
    result = segment(
        image,
        SeedFlowNet(TINY),
        diameter_px=None,
        tile_size=512,
        seed_threshold=0.9,
        progress=lambda m, f: tiles.append(m) if m.startswith("network: tile") else None,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(tiles) == 25  # 5 tiles of 464 px per axis overlap by >= 51 px
    assert result.labels.shape == (2048, 2048) and result.labels.dtype == np.int32
    assert peak - before < 1500  # MB; outputs alone are 2048² × (4 + 4 + 8) bytes = 64 MB
