"""Seed/flow training: configs, data conventions, transforms, losses, the mmengine Runner in
two stages, stop/resume, the validation metric, the cellpose baseline.

Everything runs the real code on 96x96 synthetic images with the ``tiny`` config (a few
iterations of a 26 k-parameter network on 64x64 crops).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import tifffile
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from skimage.draw import disk

from napari_nanocrystal.segmentation.engine.registry import TRANSFORMS
from napari_nanocrystal.segmentation.data import find_labelled_pairs, find_weak_pairs, read_weak_label
from napari_nanocrystal.segmentation.losses import distillation_loss, labelled_loss, weak_loss
from napari_nanocrystal.segmentation.network import load_model
from napari_nanocrystal.segmentation.targets import flow_targets
from napari_nanocrystal.segmentation.training import load_config, mix_repeats, resolve_data, train
from napari_nanocrystal.synthetic import make_tem_image


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _synthetic(seed: int, shape=(96, 96)):
    tem = make_tem_image(shape, n_particles=8, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=seed)
    return tem.image, tem.labels.astype(np.int32)


@pytest.fixture(scope="module")
def pairs():
    return [_synthetic(seed) for seed in range(3)]


@pytest.fixture(scope="module")
def weak_pair(pairs):
    image, labels = _synthetic(10)
    weak = (labels > 0).astype(np.uint8)
    weak[labels != np.roll(labels, 1, axis=0)] = 255  # an uncertain band at the particle edges
    return image, weak


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("target-cache")


QUIET = {"log_level": "WARNING"}


# --------------------------------------------------------------------------- configs


def test_presets_hold_the_paper_and_cpu_settings():
    paper = load_config("paper")
    assert paper.optim_wrapper.optimizer == {"type": "SGD", "lr": 0.2, "momentum": 0.9, "weight_decay": 1e-5}
    assert paper.train_dataloader.batch_size == 8 and paper.train_pipeline[0].crop_size == 512
    assert dict(paper.stages.pretrain) == {"data": "mixed", "max_epochs": 100, "warmup": 10, "val_interval": None}
    assert paper.stages.finetune.data == "labelled" and paper.stages.finetune.max_epochs == 200
    assert paper.lr_warmup.type == "LinearLR" and paper.launcher == "none"
    cpu = load_config("cpu-small")
    assert cpu.model.net.nbase == [1, 16, 32, 64, 128] and cpu.train_pipeline[0].crop_size == 224
    shipped = load_config("default-model")  # the shipped model's recipe: zooms 0.5-2, weak data in both stages
    assert shipped.train_pipeline[0].scale_range == (0.5, 2.0) and shipped.model.net.nbase == [1, 16, 32, 64, 128]
    assert [stage.data for stage in shipped.stages.values()] == ["mixed"] * 4 and shipped.size_model.zooms_per_image == 3
    # the last stage: the weak images train the flows too, that term weighted 0.1
    assert shipped.stages.weakflow.weak_dataset == {"flow_targets": True} and shipped.model.weak_flow_weight == 0.1
    noisy = [step.type for step in shipped.stages.augment.train_pipeline]  # the last stage adds defocus and noise
    assert "RandomGaussianBlur" in noisy and "RandomGaussianNoise" in noisy and "RandomGaussianBlur" not in str(shipped.train_pipeline)
    assert cpu.model.net.diameter_px == 30.0 and cpu.rescale_to_diameter
    fast = load_config("fast-model")  # the shipped fast model: the default's stages + distillation from it
    assert fast.model.net.nbase == [1, 8, 16, 32, 64, 128] and list(fast.stages)[:4] == list(shipped.stages)
    assert list(fast.stages)[4:] == ["distill"] and fast.stages.distill.model == {"teacher": "default", "distill_weight": 1.0}
    assert fast.stages.distill.train_pipeline == shipped.stages.weakflow.train_pipeline and "teacher" not in fast.model
    tiny = load_config("seedflow_tiny_test", {"stages.pretrain.max_iters": 5, "launcher": "pytorch"})
    assert tiny.stages.pretrain.max_iters == 5 and tiny.launcher == "pytorch"


def test_bad_config_names_and_keys_are_named():
    with pytest.raises(ValueError, match=r"unknown config 'papr'.*paper, cpu-small, tiny"):
        load_config("papr")
    with pytest.raises(ValueError, match="stage 'pretrain': unknown keys \\['max_epoch'\\]"):
        load_config("tiny", {"stages.pretrain.max_epoch": 3})
    with pytest.raises(ValueError, match="exactly one of max_epochs and max_iters"):
        load_config("tiny", {"stages.finetune.max_epochs": 3})
    with pytest.raises(ValueError, match="data must be one of"):
        load_config("tiny", {"stages.finetune.data": "weak"})
    with pytest.raises(ValueError, match="optim_wrapper must be a dict"):
        load_config("tiny", {"stages.pretrain.optim_wrapper": 0.1})
    with pytest.raises(ValueError, match="train_pipeline must be a list of transform dicts"):
        load_config("tiny", {"stages.pretrain.train_pipeline": "RandomGaussianBlur"})
    with pytest.raises(ValueError, match="weak_dataset must be a dict"):
        load_config("tiny", {"stages.pretrain.weak_dataset": True})
    with pytest.raises(ValueError, match="model must be a dict"):
        load_config("tiny", {"stages.pretrain.model": "default"})
    with pytest.raises(ValueError, match="cannot change model.net"):
        load_config("tiny", {"stages.pretrain.model": {"net": {"nbase": [1, 2, 4]}}})


# --------------------------------------------------------------------------- data conventions


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array)


def test_folder_conventions_and_mismatched_pairs(tmp_path, pairs):
    flat = tmp_path / "flat"
    for i, (image, labels) in enumerate(pairs):
        _write(flat / f"p{i}_image.tif", image)
        _write(flat / f"p{i}_instances.tif", labels.astype(np.uint16))
    found = find_labelled_pairs(flat)
    assert [p.name for p in found] == ["p0", "p1", "p2"] and found[0].labels.name == "p0_instances.tif"
    assert find_labelled_pairs(flat / "p1_image.tif")[0].labels.name == "p1_instances.tif"

    emps = tmp_path / "emps"
    for i, (image, labels) in enumerate(pairs):
        _write(emps / "images" / f"n{i}.tif", image)
        _write(emps / "segmaps" / f"n{i}.tif", labels.astype(np.uint16))
    assert [p.name for p in find_labelled_pairs(emps)] == ["n0", "n1", "n2"]

    _write(flat / "lonely_image.tif", pairs[0][0])
    with pytest.raises(ValueError, match="mismatched pairs.*lonely"):
        find_labelled_pairs(flat)
    _write(emps / "segmaps" / "orphan.tif", pairs[0][1].astype(np.uint16))
    with pytest.raises(ValueError, match="mismatched pairs.*orphan"):
        find_labelled_pairs(emps)
    with pytest.raises(FileNotFoundError, match="not found"):
        find_labelled_pairs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no instance map"):
        find_labelled_pairs(flat / "lonely_image.tif")


def test_weak_label_files(tmp_path, weak_pair):
    image, weak = weak_pair
    _write(tmp_path / "w_image.tif", image)
    _write(tmp_path / "w_weak.tif", weak)
    (pair,) = find_weak_pairs(tmp_path)
    np.testing.assert_array_equal(read_weak_label(pair.labels), weak)
    _write(tmp_path / "bad_weak.tif", np.full((4, 4), 7, np.uint8))
    with pytest.raises(ValueError, match="only 0 .*1 .*255"):
        read_weak_label(tmp_path / "bad_weak.tif")


def test_weak_images_are_not_blown_up_by_fragment_sized_particles(caplog):
    """A weak label of 3-px fragments would resize its image 10x; the factor is limited."""
    from napari_nanocrystal.segmentation.engine.datasets import (
        WEAK_MAX_SCALE,
        WeakLabelDataset,
        register_memory_source,
        release_memory_source,
    )

    weak = np.zeros((64, 80), np.uint8)
    for row in range(8, 60, 12):
        for col in range(8, 76, 12):
            weak[row : row + 3, col : col + 3] = 1
    image = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    key = register_memory_source([("fragments", image, weak)])
    try:
        with caplog.at_level("WARNING"):
            result = WeakLabelDataset([key], pipeline=[]).prepare_data(0)
        given = WeakLabelDataset([key], pipeline=[], diameter_px=3.0).prepare_data(0)
    finally:
        release_memory_source(key)
    assert result["scale"] == WEAK_MAX_SCALE and result["image"].shape == (256, 320)
    assert "limited to 4x" in caplog.text
    assert given["scale"] == pytest.approx(10.0)  # a diameter the user gives is trusted


def test_weak_diameter_follows_the_particles_not_the_specks():
    """Many 1-px specks (Otsu noise) beside a few 20-px particles: the estimate stays near 20 px."""
    from skimage.draw import disk

    from napari_nanocrystal.segmentation.engine.datasets import weak_diameter_px

    weak = np.zeros((120, 160), np.uint8)
    for center in ((30, 30), (30, 90), (85, 60)):
        weak[disk(center, 11.5, shape=weak.shape)] = 255  # uncertain band
        weak[disk(center, 8.5, shape=weak.shape)] = 1
    specks = np.random.default_rng(1).integers(0, (120, 160), size=(60, 2))
    for row, col in specks:
        if weak[row, col] == 0 and weak[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].max() == 0:
            weak[row, col] = 1
    assert 17.0 < weak_diameter_px(weak) < 23.0  # cores ~17 px, with their band ~23 px
    assert weak_diameter_px(np.zeros((8, 8), np.uint8)) == 0.0


def test_weak_flow_targets_reach_the_loss(weak_pair, cache_dir, tmp_path):
    """``flow_targets=True``: weak samples carry their single particles' flows through the pipeline
    into the model's weak loss; from files too (cached); without it they carry none."""
    from napari_nanocrystal.segmentation.engine.datasets import WeakLabelDataset, register_memory_source, release_memory_source
    from napari_nanocrystal.segmentation.engine.model import SeedFlowModel
    from napari_nanocrystal.segmentation.engine.transforms import PackSeedFlowInputs
    from napari_nanocrystal.segmentation.targets import pin_weak_edges, weak_label_instances

    image, weak = weak_pair
    key = register_memory_source([("weak", image, weak)])
    pack = [PackSeedFlowInputs()]  # an instance: the registry's default scope depends on what ran before
    try:
        with_flows = WeakLabelDataset([key], pipeline=pack, target_diameter_px=None, flow_targets=True)[0]
        without = WeakLabelDataset([key], pipeline=pack, target_diameter_px=None)[0]
    finally:
        release_memory_source(key)
    targets = with_flows["data_samples"]["targets"]
    instances = weak_label_instances(weak)
    assert instances.max() > 0
    np.testing.assert_array_equal(targets[2].numpy() > 0.5, instances > 0)
    norms = targets[:2].norm(dim=0)[targets[2] > 0.5]
    assert float(norms.max()) == pytest.approx(1.0, abs=1e-3)
    assert float(without["data_samples"]["targets"].abs().sum()) == 0.0
    np.testing.assert_array_equal(with_flows["data_samples"]["weak"].numpy(), pin_weak_edges(weak, instances))  # edges too
    np.testing.assert_array_equal(without["data_samples"]["weak"].numpy(), weak)

    _write(tmp_path / "w_image.tif", image)
    _write(tmp_path / "w_weak.tif", weak)
    entry = [{"name": "w", "image": str(tmp_path / "w_image.tif"), "weak": str(tmp_path / "w_weak.tif")}]
    for _ in range(2):  # computed, then read back from the cache
        sample = WeakLabelDataset(entry, pipeline=pack, target_diameter_px=None, flow_targets=True, cache_dir=cache_dir)[0]
        np.testing.assert_allclose(sample["data_samples"]["targets"].numpy(), targets.numpy(), atol=1e-6)

    torch.manual_seed(0)
    model = SeedFlowModel(net={"nbase": [1, 4, 8, 16]})
    x = with_flows["inputs"][None]
    batch = {k: v[None] for k, v in with_flows["data_samples"].items()}
    flows_on = model(x, batch, mode="loss")["loss_weak"]
    seed_only = model(x, {k: v[None] for k, v in without["data_samples"].items()}, mode="loss")["loss_weak"]
    with torch.no_grad():
        y = model.net(x)
    assert torch.allclose(flows_on, weak_loss(y, batch["weak"], batch["targets"]), atol=1e-6)
    assert float(flows_on) > float(seed_only) + 1e-3  # an untrained network's flows are wrong there


