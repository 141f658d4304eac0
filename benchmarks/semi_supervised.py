"""The paper's semi-supervised claim, controlled: labelled subset only vs labelled subset + weak labels.

(~600 lines: one resumable protocol - split, supervised run, weak labels from three sources, semi-supervised
run, evaluation - whose steps share the work folder's layout and the option set below.)

    python benchmarks/semi_supervised.py WORK_DIR [--datasets DIR] [--threads 1] [--iters 200]
        [--confident-background P] [--otsu-background F] [--split-batches] [--mixed-lr LR] [--finetune-warmup N]
        [--mmdet CONFIG [--semi-weak mmdet]] [--semi-weak paper-tem|otsu-tem [--weak-finetune]]
        [--diameters true auto none]

Protocol (every step is one of our CLI commands; each is skipped when its output exists, and an
interrupted training resumes, so the script can be re-run after a stop):

1. Split the 292 training images of the fixed EMPS split (``emps_split``: the 74 validation
   images are never used) into a *labelled* quarter (every 4th sorted name, 73 images) and an
   *unlabelled* rest (219 images, their instance maps are never read for training).  WORK_DIR
   gets flat ``<name>_image.png`` / ``<name>_instances.png`` symlinks into the dataset.
2. **Supervised**: ``nanocrystal train cpu-small`` on the labelled quarter: ``--iters`` pretrain
   + ``--iters`` fine-tune iterations (the pretrain stage has no weak data, so both stages see
   the labelled images only).
3. **Weak labels** for the unlabelled images with the *self* detector = the supervised model
   (``nanocrystal weak-labels --detector self --diameter-px auto``: no label of those images is
   used, the particle size is estimated by the model itself).
4. **Semi-supervised**: the same command and iteration budget, with ``--weak``: pretrain on the
   labelled quarter + the weakly labelled rest, fine-tune on the labelled quarter.
   With ``--mmdet CONFIG`` the paper's detector (Cascade R-CNN + HRNet + NWD, an mmdet config of
   ``napari_nanocrystal/configs/detector``) is also trained on the labelled quarter
   (:func:`napari_nanocrystal.detection.train_detector`) and makes weak labels of the same images
   (``--detector mmdet``); ``--semi-weak mmdet`` trains the semi-supervised model on those.
   ``--semi-weak paper-tem`` is the cross-domain variant: the weak-labelled data are not the EMPS rest
   but the unlabelled PbSe TEM image of ``tem-examples`` with the paper's own weak label
   (``weak_1-0001_weaklabel_pair.png``, made by the authors' Cascade R-CNN) — labelled EMPS figures,
   unlabelled TEM images of the target material, as in the paper; ``otsu-tem``: the same image
   with our model-free weak label of it (``nanocrystal weak-labels --detector otsu``: Otsu +
   watershed boxes), so that no knowledge of the authors' detector enters.  ``--weak-finetune``
   also trains a semi model with the weak labels in the second stage too.
5. ``nanocrystal evaluate`` of both models on the 74 validation images (true median diameter,
   as cellpose is evaluated; the diameter estimated by the model; native size) and on the labelled
   PbSe TEM crop of ``tem-examples`` (``pbse_1-0001_16``, 323 particles, never trained on: the target
   domain), and the pixel precision / recall of the weak labels against the true instance maps
   (foreground and background, outside the uncertain band; the Otsu backend beside the self backend).

Writes ``benchmarks/results/semi_supervised.md`` (atomically) and the raw JSON next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LABELLED_EVERY = 4  # default: a labelled quarter

#: ``--semi-weak`` choice -> (run-name part, what the semi model's weak data are, for the report)
SEMI_WEAK = {
    "self": ("", "weak labels (self detector) on the rest"),
    "mmdet": ("_mmdet", "weak labels (mmdet detector) on the rest"),
    "paper-tem": ("_papertem", "the paper's weak label of the unlabelled PbSe TEM image `weak_1-0001`"),
    "otsu-tem": ("_otsutem", "our Otsu-backend weak label of the unlabelled PbSe TEM image `weak_1-0001`"),
}


def _run(command: list[str], log: Path) -> float:
    """Run a CLI command, appending its output to ``log``; return the wall time (s)."""
    print("$", " ".join(command), flush=True)
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"\n$ {' '.join(command)}\n")
        stream.flush()
        subprocess.run(command, check=True, stdout=stream, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return
        link.unlink()
    link.symlink_to(target.resolve())


def prepare(emps: Path, work: Path, every: int = LABELLED_EVERY) -> tuple[list[str], list[str]]:
    """Symlink the labelled part (every ``every``-th name) and the unlabelled rest of the EMPS training split."""
    from napari_nanocrystal.segmentation.data import emps_split

    train_names, _ = emps_split(emps)
    labelled = train_names[::every]
    unlabelled = [n for n in train_names if n not in set(labelled)]
    for folder, names, with_labels in (("labelled", labelled, True), ("unlabelled", unlabelled, False)):
        (work / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            _link(emps / "images" / f"{name}.png", work / folder / f"{name}_image.png")
            if with_labels:
                _link(emps / "segmaps" / f"{name}.png", work / folder / f"{name}_instances.png")
    return labelled, unlabelled


def _train(
    work: Path,
    name: str,
    iters: int,
    threads: int,
    weak: Path | None,
    log: Path,
    finetune_warmup: int,
    suffix: str,
    weak_suffix: str = "",
    options: tuple[str, ...] = (),
    first_stage_of: Path | None = None,
) -> float:
    """Train run ``runs/<name><suffix><weak_suffix>``; variants reuse the finished first stage of their base run."""
    out = work / "runs" / f"{name}{suffix}{weak_suffix}"
    if (out / "model.safetensors").is_file():
        return float("nan")
    base = first_stage_of or work / "runs" / f"{name}{weak_suffix}"
    if base != out and not (out / "pretrain").is_dir() and (base / "pretrain" / "done.json").is_file():
        out.mkdir(parents=True, exist_ok=True)  # the first stage's settings are the same: reuse it
        shutil.copytree(base / "pretrain", out / "pretrain")
    command = [
        "nanocrystal",
        "train",
        "cpu-small",
        "--labeled",
        str(work / "labelled"),
        "--no-val",
        "--out",
        str(out),
        "--threads",
        str(threads),
        "--cfg-options",
        "stages.pretrain.max_epochs=None",
        f"stages.pretrain.max_iters={iters}",
        f"stages.pretrain.warmup={max(1, iters // 20)}",
        "stages.finetune.max_epochs=None",
        f"stages.finetune.max_iters={iters}",
        f"stages.finetune.warmup={finetune_warmup}",
        *options,
    ]
    if weak is not None:
        command[5:5] = ["--weak", str(weak)]
    if (out / "pretrain").is_dir():
        command.append("--resume")
    return _run(command, log)


def weak_label_quality(weak_dir: Path, emps: Path, names: list[str]) -> dict:
    """Pixel precision / recall of weak foreground and background vs the true instance maps."""
    from napari_nanocrystal.segmentation.data import load_emps_pair, read_weak_label

    tp_fg = fp_fg = fn_fg = tp_bg = fp_bg = fn_bg = uncertain = total = 0
    for name in names:
        _, labels = load_emps_pair(emps, name)
        weak = read_weak_label(weak_dir / f"{name}_weak.png")
        true_fg = labels > 0
        fg, bg = weak == 1, weak == 0
        tp_fg += int((fg & true_fg).sum())
        fp_fg += int((fg & ~true_fg).sum())
        fn_fg += int((bg & true_fg).sum())  # true particle pixels called background (outside the band)
        tp_bg += int((bg & ~true_fg).sum())
        fp_bg += int((bg & true_fg).sum())
        fn_bg += int((fg & ~true_fg).sum())
        uncertain += int((weak == 255).sum())
        total += weak.size
    return {
        "foreground_precision": tp_fg / max(1, tp_fg + fp_fg),
        "foreground_recall": tp_fg / max(1, tp_fg + fn_fg),
        "background_precision": tp_bg / max(1, tp_bg + fp_bg),
        "background_recall": tp_bg / max(1, tp_bg + fn_bg),
        "uncertain_fraction": uncertain / max(1, total),
        "images": len(names),
    }


def nwd_constant(names: list[str], emps: Path, short_side: int = 512) -> float:
    """Mean particle diameter (px, over all particles) of the labelled images at the detector's test scale: the NWD constant C."""
    from napari_nanocrystal.segmentation.data import load_emps_pair

    diameters = []
    for name in names:
        _, labels = load_emps_pair(emps, name)
        areas = np.bincount(labels.ravel())[1:]
        areas = areas[areas > 0]
        diameters.append(2 * np.sqrt(areas / np.pi) * short_side / min(labels.shape))
    return float(np.mean(np.concatenate(diameters)))


