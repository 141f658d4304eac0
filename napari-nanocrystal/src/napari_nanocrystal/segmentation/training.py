"""Train the seed/flow segmentation network in two stages with an mmengine ``Runner``.

(Why past ~500 lines: data resolution, the stage configs, the resumable run, the size-model fit and
:func:`evaluate_model` all apply one rule for which images are training and which are validation;
splitting it into ``segmentation/training/`` along those lines is issue 17's next step.)

:func:`train` is the headless API (the ``nanocrystal train`` command and the napari Train
widget call it).  A config (an mmengine Python config in ``napari_nanocrystal/configs``,
composed from ``_base_`` parts, or a preset name, see :data:`PRESETS`) describes the model,
data pipeline, optimiser, runtime and the ``stages``; the paper's recipe (Gu et al., ACS Nano
2025) is

1. ``pretrain``: mixed labelled + weakly labelled images (flow MSE + seed BCE on labelled
   crops, seed BCE on the certain pixels of weak crops);
2. ``finetune``: labelled images only, starting from the pretrained weights.

Each stage runs its own ``Runner`` (work dir ``<out>/<stage>``) with an iteration-based loop
(:class:`~.engine.loops.SeedFlowTrainLoop`), a linear learning-rate warm-up followed by a
decay, checkpoints, validation (AP50/75/90 and mean matched IoU on held-out images, see
:class:`~.engine.metric.SeedFlowMetric`) and the JSON training log
``<out>/training_log.json``.  The final network is written with
:meth:`~.network.SeedFlowNet.save` to ``<out>/model.safetensors`` (+ ``model.json``).

Data
----
``labeled``: folders (see :func:`~.data.find_labelled_pairs` for the naming conventions; the
EMPS layout ``images/*.png`` + ``segmaps/*.png`` works as is), single ``*_image.*`` files
with their ``*_instances.*`` partner, ``(image_path, labels_path)`` tuples, or in-memory
``(image, labels)`` array tuples, alone or in a list.  ``weak``: the same with weak labels
(0 background, 1 particle, 255 uncertain; :func:`~.data.find_weak_pairs`).  Validation
(``val=None``): the fixed publication-grouped EMPS split (:func:`~.data.emps_split`) of every folder
with a ``train.csv`` listing; otherwise, with at least 5 labelled images, every 5th one (sorted by
name) is held out; with fewer, the training images are also used for validation (logged).

Resuming
--------
``resume=True`` skips the stages already finished (``<out>/<stage>/done.json``) and
continues an interrupted stage from its last checkpoint (optimizer, scheduler and iteration
counter included).  ``progress(stage, iteration, max_iters, loss)`` is called after every
iteration (and with stage ``'prepare'`` while images are prepared); it stops training
cleanly, with a checkpoint, by returning ``False``, as does setting ``stop_event``.

Checkpoints are mmengine's (model, optimizer, scheduler and log state), stored as tensors
and plain Python values only (:class:`~.engine.hooks.PlainCheckpointHook`), so mmengine's
``torch.load`` reads them with torch's default ``weights_only=True``: no unrestricted
unpickling.  The pretrain → finetune hand-over goes through the safetensors weights.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from nc_synthmodel.files import json_safe  # noqa: F401 - public here too (the one JSON sanitiser)
from nc_synthmodel.io import atomic_write_text

from .data import emps_split, find_labelled_pairs, find_weak_pairs, read_image, read_weak_label

__all__ = ["PRESETS", "CONFIGS_DIR", "TrainingResult", "add_size_model", "evaluate_model", "json_safe", "load_config", "resolve_data", "train"]

logger = logging.getLogger(__name__)

#: Folder of the shipped configs.
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"

#: Preset name → config file in :data:`CONFIGS_DIR`.
PRESETS = {
    "paper": "seedflow_paper.py",
    "cpu-small": "seedflow_cpu_small.py",
    "tiny": "seedflow_tiny_test.py",
    "default-model": "seedflow_default.py",
}

_STAGE_KEYS = {"data", "max_epochs", "max_iters", "warmup", "val_interval", "optim_wrapper"}
_STAGE_DATA = ("mixed", "labelled")
_LOG_NAME = "training_log.json"
_MODEL_NAME = "model.safetensors"

#: ``progress(stage, iteration, max_iters, loss)``; returning ``False`` stops training.
ProgressCallback = Callable[[str, int, int, float], object]


class _Stopped(Exception):
    """Raised internally when a stop is requested while images are prepared."""


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


# --------------------------------------------------------------------------- files


# --------------------------------------------------------------------------- configs


def load_config(config="cpu-small", cfg_options: dict | None = None):
    """An mmengine ``Config`` from a preset name, a shipped config name or a config file.

    Parameters
    ----------
    config : str, path or mmengine Config
        A preset (:data:`PRESETS`: ``paper``, ``cpu-small``, ``tiny``), the name of a file in
        :data:`CONFIGS_DIR` (``seedflow_paper`` or ``seedflow_paper.py``), or a path to a
        ``.py``/``.json``/``.yaml`` config.  Python configs are executed by mmengine: only
        use config files you trust.
    cfg_options : dict or None
        ``{"dotted.key": value}`` overrides (mmengine ``merge_from_dict``; list items by
        index, e.g. ``train_pipeline.0.crop_size``).

    Raises ``ValueError`` naming the known presets for an unknown name.
    """
    from mmengine.config import Config

    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, (str, PathLike)):
        text = str(config)
        path = Path(text)
        if text in PRESETS:
            path = CONFIGS_DIR / PRESETS[text]
        elif not path.is_file() and (CONFIGS_DIR / text).is_file():
            path = CONFIGS_DIR / text
        elif not path.is_file() and (CONFIGS_DIR / f"{text}.py").is_file():
            path = CONFIGS_DIR / f"{text}.py"
        if not path.is_file():
            shipped = sorted(p.stem for p in CONFIGS_DIR.glob("*.py"))
            raise ValueError(
                f"unknown config {text!r}: not a preset ({', '.join(PRESETS)}), not a shipped config "
                f"({', '.join(shipped)}) and no such file"
            )
        cfg = Config.fromfile(str(path))
    else:
        raise TypeError(f"config must be a preset name, a config path or an mmengine Config, not {type(config).__name__}")
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options), allow_list_keys=True)
    _check_config(cfg)
    return cfg


def _check_config(cfg) -> None:
    missing = [k for k in ("model", "stages", "optim_wrapper", "train_dataloader", "train_pipeline") if k not in cfg]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)} (compose it from the _base_ files in {CONFIGS_DIR})")
    if not isinstance(cfg.stages, dict) or not cfg.stages:
        raise ValueError("config 'stages' must be a non-empty dict: stage name -> dict(data=..., max_epochs=... or max_iters=...)")
    for name, stage in cfg.stages.items():
        unknown = set(stage) - _STAGE_KEYS
        if unknown:
            raise ValueError(f"stage {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(_STAGE_KEYS)}")
        if stage.get("data") not in _STAGE_DATA:
            raise ValueError(f"stage {name!r}: data must be one of {_STAGE_DATA}, not {stage.get('data')!r}")
        epochs, iters = stage.get("max_epochs"), stage.get("max_iters")
        if (epochs is None) == (iters is None):
            raise ValueError(f"stage {name!r}: give exactly one of max_epochs and max_iters")
        length = epochs if epochs is not None else iters
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"stage {name!r}: max_epochs/max_iters must be a positive integer, not {length!r}")
        warmup = stage.get("warmup", 0)
        if not isinstance(warmup, int) or not 0 <= warmup < length:
            raise ValueError(f"stage {name!r}: warmup must be an integer in [0, {length}) (same unit as the length), not {warmup!r}")
        override = stage.get("optim_wrapper")
        if override is not None and not isinstance(override, dict):
            raise ValueError(f"stage {name!r}: optim_wrapper must be a dict merged into the global one, not {override!r}")
        interval = stage.get("val_interval")
        if interval is not None and (not isinstance(interval, int) or interval < 1):
            raise ValueError(f"stage {name!r}: val_interval must be a positive integer or None, not {interval!r}")
    net = cfg.model.get("net", {})
    if not float(net.get("diameter_px", 30.0)) > 0:
        raise ValueError("model.net.diameter_px must be positive")


# --------------------------------------------------------------------------- data


def _is_pathlike(value) -> bool:
    return isinstance(value, (str, PathLike))


def _items(sources) -> list:
    """Split a data argument into single sources (a tuple of two is one pair; a list is many)."""
    if sources is None:
        return []
    if isinstance(sources, tuple) or _is_pathlike(sources):
        return [sources]
    if isinstance(sources, list):
        return list(sources)
    raise TypeError(
        "training data must be a folder, an image file, an (image, labels) tuple of paths or arrays, "
        f"or a list of those; got {type(sources).__name__}"
    )


@dataclass
class _Data:
    """Resolved sources: file-pair entries and in-memory items, per role."""

    train_files: list = field(default_factory=list)
    train_memory: list = field(default_factory=list)
    val_files: list = field(default_factory=list)
    val_memory: list = field(default_factory=list)
    weak_files: list = field(default_factory=list)
    weak_memory: list = field(default_factory=list)
    val_note: str = ""

    def describe(self) -> dict:
        return {
            "labelled_train": [e["image"] for e in self.train_files] + [f"<memory> {n}" for n, _, _ in self.train_memory],
            "labelled_val": [e["image"] for e in self.val_files] + [f"<memory> {n}" for n, _, _ in self.val_memory],
            "weak": [e["image"] for e in self.weak_files] + [f"<memory> {n}" for n, _, _ in self.weak_memory],
            "validation": self.val_note,
        }


def _collect(sources, kind: str):
    """(file entries with a 'group' for EMPS folders, memory items) of labelled or weak sources."""
    finder = find_labelled_pairs if kind == "labels" else find_weak_pairs
    files, memory = [], []
    for index, source in enumerate(_items(sources)):
        if isinstance(source, tuple):
            if len(source) != 2:
                raise ValueError(f"a {kind} pair must be (image, {kind}); got a tuple of {len(source)}")
            image, labels = source
            if _is_pathlike(image) and _is_pathlike(labels):
                for path in (Path(image), Path(labels)):
                    if not path.is_file():
                        raise FileNotFoundError(f"training file not found: {path}")
                files.append({"name": Path(image).stem, "image": str(image), kind: str(labels), "group": None})
            else:
                image, labels = np.asarray(image), np.asarray(labels)
                if image.shape[:2] != labels.shape:
                    raise ValueError(f"in-memory pair {index}: image {image.shape} and {kind} {labels.shape} differ in size")
                memory.append((f"image_{index}", image, labels))
        elif _is_pathlike(source):
            path = Path(source)
            group = path if path.is_dir() and (path / "train.csv").is_file() else None
            for pair in finder(path):
                files.append({"name": pair.name, "image": str(pair.image), kind: str(pair.labels), "group": group})
        else:
            raise TypeError(f"unsupported {kind} source {type(source).__name__}: use a folder, an image file or an (image, {kind}) tuple")
    return files, memory


def resolve_data(labeled, weak=None, val=None) -> _Data:
    """Resolve the ``labeled``/``weak``/``val`` arguments of :func:`train` (see its docs).

    Raises ``ValueError`` without labelled data, ``FileNotFoundError`` for missing paths and
    ``ValueError`` for mismatched pairs.
    """
    train_files, train_memory = _collect(labeled, "labels")
    if not train_files and not train_memory:
        raise ValueError("no labelled training data: pass labeled= a folder, an image file or (image, labels) pairs")
    weak_files, weak_memory = _collect(weak, "weak")
    data = _Data(weak_files=weak_files, weak_memory=weak_memory)
    if val is False:
        data.train_files, data.train_memory, data.val_note = train_files, train_memory, "none"
    elif val is not None and val != "auto":
        data.val_files, data.val_memory = _collect(val, "labels")
        data.train_files, data.train_memory, data.val_note = train_files, train_memory, "given"
    else:
        held_out = set()
        groups = {e["group"] for e in train_files if e["group"] is not None}
        for group in groups:
            held_out |= {(str(group), name) for name in emps_split(group)[1]}
        if held_out:
            data.val_note = "EMPS publication-grouped split (metadata.csv DOIs)"
            is_val = [(str(e["group"]), e["name"]) in held_out if e["group"] is not None else False for e in train_files]
            data.val_files = [e for e, v in zip(train_files, is_val) if v]
            data.train_files = [e for e, v in zip(train_files, is_val) if not v]
            data.train_memory = train_memory
        elif len(train_files) + len(train_memory) >= 5:
            data.val_note = "every 5th labelled image (sorted by name)"
            ordered = sorted(
                [("f", e["name"], i) for i, e in enumerate(train_files)] + [("m", n, i) for i, (n, _, _) in enumerate(train_memory)],
                key=lambda t: (t[1], t[0], t[2]),
            )
            chosen = {(k, i) for k, _, i in ordered[::5]}
            data.val_files = [e for i, e in enumerate(train_files) if ("f", i) in chosen]
            data.train_files = [e for i, e in enumerate(train_files) if ("f", i) not in chosen]
            data.val_memory = [m for i, m in enumerate(train_memory) if ("m", i) in chosen]
            data.train_memory = [m for i, m in enumerate(train_memory) if ("m", i) not in chosen]
        else:
            logger.warning("fewer than 5 labelled images: validating on the training images (not held out)")
            data.val_note = "training images (fewer than 5 labelled images: nothing held out)"
            data.train_files, data.train_memory = train_files, train_memory
            data.val_files, data.val_memory = list(train_files), list(train_memory)
    for entries in (data.train_files, data.val_files, data.weak_files):
        for entry in entries:
            entry.pop("group", None)
    return data


# --------------------------------------------------------------------------- training


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
    dataset.setdefault("target_diameter_px", _target_diameter(cfg))
    dataset.setdefault("percentiles", tuple(cfg.model.get("net", {}).get("percentiles", (1.0, 99.0))))
    return dataset


def _target_diameter(cfg) -> float | None:
    if not cfg.get("rescale_to_diameter", True):
        return None
    return float(cfg.model.get("net", {}).get("diameter_px", 30.0))


def _mix_repeats(fraction: float, n_labelled: int, n_weak: int) -> tuple[int, int]:
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


def _stage_config(cfg, name: str, stage: dict, out: Path, sources: dict, counts: dict, cache_dir: Path, resume: bool):
    from mmengine.config import Config

    from .engine.registry import SCOPE

    labelled = _dataset_cfg(cfg, "labelled_dataset", sources["train"], cfg.train_pipeline, cache_dir)
    labelled.setdefault("type", "LabelledFlowDataset")
    dataset = labelled
    if stage["data"] == "mixed" and sources["weak"]:
        weak = _dataset_cfg(cfg, "weak_dataset", sources["weak"], cfg.train_pipeline, cache_dir)
        weak.setdefault("type", "WeakLabelDataset")
        fraction = cfg.get("weak_fraction")
        if fraction is not None:
            labelled_repeat, weak_repeat = _mix_repeats(float(fraction), counts["train"], counts["weak"])
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
            {"type": "TrainingLogHook", "path": str(out / _LOG_NAME), "stage": name, **dict(cfg.get("training_log", {}))},
            {"type": "PlainCheckpointHook"},
        ],
        resume=bool(resume),
        load_from=None,
    )
    if sources["val"] and cfg.get("val_dataloader") is not None:
        val = _dataset_cfg(cfg, "val_dataset", sources["val"], cfg.get("val_pipeline", [{"type": "PackSeedFlowInputs", "with_labels": True}]), cache_dir)
        val.setdefault("type", "LabelledFlowDataset")
        val.setdefault("test_mode", True)
        stage_cfg.update(
            val_dataloader={**copy.deepcopy(dict(cfg.val_dataloader)), "dataset": val},
            val_cfg=copy.deepcopy(dict(cfg.get("val_cfg", {"type": "ValLoop"}))),
            val_evaluator=copy.deepcopy(dict(cfg.get("val_evaluator", {"type": "SeedFlowMetric"}))),
        )
    stage_cfg = Config(stage_cfg)
    if stage.get("optim_wrapper"):  # e.g. a lower learning rate for the mixed stage only
        stage_cfg.merge_from_dict({"optim_wrapper": dict(stage["optim_wrapper"])})
    return stage_cfg


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


def _prepare_images(cfg, data: _Data, sources: dict, cache_dir: Path, progress, stop_event) -> None:
    """Compute (or find in the cache) every image's network input and targets, reporting progress."""
    from .engine.datasets import LabelledFlowDataset, WeakLabelDataset

    n_val = len(data.val_files) + len(data.val_memory)
    val_max = cfg.get("val_dataset", {}).get("max_images")
    total = sum(len(v) for v in (data.train_files, data.train_memory, data.weak_files, data.weak_memory)) + (min(n_val, val_max) if val_max else n_val)
    done = [0]

    def report(*_):
        done[0] += 1
        if progress is not None and progress("prepare", done[0], total, float("nan")) is False:
            raise _Stopped
        if stop_event is not None and stop_event.is_set():
            raise _Stopped

    common = {"target_diameter_px": _target_diameter(cfg), "percentiles": tuple(cfg.model.get("net", {}).get("percentiles", (1.0, 99.0))), "cache_dir": cache_dir}
    for pairs, cls, extra in (
        (sources["train"], LabelledFlowDataset, cfg.get("labelled_dataset", {})),
        (sources["val"], LabelledFlowDataset, cfg.get("val_dataset", {})),
        (sources["weak"], WeakLabelDataset, cfg.get("weak_dataset", {})),
    ):
        if not pairs:
            continue
        kwargs = {k: v for k, v in dict(extra).items() if k in ("diameter_px", "target_diameter_px", "percentiles", "max_images")}
        cls(pairs, **{**common, **kwargs}, progress=report)


