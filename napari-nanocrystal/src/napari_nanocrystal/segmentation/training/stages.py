"""The mmengine config of one training stage, and the preparation of every image before the stages."""

from __future__ import annotations

import copy
import logging
import time
import uuid
from pathlib import Path

from .config import LOG_NAME
from .sources import TrainingData

__all__ = ["LOG_NAME", "Stopped", "mix_repeats", "prepare_images", "stage_config", "target_diameter"]

logger = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised internally when a stop is requested while images are prepared."""


def _stage_schedulers(cfg, stage: dict) -> list[dict]:
    by_epoch = stage.get("max_epochs") is not None
    length = stage["max_epochs"] if by_epoch else stage["max_iters"]
    warmup = int(stage.get("warmup", 0))
    common = {"by_epoch": by_epoch}
    if by_epoch:
        common["convert_to_iter_based"] = True
    schedulers = []
    if warmup > 0:
        schedulers.append({**dict(cfg.get("lr_warmup", {"type": "LinearLR", "start_factor": 0.01})), **common, "begin": 0, "end": warmup})
    decay = cfg.get("lr_decay")
    if decay:
        schedulers.append({**dict(decay), **common, "begin": warmup, "end": length})
    return schedulers


def _dataset_cfg(cfg, base_key: str, pairs: list, pipeline, cache_dir) -> dict:
    dataset = copy.deepcopy(dict(cfg.get(base_key, {})))
    dataset.update(pairs=pairs, pipeline=copy.deepcopy(list(pipeline)), cache_dir=str(cache_dir))
    dataset.setdefault("target_diameter_px", target_diameter(cfg))
    dataset.setdefault("percentiles", tuple(cfg.model.get("net", {}).get("percentiles", (1.0, 99.0))))
    return dataset


def target_diameter(cfg) -> float | None:
    if not cfg.get("rescale_to_diameter", True):
        return None
    return float(cfg.model.get("net", {}).get("diameter_px", 30.0))


def mix_repeats(fraction: float, n_labelled: int, n_weak: int) -> tuple[int, int]:
    """(labelled, weak) repeats that make weak images ~``fraction`` of the mixed samples.

    The rarer kind is repeated: few weak images are up-sampled, and many weak images (e.g. a
    small labelled subset beside a large unlabelled set) up-sample the labelled ones instead,
    so the weak share never exceeds what was asked for.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"weak_fraction must be in (0, 1) or None, got {fraction}")
    ratio = fraction / (1.0 - fraction) * n_labelled / max(1, n_weak)  # weak repeat that gives the fraction
    if ratio >= 1.0:
        return 1, round(ratio)
    return max(1, round(1.0 / ratio)), 1