def test_emps_split_and_automatic_validation(datasets_dir, pairs):
    from napari_nanocrystal.segmentation.data import emps_split

    emps = datasets_dir / "emps-train"
    data = resolve_data([str(emps)])
    assert len(data.train_files) == 287 and len(data.val_files) == 79
    assert "publication-grouped" in data.val_note
    assert [e["name"] for e in data.val_files] == emps_split(emps)[1]
    five = resolve_data([pairs[i % 3] for i in range(6)])
    assert len(five.val_memory) == 2 and len(five.train_memory) == 4
    few = resolve_data(pairs)
    assert len(few.val_memory) == 3 and "nothing held out" in few.val_note
    with pytest.raises(ValueError, match="no labelled training data"):
        resolve_data(None)
    with pytest.raises(ValueError, match="differ in size"):
        resolve_data([(pairs[0][0], pairs[0][1][:50])])


# --------------------------------------------------------------------------- transforms, model, metric


def test_rotated_crop_rotates_the_flow_vectors():
    """Warped flows match the flows recomputed on the warped labels (the choice documented in transforms)."""
    from napari_nanocrystal.segmentation.engine.transforms import _affine, warp_sample

    labels = np.zeros((96, 96), np.int32)
    for k, (cy, cx) in enumerate([(30, 30), (30, 66), (66, 40), (62, 72)], start=1):
        rr, cc = disk((cy, cx), 11, shape=labels.shape)
        labels[rr, cc] = k
    sample = {"image": (labels > 0).astype(np.float32), "labels": labels, "targets": flow_targets(labels), "kind": "labelled"}
    for angle, flip in [(math.pi / 3, False), (2.0, True)]:
        matrix = _affine(labels.shape, (80, 80), 1.1, angle, flip, (0.1, -0.2))
        warped = warp_sample(sample, matrix, (80, 80))
        expected = flow_targets(warped["labels"])
        inside = (warped["labels"] > 0) & (expected[2] > 0)
        got = warped["targets"][:2][:, inside]
        want = expected[:2][:, inside]
        cosine = (got * want).sum(0) / (np.linalg.norm(got, axis=0) * np.linalg.norm(want, axis=0) + 1e-6)
        assert np.median(cosine) > 0.95 and np.mean(cosine > 0.7) > 0.9
        np.testing.assert_array_equal(warped["targets"][2] > 0, warped["labels"] > 0)
    weak = warp_sample(
        {"image": np.zeros((20, 20), np.float32), "weak": np.zeros((20, 20), np.uint8), "kind": "weak"},
        _affine((20, 20), (40, 40), 1.0, 0.0, False, (0, 0)),
        (40, 40),
    )
    assert weak["weak"][0, 0] == 255 and weak["weak"][20, 20] == 0  # outside the image: no loss


