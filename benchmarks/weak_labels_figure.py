"""Weak labels: ours vs the paper's on the authors' example, the procedure on synthetic truth, detector timings.

1. **The real pair** (``<datasets>/tem-examples``): ``weak_1-0001_image.png`` and the paper's weak
   label for it, ``weak_1-0001_weaklabel_pair.png`` (made by the authors' trained Cascade R-CNN).
   We have no trained detector or segmentation model to ship, so the boxes come from the
   **"otsu" backend** (Otsu + watershed instances of the Gaussian-smoothed image,
   :func:`napari_nanocrystal.segmentation.evaluation.otsu_watershed`), then the same
   Otsu-per-box / erosion-dilation procedure.  ``--model`` adds the "self" backend (a trained
   segmentation model), ``--checkpoint`` the "mmdet" backend (a trained detector).
   Writes a side-by-side PNG (image | paper | ours …; white = particle, red = uncertain,
   black = background) and agreement numbers: IoU of the foreground (1), IoU of the uncertain
   band (255), pixel agreement, agreement where both are certain, and the 3 × 3 confusion.
2. **Synthetic truth**: the procedure with the *true* boxes and with the "otsu" boxes on
   ``make_tem_image`` fields: precision/recall of the foreground, how much of the true particle
   edges the band covers, and how many particle pixels are called background.
3. ``--timing``: Cascade R-CNN HRNet inference on a 512² image (w18, w32) and training
   seconds per iteration for the tiny test config and the paper configs (a few iterations on
   the labelled PbSe example).  Takes several minutes on 2 shared cores.

::

    python benchmarks/weak_labels_figure.py             # 1 and 2 (~1 min)
    python benchmarks/weak_labels_figure.py --timing    # 1, 2 and 3

Data: ``--datasets``, else ``$NANOCRYSTAL_DATASETS``, else ``../shared/datasets`` beside the repository.
Outputs (atomic): ``benchmarks/results/weak_labels.md`` and ``weak_labels.png`` (or ``--out DIR``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch: the machine's cores are shared

import argparse
import datetime as dt
import io
import logging
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from napari_nanocrystal.segmentation.data import read_image, weak_label_from_pair
from napari_nanocrystal.synthetic import make_tem_image
from napari_nanocrystal.weak_labels import UNCERTAIN, boxes_from_labels, load_box_detector, weak_label_from_boxes
from nc_synthmodel.io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CLASSES = ((0, "background"), (1, "particle"), (UNCERTAIN, "uncertain"))
#: Synthetic fields: seeds disjoint from those of tests/napari_nanocrystal/test_weak_labels.py (0–6).
SYNTHETIC_SEEDS = range(1000, 1010)


def _datasets(option: str | None) -> Path:
    path = Path(option or os.environ.get("NANOCRYSTAL_DATASETS") or REPO.parent / "shared" / "datasets")
    if not (path / "tem-examples").is_dir():
        sys.exit(f"datasets not found at {path} (use --datasets or NANOCRYSTAL_DATASETS)")
    return path


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else float("nan")


def agreement(ours: np.ndarray, paper: np.ndarray) -> dict:
    """Agreement numbers of two 0/1/255 maps."""
    certain = (ours != UNCERTAIN) & (paper != UNCERTAIN)
    confusion = np.array([[((paper == p) & (ours == o)).mean() for o, _ in CLASSES] for p, _ in CLASSES])
    return {
        "fg_iou": _iou(ours == 1, paper == 1),
        "band_iou": _iou(ours == UNCERTAIN, paper == UNCERTAIN),
        "pixel_agreement": float((ours == paper).mean()),
        "certain_agreement": float((ours[certain] == paper[certain]).mean()) if certain.any() else float("nan"),
        "fractions": [float((ours == v).mean()) for v, _ in CLASSES],
        "confusion": confusion,
    }


def _colour(weak: np.ndarray) -> np.ndarray:
    rgb = np.zeros(weak.shape + (3,), np.uint8)
    rgb[weak == 1] = 255
    rgb[weak == UNCERTAIN] = (230, 30, 30)
    return rgb


def _figure(image: np.ndarray, panels: list[tuple[str, np.ndarray]], boxes: np.ndarray | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    gray = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    n = 1 + len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 5.2 * image.shape[0] / image.shape[1] + 0.6), dpi=110)
    axes[0].imshow(gray, cmap="gray")
    axes[0].set_title("weak_1-0001_image.png" + (f" + {len(boxes)} 'otsu' boxes" if boxes is not None else ""))
    if boxes is not None:
        for x0, y0, x1, y1 in boxes:
            axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.4, ec=(0.1, 0.9, 0.1)))
    for ax, (title, weak) in zip(axes[1:], panels):
        ax.imshow(_colour(weak), interpolation="nearest")
        ax.set_title(title)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("weak labels: white = particle (1), red = uncertain (255), black = background (0)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def real_pair(datasets: Path, args) -> tuple[list[str], bytes]:
    examples = datasets / "tem-examples"
    image = read_image(examples / "weak_1-0001_image.png")
    paper = weak_label_from_pair(read_image(examples / "weak_1-0001_weaklabel_pair.png"))
    rows: dict[str, tuple[np.ndarray, int, float]] = {}

    otsu = load_box_detector("otsu", diameter_px=args.diameter_px)  # imports outside the timing
    start = time.perf_counter()
    boxes, _ = otsu(image)
    detect_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = weak_label_from_boxes(image, boxes)
    label_s = time.perf_counter() - start
    rows["otsu (defaults)"] = (ours, len(boxes), detect_s + label_s)
    start = time.perf_counter()
    authors = weak_label_from_boxes(image, boxes, other_components="foreground", fill_holes=False)
    rows["otsu, authors' options¹"] = (authors, len(boxes), detect_s + time.perf_counter() - start)
    if args.model:
        detect = load_box_detector("self", model=args.model, diameter_px=args.diameter_px)
        start = time.perf_counter()
        b, _ = detect(image)
        rows["self"] = (weak_label_from_boxes(image, b), len(b), time.perf_counter() - start)
    if args.checkpoint:
        detect = load_box_detector("mmdet", checkpoint=args.checkpoint)
        start = time.perf_counter()
        b, _ = detect(image)
        rows["mmdet"] = (weak_label_from_boxes(image, b), len(b), time.perf_counter() - start)

    lines = [
        "## 1. The authors' example: ours vs the paper's weak label",
        "",
        f"`weak_1-0001_image.png` ({image.shape[0]}×{image.shape[1]}) and the paper's label from `weak_1-0001_weaklabel_pair.png`.",
        'Boxes: the **"otsu" backend** (no trained detector or segmentation model is available: Otsu + watershed '
        f"instances after a Gaussian smoothing of 1 px, marker spacing {args.diameter_px / 2:g} px), then our procedure "
        "(`weak_label_from_boxes`, defaults: median 3×3, Otsu per box, polarity voted by the boxes, band 1.5 px inside "
        "and outside = the authors' 3×3 erosion/dilation).",
        "",
        "| boxes from | boxes | particle IoU | uncertain IoU | pixel agreement | agreement where both certain | ours: bg / particle / uncertain | seconds (boxes + label) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    stats = {}
    for name, (weak, n_boxes, seconds) in rows.items():
        s = stats[name] = agreement(weak, paper)
        fr = " / ".join(f"{100 * f:.1f} %" for f in s["fractions"])
        lines.append(
            f"| {name} | {n_boxes} | {s['fg_iou']:.3f} | {s['band_iou']:.3f} | {s['pixel_agreement']:.3f} | {s['certain_agreement']:.3f} | {fr} | {seconds:.1f} |"
        )
    paper_fr = " / ".join(f"{100 * (paper == v).mean():.1f} %" for v, _ in CLASSES)
    lines += [
        f"| *the paper's label* | – | – | – | – | – | {paper_fr} | – |",
        "",
        "¹ the authors' code keeps every particle-phase piece inside a box as foreground and fills no holes "
        '(`other_components="foreground", fill_holes=False`).',
        "",
        "Confusion (fraction of all pixels), rows = paper, columns = ours (otsu, defaults):",
        "",
        "| paper \\ ours | " + " | ".join(name for _, name in CLASSES) + " |",
        "|---|" + "---:|" * len(CLASSES),
    ]
    confusion = stats["otsu (defaults)"]["confusion"]
    for (_, name), row in zip(CLASSES, confusion):
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    lines += [
        "",
        'Where the maps differ (see the figure): the "otsu" boxes include the scale bar and its label, which the '
        "authors' trained detector ignores; in the darker, lower-contrast left part of the field the watershed merges "
        "neighbours into large boxes, whose other particles become uncertain; and single noise specks make small boxes. "
        "Inside well-separated particles both labels agree; where both call a pixel certain they agree on "
        f"{100 * stats['otsu (defaults)']['certain_agreement']:.1f} % of the pixels.",
        "",
    ]
    panels = [("paper's weak label", paper)] + [(f"ours: {name}", weak) for name, (weak, _, _) in rows.items() if "authors" not in name]
    return lines, _figure(image, panels, boxes)


def synthetic(args) -> list[str]:
    from skimage.segmentation import find_boundaries

    lines = [
        "## 2. The procedure on synthetic fields with ground truth",
        "",
        f"{len(SYNTHETIC_SEEDS)} fields of 384×384 px from `make_tem_image` (seeds {SYNTHETIC_SEEDS.start}–{SYNTHETIC_SEEDS.stop - 1}; "
        "spheres and cubes of 8 ± 1.5 nm at 0.5 nm/px, 60 requested, 30 % touching, shot noise at 300 e⁻/px), "
        "pooled over pixels. *Edge coverage*: the fraction of the true particles' boundary pixels labelled uncertain.",
        "",
        "| boxes | particle precision | particle recall | edge coverage | particle pixels called background |",
        "|---|---:|---:|---:|---:|",
    ]
    otsu = load_box_detector("otsu", diameter_px=16)
    totals = {name: np.zeros(5) for name in ("true boxes", "otsu boxes")}
    for seed in SYNTHETIC_SEEDS:
        sample = make_tem_image(
            (384, 384),
            n_particles=60,
            shape_classes=("sphere", "cube"),
            diameter_nm=(8.0, 1.5),
            nm_per_px=0.5,
            touching_fraction=0.3,
            scale_bar=False,
            rng=seed,
        )
        true = sample.labels > 0
        edges = find_boundaries(sample.labels, mode="inner")
        for name, boxes in (("true boxes", boxes_from_labels(sample.labels)), ("otsu boxes", otsu(sample.image)[0])):
            weak = weak_label_from_boxes(sample.image, boxes)
            fg = weak == 1
            totals[name] += [
                (fg & true).sum(),
                fg.sum(),
                true.sum(),
                (weak[edges] == UNCERTAIN).sum() / max(1, edges.sum()),
                ((weak == 0) & true).sum(),
            ]
    for name, (tp, fg, true, coverage, lost) in totals.items():
        lines.append(f"| {name} | {tp / fg:.4f} | {tp / true:.3f} | {coverage / len(SYNTHETIC_SEEDS):.3f} | {lost / true:.4f} |")
    lines += ["", "Recall is bounded by the band: a 1.5 px ring inside each particle edge is uncertain by design.", ""]
    return lines


# ----------------------------------------------------------------------------------------- timing


def _calibrated_model(name: str, image: np.ndarray):
    """A detector of a config as at the start of training, BatchNorm statistics set from one pass over ``image``.

    Returns ``(model, data)``: ``data`` is the preprocessed 1-image batch (network input at native size).
    """
    import torch
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from napari_nanocrystal.detection import load_config
    from napari_nanocrystal.detection.dataset import PARTICLE_METAINFO, detector_input

    cfg = load_config(name)
    init_default_scope("mmdet")
    MMLogger.get_current_instance().setLevel("ERROR")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.cfg, model.dataset_meta = cfg, dict(PARTICLE_METAINFO)
    tensor = torch.from_numpy(detector_input(image)).permute(2, 0, 1).contiguous()
    meta = DetDataSample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2], scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[tensor], data_samples=[meta]), False)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: one pass sets the statistics
            module.reset_running_stats()
    model.train()
    with torch.no_grad():
        model.extract_feat(data["inputs"])
    model.eval()
    return model, data


def timing(datasets: Path) -> list[str]:
    import torch
    from napari_nanocrystal.detection import detect_boxes, train_detector

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sample = make_tem_image((512, 512), n_particles=150, diameter_nm=(8.0, 1.5), nm_per_px=0.5, scale_bar=False, rng=rng)
    lines = [
        "## 3. Timings (CPU, one torch thread)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average at start {os.getloadavg()[0]:.1f}); torch {torch.__version__}. Models as at the start of training "
        "(no trained weights exist): Kaiming init, BatchNorm statistics from one pass over the image, so that the RPN "
        "proposes its full 1000 boxes and the three R-CNN stages do their full work, as a trained model does.",
        "",
        "| inference, one 512×512 synthetic image | parameters | network input | seconds (median of 3) | backbone+neck | RPN | 3 R-CNN stages |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name in ("cascade_rcnn_hrnet_w18_nwd", "cascade_rcnn_hrnet_nwd"):
        model, data = _calibrated_model(name, sample.image)
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        parts = []
        for _ in range(3):
            with torch.no_grad():
                t0 = time.perf_counter()
                feats = model.extract_feat(data["inputs"])
                t1 = time.perf_counter()
                proposals = model.rpn_head.predict(feats, data["data_samples"], rescale=False)
                t2 = time.perf_counter()
                model.roi_head.predict(feats, proposals, data["data_samples"], rescale=False)
                t3 = time.perf_counter()
            parts.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
        total, feat, rpn, roi = np.median(np.array(parts), axis=0)
        lines.append(f"| {name} | {n_params:.1f} M | 512×512 (native) | {total:.2f} | {feat:.2f} | {rpn:.2f} | {roi:.2f} |")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            detect_boxes(model, sample.image, score_threshold=0.05)
            times.append(time.perf_counter() - t0)
        lines.append(
            f"| {name}, `detect_boxes` (config test pipeline) | {n_params:.1f} M | 800×800 (resized) | {np.median(times):.2f} | | | |"
        )
        del model

    lines += [
        "",
        "| training | data | batch | seconds per iteration (mean of iterations 2–3) |",
        "|---|---|---:|---:|",
    ]
    labelled = datasets / "tem-examples" / "pbse_1-0001_16_image.png"
    tiny_pairs = [
        (s.image, s.labels) for s in (make_tem_image((128, 128), n_particles=12, nm_per_px=0.5, scale_bar=False, rng=k) for k in range(2))
    ]
    paper_days = float("nan")
    runs = (
        ("cascade_rcnn_hrnet_tiny_nwd", tiny_pairs, "2 synthetic 128² images (resized to 128)"),
        ("cascade_rcnn_hrnet_w18_nwd", labelled, "PbSe example 667×1002, 323 boxes (resized to ~1333×890)"),
        ("cascade_rcnn_hrnet_nwd", labelled, "PbSe example 667×1002, 323 boxes (resized to ~1333×890)"),
    )
    logging.getLogger("mmengine").setLevel(logging.WARNING)
    for name, data, what in runs:
        stamps: list[float] = []
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train_detector(
                name, data, Path(tmp) / "run", max_iters=3, num_workers=0, progress=lambda m, f: stamps.append(time.perf_counter())
            )
        per_iter = float(np.mean(np.diff(stamps))) if len(stamps) >= 3 else float("nan")
        lines.append(f"| {name} | {what} | 2 | {per_iter:.2f} |")
        print(f"{name}: {per_iter:.2f} s/iteration", file=sys.stderr)
        if name == "cascade_rcnn_hrnet_nwd":
            paper_days = per_iter * 12000 / 86400
    lines += [
        "",
        f"The paper schedule (12,000 iterations of 2 images, `_base_/schedule_iter.py`) would take ~{paper_days:.0f} days on "
        "this machine: train the paper configs on a GPU. The tiny config is for tests only (it resizes images to 128 px).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=None, help="folder holding tem-examples/")
    parser.add_argument("--out", default=str(RESULTS), help="output folder (default: benchmarks/results)")
    parser.add_argument("--diameter-px", type=float, default=24.0, help="particle diameter for the otsu/self backends (default: 24)")
    parser.add_argument("--model", default=None, help="a trained segmentation model: adds the 'self' backend")
    parser.add_argument("--checkpoint", default=None, help="a trained detector.pth: adds the 'mmdet' backend")
    parser.add_argument("--timing", action="store_true", help="also time the mmdet detectors (several minutes)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    datasets = _datasets(args.datasets)
    out = Path(args.out)

    started = time.perf_counter()
    lines = [
        "# Weak labels (issue 4)",
        "",
        f"`python benchmarks/weak_labels_figure.py {shlex.join(argv if argv is not None else sys.argv[1:])}` — "
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}.",
        "",
        "![weak labels](weak_labels.png)",
        "",
    ]
    pair_lines, png = real_pair(datasets, args)
    lines += pair_lines
    lines += synthetic(args)
    if args.timing:
        lines += timing(datasets)
    lines += [f"Total run time: {time.perf_counter() - started:.0f} s.", ""]
    atomic_write_bytes(out / "weak_labels.png", png)
    atomic_write_bytes(out / "weak_labels.md", "\n".join(lines).encode("utf-8"))
    print(f"wrote {out / 'weak_labels.md'} and {out / 'weak_labels.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
