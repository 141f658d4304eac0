"""Cellpose baseline: cellpose's own network, training function and inference on our data split.

:func:`train_cellpose_baseline` trains a cellpose ``CPnet`` from scratch (no pretrained
weights: ``CellposeModel(pretrained_model=False)``) with ``cellpose.train.train_seg``
(cellpose 3.1: its augmentation ``random_rotate_and_resize``, its loss, its learning-rate
schedule with a 10-epoch warm-up) on the same training images as :func:`.training.train`
(same split rule, same rescaling to the 30 px diameter, same cached flow targets, passed as
cellpose's precomputed ``[labels, cell probability, flow_y, flow_x]`` stacks).
:func:`evaluate_cellpose_baseline` segments the held-out images with ``CellposeModel.eval``
at their native size (cellpose rescales them by its ``diam_mean`` / ``diameter``) and scores
them with :func:`.evaluation.evaluate`, the protocol of :func:`.training.evaluate_model`.

The weights are cellpose's format (``torch.save`` of the state dict, read back with
``weights_only=True``) plus a JSON sidecar ``<file>.json`` with the network width.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CellposeBaseline", "evaluate_cellpose_baseline", "train_cellpose_baseline"]

logger = logging.getLogger(__name__)

#: cellpose's default width (``CellposeModel``: ``[nchan, 32, 64, 128, 256]``).
CELLPOSE_NBASE = (32, 64, 128, 256)
#: cellpose's input: gray + an empty second channel (``channels=[0, 0]``), its usual way of
#: taking gray images (with one channel its resizing drops the channel axis)
_NCHAN = 2


@dataclass
class CellposeBaseline:
    """A trained cellpose baseline.

    Attributes
    ----------
    model_path : Path
        cellpose weights (sidecar ``<model_path>.json``: kind, nbase, diam_mean).
    train_losses, test_losses : np.ndarray
        Per-epoch losses from ``train_seg`` (test losses every 10 epochs, 0 otherwise).
    seconds : float
        Training wall time.
    n_train, n_val : int
        Images trained on / held out.
    """

    model_path: Path
    train_losses: np.ndarray
    test_losses: np.ndarray
    seconds: float
    n_train: int
    n_val: int
    data: dict = field(default_factory=dict)


def _check_nbase(nbase) -> list[int]:
    nbase = [int(n) for n in nbase]
    if len(nbase) < 2 or min(nbase) < 1:
        raise ValueError(f"nbase needs >= 2 positive channel counts, got {nbase}")
    if nbase[-1] != 256:
        # cellpose 3.1's run_net (used by CellposeModel.eval) allocates 256-wide style vectors
        raise ValueError(f"cellpose's CellposeModel.eval needs nbase ending in 256 (its style vector size), got {nbase}")
    return nbase


def _cpnet(nbase, diam_mean: float):
    from cellpose.resnet_torch import CPnet

    return CPnet([_NCHAN, *[int(n) for n in nbase]], 3, sz=3, mkldnn=False, max_pool=True, diam_mean=float(diam_mean))


def _cellpose_model(nbase, diam_mean: float):
    """A CellposeModel without pretrained weights whose network has width ``nbase``."""
    import torch
    from cellpose import models

    model = models.CellposeModel(
        gpu=False,
        pretrained_model=False,
        model_type=None,
        mkldnn=False,
        diam_mean=float(diam_mean),
        nchan=_NCHAN,
        device=torch.device("cpu"),
    )
    if tuple(nbase) != CELLPOSE_NBASE:
        model.net = _cpnet(nbase, diam_mean).to(model.device)
        model.nbase = [_NCHAN, *[int(n) for n in nbase]]
    return model


def _samples(pairs: list, target_diameter_px: float, cache_dir) -> list[dict]:
    from .engine.datasets import LabelledFlowDataset

    if not pairs:
        return []
    dataset = LabelledFlowDataset(pairs, target_diameter_px=target_diameter_px, cache_dir=cache_dir, pipeline=[])
    return [dataset.prepare_data(i) for i in range(len(dataset))]


def _two_channels(image: np.ndarray) -> np.ndarray:
    return np.stack([image, np.zeros_like(image)]).astype(np.float32)


def _flow_stack(sample: dict) -> np.ndarray:
    """cellpose's precomputed training labels: [labels, cell probability, flow_y, flow_x]."""
    targets = sample["targets"]
    return np.stack([sample["labels"].astype(np.float32), targets[2], targets[0], targets[1]]).astype(np.float32)


