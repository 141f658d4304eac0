"""Train the particle detector with mmengine's ``Runner`` and export weights for inference.

:func:`train_detector` takes a config (a packaged name, see :func:`config_path`, or a file),
training data (a folder of image + instance-map pairs, or in-memory ``(image, labels)`` pairs)
and an output folder, and writes there:

* ``detector.pth`` — the trained weights, **weights only**: ``{"state_dict": {name: tensor},
  "meta": {...}}`` with plain Python values, readable with ``torch.load(..., weights_only=True)``
  (what :func:`~napari_nanocrystal.detection.load_detector` does) and by mmdet's
  ``init_detector`` + ``inference_detector`` (not by ``DetInferencer``, which requires a
  ``LoadImageFromFile`` step in the test pipeline; ours reads images with ``LoadTEMImage``);
* ``config.py`` — the complete config of the run (``_base_`` parts merged, data paths filled);
* ``train_data/`` — in-memory pairs written as PNG files in the EMPS layout, so that
  ``config.py`` reproduces the run (replaced on every call with in-memory pairs);
* ``work/`` — mmengine's work folder: logs, the runner's config dump and its full
  checkpoints (weights, optimizer state, iteration) for ``resume=True``.  They are stored
  with tensors and plain Python values only (the segmentation engine's
  ``PlainCheckpointHook``), so mmengine reads them back under torch's default
  ``weights_only=True``; load them with mmengine only if we produced them.

Cost on a 2-core CPU (``benchmarks/results/weak_labels.md``): the tiny test config ~1 s per
iteration; the paper configs (HRNet-w18/w32 at ~1333 × 890 px, 2 images per batch) about a
minute per iteration, i.e. days for the 12,000-iteration schedule — train those on a GPU.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from .._progress import ProgressCallback
from ..segmentation.data import IMAGE_SUFFIXES
from .dataset import PARTICLE_METAINFO

__all__ = ["CONFIG_DIR", "WEIGHTS_NAME", "CONFIG_NAME", "available_configs", "config_path", "load_config", "train_detector"]

logger = logging.getLogger(__name__)

#: Packaged detector configs.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "detector"
#: File names written by :func:`train_detector`.
WEIGHTS_NAME = "detector.pth"
CONFIG_NAME = "config.py"


def available_configs() -> dict[str, Path]:
    """Packaged detector configs: name → file (``configs/detector/*.py``)."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.py"))}


def config_path(config) -> Path:
    """Path of a config given as a packaged name (see :func:`available_configs`) or a file path."""
    packaged = available_configs()
    if isinstance(config, str) and config in packaged:
        return packaged[config]
    path = Path(config)
    if path.is_file():
        return path
    raise FileNotFoundError(f"no detector config {config!r}: not a file and not one of the packaged configs {sorted(packaged)}")


def load_config(config) -> Config:
    """An mmengine ``Config`` from a packaged name, a file, or a ``Config`` (copied)."""
    if isinstance(config, Config):
        return config.copy()
    return Config.fromfile(str(config_path(config)))


class _ProgressHook(Hook):
    """Reports ``(message, fraction)`` after every training iteration."""

    priority = "LOWEST"

    def __init__(self, progress: ProgressCallback):
        self.progress = progress

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        done, total = runner.iter + 1, max(1, runner.max_iters)
        loss = outputs.get("loss") if isinstance(outputs, dict) else None
        loss = float(loss.detach()) if isinstance(loss, torch.Tensor) else loss
        text = f"iteration {done}/{total}" + (f", loss {float(loss):.4f}" if loss is not None else "")
        self.progress(text, done / total)


def _set_nwd_constant(cfg: Config, constant: float) -> int:
    """Set ``constant`` on every NWDOverlaps2D calculator of the model's train_cfg; returns how many."""
    if not constant > 0:
        raise ValueError(f"nwd_constant must be positive, got {constant}")
    count = 0

    def visit(node) -> None:
        nonlocal count
        if isinstance(node, dict):
            if node.get("type") == "NWDOverlaps2D":
                node["constant"] = constant
                count += 1
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    visit(cfg.model.get("train_cfg", {}))
    if not count:
        raise ValueError("nwd_constant given, but the config's assigners use no NWDOverlaps2D calculator")
    return count


def _write_pairs(pairs: Sequence, root: Path) -> Path:
    """Write in-memory (image, labels) pairs as ``images/NNNN.png`` + ``segmaps/NNNN.png`` (atomic)."""
    from nc_synthmodel.io import atomic_write_bytes

    from ..label_files import label_png_bytes, png_bytes

    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(f"training pair {i} must be (image, labels), got {type(pair).__name__}")
        image, labels = np.asarray(pair[0]), np.asarray(pair[1])
        if image.shape[:2] != labels.shape or labels.ndim != 2:
            raise ValueError(f"training pair {i}: image {image.shape} and labels {labels.shape} differ in size")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min(initial=0) < 0 or labels.max(initial=0) > 65535:
            raise ValueError(f"training pair {i}: labels must be non-negative integers below 65536")
        if not (image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2)):
            from .dataset import detector_input

            image = detector_input(image)[..., 0]  # what the detector sees, as 8-bit gray
        atomic_write_bytes(root / "images" / f"{i:04d}.png", png_bytes(image))
        atomic_write_bytes(root / "segmaps" / f"{i:04d}.png", label_png_bytes(labels))
    return root


def _resolve_data(data, out: Path) -> Path:
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"training data not found: {path}")
        if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"training data must be a folder of pairs or an image file, not {path}")
        return path.resolve()
    pairs = list(data)
    if not pairs:
        raise ValueError("no training pairs given")
    root = out / "train_data"
    if root.is_dir():  # written by an earlier call: replace it, so no stale pair is trained on
        shutil.rmtree(root)
    return _write_pairs(pairs, root).resolve()


def train_detector(
    config,
    data,
    out,
    *,
    max_iters: int | None = None,
    names: Sequence[str] | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    seed: int = 0,
    nwd_constant: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Train the particle detector of a config on labelled images; returns the weights file.

    Parameters
    ----------
    config : str, path or mmengine Config
        A packaged config name (``"cascade_rcnn_hrnet_nwd"`` paper-like HRNet-w32,
        ``"cascade_rcnn_hrnet_w18_nwd"``, ``"cascade_rcnn_hrnet_cpu_nwd"`` for 2 CPU cores,
        ``"cascade_rcnn_hrnet_tiny_nwd"`` for tests) or a
        config file.
    data : folder/file path, or sequence of (image, labels)
        Image + instance-map pairs (see :class:`~napari_nanocrystal.detection.ParticleDetDataset`).
        In-memory pairs are first written to ``out/train_data``.
    out : path
        Output folder (created).
    max_iters : int, optional
        Override the config's number of training iterations.
    names : sequence of str, optional
        Use only these pairs of the folder.
    batch_size, num_workers : int, optional
        Override the training dataloader's.
    seed : int
        Random seed of the run.
    nwd_constant : float, optional
        Set the constant ``C`` (px) of every ``NWDOverlaps2D`` calculator of the assigners
        (about the mean particle size in the resized images).
    resume : bool
        Continue the run in ``out`` from its last full checkpoint (``out/work``).
    overwrite : bool
        Start afresh although ``out`` holds a previous run (its ``detector.pth`` is replaced).
    progress : callable(message, fraction), optional
        Called after every iteration.

    Returns
    -------
    Path
        ``out/detector.pth`` (weights only); ``out/config.py`` is its config.
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from nc_synthmodel.io import atomic_write_bytes

    from .. import __version__
    from ..segmentation.engine.hooks import PlainCheckpointHook

    out = Path(out)
    weights_path, config_out = out / WEIGHTS_NAME, out / CONFIG_NAME
    previous = (out / "work" / "last_checkpoint").is_file()
    if resume and not previous:
        raise FileNotFoundError(f"nothing to resume in {out}: no {out / 'work' / 'last_checkpoint'}")
    if not resume and not overwrite and (weights_path.exists() or previous):
        raise FileExistsError(f"{out} holds a previous detector run; pass resume=True to continue it or overwrite=True to replace it")
    cfg = load_config(config)
    if nwd_constant is not None:
        _set_nwd_constant(cfg, float(nwd_constant))
    if max_iters is not None:
        if int(max_iters) < 1:
            raise ValueError(f"max_iters must be ≥ 1, got {max_iters}")
        cfg.train_cfg.max_iters = int(max_iters)
    total = int(cfg.train_cfg.max_iters)
    out.mkdir(parents=True, exist_ok=True)
    root = _resolve_data(data, out)

    loader = cfg.train_dataloader
    loader.dataset.data_root = str(root)
    loader.dataset.names = None if names is None else [str(n) for n in names]
    if batch_size is not None:
        loader.batch_size = int(batch_size)
    if num_workers is not None:
        loader.num_workers = int(num_workers)
    if loader.num_workers == 0:
        loader.persistent_workers = False
    checkpoint_hook = cfg.default_hooks.get("checkpoint")
    if checkpoint_hook is not None:
        checkpoint_hook.interval = min(int(checkpoint_hook.get("interval", total)), total)
    cfg.work_dir = str((out / "work").resolve())
    cfg.randomness = dict(seed=int(seed))
    cfg.resume = bool(resume)
    cfg.load_from = None

    # the runner trains; test settings stay in the exported config for inference only
    runner_cfg = cfg.copy()
    for key in ("test_dataloader", "test_cfg", "test_evaluator", "val_dataloader", "val_cfg", "val_evaluator"):
        runner_cfg.pop(key, None)
    # the Runner sets mmengine's global default scope; restore it afterwards
    with DefaultScope.overwrite_default_scope(runner_cfg.get("default_scope", "mmdet")):
        runner = Runner.from_cfg(runner_cfg)
        runner.register_hook(PlainCheckpointHook(), priority="LOWEST")
        if progress is not None:
            runner.register_hook(_ProgressHook(progress), priority="LOWEST")
        logger.info("training %s for %d iterations on %s", Path(cfg.filename or "config").name, total, root)
        runner.train()

    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise FloatingPointError("training diverged: the detector's weights contain NaN or infinite values")
    meta = {
        "dataset_meta": {"classes": list(PARTICLE_METAINFO["classes"]), "palette": [list(c) for c in PARTICLE_METAINFO["palette"]]},
        "config": CONFIG_NAME,
        "iterations": int(runner.iter),
        "seed": int(seed),
        "napari_nanocrystal_version": __version__,
    }
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "meta": meta}, buffer)
    atomic_write_bytes(config_out, cfg.pretty_text.encode("utf-8"))
    atomic_write_bytes(weights_path, buffer.getvalue())
    logger.info("wrote %s (%.1f MB) and %s", weights_path, weights_path.stat().st_size / 1e6, config_out)
    return weights_path
