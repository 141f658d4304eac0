"""``nanocrystal train``: two-stage training of the seed/flow segmentation network.

Example::

    nanocrystal train cpu-small --labeled emps-train --labeled pbse_image.png \\
        --weak weak_1-0001_image.png --out runs/default
    nanocrystal train cpu-small ... --out runs/default --resume       # after an interruption
    nanocrystal train tiny ... --cfg-options stages.pretrain.max_iters=5 train_dataloader.batch_size=4

A config file (``CONFIG.py``) is Python, as every mmengine config: loading it executes it with
the user's permissions, so run only config files you trust (the presets and shipped configs
are part of the package).

Ctrl-C stops after the current iteration with a checkpoint (a second Ctrl-C aborts);
``--resume`` continues.

Distributed (one process per worker, gloo on CPU)::

    torchrun --nproc_per_node 2 -m napari_nanocrystal.cli train cpu-small ... --cfg-options launcher=pytorch
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading

from ._args import positive_int

logger = logging.getLogger(__name__)

PRESET_NAMES = ("paper", "cpu-small", "tiny", "default-model", "fast-model")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the seed/flow segmentation network (mmengine runner, two stages)",
        description=(
            "Train SeedFlowNet: a pretrain stage on labelled + weak data, then fine-tuning on labelled data "
            "(stages and settings from the config).  Writes OUT/model.safetensors (+ model.json), "
            "OUT/training_log.json, OUT/config.py and per-stage checkpoints."
        ),
        epilog=(
            "Labelled data: a folder with images/ + segmaps/ (EMPS layout; train.csv selects names and gives the "
            "validation split) or <name>_image.png + <name>_instances.png files, or one *_image file.  Weak data: "
            "images/ + weak/ folders, or <name>_image.png + <name>_weak.png (0 background, 1 particle, 255 uncertain) "
            "or <name>_weaklabel_pair.png (the paper's side-by-side format)."
        ),
    )
    parser.add_argument(
        "config",
        metavar="CONFIG_OR_PRESET",
        help=f"preset ({', '.join(PRESET_NAMES)}), shipped config name or config file.  A config file is Python "
        "(mmengine): it is EXECUTED with your permissions, like any script — use only config files you trust",
    )
    parser.add_argument("--labeled", action="append", required=True, metavar="PATH", help="labelled folder or *_image file (repeatable)")
    parser.add_argument("--weak", action="append", default=[], metavar="PATH", help="weak-label folder or *_image file (repeatable)")
    parser.add_argument(
        "--val", action="append", default=None, metavar="PATH", help="validation folder/file (repeatable; default: automatic split)"
    )
    parser.add_argument("--no-val", action="store_true", help="no validation")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache of prepared images and flow targets")
    parser.add_argument("--threads", type=positive_int, metavar="N", help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides, e.g. stages.finetune.max_epochs=10"
    )
    parser.set_defaults(func=run)


def parse_cfg_options(pairs) -> dict:
    """``key=value`` strings → dict, values parsed like mmengine's ``DictAction`` (no eval)."""
    from ..segmentation.training.config import mmengine_config

    mmengine_config()  # the training extra's clear ImportError when mmengine is missing
    from mmengine.config import DictAction

    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--cfg-options needs KEY=VALUE pairs, got {pair!r}")
        key, value = pair.split("=", 1)
        options[key] = DictAction._parse_iterable(value)
    return options


def _main_worker() -> bool:
    """False in the workers of a torchrun launch other than rank 0 (they stay quiet)."""
    return os.environ.get("RANK", "0") == "0"


def _print_progress(stage: str, iteration: int, max_iters: int, loss: float) -> None:
    if not _main_worker():
        return
    if stage == "prepare":
        if iteration == max_iters or iteration % 25 == 0:
            print(f"prepared {iteration}/{max_iters} images", file=sys.stderr)
        return
    if math.isnan(loss):  # reported once before the first iteration
        print(f"{stage}: {'resuming at' if iteration else 'starting'} iteration {iteration}/{max_iters}", file=sys.stderr)
    elif iteration == max_iters or iteration % 10 == 0:
        print(f"{stage}: iteration {iteration}/{max_iters}  loss {loss:.4f}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from napari_nanocrystal.segmentation.training import train

    if args.val and args.no_val:
        print("error: --val and --no-val exclude each other", file=sys.stderr)
        return 2
    try:
        options = parse_cfg_options(args.cfg_options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(int(args.threads))
    val = False if args.no_val else (args.val or None)
    stop = threading.Event()

    def _on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("stopping after the current iteration (Ctrl-C again to abort) ...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        result = train(
            args.config,
            labeled=list(args.labeled),
            weak=list(args.weak) or None,
            out=args.out,
            val=val,
            resume=args.resume,
            progress=_print_progress,
            stop_event=stop,
            cfg_options=options,
            cache_dir=args.cache_dir,
        )
    except (FileNotFoundError, FileExistsError, ValueError, TypeError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
    if not _main_worker():
        return 1 if result.stopped else 0
    if result.stopped:
        print(f"stopped in stage {result.stage} at iteration {result.iteration}; continue with --resume")
        return 1
    metrics = {k: v for k, v in result.metrics.items() if k in ("ap50", "ap75", "ap90", "mean_iou")}
    summary = "  ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float))
    print(f"model: {result.model_path}")
    print(f"log:   {result.log_path}")
    if summary:
        print(f"validation: {summary}")
    return 0
