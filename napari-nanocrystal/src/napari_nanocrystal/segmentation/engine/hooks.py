"""Training hooks (mmengine ``HOOKS``): the JSON training log, progress reports, a clean stop,
and checkpoints that load with ``torch.load(weights_only=True)``.

:class:`TrainingLogHook` keeps ``training_log.json`` (see :class:`TrainingLog`): one record per
iteration (losses, learning rate, seconds) and one per validation (AP50/75/90, mean IoU), per
stage, rewritten atomically.  When a stage resumes, the records after the resumed iteration
are dropped (they are trained again).

:class:`ProgressHook` calls ``progress(stage, iteration, max_iters, loss)`` after every
iteration and stops training cleanly, with a checkpoint to resume from, when the callback
returns ``False`` or a ``threading.Event`` is set.

:class:`PlainCheckpointHook` stores mmengine checkpoints with tensors and plain Python values
only (mmengine's log buffers would otherwise pickle numpy arrays and bound methods, which
``torch.load``'s default ``weights_only=True`` rightly refuses), and restores the buffers
when a checkpoint is loaded: resuming never needs unrestricted unpickling.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from nc_synthmodel.io import atomic_write_text

from nc_synthmodel.files import json_safe
from .registry import HOOKS

__all__ = ["PlainCheckpointHook", "ProgressCallback", "ProgressHook", "TrainingLog", "TrainingLogHook"]

logger = logging.getLogger(__name__)

#: ``progress(stage, iteration, max_iters, loss) -> bool | None``; ``False`` stops training.
ProgressCallback = Callable[[str, int, int, float], object]

LOG_FORMAT_VERSION = 1


class TrainingLog:
    """The JSON training log of one run, shared by its stages.

    Layout::

        {"format_version": 1,
         "stages": {"<stage>": {"status": "running" | "stopped" | "done",
                                "max_iters": int, "iters_per_epoch": int | null,
                                "train": [{"iter", "loss", "loss_labelled", "loss_weak", "lr", "time_s"}, …],
                                "val": [{"iter", "ap50", "ap75", "ap90", "mean_iou", …}, …]}},
         …}  # the top level also holds what train() adds (config, data, model path)
    """

    def __init__(self, path):
        self.path = Path(path)
        self.data = {"format_version": LOG_FORMAT_VERSION, "stages": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ValueError(f"training log {self.path} is not valid JSON ({error}); move it away to start over") from error
            if isinstance(loaded, dict) and isinstance(loaded.get("stages"), dict):
                self.data = loaded

    def stage(self, name: str) -> dict:
        stage = self.data["stages"].setdefault(name, {"status": "running", "train": [], "val": []})
        stage.setdefault("train", [])
        stage.setdefault("val", [])
        return stage

    def truncate(self, name: str, iteration: int) -> None:
        """Drop the records of stage ``name`` after ``iteration``."""
        stage = self.stage(name)
        stage["train"] = [r for r in stage["train"] if r["iter"] <= iteration]
        stage["val"] = [r for r in stage["val"] if r["iter"] <= iteration]

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(json_safe(self.data), indent=1) + "\n")


def _scalar(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


@HOOKS.register_module()
class TrainingLogHook(Hook):
    """Record losses per iteration and validation metrics in a :class:`TrainingLog`.

    Parameters
    ----------
    path : str
        The JSON file (shared by the stages of a run).
    stage : str
        Name of this stage's section.
    flush_interval : int
        Rewrite the file every this many iterations (and after every validation and at the end).
    """

    priority = "BELOW_NORMAL"

    def __init__(self, path: str, stage: str, flush_interval: int = 20):
        self.path = str(path)
        self.stage_name = str(stage)
        self.flush_interval = max(1, int(flush_interval))
        self.log: TrainingLog | None = None

    def before_train(self, runner) -> None:
        self.log = TrainingLog(self.path)
        self.log.truncate(self.stage_name, runner.iter)
        stage = self.log.stage(self.stage_name)
        stage.update(status="running", max_iters=int(runner.max_iters), iters_per_epoch=getattr(runner.train_loop, "iters_per_epoch", None))
        if runner.iter:
            stage["resumed_at"] = stage.get("resumed_at", []) + [int(runner.iter)]
        self._save()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.log is None:
            return
        record = {"iter": int(runner.iter) + 1}
        for key, value in (outputs or {}).items():
            record[key] = _scalar(value)
        hub = runner.message_hub
        if "train/lr" in hub.log_scalars:
            record["lr"] = float(hub.get_scalar("train/lr").current())
        if "train/time" in hub.log_scalars:
            record["time_s"] = float(hub.get_scalar("train/time").current())
        self.log.stage(self.stage_name)["train"].append(record)
        if record["iter"] % self.flush_interval == 0:
            self._save()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self.log is None or not metrics:
            return
        record = {"iter": int(runner.iter)}
        record.update({key: value for key, value in metrics.items() if isinstance(value, (int, float))})
        self.log.stage(self.stage_name)["val"].append(record)
        self._save()

    def after_train(self, runner) -> None:
        if self.log is not None:
            self._save()

    def _save(self) -> None:
        if is_main_process():
            self.log.save()


@HOOKS.register_module()
class ProgressHook(Hook):
    """Report progress after every iteration and stop cleanly on request.

    Parameters
    ----------
    stage : str
        Passed to the callback.
    progress : callable(stage, iteration, max_iters, loss) or None
        Called with ``iteration`` = iterations done (also once before the first one, with the
        resumed count and ``loss`` NaN).  Returning ``False`` stops training.
    stop_event : threading.Event or None
        Training stops after the current iteration once it is set.

    On a stop the hook saves a checkpoint of the finished iteration (unless the checkpoint
    hook just did) and points ``last_checkpoint`` at it, so ``resume=True`` continues there.
    """

    priority = "LOWEST"  # after the checkpoint hook

    def __init__(self, stage: str, progress: ProgressCallback | None = None, stop_event: threading.Event | None = None):
        self.stage = str(stage)
        self.progress = progress
        self.stop_event = stop_event
        self.stopped = False

    def before_train(self, runner) -> None:
        self.stopped = False
        if self.progress is not None:
            self.progress(self.stage, int(runner.iter), int(runner.max_iters), float("nan"))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        done = int(runner.iter) + 1
        loss = _scalar(outputs["loss"]) if outputs and "loss" in outputs else float("nan")
        stop = False
        if self.progress is not None and self.progress(self.stage, done, int(runner.max_iters), loss) is False:
            stop = True
        if self.stop_event is not None and self.stop_event.is_set():
            stop = True
        if get_world_size() > 1:  # every rank must stop at the same iteration
            flag = torch.tensor([1.0 if stop else 0.0])
            all_reduce(flag, op="sum")
            stop = bool(flag.item() > 0)
        if not stop:
            return
        self.stopped = True
        if done >= runner.max_iters:
            return  # the stage is complete anyway; the caller does not start the next one
        runner.train_loop.stop_training = True
        self._save_checkpoint(runner, done)
        runner.logger.info(f"training stopped on request after iteration {done} of {runner.max_iters}")

    @staticmethod
    def _save_checkpoint(runner, done: int) -> None:
        filename = f"iter_{done}.pth"
        path = Path(runner.work_dir) / filename
        pointer = Path(runner.work_dir) / "last_checkpoint"
        already = path.is_file() and pointer.is_file() and pointer.read_text().strip() == str(path)
        if not already:
            runner.save_checkpoint(runner.work_dir, filename, save_optimizer=True, save_param_scheduler=True, by_epoch=False)
            if is_main_process():
                atomic_write_text(pointer, str(path))


_BUFFER_TAG = "__history_buffer__"
_ARRAY_TAG = "__ndarray__"


def _to_plain(value, where: str = "checkpoint"):
    """Tensors and plain Python values only (dict/OrderedDict/list/tuple/str/numbers/None)."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if isinstance(value, torch.Tensor) or value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, HistoryBuffer):
        return {
            _BUFFER_TAG: True,
            "log": value._log_history.tolist(),
            "count": value._count_history.tolist(),
            "max_length": int(value.max_length),
        }
    if isinstance(value, np.ndarray):
        return {_ARRAY_TAG: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return type(value)((key, _to_plain(item, f"{where}.{key}")) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    logger.warning("checkpoint: %s of type %s stored as its repr", where, type(value).__name__)
    return repr(value)


def _from_plain(value):
    if isinstance(value, dict):
        if value.get(_BUFFER_TAG) is True:
            return HistoryBuffer(value["log"], value["count"], value["max_length"])
        if _ARRAY_TAG in value and set(value) == {_ARRAY_TAG, "dtype"}:
            return np.asarray(value[_ARRAY_TAG], dtype=value["dtype"])
        return type(value)((key, _from_plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_from_plain(item) for item in value]
    return value


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Keep checkpoints loadable by ``torch.load(weights_only=True)`` (see the module docs)."""

    priority = "LOWEST"  # convert after every other hook has added its state

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            if key not in ("state_dict", "optimizer"):
                checkpoint[key] = _to_plain(checkpoint[key], key)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if "message_hub" in checkpoint:
            checkpoint["message_hub"] = _from_plain(checkpoint["message_hub"])
