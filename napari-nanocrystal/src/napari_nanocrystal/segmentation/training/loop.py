"""The resumable training run: :func:`train` (one mmengine ``Runner`` per stage) and its :class:`TrainingResult`."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nc_synthmodel.files import json_safe
from nc_synthmodel.io import atomic_write_text

from .config import _MODEL_NAME, load_config, mmengine_config
from .size import add_size_model
from .sources import resolve_data
from .stages import LOG_NAME, Stopped, prepare_images, stage_config

__all__ = ["ProgressCallback", "TrainingResult", "train"]

logger = logging.getLogger(__name__)


#: ``progress(stage, iteration, max_iters, loss)``; returning ``False`` stops training.
ProgressCallback = Callable[[str, int, int, float], object]


@dataclass
class TrainingResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    model_path : Path or None
        The final weights (``model.safetensors``; config sidecar ``model.json``), None if
        training was stopped before the end.
    log_path : Path
        The JSON training log.
    out_dir : Path
        The run folder (stage work dirs, checkpoints, dumped config).
    stopped : bool
        True if a stop was requested; ``train(..., resume=True)`` continues.
    stage : str
        The stage that ran last (``'prepare'`` if stopped while preparing images).
    iteration : int
        Iterations done in that stage.
    metrics : dict
        The last validation metrics of that stage (empty if none).
    """

    model_path: Path | None
    log_path: Path
    out_dir: Path
    stopped: bool
    stage: str
    iteration: int
    metrics: dict = field(default_factory=dict)


def _init_cpu_distributed(cfg) -> bool:
    """Start the process group for ``launcher='pytorch'`` without GPUs; True if started here.

    mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally; the Runner
    skips it when a process group exists, so one is created here from torchrun's environment
    (``backend`` from ``env_cfg.dist_cfg``, gloo by default).
    """
    import torch
    import torch.distributed as dist

    if cfg.get("launcher", "none") != "pytorch" or torch.cuda.is_available() or dist.is_initialized():
        return False
    missing = [name for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise RuntimeError(f"launcher='pytorch' needs torchrun's environment ({', '.join(missing)} not set): start with torchrun")
    backend = cfg.get("env_cfg", {}).get("dist_cfg", {}).get("backend", "gloo")
    dist.init_process_group(backend="gloo" if backend == "nccl" else backend)
    return True


def _is_main_worker() -> bool:
    """Rank 0, or the only process (before a process group exists: torchrun's RANK)."""
    from mmengine.dist import is_distributed, is_main_process

    return is_main_process() if is_distributed() else os.environ.get("RANK", "0") == "0"


def _unwrap(model):
    from mmengine.model import is_model_wrapper

    return model.module if is_model_wrapper(model) else model


def _close_logger(runner) -> None:
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(json_safe(data), indent=1) + "\n")


def _last_metrics(log_path: Path, stage: str) -> dict:
    from ..engine.hooks import TrainingLog

    records = TrainingLog(log_path).stage(stage)["val"]
    return dict(records[-1]) if records else {}