def _size_samples(data: _Data, weak_repeat: int):
    """(image, median diameter px) of the training images: labelled by their instance maps,
    weak ones (repeated ``weak_repeat`` times: few but the target domain) by their weak labels."""
    from .data import read_labels
    from .engine.datasets import weak_diameter_px
    from .targets import median_diameter_px

    for entry in data.train_files:
        yield read_image(entry["image"]), median_diameter_px(read_labels(entry["labels"]))
    for _name, image, labels in data.train_memory:
        yield image, median_diameter_px(labels)
    weak = [(read_image(e["image"]), read_weak_label(e["weak"])) for e in data.weak_files]
    weak += [(image, labels) for _name, image, labels in data.weak_memory]
    for _ in range(int(weak_repeat)):
        for image, labels in weak:
            yield image, weak_diameter_px(labels)


def add_size_model(model, labeled, weak=None, *, out=None, val=None, zooms_per_image: int = 3, weak_repeat: int = 4, seed: int = 0) -> dict:
    """Fit the size model (:mod:`.size_model`) of a trained network and store it in its config.

    ``labeled`` / ``weak`` / ``val`` as for :func:`train` (the validation images are left
    out, by the same rule).  ``model``: a weight file (rewritten in place unless ``out`` names
    a new one) or a :class:`~.network.SeedFlowNet` (its config is updated).  Returns the fit
    info (samples, median |log error| on them).
    """
    from .inference import bfloat16_supported
    from .network import SeedFlowNet, load_model
    from .size_model import fit_size_model

    net = model if isinstance(model, SeedFlowNet) else load_model(model)
    data = resolve_data(labeled, weak, val)
    size_model, info = fit_size_model(
        net, _size_samples(data, weak_repeat), zooms_per_image=zooms_per_image, seed=seed, bfloat16=bfloat16_supported()
    )
    net.config["size_model"] = size_model.to_dict()
    if not isinstance(model, SeedFlowNet) or out is not None:
        net.save(out if out is not None else model)
    return info


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(json_safe(data), indent=1) + "\n")


