"""Score a trained model on labelled images, with the training split rule: :func:`evaluate_model`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .sources import collect_sources, split_files

__all__ = ["evaluate_model"]


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
    from ..data import read_image, read_labels
    from ..evaluation import evaluate, otsu_watershed
    from ..inference import segment
    from ..network import resolve_model
    from ..targets import median_diameter_px

    files, memory = collect_sources(data, "labels")
    if memory:
        raise ValueError("evaluate_model reads files: pass folders, image files or (image_path, labels_path) tuples")
    if not files:
        raise ValueError(f"no labelled images found in {data}")
    files, note = split_files(files, split)
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
        sizes.append(
            {"true_px": true_d, "used_px": result.diameter_px, "estimate_px": result.diameter_estimate_px, "passes": result.passes}
        )
        if baseline:
            otsu.append(otsu_watershed(image))
        if progress is not None:
            progress(f"segmented {entry['name']}", (i + 1) / len(files))
    report = {
        "model": evaluate(preds, trues),
        "names": [e["name"] for e in files],
        "split": note,
        "diameter": {"true": "oracle: true median per image", "auto": "estimated by the model (auto, the default)"}.get(diameter, diameter)
        if isinstance(diameter, str)
        else diameter,
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