def _detector(work: Path, config: str, emps: Path, names: list[str], log: Path) -> tuple[Path, float]:
    """Train the mmdet weak-label detector on the labelled part (resumes an interrupted run)."""
    from napari_nanocrystal.detection import train_detector

    out = work / f"detector_{config}"
    weights = out / "detector.pth"
    if weights.is_file():
        return weights, float("nan")
    constant = nwd_constant(names, emps)
    resume = (out / "work" / "last_checkpoint").is_file()
    print(f"training detector {config} (NWD constant {constant:.1f} px, resume={resume})", flush=True)
    t0 = time.perf_counter()
    with log.open("a", encoding="utf-8") as stream:
        stream.write(f"\n# train_detector({config!r}, {work / 'labelled'}, {out}, nwd_constant={constant:.2f}, resume={resume})\n")
    train_detector(config, work / "labelled", out, nwd_constant=constant, resume=resume, progress=lambda message, fraction: None)
    return weights, time.perf_counter() - t0


def _weak(
    work: Path,
    detector: str,
    model: Path | None,
    log: Path,
    confident_background: float | None = None,
    otsu_background: float | None = None,
) -> tuple[Path, float]:
    out = work / (
        f"weak_{detector}"
        + (f"_bg{confident_background:g}" if confident_background is not None else "")
        + (f"_ob{otsu_background:g}" if otsu_background is not None else "")
    )
    if out.is_dir() and len(list(out.glob("*_weak.png"))) == len(list((work / "unlabelled").glob("*_image.png"))):
        return out, float("nan")
    command = ["nanocrystal", "weak-labels", str(work / "unlabelled"), "--detector", detector, "--out", str(out), "--overwrite"]
    if detector == "self":
        command += ["--model", str(model), "--diameter-px", "auto"]
        if confident_background is not None:
            command += ["--confident-background", f"{confident_background:g}"]
    if detector == "mmdet":
        command += ["--checkpoint", str(model)]
    if otsu_background is not None:
        command += ["--otsu-background", f"{otsu_background:g}"]
    seconds = _run(command, log)
    for image in (work / "unlabelled").glob("*_image.png"):  # pair each weak label with its image for training
        _link(image, out / image.name)
    return out, seconds