def test_blur_and_noise_change_only_the_image():
    """Defocus and shot-noise augmentation: the image changes as asked, labels and flows do not."""
    from mmengine.registry import DefaultScope

    from napari_nanocrystal.segmentation.engine.registry import SCOPE, TRANSFORMS

    labels = np.zeros((64, 64), np.int32)
    rr, cc = disk((32, 32), 10, shape=labels.shape)
    labels[rr, cc] = 1
    image = (labels > 0).astype(np.float32)
    sample = {"image": image, "labels": labels, "targets": flow_targets(labels), "kind": "labelled"}
    with DefaultScope.overwrite_default_scope(SCOPE):
        blur = TRANSFORMS.build(dict(type="RandomGaussianBlur", sigma_range=(2.0, 2.0), prob=1.0))
        noise = TRANSFORMS.build(dict(type="RandomGaussianNoise", std_range=(0.1, 0.1), prob=1.0))
        never = TRANSFORMS.build(dict(type="RandomGaussianNoise", prob=0.0))
    np.random.seed(0)
    blurred = blur(sample)
    assert blurred["image"][32, 21] < 1 and blurred["image"][32, 20] > 0  # the edge is soft both ways
    assert abs(float(blurred["image"].sum()) - float(image.sum())) < 1  # blur keeps the ink
    noisy = noise(sample)
    assert 0.08 < float(np.std(noisy["image"] - image)) < 0.12 and noisy["image"].dtype == np.float32
    for out in (blurred, noisy):
        assert out["labels"] is labels and out["targets"] is sample["targets"]
    np.testing.assert_array_equal(sample["image"], image)  # the input sample is not modified
    assert never(sample)["image"] is image
    with pytest.raises(ValueError, match="prob"):
        TRANSFORMS.get("RandomGaussianBlur")(prob=1.5)
    with pytest.raises(ValueError, match="std_range"):
        TRANSFORMS.get("RandomGaussianNoise")(std_range=(0.2, 0.1))
    # zoom and contrast factors must be positive; a blur of 0 px is allowed
    with pytest.raises(ValueError, match=r"scale_range must be 0 < low"):
        TRANSFORMS.get("RandomAffineCrop")(scale_range=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"contrast_range must be 0 < low"):
        TRANSFORMS.get("RandomBrightnessContrast")(contrast_range=(1.2, 0.8))
    assert TRANSFORMS.get("RandomGaussianBlur")(sigma_range=(0, 1)).sigma_range == (0.0, 1.0)