def stage_config(cfg, name: str, stage: dict, out: Path, sources: dict, counts: dict, cache_dir: Path, resume: bool):
    from mmengine.config import Config

    from ..engine.registry import SCOPE

    pipeline = stage.get("train_pipeline") or cfg.train_pipeline  # a stage may augment differently
    labelled = _dataset_cfg(cfg, "labelled_dataset", sources["train"], pipeline, cache_dir)
    labelled.setdefault("type", "LabelledFlowDataset")
    dataset = labelled
    if stage["data"] == "mixed" and sources["weak"]:
        weak = _dataset_cfg(cfg, "weak_dataset", sources["weak"], pipeline, cache_dir)
        weak.setdefault("type", "WeakLabelDataset")
        weak.update(copy.deepcopy(dict(stage.get("weak_dataset") or {})))  # e.g. flow targets in one stage only
        fraction = cfg.get("weak_fraction")
        if fraction is not None:
            labelled_repeat, weak_repeat = mix_repeats(float(fraction), counts["train"], counts["weak"])
            labelled["repeat"] = labelled.get("repeat", 1) * labelled_repeat
            weak["repeat"] = weak.get("repeat", 1) * weak_repeat
        dataset = {"type": "ConcatDataset", "datasets": [labelled, weak]}
    elif stage["data"] == "mixed":
        logger.info("stage %s: no weak data, training on the labelled images only", name)

    train_cfg = {"type": "SeedFlowTrainLoop", "val_interval": stage.get("val_interval")}
    if stage.get("max_epochs") is not None:
        train_cfg["max_epochs"] = stage["max_epochs"]
    else:
        train_cfg["max_iters"] = stage["max_iters"]

    work_dir = out / name
    stage_cfg = {
        key: copy.deepcopy(cfg[key])
        for key in (
            "model",
            "optim_wrapper",
            "env_cfg",
            "log_processor",
            "log_level",
            "visualizer",
            "randomness",
            "launcher",
            "default_hooks",
            "model_wrapper_cfg",
        )
        if key in cfg
    }
    stage_cfg.update(
        default_scope=cfg.get("default_scope", SCOPE),
        work_dir=str(work_dir),
        experiment_name=f"{name}_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}",
        train_dataloader={**copy.deepcopy(dict(cfg.train_dataloader)), "dataset": dataset},
        train_cfg=train_cfg,
        param_scheduler=_stage_schedulers(cfg, stage),
        custom_hooks=copy.deepcopy(list(cfg.get("custom_hooks", [])))
        + [
            {"type": "TrainingLogHook", "path": str(out / LOG_NAME), "stage": name, **dict(cfg.get("training_log", {}))},
            {"type": "PlainCheckpointHook"},
        ],
        resume=bool(resume),
        load_from=None,
    )
    if sources["val"] and cfg.get("val_dataloader") is not None:
        val = _dataset_cfg(
            cfg, "val_dataset", sources["val"], cfg.get("val_pipeline", [{"type": "PackSeedFlowInputs", "with_labels": True}]), cache_dir
        )
        val.setdefault("type", "LabelledFlowDataset")
        val.setdefault("test_mode", True)
        stage_cfg.update(
            val_dataloader={**copy.deepcopy(dict(cfg.val_dataloader)), "dataset": val},
            val_cfg=copy.deepcopy(dict(cfg.get("val_cfg", {"type": "ValLoop"}))),
            val_evaluator=copy.deepcopy(dict(cfg.get("val_evaluator", {"type": "SeedFlowMetric"}))),
        )
    stage_cfg = Config(stage_cfg)
    for key in ("optim_wrapper", "model"):  # e.g. a lower learning rate, or a teacher, in one stage only
        if stage.get(key):
            stage_cfg.merge_from_dict({key: dict(stage[key])})
    return stage_cfg


def prepare_images(cfg, data: TrainingData, sources: dict, cache_dir: Path, progress, stop_event) -> None:
    """Compute (or find in the cache) every image's network input and targets, reporting progress."""
    from ..engine.datasets import LabelledFlowDataset, WeakLabelDataset

    n_val = len(data.val_files) + len(data.val_memory)
    val_max = cfg.get("val_dataset", {}).get("max_images")
    total = sum(len(v) for v in (data.train_files, data.train_memory, data.weak_files, data.weak_memory)) + (
        min(n_val, val_max) if val_max else n_val
    )
    done = [0]

    def report(*_):
        done[0] += 1
        if progress is not None and progress("prepare", done[0], total, float("nan")) is False:
            raise Stopped
        if stop_event is not None and stop_event.is_set():
            raise Stopped

    common = {
        "target_diameter_px": target_diameter(cfg),
        "percentiles": tuple(cfg.model.get("net", {}).get("percentiles", (1.0, 99.0))),
        "cache_dir": cache_dir,
    }
    for pairs, cls, extra in (
        (sources["train"], LabelledFlowDataset, cfg.get("labelled_dataset", {})),
        (sources["val"], LabelledFlowDataset, cfg.get("val_dataset", {})),
        (sources["weak"], WeakLabelDataset, cfg.get("weak_dataset", {})),
    ):
        if not pairs:
            continue
        kwargs = {
            k: v for k, v in dict(extra).items() if k in ("diameter_px", "target_diameter_px", "percentiles", "max_images", "flow_targets")
        }
        cls(pairs, **{**common, **kwargs}, progress=report)
