"""Choose the size rules of ``segment(diameter_px="auto")`` on training data only.

    python benchmarks/size_rule_selection.py [--datasets DIR]

``SCALE_BAND`` (no rescaling when the size estimate is within this factor of the network's 30 px)
and ``REFINE_RATIO`` (a second pass at the particles' measured diameter when it differs from the one
used by more than this), and the diameter statistic of that decision (the particles' median by count, or the
area-weighted median :func:`~napari_nanocrystal.segmentation.targets.area_weighted_diameter_px`, or "down by
count, up by area") are scored on (1) the EMPS publication-grouped *training* images with
particles of 6-160 px, with **out-of-fold** size estimates (the size model refitted on 5
publication-grouped folds of the training images + the weak images, so that it errs as on new
data), and (2) the weakly labelled real TEM training images (particle-pixel recall and precision
against their weak labels).  Never the validation split or the TEM test images.  Writes
``benchmarks/results/size_rule_selection.md`` / ``.json``.
"""

import hashlib
import inspect
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from cellpose import metrics
from napari_nanocrystal.segmentation import inference as inf
from napari_nanocrystal.segmentation._image import prepare_image
from napari_nanocrystal.segmentation.data import emps_publications, emps_split, find_weak_pairs, read_image, read_labels, read_weak_label
from napari_nanocrystal.segmentation.engine.datasets import weak_diameter_px
from napari_nanocrystal.segmentation.evaluation import weak_label_agreement
from napari_nanocrystal.segmentation.network import resolve_model
from napari_nanocrystal.segmentation.size_model import SizeModel, image_style, zoom_styles
from napari_nanocrystal.segmentation.targets import area_weighted_diameter_px, median_diameter_px