def test_model_loss_is_the_paper_loss_on_a_mixed_batch():
    from napari_nanocrystal.segmentation.engine.model import SeedFlowModel

    torch.manual_seed(0)
    model = SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, weak_weight=0.5)
    x = torch.randn(3, 1, 32, 32)
    targets = torch.zeros(3, 3, 32, 32)
    targets[:, :2] = torch.nn.functional.normalize(torch.randn(3, 2, 32, 32), dim=1)
    targets[:, 2] = (torch.rand(3, 32, 32) > 0.5).float()
    targets[1] = 0.0  # a weak sample without flow targets, as PackSeedFlowInputs packs it
    weak = torch.randint(0, 2, (3, 32, 32), dtype=torch.uint8)
    weak[:, :4] = 255
    is_weak = torch.tensor([False, True, False])
    losses = model(x, {"targets": targets, "weak": weak, "is_weak": is_weak}, mode="loss")
    with torch.no_grad():
        y = model.net(x)
    assert torch.allclose(losses["loss_labelled"], labelled_loss(y[[0, 2]], targets[[0, 2]]) * 2 / 3, atol=1e-6)
    assert torch.allclose(losses["loss_weak"], weak_loss(y[[1]], weak[[1]]) * 0.5 / 3, atol=1e-6)
    sum(losses.values()).backward()
    assert model.net.cpnet.output[-1].weight.grad is not None
    outlined = targets.clone()
    outlined[1] = targets[0]  # the weak sample with flow targets: its flow term scaled by weak_flow_weight
    damped = SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, weak_weight=0.5, weak_flow_weight=0.25)
    damped.load_state_dict(model.state_dict())
    losses = damped(x, {"targets": outlined, "weak": weak, "is_weak": is_weak}, mode="loss")
    expected = weak_loss(y[[1]], weak[[1]], outlined[[1]], flow_weight=0.25) * 0.5 / 3
    assert torch.allclose(losses["loss_weak"], expected, atol=1e-6)
    assert float(expected) < float(weak_loss(y[[1]], weak[[1]], outlined[[1]]) * 0.5 / 3)
    with pytest.raises(ValueError, match="weak_flow_weight"):
        SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, weak_flow_weight=-1)


