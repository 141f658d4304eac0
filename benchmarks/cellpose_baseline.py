"""Baseline: cellpose's own CPnet trained with cellpose's own ``train_seg`` on our EMPS training split.

    python benchmarks/cellpose_baseline.py WORK_DIR [--epochs 23] [--nbase 32 64 128 256] [--threads 1]

Same training images as the shipped default model's EMPS part (the 292 training images of the fixed
split, rescaled to a 30 px median diameter, the same cached flow targets) and the same 74 validation
images, scored with the same protocol as ``nanocrystal evaluate`` (true median diameter, cellpose AP).
``train_seg`` is cellpose 3.1's: its augmentation, loss and learning-rate schedule (SGD, lr 0.2,
a linear warm-up over epochs 0–9, epoch 0 at lr 0) and its ``min_train_masks=5`` filter (images
with fewer particles are dropped: 189 of the 292 remain, 24 iterations per epoch at batch 8).  The
868 iterations of our default model would be ~36 epochs.  The weights stay in WORK_DIR (re-running
skips training).

Writes ``benchmarks/results/cellpose_baseline.md`` and ``.json`` (atomically).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--epochs", type=int, default=23)
    parser.add_argument("--nbase", type=int, nargs="+", default=[32, 64, 128, 256], help="channels per level (last must be 256)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cellpose_baseline.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # train_seg's progress

    import torch
    from napari_nanocrystal.segmentation.baselines import evaluate_cellpose_baseline, train_cellpose_baseline
    from nc_synthmodel.io import atomic_write_text

    torch.set_num_threads(args.threads)
    emps = args.datasets / "emps-train"
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights = work / "models" / "cellpose_baseline"
    trained = {}
    if not (weights.is_file() and Path(f"{weights}.json").is_file()):
        started = time.perf_counter()
        baseline = train_cellpose_baseline(emps, work, n_epochs=args.epochs, nbase=args.nbase)  # EMPS split: val held out
        trained = {
            "seconds": time.perf_counter() - started,
            "n_train": baseline.n_train,
            "final_train_loss": float(baseline.train_losses[-1]),
        }
        atomic_write_text(work / "training.json", json.dumps(trained, indent=1))
        weights = baseline.model_path
    elif (work / "training.json").is_file():
        trained = json.loads((work / "training.json").read_text())
    started = time.perf_counter()
    report = evaluate_cellpose_baseline(weights, emps, split="val", diameter="true")
    eval_seconds = time.perf_counter() - started
    scores = report["model"]
    result = {
        "epochs": args.epochs,
        "nbase": args.nbase,
        "training": trained,
        "eval_seconds": eval_seconds,
        "split": report["split"],
        "scores": {k: scores[k] for k in ("ap50", "ap75", "ap90", "mean_iou_matched", "n_true", "n_pred")},
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1, default=float))
    minutes = trained.get("seconds", float("nan")) / 60
    text = "\n".join(
        [
            "# Baseline: cellpose CPnet trained with cellpose's `train_seg`",
            "",
            f"Command: `python benchmarks/cellpose_baseline.py {args.work} --epochs {args.epochs} --nbase {' '.join(map(str, args.nbase))} "
            f"--threads {args.threads}`  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), torch threads {args.threads}; {dt.date.today().isoformat()}.",
            "",
            f"Training: {trained.get('n_train', '?')} EMPS training images (fixed split) given to cellpose's `train_seg` (its "
            f"`min_train_masks=5` filter keeps those with ≥ 5 particles: 189), {args.epochs} epochs (batch 8, 224² crops, "
            f"lr warm-up over epochs 0–9), width {args.nbase}; {minutes:.0f} min. Validation: {report['split']}, "
            "each image's true median diameter.",
            "",
            "| model | AP50 | AP75 | AP90 | mean IoU matched | particles predicted / true |",
            "|---|---:|---:|---:|---:|---:|",
            f"| cellpose CPnet (`train_seg`) | {scores['ap50']:.3f} | {scores['ap75']:.3f} | {scores['ap90']:.3f} | "
            f"{scores['mean_iou_matched']:.3f} | {scores['n_pred']} / {scores['n_true']} |",
            "",
            f"Evaluation time: {eval_seconds:.0f} s.",
            "",
        ]
    )
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