def train(
    config="cpu-small",
    labeled=None,
    weak=None,
    out="seedflow_run",
    *,
    val=None,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    cfg_options: dict | None = None,
    cache_dir=None,
) -> TrainingResult:
    """Train a :class:`~.network.SeedFlowNet` in the stages of ``config`` and save it.

    Parameters
    ----------
    config : str, path or mmengine Config
        Preset (``paper``, ``cpu-small``, ``tiny``), shipped config name or config file
        (see :func:`load_config`).
    labeled : folder, image file, (image, labels) tuple, or a list of them
        Instance-labelled images (see the module docstring); required.
    weak : same forms, or None
        Weakly labelled images (0 background, 1 particle, 255 uncertain) for the ``mixed``
        stage; without them that stage uses the labelled images only.
    out : path
        Run folder; it must not hold a previous run unless ``resume=True``.
    val : None, False or same forms as ``labeled``
        Validation images; None: automatic (see the module docstring); False: none.
    resume : bool
        Continue the run in ``out`` (finished stages are skipped, an interrupted stage
        continues from its last checkpoint).
    progress : callable(stage, iteration, max_iters, loss) or None
        See the module docstring; returning ``False`` stops.
    stop_event : threading.Event or None
        Set it (e.g. from a GUI thread) to stop after the current iteration.
    cfg_options : dict or None
        Config overrides, ``{"dotted.key": value}``.
    cache_dir : path or None
        Cache of the prepared images and flow targets (default:
        :func:`~.engine.datasets.default_cache_dir`).

    Returns
    -------
    TrainingResult
    """
    mmengine_config()  # a clear ImportError when mmengine (the training extra) is missing
    from mmengine.dist import barrier, is_main_process
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from .. import engine  # noqa: F401  (registers the components)
    from ..engine.datasets import default_cache_dir, register_memory_source, release_memory_source
    from ..engine.hooks import ProgressHook, TrainingLog
    from ..network import load_model

    cfg = load_config(config, cfg_options)
    data = resolve_data(labeled, weak, val)
    out = Path(out)
    log_path = out / LOG_NAME
    if not resume and (log_path.exists() or any((out / name).exists() for name in cfg.stages)):
        raise FileExistsError(f"{out} already holds a training run: pass resume=True to continue it, or choose a new out folder")
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "targets"

    keys = []
    started_dist = _init_cpu_distributed(cfg)
    try:
        sources = {"train": list(data.train_files), "val": list(data.val_files), "weak": list(data.weak_files)}
        for role, items in (("train", data.train_memory), ("val", data.val_memory), ("weak", data.weak_memory)):
            if items:
                keys.append(register_memory_source(items))
                sources[role].append(keys[-1])

        counts = {
            "train": len(data.train_files) + len(data.train_memory),
            "val": len(data.val_files) + len(data.val_memory),
            "weak": len(data.weak_files) + len(data.weak_memory),
        }
        if _is_main_worker():
            log = TrainingLog(log_path)
            log.data.update(config=cfg.filename or str(config), stages_planned=list(cfg.stages), data=data.describe(), counts=counts)
            log.save()
            dumped = copy.deepcopy(cfg)
            dumped.merge_from_dict({"data_sources": data.describe()})
            atomic_write_text(out / "config.py", dumped.dump())

        try:
            prepare_images(cfg, data, sources, cache_dir, progress, stop_event)
        except Stopped:
            return TrainingResult(None, log_path, out, True, "prepare", 0)

        previous_weights = None
        iteration = 0
        for name, stage in cfg.stages.items():
            work_dir = out / name
            done_marker = work_dir / "done.json"
            weights = work_dir / _MODEL_NAME
            if resume and done_marker.is_file() and weights.is_file():
                logger.info("stage %s already finished; skipping", name)
                previous_weights = weights
                iteration = int(json.loads(done_marker.read_text(encoding="utf-8"))["iter"])
                continue
            resuming = resume and (work_dir / "last_checkpoint").is_file()
            stage_cfg = stage_config(cfg, name, dict(stage), out, sources, counts, cache_dir, resuming)
            # the Runner sets mmengine's global default scope: restore it when the stage ends
            with DefaultScope.overwrite_default_scope(stage_cfg["default_scope"]):
                runner = Runner.from_cfg(stage_cfg)
                try:
                    hook = ProgressHook(name, progress, stop_event)
                    runner.register_hook(hook)
                    if previous_weights is not None and not resuming:
                        _unwrap(runner.model).net.load_state_dict(load_model(previous_weights).state_dict())
                        runner.logger.info(f"stage {name}: starting from {previous_weights}")
                    runner.train()
                    iteration, max_iters = int(runner.iter), int(runner.max_iters)
                    finished = iteration >= max_iters
                    log = TrainingLog(log_path)
                    log.stage(name)["status"] = "done" if finished else "stopped"
                    if finished and is_main_process():
                        _unwrap(runner.model).net.save(weights)
                        _write_json(
                            done_marker,
                            {
                                "iter": iteration,
                                "max_iters": max_iters,
                                "weights": str(weights),
                                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                            },
                        )
                    if is_main_process():
                        log.save()
                    barrier()  # other workers read the stage weights next
                    if hook.stopped or not finished:
                        return TrainingResult(None, log_path, out, True, name, iteration, _last_metrics(log_path, name))
                    previous_weights = weights
                finally:
                    _close_logger(runner)

        final = out / _MODEL_NAME
        last_stage = list(cfg.stages)[-1]
        result_metrics = _last_metrics(log_path, last_stage)
        if is_main_process():
            net = load_model(previous_weights)
            size_info = None
            if cfg.get("size_model") is not None:
                logger.info("fitting the size model on the training images")
                size_info = add_size_model(net, labeled, weak, val=val, **dict(cfg.size_model))
            net.save(final)
            log = TrainingLog(log_path)
            log.data.update(
                size_model=size_info,
                model=str(final),
                model_bytes=final.stat().st_size,
                n_parameters=net.n_parameters(),
                final_metrics=result_metrics,
            )
            log.save()
        return TrainingResult(final, log_path, out, False, last_stage, iteration, result_metrics)
    finally:
        for key in keys:
            release_memory_source(key)
        if started_dist:
            import torch.distributed as dist

            dist.destroy_process_group()