def test_split_batches_normalise_each_kind_on_its_own():
    from napari_nanocrystal.segmentation.engine.model import SeedFlowModel

    torch.manual_seed(0)
    model = SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, split_batches=True)
    x = torch.randn(4, 1, 32, 32)
    x[1] = x[1] * 10 + 5  # a weak crop of very different statistics
    targets = torch.zeros(4, 3, 32, 32)
    targets[[0, 2], 2] = 1.0  # the weak crops carry no flow targets, as PackSeedFlowInputs packs them
    weak = torch.ones(4, 32, 32, dtype=torch.uint8)
    samples = {"targets": targets, "weak": weak, "is_weak": torch.tensor([False, True, False, True])}
    losses = model(x, samples, mode="loss")
    with torch.no_grad():  # train mode: batch statistics of the labelled crops alone
        y_labelled = model.net(x[[0, 2]])
        y_weak = model.net(x[[1, 3]])
    assert torch.allclose(losses["loss_labelled"], labelled_loss(y_labelled, targets[[0, 2]]) / 2, atol=1e-6)
    assert torch.allclose(losses["loss_weak"], weak_loss(y_weak, weak[[1, 3]]) / 2, atol=1e-6)
    sum(losses.values()).backward()
    assert model.net.cpnet.output[-1].weight.grad is not None
    model.split_batches = False
    joint = model(x, samples, mode="loss")
    assert not torch.allclose(joint["loss_labelled"], losses["loss_labelled"])  # joint statistics differ