def _weak_tem(work: Path, examples: Path, source: str, log: Path) -> tuple[Path, float]:
    """Weak label of the unlabelled PbSe TEM image ``weak_1-0001`` beside (a link to) the image.

    ``source`` "paper": the authors' own weak label of it; "otsu": ours from the model-free Otsu backend.
    """
    out = work / f"weak_{source}_tem"
    out.mkdir(parents=True, exist_ok=True)
    image = examples / "weak_1-0001_image.png"
    seconds = float("nan")
    if source == "paper":
        _link(examples / "weak_1-0001_weaklabel_pair.png", out / "weak_1-0001_weaklabel_pair.png")
    elif not (out / "weak_1-0001_weak.png").is_file():
        seconds = _run(["nanocrystal", "weak-labels", str(image), "--detector", source, "--out", str(out), "--overwrite"], log)
    _link(image, out / image.name)
    return out, seconds


def _evaluate(model: Path, data: Path, diameter: str, out: Path, log: Path) -> dict:
    """``nanocrystal evaluate`` (cached in ``out``): the EMPS validation split, or one labelled ``*_image`` file."""
    if not out.is_file():
        split = ["--split", "val"] if data.is_dir() else []
        _run(["nanocrystal", "evaluate", str(model), str(data), *split, "--diameter", diameter, "--json", str(out)], log)
    return json.loads(out.read_text(encoding="utf-8"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="working folder (symlinks, weak labels, runs, logs)")
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--labelled-every",
        type=int,
        default=LABELLED_EVERY,
        metavar="N",
        help="label every N-th training image (default %(default)s: a quarter); use a separate WORK folder per N",
    )
    parser.add_argument("--iters", type=int, default=200, help="iterations per stage (pretrain and fine-tune), both models")
    parser.add_argument(
        "--finetune-warmup",
        type=int,
        default=None,
        help="warm-up iterations of the fine-tune stage (default iters/20); another value trains variants "
        "<model>_fw<N> that reuse the first stage",
    )
    parser.add_argument(
        "--diameters",
        nargs="+",
        default=["true", "auto", "none"],
        choices=["true", "auto", "none"],
        help="diameters to evaluate at (true median, estimated, native); 'true' is always included",
    )
    parser.add_argument(
        "--confident-background",
        type=float,
        default=None,
        metavar="P",
        help="self weak labels: background only where the supervised model's seed probability is < P, "
        "the rest outside its detections uncertain (weak_self_bg<P>/, runs semi_bg<P>)",
    )
    parser.add_argument(
        "--otsu-background",
        type=float,
        default=None,
        metavar="F",
        help="self weak labels: background only in the image's Otsu background phase, none in images whose "
        "detections cover < F of the particle phase (weak_self_ob<F>/, runs semi_ob<F>)",
    )
    parser.add_argument(
        "--mmdet",
        default=None,
        metavar="CONFIG",
        help="also train the paper's detector (e.g. cascade_rcnn_hrnet_cpu_nwd) on the labelled part and "
        "report the quality of its weak labels (detector_<CONFIG>/, weak_mmdet/)",
    )
    parser.add_argument(
        "--semi-weak",
        choices=list(SEMI_WEAK),
        default="self",
        help="weak labels of the semi-supervised model (mmdet: needs --mmdet; runs semi_mmdet...; "
        "paper-tem / otsu-tem: the paper's / our Otsu backend's weak label of the unlabelled PbSe TEM "
        "image weak_1-0001 instead of the EMPS rest, runs semi_papertem... / semi_otsutem...)",
    )
    parser.add_argument(
        "--split-batches",
        action="store_true",
        help="semi model: labelled and weak crops of a batch through the network separately (own batch-norm "
        "statistics; model.split_batches=True), run semi_split",
    )
    parser.add_argument(
        "--mixed-lr",
        type=float,
        default=None,
        metavar="LR",
        help="learning rate of the first stage only (the config's 0.2 otherwise): the semi model "
        "(run semi_lr<LR>) and, as its fair baseline, a supervised model (run supervised_lr<LR>)",
    )
    parser.add_argument(
        "--weak-finetune",
        action="store_true",
        help="also train a semi model with the weak labels in the fine-tune stage too "
        "(stages.finetune.data=mixed; run <semi run>_wf, reusing the semi model's first stage)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "semi_supervised.md")
    args = parser.parse_args(argv)
    from nc_synthmodel.io import atomic_write_text

    args.diameters = ["true"] + [d for d in args.diameters if d != "true"]
    default_warmup = max(1, args.iters // 20)
    finetune_warmup = default_warmup if args.finetune_warmup is None else args.finetune_warmup
    suffix = "" if finetune_warmup == default_warmup else f"_fw{finetune_warmup}"
    if args.semi_weak == "mmdet" and args.mmdet is None:
        parser.error("--semi-weak mmdet needs --mmdet CONFIG")
    weak_suffix = (
        SEMI_WEAK[args.semi_weak][0]
        + ("" if args.confident_background is None else f"_bg{args.confident_background:g}")
        + ("" if args.otsu_background is None else f"_ob{args.otsu_background:g}")
        + ("_split" if args.split_batches else "")
        + ("" if args.mixed_lr is None else f"_lr{args.mixed_lr:g}")
    )
    split = "" if args.labelled_every == LABELLED_EVERY else f"_every{args.labelled_every}"
    if (suffix or weak_suffix or split) and args.out == parser.get_default("out"):
        args.out = args.out.with_name(f"semi_supervised{split}{suffix}{weak_suffix}.md")

    emps = args.datasets / "emps-train"
    examples = args.datasets / "tem-examples"
    pbse = examples / "pbse_1-0001_16_image.png"
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "semi_supervised.log"
    t_start = time.perf_counter()
    times_path = work / "times.json"
    times = json.loads(times_path.read_text()) if times_path.is_file() else {}

    def _record(key: str, seconds: float) -> None:
        if seconds == seconds:  # not NaN: the step ran now
            times[key] = seconds
            atomic_write_text(times_path, json.dumps(times, indent=1))

    marker = work / "labelled_every.txt"  # one split per folder: runs and weak labels are cached in it
    if marker.is_file() and int(marker.read_text()) != args.labelled_every:
        parser.error(f"{work} holds the split --labelled-every {marker.read_text().strip()}; use another folder")
    atomic_write_text(marker, str(args.labelled_every))
    labelled, unlabelled = prepare(emps, work, args.labelled_every)
    print(f"labelled {len(labelled)} images, unlabelled {len(unlabelled)}", flush=True)
    _record(f"train_supervised{suffix}_s", _train(work, "supervised", args.iters, args.threads, None, log, finetune_warmup, suffix))
    supervised = work / "runs" / f"supervised{suffix}" / "model.safetensors"
    weak_model = work / "runs" / "supervised" / "model.safetensors"  # weak labels: always the base supervised model
    if not weak_model.is_file():
        _record("train_supervised_s", _train(work, "supervised", args.iters, args.threads, None, log, default_warmup, ""))
    weak_self, seconds = _weak(work, "self", weak_model, log, args.confident_background, args.otsu_background)
    _record(f"weak_{weak_self.name.removeprefix('weak_')}_s", seconds)
    weak_otsu, seconds = _weak(work, "otsu", None, log)
    _record("weak_otsu_s", seconds)
    weak_mmdet = None
    if args.mmdet is not None:
        detector, seconds = _detector(work, args.mmdet, emps, labelled, log)
        _record(f"train_detector_{args.mmdet}_s", seconds)
        weak_mmdet, seconds = _weak(work, "mmdet", detector, log, None, args.otsu_background)
        _record(f"weak_{weak_mmdet.name.removeprefix('weak_')}_s", seconds)
    if args.semi_weak.endswith("-tem"):
        source = args.semi_weak.removesuffix("-tem")
        weak_semi, seconds = _weak_tem(work, examples, source, log)
        _record(f"weak_{source}_tem_s", seconds)
    else:
        weak_semi = {"self": weak_self, "mmdet": weak_mmdet}[args.semi_weak]
    lr_options = () if args.mixed_lr is None else (f"stages.pretrain.optim_wrapper.optimizer.lr={args.mixed_lr}",)
    semi_options = (("model.split_batches=True",) if args.split_batches else ()) + lr_options
    _record(
        f"train_semi{suffix}{weak_suffix}_s",
        _train(work, "semi", args.iters, args.threads, weak_semi, log, finetune_warmup, suffix, weak_suffix, semi_options),
    )
    semi = work / "runs" / f"semi{suffix}{weak_suffix}" / "model.safetensors"
    models = [("supervised", supervised, suffix), ("semi", semi, suffix + weak_suffix)]
    if args.weak_finetune:  # the same first stage, then labelled + weak in the second stage too
        _record(
            f"train_semi{suffix}{weak_suffix}_wf_s",
            _train(
                work,
                "semi",
                args.iters,
                args.threads,
                weak_semi,
                log,
                finetune_warmup,
                suffix,
                weak_suffix + "_wf",
                semi_options + ("stages.finetune.data=mixed",),
                first_stage_of=semi.parent,
            ),
        )
        models.append(("semi_wf", semi.parent.with_name(semi.parent.name + "_wf") / "model.safetensors", suffix + weak_suffix + "_wf"))
    if args.mixed_lr is not None:  # the same first-stage learning rate without weak labels: a fair baseline
        lr_suffix = f"_lr{args.mixed_lr:g}"
        _record(
            f"train_supervised{suffix}{lr_suffix}_s",
            _train(work, "supervised", args.iters, args.threads, None, log, finetune_warmup, suffix, lr_suffix, lr_options),
        )
        models.insert(1, ("supervised_lr", work / "runs" / f"supervised{suffix}{lr_suffix}" / "model.safetensors", suffix + lr_suffix))

    results = {"labelled": len(labelled), "unlabelled": len(unlabelled), "iters_per_stage": args.iters, "times_s": times}
    for name, model, run_suffix in models:
        run = name.split("_")[0]
        for diameter in args.diameters:
            results[f"{name}_{diameter}"] = _evaluate(model, emps, diameter, work / f"eval_{run}{run_suffix}_{diameter}.json", log)
        results[f"{name}_pbse"] = _evaluate(model, pbse, "true", work / f"eval_{run}{run_suffix}_pbse_true.json", log)
        if name == "semi_wf":
            continue  # its first stage is the semi model's
        # the first stage alone: labelled only vs labelled + weak, same iterations
        first = model.parent / "pretrain" / "model.safetensors"
        results[f"{name}_pretrain_true"] = _evaluate(first, emps, "true", work / f"eval_{run}{run_suffix}_pretrain_true.json", log)
        results[f"{name}_pretrain_pbse"] = _evaluate(first, pbse, "true", work / f"eval_{run}{run_suffix}_pretrain_pbse_true.json", log)
    results["weak_self"] = weak_label_quality(weak_self, emps, unlabelled)
    results["weak_otsu"] = weak_label_quality(weak_otsu, emps, unlabelled)
    if weak_mmdet is not None:
        results["weak_mmdet"] = weak_label_quality(weak_mmdet, emps, unlabelled)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(results, indent=1, default=float))

    def _row(label: str, key: str) -> str:
        true = results[f"{key}_true"]["model"]
        other = {d: (f"{results[f'{key}_{d}']['model']['ap50']:.3f}" if f"{key}_{d}" in results else "–") for d in ("auto", "none")}
        iou = "–" if true["mean_iou_matched"] is None else f"{true['mean_iou_matched']:.3f}"
        pbse_ap = results[f"{key}_pbse"]["model"]
        return (
            f"| {label} | {true['ap50']:.3f} | {true['ap75']:.3f} | {true['ap90']:.3f} | {iou} "
            f"| {other['auto']} | {other['none']} | {pbse_ap['ap50']:.3f} | {pbse_ap['ap75']:.3f} |"
        )

    def _first(label: str, key: str) -> str:
        m = results[f"{key}_pretrain_true"]["model"]
        iou = "–" if m["mean_iou_matched"] is None else f"{m['mean_iou_matched']:.3f}"
        pbse_ap = results[f"{key}_pretrain_pbse"]["model"]
        return (
            f"| {label} ({args.iters} iterations) | {m['ap50']:.3f} | {m['ap75']:.3f} | {m['ap90']:.3f} | {iou} | – | – "
            f"| {pbse_ap['ap50']:.3f} | {pbse_ap['ap75']:.3f} |"
        )

    def _weak_row(label: str, key: str) -> str:
        q = results[key]
        return (
            f"| {label} | {q['foreground_precision']:.3f} | {q['foreground_recall']:.3f} | {q['background_precision']:.3f} "
            f"| {q['background_recall']:.3f} | {q['uncertain_fraction']:.3f} |"
        )

    def _gain(key: str) -> float:  # the better semi-supervised model minus the better supervised model
        semis = [name for name, _, _ in models if name.startswith("semi")]
        return max(results[f"{name}_{key}"]["model"]["ap50"] for name in semis) - max(
            results[f"{name}_{key}"]["model"]["ap50"] for name, _, _ in models if name not in semis
        )

    semi_label = f"semi-supervised: + {SEMI_WEAK[args.semi_weak][1]}"
    minutes = {k: f"{v / 60:.0f} min" for k, v in times.items()}
    report = "\n".join(
        [
            "# Semi-supervised vs supervised segmentation (EMPS)",
            "",
            f"Command: `python benchmarks/semi_supervised.py {args.work} --threads {args.threads} --iters {args.iters}"
            + (f" --labelled-every {args.labelled_every}" if args.labelled_every != LABELLED_EVERY else "")
            + (f" --finetune-warmup {finetune_warmup}" if suffix else "")
            + (f" --confident-background {args.confident_background:g}" if args.confident_background is not None else "")
            + (f" --otsu-background {args.otsu_background:g}" if args.otsu_background is not None else "")
            + (" --split-batches" if args.split_batches else "")
            + (f" --semi-weak {args.semi_weak}" if args.semi_weak != "self" else "")
            + (" --weak-finetune" if args.weak_finetune else "")
            + (f" --mixed-lr {args.mixed_lr:g}" if args.mixed_lr is not None else "")
            + (f" --diameters {' '.join(args.diameters)}" if args.diameters != ["true", "auto", "none"] else "")
            + "`  ",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), torch threads {args.threads}; "
            f"{dt.date.today().isoformat()}; step times {minutes}.",
            "",
            f"Labelled: {len(labelled)} EMPS training images (every {args.labelled_every}th sorted name of the fixed training split); "
            f"unlabelled: the other {len(unlabelled)} (weak labels only). Both models: `cpu-small`, {args.iters} pretrain + "
            f"{args.iters} fine-tune iterations at batch 8, linear warm-up over {default_warmup} / {finetune_warmup} iterations. "
            "Validation: the 74 held-out images of the fixed split; the target domain: the labelled PbSe TEM crop "
            "`tem-examples/pbse_1-0001_16` (323 particles, never trained on; true median diameter)."
            + (
                ""
                if not args.semi_weak.endswith("-tem")
                else " The semi-supervised model's weak data: the unlabelled PbSe TEM image `weak_1-0001` "
                "(667×1002) with "
                + (
                    "the paper's weak label of it (`weak_1-0001_weaklabel_pair.png`, made by the authors' Cascade R-CNN)"
                    if args.semi_weak == "paper-tem"
                    else "our weak label of it from the model-free Otsu backend (`nanocrystal weak-labels --detector otsu`)"
                )
                + ", instead of the EMPS rest."
            ),
            "",
            "| model | AP50 (true median diameter) | AP75 | AP90 | mean IoU matched | AP50, diameter estimated (`auto`) | AP50 native size "
            "| PbSe crop AP50 | PbSe crop AP75 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            _row("supervised: labelled part only", "supervised"),
            *(
                [_row(f"supervised, first stage at lr {args.mixed_lr:g} (as the semi model's)", "supervised_lr")]
                if args.mixed_lr is not None
                else []
            ),
            _row(semi_label + (f", first stage at lr {args.mixed_lr:g}" if args.mixed_lr is not None else ""), "semi"),
            *(
                [
                    _row(
                        semi_label + ", in both stages" + (f", first stage at lr {args.mixed_lr:g}" if args.mixed_lr is not None else ""),
                        "semi_wf",
                    )
                ]
                if args.weak_finetune
                else []
            ),
            _first("first stage only: labelled part", "supervised"),
            *([_first(f"first stage only: labelled part, lr {args.mixed_lr:g}", "supervised_lr")] if args.mixed_lr is not None else []),
            _first("first stage only: labelled part + weak labels", "semi"),
            "| *paper: supervised → semi-supervised (its own test set)* | *0.685 → 0.801* | | | | | | | |",
            "",
            f"Semi-supervised gain (the better semi-supervised model against the better supervised one): "
            f"**{_gain('true'):+.3f} AP50** on the EMPS validation "
            f"split, **{_gain('pbse'):+.3f} AP50** on the PbSe TEM crop.",
            "",
            f"Weak labels of the {len(unlabelled)} unlabelled images against their true instance maps (pixels outside the uncertain band):",
            "",
            "| detector backend | foreground precision | foreground recall | background precision | background recall | uncertain fraction |",
            "|---|---:|---:|---:|---:|---:|",
            _weak_row(
                "self (the supervised model, `--diameter-px auto`"
                + (f", `--confident-background {args.confident_background:g}`" if args.confident_background is not None else "")
                + (f", `--otsu-background {args.otsu_background:g}`" if args.otsu_background is not None else "")
                + ")",
                "weak_self",
            ),
            _weak_row("otsu (Otsu + watershed boxes)", "weak_otsu"),
            *(
                [
                    _weak_row(
                        f"mmdet (`{args.mmdet}` trained on the labelled part"
                        + (f", `--otsu-background {args.otsu_background:g}`" if args.otsu_background is not None else "")
                        + ")",
                        "weak_mmdet",
                    )
                ]
                if weak_mmdet is not None
                else []
            ),
            "",
            f"Wall time of this invocation: {(time.perf_counter() - t_start) / 60:.1f} min.",
            "",
        ]
    )
    atomic_write_text(args.out, report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