def train_cellpose_baseline(
    labeled,
    out,
    *,
    val=None,
    n_epochs: int = 100,
    nbase=CELLPOSE_NBASE,
    batch_size: int = 8,
    bsize: int = 224,
    learning_rate: float = 0.2,
    weight_decay: float = 1e-5,
    sgd: bool = True,
    target_diameter_px: float = 30.0,
    min_train_masks: int = 5,
    nimg_per_epoch: int | None = None,
    cache_dir=None,
) -> CellposeBaseline:
    """Train cellpose's CPnet from scratch with ``cellpose.train.train_seg``.

    Parameters
    ----------
    labeled, val
        As for :func:`.training.train` (same split rule: the EMPS split, every 5th image, …).
    out : path
        Folder; the weights go to ``<out>/models/cellpose_baseline`` (cellpose's layout).
    n_epochs, batch_size, learning_rate, weight_decay, sgd, min_train_masks, nimg_per_epoch
        ``train_seg`` arguments (``sgd`` → ``SGD``).  The defaults are cellpose's SGD
        settings with the paper's learning rate; cellpose warms up over 10 epochs itself.
    nbase : sequence of int
        Channels per level after the input (cellpose's default ``(32, 64, 128, 256)``); the
        last must be 256, the style-vector size cellpose's inference assumes.
    bsize : int
        Crop size of cellpose's augmentation (px).
    target_diameter_px : float
        Images are rescaled to this median particle diameter first (as ours), which is also
        the network's ``diam_mean``.
    cache_dir : path or None
        Shared with :func:`.training.train` (prepared images and flow targets).

    Returns
    -------
    CellposeBaseline
    """
    from cellpose import train as cp_train

    from .engine.datasets import default_cache_dir, register_memory_source, release_memory_source
    from nc_synthmodel.io import atomic_write_text

    from .training import resolve_data

    nbase = _check_nbase(nbase)
    data = resolve_data(labeled, None, val)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "targets"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = []
    try:
        train_pairs, val_pairs = list(data.train_files), list(data.val_files)
        if data.train_memory:
            keys.append(register_memory_source(data.train_memory))
            train_pairs.append(keys[-1])
        if data.val_memory:
            keys.append(register_memory_source(data.val_memory))
            val_pairs.append(keys[-1])
        train_samples = _samples(train_pairs, target_diameter_px, cache_dir)
        val_samples = _samples(val_pairs, target_diameter_px, cache_dir) if data.val_note != "none" else []
    finally:
        for key in keys:
            release_memory_source(key)

    model = _cellpose_model(nbase, target_diameter_px)
    start = time.time()
    path, train_losses, test_losses = cp_train.train_seg(
        model.net,
        train_data=[_two_channels(s["image"]) for s in train_samples],
        train_labels=[_flow_stack(s) for s in train_samples],
        test_data=[_two_channels(s["image"]) for s in val_samples] or None,
        test_labels=[_flow_stack(s) for s in val_samples] or None,
        load_files=False,
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        n_epochs=int(n_epochs),
        weight_decay=float(weight_decay),
        momentum=0.9,
        SGD=bool(sgd),
        channels=None,
        normalize=False,  # already percentile-normalised like ours
        save_path=str(out),
        save_every=max(1, int(n_epochs)),
        rescale=True,
        bsize=int(bsize),
        min_train_masks=int(min_train_masks),
        nimg_per_epoch=nimg_per_epoch,
        model_name="cellpose_baseline",
    )
    seconds = time.time() - start
    path = Path(path)
    atomic_write_text(
        Path(f"{path}.json"),
        json.dumps(
            {"kind": "cellpose-CPnet", "nchan": _NCHAN, "nbase": [int(n) for n in nbase], "diam_mean": float(target_diameter_px)}, indent=1
        )
        + "\n",
    )
    logger.info("cellpose baseline trained in %.0f s: %s", seconds, path)
    return CellposeBaseline(
        model_path=path,
        train_losses=np.asarray(train_losses),
        test_losses=np.asarray(test_losses),
        seconds=seconds,
        n_train=len(train_samples),
        n_val=len(val_samples),
        data=data.describe(),
    )


def load_cellpose_baseline(path):
    """A ``CellposeModel`` holding the weights written by :func:`train_cellpose_baseline`."""
    import torch

    path = Path(path)
    sidecar = Path(f"{path}.json")
    if not path.is_file():
        raise FileNotFoundError(f"cellpose baseline weights not found: {path}")
    if not sidecar.is_file():
        raise FileNotFoundError(f"cellpose baseline sidecar not found: {sidecar} (written by train_cellpose_baseline)")
    config = json.loads(sidecar.read_text(encoding="utf-8"))
    if config.get("kind") != "cellpose-CPnet":
        raise ValueError(f"{sidecar}: not a cellpose baseline description (kind {config.get('kind')!r})")
    model = _cellpose_model(config["nbase"], config["diam_mean"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.net.load_state_dict(state, strict=True)
    model.net.eval()
    model.diam_labels = float(model.net.diam_labels.item())
    return model


def evaluate_cellpose_baseline(
    path, data, *, split: str = "val", diameter="true", max_images: int | None = None, flow_threshold: float = 0.4
) -> dict:
    """Score a cellpose baseline with ``CellposeModel.eval`` on labelled images.

    ``data``, ``split``, ``diameter`` and ``max_images`` as for
    :func:`.training.evaluate_model` (``diameter="true"``: each image's true median
    diameter; None: cellpose's own ``diam_mean``).  Images go in as gray at native size (``channels=[0, 0]``); cellpose
    normalises (1st–99th percentile) and rescales them itself.  Returns ``{"model": evaluate(...), "names",
    "split", "diameter"}``.
    """
    from .data import read_image, read_labels
    from .evaluation import evaluate
    from .targets import median_diameter_px
    from .training import collect_sources, split_files
    from ._image import to_gray

    model = load_cellpose_baseline(path)
    files, memory = collect_sources(data, "labels")
    if memory or not files:
        raise ValueError("evaluate_cellpose_baseline reads labelled files: pass folders, image files or (image_path, labels_path) tuples")
    files, note = split_files(files, split)
    if max_images is not None:
        picks = np.unique(np.linspace(0, len(files) - 1, int(max_images)).round().astype(int))
        files = [files[i] for i in picks]
    preds, trues = [], []
    for entry in files:
        image, labels = to_gray(read_image(entry["image"])), read_labels(entry["labels"])
        d = median_diameter_px(labels) if diameter == "true" else diameter
        masks = model.eval(
            image, channels=[0, 0], normalize=True, diameter=float(d) if d else model.diam_mean, flow_threshold=flow_threshold
        )[0]
        preds.append(np.asarray(masks, np.int32))
        trues.append(labels)
    return {
        "model": evaluate(preds, trues),
        "names": [e["name"] for e in files],
        "split": note,
        "diameter": "true median per image" if diameter == "true" else diameter,
    }