def test_teacher_adds_a_distillation_loss_and_stays_out_of_the_student(tmp_path):
    from napari_nanocrystal.segmentation.engine.model import SeedFlowModel
    from napari_nanocrystal.segmentation.network import SeedFlowNet

    torch.manual_seed(0)
    teacher_path = SeedFlowNet((1, 4, 8)).save(tmp_path / "teacher.safetensors")
    for split in (False, True):
        model = SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, teacher=str(teacher_path), distill_weight=0.5, split_batches=split)
        assert all(not name.startswith("_teacher") for name in model.state_dict())
        assert len(list(model.parameters())) == len(list(model.net.parameters()))
        x = torch.randn(3, 1, 32, 32)
        samples = {
            "targets": torch.zeros(3, 3, 32, 32),
            "weak": torch.ones(3, 32, 32, dtype=torch.uint8),
            "is_weak": torch.tensor([False, True, False]),
        }
        losses = model(x, samples, mode="loss")
        teacher = load_model(teacher_path)
        with torch.no_grad():
            teacher_y = teacher(x)
            y = torch.cat([model.net(x[[0, 2]]), model.net(x[[1]])]) if split else model.net(x)[[0, 2, 1]]
        order = [0, 2, 1]  # labelled samples first, then the weak one
        if split:  # each part is the mean over its samples, weighted by its share of the batch
            expected = distillation_loss(y[:2], teacher_y[[0, 2]]) * 2 / 3 + distillation_loss(y[2:], teacher_y[[1]]) / 3
        else:
            expected = distillation_loss(y, teacher_y[order])
        assert torch.allclose(losses["loss_distill"], expected * 0.5, atol=1e-6)
        sum(losses.values()).backward()
        assert all(p.grad is None and not p.requires_grad for p in model._teacher[0].parameters())
    assert float(distillation_loss(teacher_y, teacher_y)) < float(distillation_loss(torch.zeros_like(teacher_y), teacher_y))
    with pytest.raises(ValueError, match="distill_weight"):
        SeedFlowModel(net={"nbase": [1, 4, 8, 16]}, distill_weight=-1)
    with pytest.raises(ValueError, match="same percentiles"):
        SeedFlowModel(net={"nbase": [1, 4, 8, 16], "percentiles": (2.0, 98.0)}, teacher=str(teacher_path))


def test_metric_scores_perfect_and_empty_predictions():
    from napari_nanocrystal.segmentation.engine.metric import SeedFlowMetric

    _, labels = _synthetic(1)
    metric = SeedFlowMetric()
    metric.process({}, [{"pred_labels": labels, "gt_labels": labels}])
    scores = metric.compute_metrics(metric.results)
    assert scores["ap50"] == scores["ap90"] == 1.0 and scores["mean_iou"] == pytest.approx(1.0)
    empty = metric.compute_metrics([(np.zeros_like(labels), labels)])
    assert empty["ap50"] == 0.0 and math.isnan(empty["mean_iou"]) and empty["n_true"] == labels.max()


# --------------------------------------------------------------------------- the Runner


def _current_scope():
    from mmengine.registry import DefaultScope

    current = DefaultScope.get_current_instance()
    return None if current is None else current.scope_name


@pytest.mark.parametrize(
    "fraction, n_labelled, n_weak, expected",
    [
        (0.2, 292, 5, (1, 15)),  # few weak images: they are up-sampled
        (0.2, 73, 219, (12, 1)),  # many weak images: the labelled ones are, so weak stay ~20 %, not 75 %
        (0.5, 10, 10, (1, 1)),
    ],
)
def test_weak_fraction_sets_the_share_of_weak_samples(fraction, n_labelled, n_weak, expected):
    labelled_repeat, weak_repeat = mix_repeats(fraction, n_labelled, n_weak)
    assert (labelled_repeat, weak_repeat) == expected
    share = n_weak * weak_repeat / (n_weak * weak_repeat + n_labelled * labelled_repeat)
    assert abs(share - fraction) < 0.03
    with pytest.raises(ValueError, match="weak_fraction"):
        mix_repeats(1.0, n_labelled, n_weak)


_PROBED = []


@TRANSFORMS.register_module(force=True)
class _ProbeCrops:
    """Test probe: a pipeline step that records when it runs (the progress calls made so far)."""

    def __call__(self, results):
        _PROBED.append(len(_PROBE_CALLS))
        return results


_PROBE_CALLS = []