def _last_metrics(log_path: Path, stage: str) -> dict:
    from .engine.hooks import TrainingLog

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
    from mmengine.dist import barrier, is_main_process
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from . import engine  # noqa: F401  (registers the components)
    from .engine.datasets import default_cache_dir, register_memory_source, release_memory_source
    from .engine.hooks import ProgressHook, TrainingLog
    from .network import load_model

    cfg = load_config(config, cfg_options)
    data = resolve_data(labeled, weak, val)
    out = Path(out)
    log_path = out / _LOG_NAME
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
            _prepare_images(cfg, data, sources, cache_dir, progress, stop_event)
        except _Stopped:
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
            stage_cfg = _stage_config(cfg, name, dict(stage), out, sources, counts, cache_dir, resuming)
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
                        _write_json(done_marker, {"iter": iteration, "max_iters": max_iters, "weights": str(weights), "time": time.strftime("%Y-%m-%d %H:%M:%S")})
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


# --------------------------------------------------------------------------- evaluation


def _split_files(files: list, split: str) -> tuple[list, str]:
    """The ``split`` ('val', 'train' or 'all') of file entries, with the rule of :func:`resolve_data`."""
    if split not in ("val", "train", "all"):
        raise ValueError(f"split must be 'val', 'train' or 'all', not {split!r}")
    if split == "all":
        return files, "all images"
    groups = {e["group"] for e in files if e["group"] is not None}
    held_out = {(str(g), n) for g in groups for n in emps_split(g)[1]}
    if held_out:
        is_val = [e["group"] is not None and (str(e["group"]), e["name"]) in held_out for e in files]
        note = "EMPS publication-grouped split"
    elif len(files) >= 5:
        order = sorted(range(len(files)), key=lambda i: files[i]["name"])
        chosen = set(order[::5])
        is_val = [i in chosen for i in range(len(files))]
        note = "every 5th image"
    else:
        return files, "all images (fewer than 5)"
    picked = [e for e, v in zip(files, is_val) if v == (split == "val")]
    return picked, f"{split} split ({note})"


