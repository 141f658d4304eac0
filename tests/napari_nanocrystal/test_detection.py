"""The paper's weak-label detector: NWD components in mmdet's registries, configs, dataset, training and inference."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("mmdet", reason="the 'detector' extra (mmdet, mmcv with ops) is not installed")

from mmdet.registry import DATASETS, MODELS, TASK_UTILS  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from napari_nanocrystal.detection import (  # noqa: E402
    LoadTEMImage,
    NWDOverlaps2D,
    available_configs,
    config_path,
    detect_boxes,
    load_config,
    load_detector,
    nwd,
    train_detector,
)
from napari_nanocrystal.segmentation.data import read_labels  # noqa: E402
from napari_nanocrystal.synthetic import make_tem_image  # noqa: E402
from napari_nanocrystal.weak_labels import boxes_from_labels, generate_weak_labels  # noqa: E402

C = 12.8
CONFIGS = ("cascade_rcnn_hrnet_nwd", "cascade_rcnn_hrnet_w18_nwd", "cascade_rcnn_hrnet_cpu_nwd", "cascade_rcnn_hrnet_tiny_nwd")


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


# ----------------------------------------------------------------------------------------- NWD


def test_nwd_against_hand_computed_values():
    calc = NWDOverlaps2D(constant=C)
    box = _t([[0, 0, 10, 10]])
    assert calc(box, box).item() == 1.0  # identical boxes
    # centre shift of 3 px: W2 = 3
    assert calc(box, _t([[3, 0, 13, 10]])).item() == pytest.approx(math.exp(-3 / C), rel=1e-6)
    # shift (3, 4): W2 = 5
    assert calc(box, _t([[3, 4, 13, 14]])).item() == pytest.approx(math.exp(-5 / C), rel=1e-6)
    # same corner, twice the size: centres 5√2 apart, half-sizes differ by 5 and 5 -> W2² = 50 + 50
    assert calc(box, _t([[0, 0, 20, 20]])).item() == pytest.approx(math.exp(-10 / C), rel=1e-6)
    # disjoint boxes still have a non-zero similarity (IoU is 0)
    far = _t([[30, 0, 40, 10]])
    assert bbox_overlaps(box, far).item() == 0.0 and calc(box, far).item() == pytest.approx(math.exp(-30 / C), rel=1e-6)


def test_nwd_decreases_with_shift_and_depends_on_absolute_offsets():
    calc = NWDOverlaps2D(constant=C)
    box = _t([[0, 0, 10, 10]])
    shifted = _t([[s, 0, 10 + s, 10] for s in range(0, 12, 2)])
    values = calc(box, shifted)[0]
    assert torch.all(values[1:] < values[:-1])
    # the same 2-px shift costs a small and a large box the same NWD, but very different IoUs
    small, big = _t([[0, 0, 6, 6]]), _t([[0, 0, 60, 60]])
    small2, big2 = _t([[2, 0, 8, 6]]), _t([[2, 0, 62, 60]])
    assert calc(small, small2).item() == pytest.approx(calc(big, big2).item())
    assert bbox_overlaps(small, small2).item() < 0.6 < 0.9 < bbox_overlaps(big, big2).item()
    # scaling every coordinate and C together leaves NWD unchanged
    a, b = _t([[1, 2, 9, 14]]), _t([[3, 1, 12, 10]])
    assert NWDOverlaps2D(constant=4 * C)(4 * a, 4 * b).item() == pytest.approx(calc(a, b).item(), rel=1e-6)


def test_nwd_calculator_interface_matches_bbox_overlaps2d():
    calc = TASK_UTILS.build(dict(type="NWDOverlaps2D", constant=C))
    assert isinstance(calc, NWDOverlaps2D) and "12.8" in repr(calc)
    a = _t([[0, 0, 10, 10], [5, 5, 20, 25], [1, 1, 4, 4]])
    b = _t([[0, 0, 10, 10, 0.9], [5, 5, 20, 25, 0.1]])  # a score column is dropped
    matrix = calc(a, b)
    assert matrix.shape == (3, 2)
    assert torch.allclose(calc(a[:2], b, is_aligned=True), torch.diagonal(matrix[:2]))
    assert torch.allclose(matrix, nwd(a, b[:, :4], C))
    assert calc(a, b[:0]).shape == (3, 0) and calc(a[:0], b[:0], is_aligned=True).shape == (0,)
    batched = nwd(a[None].repeat(2, 1, 1), b[None, :, :4].repeat(2, 1, 1), C)
    assert batched.shape == (2, 3, 2) and torch.allclose(batched[1], matrix)
    assert torch.equal(calc(a, b, mode="iof"), bbox_overlaps(a, b[:, :4], mode="iof"))
    with pytest.raises(ValueError, match="giou"):
        calc(a, b, mode="giou")
    with pytest.raises(ValueError, match="positive"):
        NWDOverlaps2D(constant=0)


def test_nwd_loss_values_reduction_and_gradient():
    loss = MODELS.build(dict(type="NWDLoss", constant=C, loss_weight=2.0))
    pred = _t([[0, 0, 10, 10], [3, 0, 13, 10]]).requires_grad_(True)
    target = _t([[0, 0, 10, 10], [0, 0, 10, 10]])
    per_box = loss(pred, target, reduction_override="none")
    assert torch.allclose(per_box, 2.0 * (1 - torch.tensor([1.0, math.exp(-3 / C)])), atol=1e-4)
    assert loss(pred, target).item() == pytest.approx(per_box.mean().item())
    weighted = loss(pred, target, weight=_t([[0, 0, 0, 0], [1, 1, 1, 1]]), avg_factor=1.0)  # (n, 4) weights are averaged
    assert weighted.item() == pytest.approx(per_box[1].item(), rel=1e-5)
    loss(pred, target).backward()
    assert torch.isfinite(pred.grad).all()  # finite at identical boxes too
    zero = loss(pred, target, weight=torch.zeros(2))
    assert zero.item() == 0.0 and zero.requires_grad


# ------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_use_nwd_in_every_assigner(name):
    assert name in available_configs()
    cfg = Config.fromfile(str(config_path(name)))
    assert cfg.default_scope == "mmdet" and "napari_nanocrystal.detection" in cfg.custom_imports.imports
    train_cfg = cfg.model.train_cfg
    assigners = [train_cfg.rpn.assigner] + [stage.assigner for stage in train_cfg.rcnn]
    assert len(assigners) == 4
    assert all(a.iou_calculator.type == "NWDOverlaps2D" for a in assigners)
    assert cfg.model.backbone.type == "HRNet" and cfg.model.backbone.init_cfg is None and cfg.model.backbone.norm_eval is False
    assert cfg.model.roi_head.num_stages == 3 and all(h.num_classes == 1 for h in cfg.model.roi_head.bbox_head)
    widths = {
        "cascade_rcnn_hrnet_nwd": 32,
        "cascade_rcnn_hrnet_w18_nwd": 18,
        "cascade_rcnn_hrnet_cpu_nwd": 16,
        "cascade_rcnn_hrnet_tiny_nwd": 8,
    }
    assert cfg.model.backbone.extra.stage4.num_channels[0] == widths[name]


def test_the_built_assigners_compute_nwd():
    cfg = load_config("cascade_rcnn_hrnet_tiny_nwd")
    init_default_scope("mmdet")
    model = MODELS.build(cfg.model)
    calculators = [model.rpn_head.assigner.iou_calculator] + [a.iou_calculator for a in model.roi_head.bbox_assigner]
    assert len(calculators) == 4 and all(isinstance(c, NWDOverlaps2D) for c in calculators)
    # assignment really uses NWD: a prior disjoint from the only gt box (IoU 0) still matches it
    from mmengine.structures import InstanceData

    priors = InstanceData(priors=_t([[12, 0, 22, 10], [200, 200, 210, 210]]))
    gt = InstanceData(bboxes=_t([[0, 0, 10, 10]]), labels=torch.tensor([0]))
    result = model.rpn_head.assigner.assign(priors, gt)
    assert result.max_overlaps[0].item() == pytest.approx(math.exp(-12 / C), rel=1e-5)
    assert result.gt_inds.tolist() == [1, 0]  # low-quality match (NWD 0.39 ≥ min_pos_iou 0.3); the far prior is negative


def test_nwd_constant_is_set_on_every_calculator(tmp_path):
    from napari_nanocrystal.detection.training import _set_nwd_constant

    cfg = load_config("cascade_rcnn_hrnet_nwd")
    assert _set_nwd_constant(cfg, 22.0) == 4
    assert {a.iou_calculator.constant for a in [cfg.model.train_cfg.rpn.assigner] + [s.assigner for s in cfg.model.train_cfg.rcnn]} == {
        22.0
    }
    with pytest.raises(FileNotFoundError, match="packaged configs"):
        config_path("no_such_config")


# ------------------------------------------------------------------------------------- dataset


def test_dataset_reads_instance_maps_as_boxes(tem_examples, tmp_path):
    from PIL import Image

    labels = read_labels(tem_examples / "pbse_1-0001_16_instances.png")
    flat = DATASETS.build(dict(type="ParticleDetDataset", data_root=str(tem_examples / "pbse_1-0001_16_image.png"), pipeline=[]))
    assert len(flat) == 1 and flat.metainfo["classes"] == ("particle",)
    info = flat.get_data_info(0)
    assert (info["height"], info["width"]) == labels.shape and len(info["instances"]) == len(np.unique(labels[labels > 0]))
    np.testing.assert_allclose([i["bbox"] for i in info["instances"]], boxes_from_labels(labels))

    # EMPS layout (images/ + segmaps/), a name subset, and a training pipeline through mmdet's transforms
    samples = [make_tem_image((64, 80), n_particles=6, nm_per_px=0.5, scale_bar=False, rng=s) for s in range(3)]
    for d in ("images", "segmaps"):
        (tmp_path / d).mkdir()
    for i, s in enumerate(samples):
        Image.fromarray(s.image).save(tmp_path / "images" / f"n{i}.png")
        Image.fromarray(s.labels.astype(np.uint16)).save(tmp_path / "segmaps" / f"n{i}.png")
    pipeline = [dict(type="LoadTEMImage"), dict(type="LoadAnnotations", with_bbox=True), dict(type="PackDetInputs")]
    init_default_scope("mmdet")
    subset = DATASETS.build(dict(type="ParticleDetDataset", data_root=str(tmp_path), names=["n2", "n0"], pipeline=pipeline))
    assert [subset.get_data_info(i)["name"] for i in range(2)] == ["n2", "n0"]
    item = subset[0]
    assert tuple(item["inputs"].shape) == (3, 64, 80) and item["inputs"].dtype == torch.uint8
    np.testing.assert_allclose(item["data_samples"].gt_instances.bboxes.tensor.numpy(), boxes_from_labels(samples[2].labels))
    with pytest.raises(ValueError, match="nope"):
        DATASETS.build(dict(type="ParticleDetDataset", data_root=str(tmp_path), names=["nope"]))

    # in-memory samples; images without a particle are filtered out of training
    empty = (np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.int32))
    memory = DATASETS.build(
        dict(
            type="ParticleDetDataset",
            samples=[(s.image, s.labels) for s in samples[:2]] + [empty],
            filter_cfg=dict(filter_empty_gt=True),
            pipeline=pipeline,
        )
    )
    assert len(memory) == 2 and memory[1]["inputs"].shape[1:] == (64, 80)


def test_load_tem_image_normalises_any_image(tmp_path):
    import tifffile

    image16 = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 20).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", image16)
    loaded = LoadTEMImage()(dict(img_path=str(tmp_path / "a.tif")))
    img = loaded["img"]
    assert img.dtype == np.uint8 and img.shape == (48, 64, 3) and loaded["ori_shape"] == (48, 64)
    assert img[..., 0].min() == 0 and img[..., 0].max() == 255 and (img[..., 0] == img[..., 2]).all()
    rgb = np.dstack([image16 // 256] * 3).astype(np.uint8)
    assert LoadTEMImage()(dict(img=rgb))["img"].shape == (48, 64, 3)
    with pytest.raises(ValueError, match="percentiles"):
        LoadTEMImage(percentiles=(99, 1))


# ------------------------------------------------------------------------- training + inference


def _pairs(n=2, size=128):
    samples = [
        make_tem_image((size, size), n_particles=12, diameter_nm=(8.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=s) for s in range(n)
    ]
    return [(s.image, s.labels) for s in samples]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny HRNet Cascade R-CNN + NWD trained for 2 iterations through mmengine's Runner."""
    out = tmp_path_factory.mktemp("detector")
    torch.manual_seed(0)
    messages = []
    weights = train_detector("cascade_rcnn_hrnet_tiny_nwd", _pairs(), out, progress=lambda m, f: messages.append((m, f)))
    return out, weights, messages