def test_two_stages_end_to_end(tmp_path, pairs, weak_pair, cache_dir):
    calls = _PROBE_CALLS
    calls.clear()
    _PROBED.clear()
    scope_before = _current_scope()
    probed_pipeline = [{"type": "_ProbeCrops"}, *[dict(step) for step in load_config("tiny").train_pipeline]]
    from napari_nanocrystal.segmentation.network import SeedFlowNet

    teacher = SeedFlowNet((1, 4, 8)).save(tmp_path / "teacher.safetensors")
    result = train(
        "tiny",
        labeled=pairs,
        weak=weak_pair,
        out=tmp_path / "run",
        cache_dir=cache_dir,
        progress=lambda *args: calls.append(args),
        # mostly weak crops in the mixed stage, which gets its own learning rate; the second stage its own pipeline
        cfg_options={
            **QUIET,
            "weak_fraction": 0.8,
            "stages.pretrain.optim_wrapper.optimizer.lr": 0.0125,
            "stages.finetune.train_pipeline": probed_pipeline,
            "stages.pretrain.weak_dataset": {"flow_targets": True},  # the weak images train flows too, in that stage
            "stages.finetune.model": {"teacher": str(teacher), "distill_weight": 0.5},  # distilled in that stage only
        },
    )
    assert not result.stopped and result.stage == "finetune" and result.iteration == 2
    assert _current_scope() == scope_before  # mmengine's global default scope is left as it was (mmdet code relies on it)
    net = load_model(result.model_path)
    assert net.config["nbase"] == [1, 4, 8, 16] and result.model_path.with_suffix(".json").is_file()
    assert result.model_path.stat().st_size < 30e6

    log = json.loads(result.log_path.read_text())
    assert list(log["stages"]) == ["pretrain", "finetune"]
    for stage in log["stages"].values():
        assert stage["status"] == "done" and [r["iter"] for r in stage["train"]] == [1, 2]
        assert {"ap50", "ap75", "ap90", "mean_iou"} <= set(stage["val"][-1])
        assert all(math.isfinite(r["loss"]) and r["lr"] > 0 for r in stage["train"])
    assert any(r["loss_weak"] > 0 for r in log["stages"]["pretrain"]["train"])
    assert all(r["loss_weak"] == 0 for r in log["stages"]["finetune"]["train"])
    assert all(r["loss_distill"] > 0 for r in log["stages"]["finetune"]["train"])
    assert all("loss_distill" not in r for r in log["stages"]["pretrain"]["train"])
    lr = {name: [r["lr"] for r in stage["train"]] for name, stage in log["stages"].items()}
    assert lr["pretrain"] == pytest.approx([0.25 * x for x in lr["finetune"]])  # 0.0125 vs the config's 0.05
    assert log["final_metrics"]["ap50"] == result.metrics["ap50"]
    assert log["size_model"]["samples"] > 0  # the size model is fitted after the last stage ...
    assert len(load_model(result.model_path).config["size_model"]["coef"]) == 16  # ... and saved with the network

    stages = [c[0] for c in calls]
    assert stages[0] == "prepare" and stages.index("pretrain") < stages.index("finetune")
    last_pretrain_call = max(i for i, stage in enumerate(stages) if stage == "pretrain")
    assert len(_PROBED) >= 4 and min(_PROBED) > last_pretrain_call  # the stage's own pipeline, in that stage only
    assert ("pretrain", 2, 2) in [c[:3] for c in calls] and ("finetune", 2, 2) == calls[-1][:3]

    with pytest.raises(FileExistsError, match="resume=True"):
        train("tiny", labeled=pairs, out=tmp_path / "run", cache_dir=cache_dir, cfg_options=QUIET)


_RESUMED = {}


@MMENGINE_HOOKS.register_module(force=True)
class _RecordResumeHook(Hook):
    """Test probe: the iteration and weights the runner starts training from."""

    priority = "LOWEST"

    def before_train(self, runner):
        _RESUMED.setdefault("seen", []).append((int(runner.iter), {k: v.detach().clone() for k, v in runner.model.state_dict().items()}))


def test_stop_then_resume_continues_the_iteration_counter(tmp_path, pairs, cache_dir):
    out = tmp_path / "run"
    options = {**QUIET, "stages.pretrain.max_iters": 4, "custom_hooks": [{"type": "_RecordResumeHook"}]}
    stopped = train(
        "tiny",
        labeled=pairs,
        out=out,
        cache_dir=cache_dir,
        cfg_options=options,
        progress=lambda s, i, n, l: not (s == "pretrain" and i >= 2),
    )
    assert stopped.stopped and stopped.stage == "pretrain" and stopped.iteration == 2 and stopped.model_path is None
    checkpoint = out / "pretrain" / "iter_2.pth"
    assert (out / "pretrain" / "last_checkpoint").read_text().strip() == str(checkpoint)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)  # plain tensors and Python values only
    assert saved["meta"]["iter"] == 2

    _RESUMED.clear()
    calls = []
    result = train(
        "tiny", labeled=pairs, out=out, cache_dir=cache_dir, cfg_options=options, resume=True, progress=lambda *a: calls.append(a[:3])
    )
    assert not result.stopped and result.model_path.is_file()
    start_iter, weights = _RESUMED["seen"][0]
    assert start_iter == 2
    for name, tensor in saved["state_dict"].items():
        torch.testing.assert_close(weights[name], tensor)
    assert [c for c in calls if c[0] == "pretrain"] == [("pretrain", 2, 4), ("pretrain", 3, 4), ("pretrain", 4, 4)]
    log = json.loads(result.log_path.read_text())["stages"]["pretrain"]
    assert [r["iter"] for r in log["train"]] == [1, 2, 3, 4] and log["resumed_at"] == [2]

    again = train("tiny", labeled=pairs, out=out, cache_dir=cache_dir, cfg_options=options, resume=True)
    assert not again.stopped and again.iteration == 2  # both stages done: nothing retrained