DATA = Path(os.environ.get("NANOCRYSTAL_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
out = Path(__file__).resolve().parent / "results" / "size_rule_selection.json"
root = DATA / "emps-train"
tem = DATA / "tem-examples"
WEAK_PAIRS = find_weak_pairs(tem / "weak_1-0001_image.png") + find_weak_pairs(tem / "unlabelled")  # as training names them
train, val = emps_split(root)
pubs = emps_publications(root)
net = resolve_model("default")
net_d, pct = inf._model_settings(net)
rng = np.random.default_rng(0)


def second_pass(stat, count, area, assumed, ratio):
    """The second pass's diameter (or None) by one statistic of the first pass's particles."""
    if stat == "count":
        return inf.refine_diameter(count, assumed, ratio)
    if stat == "area":
        return inf.refine_diameter(area, assumed, ratio)
    down = inf.refine_diameter(count, assumed, ratio)  # "hybrid": smaller by count, larger by area
    if down is not None and down < assumed:
        return down
    up = inf.refine_diameter(area, assumed, ratio)
    return up if up is not None and up > assumed else None


STATS = ("count", "area", "hybrid")


def zoom_samples(gray, d):
    return zoom_styles(net, gray, d, rng, bfloat16=True)


# weak images (always in the fit, repeated 4x as add_size_model does)
weakS, weakD = [], []
for _, img_p, weak_p in WEAK_PAIRS:
    g = prepare_image(read_image(img_p), pct)
    d = weak_diameter_px(read_weak_label(weak_p))
    for _ in range(4):
        s, dd = zoom_samples(g, d)
        weakS += s
        weakD += dd
print("weak samples", len(weakS), flush=True)
data = {}
for name in train:
    img = read_image(root / "images" / f"{name}.png")
    lab = read_labels(root / "segmaps" / f"{name}.png")
    d = median_diameter_px(lab)
    if not d > 0:
        continue
    g = prepare_image(img, pct)
    s, dd = zoom_samples(g, d)
    data[name] = dict(gray=g, lab=lab, d=d, S=s, D=dd, native=image_style(net, g, bfloat16=True), pub=pubs[name])
print("styles done", len(data), flush=True)
ordered = sorted({v["pub"] for v in data.values()}, key=lambda p: hashlib.sha1(p.encode()).hexdigest())
fold_of = {p: i % 5 for i, p in enumerate(ordered)}
est = {}
for f in range(5):
    S = weakS + [s for v in data.values() if fold_of[v["pub"]] != f for s in v["S"]]
    D = weakD + [x for v in data.values() if fold_of[v["pub"]] != f for x in v["D"]]
    m = SizeModel().fit(np.stack(S), np.asarray(D))
    for n, v in data.items():
        if fold_of[v["pub"]] == f:
            est[n] = float(m.predict(v["native"][None])[0])
err = np.array([abs(math.log(est[n] / data[n]["d"])) for n in data])
print("OOF size error median |log|", np.median(err), "within 1.5x", np.mean(err < math.log(1.5)), flush=True)
# segment()'s own defaults for everything but the diameter
opts = {
    name: p.default
    for name, p in inspect.signature(inf.segment).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name not in ("diameter_px", "progress")
}
rows = []
for n, v in data.items():
    if not (6 <= v["d"] <= 160):
        continue
    cache = {}

    def run(d):
        key = None if d is None else round(float(d), 1)
        if key not in cache:
            t = time.perf_counter()
            r = inf._segment_once(v["gray"], net, key, prepared=True, progress=None, **opts)
            dt = time.perf_counter() - t
            ap, tp, fp, fn = metrics.average_precision([v["lab"].astype(np.int32)], [r.labels], threshold=[0.5])
            count, area = (f(r.labels) if r.n_objects else 0.0 for f in (median_diameter_px, area_weighted_diameter_px))
            cache[key] = dict(tp=int(tp[0, 0]), fp=int(fp[0, 0]), fn=int(fn[0, 0]), count=count, area=area, s=dt, n=int(r.n_objects))
        return cache[key]

    configs = {}
    e = est[n]
    for band in (1.5, 2.0):
        used = inf.rescale_diameter(e, net_d, band)
        first = run(used)
        assumed = net_d if used is None else used
        for refine, stat in [(r, "count") for r in (1.5, 1.75, 2.0, 99.0)] + [(r, s) for r in (1.5, 2.0) for s in STATS[1:]]:
            if band != 1.5 and stat != "count":
                continue
            res, secs, passes = first, first["s"], 1
            again_at = second_pass(stat, first["count"], first["area"], assumed, refine)
            if again_at is not None:
                again = run(again_at)
                secs += again["s"]
                passes = 2
                if again["n"]:
                    res = again
            configs[f"{band}/{refine}" + ("" if stat == "count" else f" {stat}")] = dict(
                tp=res["tp"], fp=res["fp"], fn=res["fn"], s=secs, passes=passes
            )
    rows.append(dict(name=n, true_px=v["d"], est_px=e, configs=configs))

# (2) the weakly labelled real TEM training images, through segment() with each refine ratio
from scipy import ndimage  # noqa: E402

weak_rows = []
for _, img_p, weak_p in WEAK_PAIRS:
    w = read_weak_label(weak_p)
    img = read_image(img_p)
    for refine, stat in [(1.5, "count"), (2.0, "count"), (1.5, "area"), (1.5, "hybrid")]:
        inf.second_pass_diameter = lambda labels, assumed, ratio=None, stat=stat, refine=refine: second_pass(
            stat, median_diameter_px(labels), area_weighted_diameter_px(labels), assumed, refine
        )
        res = inf.segment(img, net)
        weak_rows.append(
            dict(
                image=img_p.name,
                refine=f"{refine}" + ("" if stat == "count" else f" {stat}"),
                found=int(res.n_objects),
                weak_components=int(ndimage.label(w == 1)[1]),
                **weak_label_agreement(res.labels, w),
                passes=res.passes,
            )
        )

lines = [
    "# Size rules of segment(diameter_px='auto'), chosen on training data",
    "",
    f"`python benchmarks/size_rule_selection.py` — {time.strftime('%Y-%m-%d %H:%M')}, 2 CPU cores, shipped default model.",
    "",
    f"(1) EMPS grouped-training images with 6-160 px particles: {len(rows)}; out-of-fold size estimate error median "
    f"|log| {np.median(err):.3f} (×{math.exp(np.median(err)):.2f}); within 1.5×: {np.mean(err < math.log(1.5)):.0%}.",
    "",
    "| SCALE_BAND / REFINE_RATIO (statistic; count median unless named) | AP50 | TP / FP / FN | second passes | seconds (all images) |",
    "|---|---:|---|---:|---:|",
]
for key in rows[0]["configs"]:
    tp, fp, fn = (sum(r["configs"][key][k] for r in rows) for k in ("tp", "fp", "fn"))
    lines.append(
        f"| {key} | {tp / (tp + fp + fn):.3f} | {tp} / {fp} / {fn} | {sum(r['configs'][key]['passes'] == 2 for r in rows)} | {sum(r['configs'][key]['s'] for r in rows):.0f} |"
    )
lines += [
    "",
    "(2) Weakly labelled real TEM training images (SCALE_BAND 1.5): particle pixels of the weak label found (recall) and",
    "found pixels outside the weak background (precision).",
    "",
    "| image | REFINE_RATIO (statistic) | found | weak-label components | recall | precision | passes |",
    "|---|---:|---:|---:|---:|---:|---:|",
]
for w in weak_rows:
    lines.append(
        f"| `{w['image']}` | {w['refine']} | {w['found']} | {w['weak_components']} | {w['recall']:.3f} | {w['precision']:.3f} | {w['passes']} |"
    )
out.write_text(json.dumps(dict(oof_error_median=float(np.median(err)), rows=rows, weak=weak_rows)))
out.with_suffix(".md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