def evaluate_model(
    model,
    data,
    *,
    split: str = "val",
    diameter="auto",
    max_images: int | None = None,
    baseline: bool = False,
    segment_options: dict | None = None,
    progress: Callable[[str, float], object] | None = None,
) -> dict:
    """Score a segmentation model on labelled images (AP50/75/90, mean matched IoU).

    Parameters
    ----------
    model : "default", weight-file path or torch module
        As for :func:`~.inference.segment`.
    data : folder, ``*_image`` file, (image, labels) path tuple, or a list of them
        Labelled images (naming as for :func:`train`).
    split : {"val", "train", "all"}
        Which images: the held-out ones of the training split rule (EMPS split of folders
        with ``train.csv``; else every 5th image when there are at least 5), the others, or all.
    diameter : "auto", "true", None or float
        Particle diameter passed to ``segment`` (px): ``"auto"`` (default, what a user gets)
        lets ``segment`` estimate it; ``"true"`` uses each image's true median diameter — an
        oracle no user has (cellpose's benchmarks report it); None runs at the native size.
    max_images : int or None
        Only this many images, evenly spread.
    baseline : bool
        Also score the Otsu + watershed baseline on the same images.
    segment_options : dict or None
        Extra keyword arguments of ``segment`` (``confidence_threshold``, ``flow_threshold``, …).
    progress : callable(message, fraction) or None

    Returns
    -------
    dict
        ``model`` (the evaluate() result: ap50, ap75, ap90, mean_iou_matched, …), ``otsu``
        (if ``baseline``), ``names``, ``split``, ``diameter``, ``diameters`` (per image: the
        true median, the diameter used, the size model's estimate, passes) and, when the
        size model estimated, ``size_estimate`` (median |log(estimate / true)|, share within
        1.5× and 2×).
    """
    from .data import read_image, read_labels
    from .evaluation import evaluate, otsu_watershed
    from .inference import segment
    from .network import resolve_model
    from .targets import median_diameter_px

    files, memory = _collect(data, "labels")
    if memory:
        raise ValueError("evaluate_model reads files: pass folders, image files or (image_path, labels_path) tuples")
    if not files:
        raise ValueError(f"no labelled images found in {data}")
    files, note = _split_files(files, split)
    if max_images is not None:
        picks = np.unique(np.linspace(0, len(files) - 1, int(max_images)).round().astype(int))
        files = [files[i] for i in picks]
    if not files:
        raise ValueError(f"the {split} split of {data} is empty")
    if not (diameter in ("true", "auto") or diameter is None or float(diameter) > 0):
        raise ValueError(f"diameter must be 'true', 'auto', None or a positive number, not {diameter!r}")
    net = resolve_model(model)
    preds, trues, otsu, sizes = [], [], [], []
    for i, entry in enumerate(files):
        image, labels = read_image(entry["image"]), read_labels(entry["labels"])
        if image.shape[:2] != labels.shape:
            raise ValueError(f"{entry['name']}: image {image.shape[:2]} and labels {labels.shape} differ in size")
        true_d = median_diameter_px(labels)
        d = true_d if diameter == "true" else diameter
        result = segment(image, net, diameter_px=d if d == "auto" else float(d) if d else None, **dict(segment_options or {}))
        preds.append(result.labels)
        trues.append(labels)
        sizes.append({"true_px": true_d, "used_px": result.diameter_px, "estimate_px": result.diameter_estimate_px, "passes": result.passes})
        if baseline:
            otsu.append(otsu_watershed(image))
        if progress is not None:
            progress(f"segmented {entry['name']}", (i + 1) / len(files))
    report = {
        "model": evaluate(preds, trues),
        "names": [e["name"] for e in files],
        "split": note,
        "diameter": {"true": "oracle: true median per image", "auto": "estimated by the model (auto, the default)"}.get(diameter, diameter) if isinstance(diameter, str) else diameter,
        "diameters": sizes,
    }
    estimated = [(s["estimate_px"], s["true_px"]) for s in sizes if s["estimate_px"] and s["true_px"] > 0]
    if estimated:
        errors = np.abs(np.log([e / t for e, t in estimated]))
        report["size_estimate"] = {
            "images": len(errors),
            "median_abs_log_error": float(np.median(errors)),
            "within_1.5x": float(np.mean(errors <= np.log(1.5))),
            "within_2x": float(np.mean(errors <= np.log(2.0))),
        }
    if baseline:
        report["otsu"] = evaluate(otsu, trues)
    return report