def test_stop_event_stops_cleanly(tmp_path, pairs, cache_dir):
    event = threading.Event()
    result = train(
        "tiny",
        labeled=pairs,
        out=tmp_path / "run",
        cache_dir=cache_dir,
        cfg_options={**QUIET, "stages.pretrain.max_iters": 3},
        stop_event=event,
        progress=lambda stage, i, n, loss: event.set() if stage == "pretrain" and i == 1 else None,  # e.g. a GUI's Stop button
    )
    assert result.stopped and result.stage == "pretrain" and result.iteration == 1
    assert (tmp_path / "run" / "pretrain" / "iter_1.pth").is_file()
    event.set()
    assert train("tiny", labeled=pairs, out=tmp_path / "run2", cache_dir=cache_dir, cfg_options=QUIET, stop_event=event).stage == "prepare"


def test_clear_errors_for_bad_data(tmp_path, pairs, cache_dir):
    with pytest.raises(FileNotFoundError, match="not found: .*missing"):
        train("tiny", labeled=tmp_path / "missing", out=tmp_path / "a", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="unknown config"):
        train("nope", labeled=pairs, out=tmp_path / "b", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="image \\(96, 96\\) and weak \\(10, 10\\) differ in size"):
        train("tiny", labeled=pairs, weak=(pairs[0][0], np.zeros((10, 10), np.uint8)), out=tmp_path / "c", cache_dir=cache_dir)


def test_pytorch_launcher_under_torchrun(tmp_path, pairs):
    """launcher='pytorch' is a config switch: the same CLI under torchrun (one gloo worker, to stay cheap)."""
    data = tmp_path / "data"
    for i, (image, labels) in enumerate(pairs):
        _write(data / f"p{i}_image.tif", image)
        _write(data / f"p{i}_instances.tif", labels.astype(np.uint16))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", env["MASTER_PORT"]]
    command += ["-m", "napari_nanocrystal.cli", "train", "tiny", "--labeled", str(data), "--out", str(tmp_path / "run")]
    command += ["--cache-dir", str(tmp_path / "cache"), "--no-val", "--cfg-options", "launcher=pytorch"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
    output = done.stdout + done.stderr
    assert "Distributed launcher: pytorch" in output and "Distributed training: True" in output


def test_cellpose_baseline_trains_with_cellposes_own_loop(tmp_path, pairs, cache_dir):
    """cellpose.train.train_seg from scratch on the same images, scored through CellposeModel.eval."""
    from napari_nanocrystal.segmentation.baselines import evaluate_cellpose_baseline, load_cellpose_baseline, train_cellpose_baseline

    data = tmp_path / "data"
    for i, (image, labels) in enumerate(pairs):
        _write(data / f"p{i}_image.tif", image)
        _write(data / f"p{i}_instances.tif", labels.astype(np.uint16))
    baseline = train_cellpose_baseline(
        data, tmp_path / "cp", n_epochs=2, nbase=(4, 8, 256), bsize=64, batch_size=4, min_train_masks=1, cache_dir=cache_dir
    )
    assert baseline.model_path.is_file() and baseline.n_train == 3 and baseline.train_losses.shape == (2,)
    assert np.isfinite(baseline.train_losses).all()
    model = load_cellpose_baseline(baseline.model_path)
    assert model.net.nbase == [2, 4, 8, 256] and not model.pretrained_model
    report = evaluate_cellpose_baseline(baseline.model_path, data, split="all")
    assert report["model"]["n_images"] == 3 and 0.0 <= report["model"]["ap50"] <= 1.0
    with pytest.raises(ValueError, match="ending in 256"):
        train_cellpose_baseline(data, tmp_path / "cp2", nbase=(4, 8, 16))