def test_tiny_detector_trains_and_exports_weights_only(trained):
    out, weights, messages = trained
    assert weights == out / "detector.pth" and (out / "config.py").is_file()
    assert [f for _, f in messages] == [0.5, 1.0] and "loss" in messages[-1][0]
    content = torch.load(weights, map_location="cpu", weights_only=True)
    assert content["meta"]["iterations"] == 2 and content["meta"]["dataset_meta"]["classes"] == ["particle"]
    assert any(k.startswith("backbone.") for k in content["state_dict"])
    assert sorted(p.name for p in (out / "train_data" / "images").iterdir()) == ["0000.png", "0001.png"]
    # the full mmengine checkpoint (for resuming) is readable without unrestricted unpickling too
    assert torch.load(out / "work" / "iter_2.pth", map_location="cpu", weights_only=True)["meta"]["iter"] == 2


def test_trained_detector_predicts_through_mmdet(trained):
    out, weights, _ = trained
    model = load_detector(weights)
    image = _pairs(1, 160)[0][0]
    boxes, scores = detect_boxes(model, image, score_threshold=0.0)
    assert boxes.shape[1] == 4 and boxes.shape[0] == scores.shape[0] > 0
    assert np.all(np.diff(scores) <= 0)
    assert np.all(boxes[:, :2] >= -1e-3) and np.all(boxes[:, 2] <= 160 + 1e-3) and np.all(boxes[:, 3] <= 160 + 1e-3)
    # mmdet's own loader reads the same files
    from mmdet.apis import inference_detector, init_detector

    mm = init_detector(str(out / "config.py"), str(weights), device="cpu")
    assert mm.dataset_meta["classes"] == ("particle",) or list(mm.dataset_meta["classes"]) == ["particle"]
    result = inference_detector(mm, np.repeat(image[..., None], 3, axis=2))
    assert result.pred_instances.bboxes.shape[1] == 4
    # and the weak-label API runs the mmdet backend
    weak = generate_weak_labels(image, "mmdet", checkpoint=weights, score_threshold=0.0)[0]
    assert weak.shape == image.shape and set(np.unique(weak)) <= {0, 1, 255}


def test_resume_overwrite_and_bad_weight_files(trained, tmp_path):
    out, weights, _ = trained
    with pytest.raises(FileExistsError, match="resume=True"):
        train_detector("cascade_rcnn_hrnet_tiny_nwd", _pairs(), out)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train_detector("cascade_rcnn_hrnet_tiny_nwd", _pairs(), tmp_path / "fresh", resume=True)
    resumed = tmp_path / "resumed"
    train_detector("cascade_rcnn_hrnet_tiny_nwd", _pairs(), resumed, max_iters=1)
    seen = []
    train_detector("cascade_rcnn_hrnet_tiny_nwd", _pairs(), resumed, max_iters=2, resume=True, progress=lambda m, f: seen.append(m))
    assert len(seen) == 1 and seen[0].startswith("iteration 2/2")  # continued from iteration 1
    assert torch.load(resumed / "detector.pth", weights_only=True)["meta"]["iterations"] == 2

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(print, protocol=2))
    with pytest.raises(ValueError, match="weights-only"):
        load_detector(evil, config=out / "config.py")
    with pytest.raises(ValueError, match="does not match"):
        load_detector(weights, config="cascade_rcnn_hrnet_w18_nwd")
    with pytest.raises(FileNotFoundError, match="config.py"):
        (tmp_path / "lonely").mkdir()
        lonely = tmp_path / "lonely" / "detector.pth"
        lonely.write_bytes(weights.read_bytes())
        load_detector(lonely)
