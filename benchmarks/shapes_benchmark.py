"""Shape-classifier benchmark, and size measurement on analytic shapes.

1. ``classify_shape`` on synthetic masks of known class: ``--n`` masks per class of the 11
   ``SHAPE_CLASSES`` from :func:`napari_nanocrystal.shapes.render_shape_mask`, each with its own
   seed (``--seed``, ``--seed + 1``, … — disjoint from the tests' seeds), drawn uniformly over
   equivalent diameter 15–80 px, rotation 0–360°, the class-typical aspect ratio, boundary noise
   0 / 1 / 2 / 3 % of the diameter, and a blur of the mask (Gaussian σ 0 / 0.75 / 1.5 px, then
   re-thresholded at 0.5: the rounding a segmentation model gives corners).  Reports per-class
   accuracy, the confusion matrix (table + PNG) and accuracy against size, noise, blur and aspect.
2. ``measure_particles`` on discs, squares and ellipses of known size rasterised exactly (pixel
   centres inside the outline), at random sub-pixel positions and rotations, for pixel sizes from
   0.25 to 4 nm/px: equivalent-diameter error and the ellipses' aspect ratio.

Writes a markdown report atomically, and the confusion matrix as a PNG beside it::

    python benchmarks/shapes_benchmark.py                  # 400 masks per class
    python benchmarks/shapes_benchmark.py --n 50 --out /tmp/shapes.md

Data: ``--datasets`` (else ``$NANOCRYSTAL_DATASETS``, else ``../shared/datasets`` beside the
repository) is only used to check the class list against ``gu2025/shape_classes.txt``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the machine's cores are shared

import argparse
import datetime as dt
import io
import math
import platform
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from napari_nanocrystal.measure import measure_particles
from napari_nanocrystal.shapes import (
    RANDOM_BLUR_SIGMAS,
    RANDOM_NOISE_LEVELS,
    RANDOM_SIZE_PX,
    classify_shape,
    random_shape_mask,
)
from napari_nanocrystal.shapes.render import _ASPECT_DEFAULT
from nc_synthmodel.contract import SHAPE_CLASSES
from nc_synthmodel.io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: Seeds of render_shape_mask / classify_shape in tests/napari_nanocrystal/test_shapes.py.
TEST_SEEDS = frozenset({0, 1, 3, 17, 45, 71, 2025})
SIZE_RANGE_PX = RANDOM_SIZE_PX
SIZE_BINS = (15, 25, 35, 50, 65, 80)
NOISE_LEVELS = RANDOM_NOISE_LEVELS  # boundary noise, fraction of the diameter
BLUR_SIGMAS = RANDOM_BLUR_SIGMAS  # px
TARGET = 0.95
#: Analytic shapes: name → (ECD in nm, description); all 20 nm across.
ANALYTIC = {"disc": "disc, diameter 20 nm", "square": "square, side 20 nm", "ellipse": "ellipse, axes 28.28 × 14.14 nm (aspect 2)"}
PIXEL_SIZES_NM = (0.25, 0.5, 1.0, 2.0, 4.0)

SHORT = {"Irregular shape": "irregular", "flower shape": "flower", "four-pointed star": "4-star", "six-pointed star": "6-star"}


def _short(name: str) -> str:
    return SHORT.get(name, name)


# ----------------------------------------------------------------------------------------
# Classification


def _sample(j: int, seed: int) -> dict:
    """Mask j: class j mod 11, everything else from its own generator (seed + j)."""
    shape_class = SHAPE_CLASSES[j % len(SHAPE_CLASSES)]
    mask, style = random_shape_mask(shape_class, np.random.default_rng(seed + j))
    started = time.perf_counter()
    predicted = classify_shape(mask)
    seconds = time.perf_counter() - started
    return {"seed": seed + j, "truth": shape_class, "predicted": predicted, **style, "seconds": seconds}


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _acc(recs: list[dict]) -> str:
    if not recs:
        return "–"
    return f"{100 * sum(r['truth'] == r['predicted'] for r in recs) / len(recs):.0f}"


def _grid(recs: list[dict], title: str, key, columns: list[str]) -> list[str]:
    """Accuracy % per class (rows) and per value of ``key`` (columns); n per cell in the last row."""
    lines = [f"| class \\ {title} | " + " | ".join(columns) + " | all |", "|---|" + "---:|" * (len(columns) + 1)]
    for shape_class in [*SHAPE_CLASSES, None]:
        mine = [r for r in recs if shape_class is None or r["truth"] == shape_class]
        cells = [_acc([r for r in mine if key(r) == c]) for c in columns]
        name = "**all classes**" if shape_class is None else shape_class
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_acc(mine)} |")
    lines.append("| n (all classes) | " + " | ".join(str(sum(key(r) == c for r in recs)) for c in columns) + f" | {len(recs)} |")
    return lines


def _size_bin(r: dict) -> str:
    for lo, hi in zip(SIZE_BINS, SIZE_BINS[1:]):
        if lo <= r["size"] < hi:
            return f"{lo}–{hi} px"
    return f"{SIZE_BINS[-2]}–{SIZE_BINS[-1]} px"


def _confusion(recs: list[dict]) -> np.ndarray:
    index = {c: i for i, c in enumerate(SHAPE_CLASSES)}
    matrix = np.zeros((len(SHAPE_CLASSES), len(SHAPE_CLASSES)), dtype=int)
    for r in recs:
        matrix[index[r["truth"]], index[r["predicted"]]] += 1
    return matrix


def _confusion_png(matrix: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(8.2, 7.0), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    names = [_short(c) for c in SHAPE_CLASSES]
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8, color="white" if rows[i, j] > 0.5 else "black")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


# ----------------------------------------------------------------------------------------
# Measurement on analytic shapes


def _raster(kind: str, nm_per_px: float, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Exact rasterisation (pixel centres inside) of one analytic shape at a random sub-pixel
    position and rotation: (mask, true ECD in nm, true aspect ratio)."""
    theta = rng.uniform(0.0, math.pi)
    if kind == "disc":
        a = b = 10.0  # half-axes, nm
    elif kind == "ellipse":
        a, b = 10.0 * math.sqrt(2.0), 10.0 / math.sqrt(2.0)
    else:
        a = b = 10.0  # half-side
    half = (max(a, b) * (math.sqrt(2.0) if kind == "square" else 1.0)) / nm_per_px + 3
    n = int(math.ceil(2 * half)) + 2
    cy, cx = n / 2 + rng.uniform(-0.5, 0.5), n / 2 + rng.uniform(-0.5, 0.5)
    yy, xx = (np.mgrid[0:n, 0:n] - np.array([cy, cx])[:, None, None]) * nm_per_px
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    if kind == "square":
        mask = (np.abs(u) <= a) & (np.abs(v) <= b)
        ecd = math.sqrt(4 * (2 * a) * (2 * b) / math.pi)
    else:
        mask = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        ecd = 2 * math.sqrt(a * b)
    return mask, ecd, a / b


def _measure_rows(n: int, seed: int) -> list[str]:
    lines = [
        "| shape | nm/px | ECD px | n | ECD error % mean ± SD | mean abs % | max abs % | aspect ratio (true) mean ± SD |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k, (kind, description) in enumerate(ANALYTIC.items()):
        for m, nm_per_px in enumerate(PIXEL_SIZES_NM):
            rng = np.random.default_rng([seed, k, m])
            errors, aspects = [], []
            for _ in range(n):
                mask, ecd_true, aspect_true = _raster(kind, nm_per_px, rng)
                table = measure_particles(mask.astype(np.int32), nm_per_px=nm_per_px)
                errors.append(100 * (float(table["ecd_nm"].iloc[0]) / ecd_true - 1))
                aspects.append(float(table["aspect_ratio"].iloc[0]))
            e, a = np.asarray(errors), np.asarray(aspects)
            lines.append(
                f"| {description} | {nm_per_px:g} | {ecd_true / nm_per_px:.1f} | {n} | {e.mean():+.2f} ± {e.std():.2f} "
                f"| {np.abs(e).mean():.2f} | {np.abs(e).max():.2f} | {a.mean():.3f} ± {a.std():.3f} ({aspect_true:g}) |"
            )
    return lines


# ----------------------------------------------------------------------------------------


def _check_classes(datasets: Path) -> str:
    path = datasets / "gu2025" / "shape_classes.txt"
    if not path.is_file():
        return f"`{path}` not found: class list not checked against the dataset."
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if tuple(names) != tuple(SHAPE_CLASSES):
        raise SystemExit(f"{path} lists {names}, but SHAPE_CLASSES is {list(SHAPE_CLASSES)}")
    return "The 11 classes equal `gu2025/shape_classes.txt` (checked), in its order."


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="masks per class (default 400)")
    parser.add_argument("--n-measure", type=int, default=100, help="placements per analytic shape and pixel size (default 100)")
    parser.add_argument("--seed", type=int, default=20_000, help="first mask seed (default 20000; tests use 0–71 and 2025)")
    parser.add_argument(
        "--datasets",
        default=os.environ.get("NANOCRYSTAL_DATASETS", str(REPO.parent / "shared" / "datasets")),
        help="datasets folder (default $NANOCRYSTAL_DATASETS or ../shared/datasets)",
    )
    parser.add_argument("--out", default=str(RESULTS / "shapes.md"), help="markdown report (written atomically); the PNG goes beside it")
    args = parser.parse_args(argv)
    if args.n < 1 or args.n_measure < 1:
        parser.error("--n and --n-measure must be ≥ 1")
    total = args.n * len(SHAPE_CLASSES)
    if TEST_SEEDS & set(range(args.seed, args.seed + total)):
        parser.error(f"seeds {args.seed}–{args.seed + total - 1} overlap the tests' seeds {sorted(TEST_SEEDS)}")
    wall = time.perf_counter()
    command = "python " + shlex.join(
        [
            os.path.relpath(sys.argv[0], REPO) if argv is None else "benchmarks/shapes_benchmark.py",
            *(sys.argv[1:] if argv is None else argv),
        ]
    )
    class_note = _check_classes(Path(args.datasets))
    out = Path(args.out)
    png = out.with_name(out.stem + "_confusion.png")

    recs = []
    for j in range(total):
        recs.append(_sample(j, args.seed))
        if (j + 1) % 1000 == 0:
            print(f"{j + 1}/{total} masks", file=sys.stderr, flush=True)
    right = [r["truth"] == r["predicted"] for r in recs]
    matrix = _confusion(recs)
    _confusion_png(matrix, png, f"classify_shape on {total} synthetic masks (15–80 px, noise 0–3 %, blur 0–1.5 px)")
    reference = [r for r in recs if r["size"] >= 30 and r["noise"] <= 0.01 and r["blur"] == 0]
    mild = [r for r in recs if r["noise"] <= 0.01]

    per_class = []
    for i, shape_class in enumerate(SHAPE_CLASSES):
        mine = [r for r in recs if r["truth"] == shape_class]
        k = sum(r["predicted"] == shape_class for r in mine)
        lo, hi = _wilson(k, len(mine))
        confused = Counter(r["predicted"] for r in mine if r["predicted"] != shape_class).most_common(3)
        ref = [r for r in reference if r["truth"] == shape_class]
        calm = [r for r in mild if r["truth"] == shape_class]
        called = int(matrix[:, i].sum())
        precision = f"{100 * matrix[i, i] / called:.1f}" if called else "–"
        per_class.append((shape_class, len(mine), k, lo, hi, confused, ref, calm, precision))
    n_meet = sum(k / n >= TARGET for _, n, k, *_ in per_class)
    n_meet_mild = sum(sum(r["predicted"] == c for r in calm) / len(calm) >= TARGET for c, *_, calm, _ in per_class if calm)
    seconds = np.array([r["seconds"] for r in recs])

    lines = [
        "## Shape classifier and size-measurement benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {dt.datetime.now().isoformat(timespec='seconds')}  ",
        f"Machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPU cores (shared), "
        f"Python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}  ",
        f"Masks: {args.n} per class, {total} in all, seeds {args.seed}–{args.seed + total - 1} (mask j: class j mod 11, "
        f"`numpy.random.default_rng(seed + j)`; the tests use seeds {', '.join(map(str, sorted(TEST_SEEDS)))}). "
        f"Equivalent diameter uniform {SIZE_RANGE_PX[0]:g}–{SIZE_RANGE_PX[1]:g} px, rotation uniform 0–360°, aspect "
        f"ratio uniform in the renderer's class range ({', '.join(f'{c} {lo:g}–{hi:g}' for c, (lo, hi) in _ASPECT_DEFAULT.items())}), "
        f"boundary noise one of {', '.join(f'{100 * v:g} %' for v in NOISE_LEVELS)} of the diameter, blur σ one of "
        f"{', '.join(f'{v:g}' for v in BLUR_SIGMAS)} px (Gaussian on the mask, re-thresholded at 0.5). {class_note}",
        "",
        "### Headline",
        "",
        f"**Overall accuracy {100 * np.mean(right):.1f} %** ({sum(right)} / {total}); "
        f"**{n_meet} of 11 classes reach the ≥ {100 * TARGET:.0f} % target** over the full range "
        f"(15–80 px, noise 0–3 %, blur 0–1.5 px). On the easier reference subset (≥ 30 px, noise ≤ 1 %, no blur; "
        f"{len(reference)} masks) accuracy is {_acc(reference)} %; with boundary noise ≤ 1 % (all sizes and blurs; "
        f"{len(mild)} masks) it is {_acc(mild)} % and {n_meet_mild} of 11 classes reach 95 %. "
        "`Irregular shape` is the classifier's fallback: its recall is high, its precision (share of the masks "
        "called irregular that are irregular) is the figure to read.",
        "",
        "| class | n | accuracy (recall) % | 95 % Wilson interval | ≥ 95 %? | precision % | noise ≤ 1 % (n) "
        "| reference subset % (n) | most frequent confusions |",
        "|---|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for shape_class, n, k, lo, hi, confused, ref, calm, precision in per_class:
        ok = "yes" if k / n >= TARGET else "**no**"
        conf = ", ".join(f"{_short(c)} {m}" for c, m in confused) or "–"
        lines.append(
            f"| {shape_class} | {n} | {100 * k / n:.1f} | {100 * lo:.1f}–{100 * hi:.1f} | {ok} | {precision} "
            f"| {_acc(calm)} ({len(calm)}) | {_acc(ref)} ({len(ref)}) | {conf} |"
        )
    lines += [
        "",
        "### Confusion matrix (rows: true class, columns: predicted; counts)",
        "",
        f"![confusion matrix]({png.name})",
        "",
        "| true \\ predicted | " + " | ".join(_short(c) for c in SHAPE_CLASSES) + " |",
        "|---|" + "---:|" * len(SHAPE_CLASSES),
        *[f"| {_short(c)} | " + " | ".join(str(v) if v else "·" for v in matrix[i]) + " |" for i, c in enumerate(SHAPE_CLASSES)],
        "",
        "### Accuracy (%) against equivalent diameter",
        "",
        *_grid(recs, "diameter", _size_bin, [f"{lo}–{hi} px" for lo, hi in zip(SIZE_BINS, SIZE_BINS[1:])]),
        "",
        "### Accuracy (%) against boundary noise (σ of the outline, % of the diameter)",
        "",
        *_grid(recs, "noise", lambda r: f"{100 * r['noise']:g} %", [f"{100 * v:g} %" for v in NOISE_LEVELS]),
        "",
        "### Accuracy (%) against mask blur (σ px)",
        "",
        *_grid(recs, "blur", lambda r: f"{r['blur']:g} px", [f"{v:g} px" for v in BLUR_SIGMAS]),
        "",
        "### Accuracy (%) of the diameter ≥ 30 px masks against noise and blur together",
        "",
    ]
    combos = [f"{100 * nz:g} % / {b:g} px" for nz in NOISE_LEVELS for b in BLUR_SIGMAS]
    big = [r for r in recs if r["size"] >= 30]
    lines += [
        *_grid(big, "noise / blur", lambda r: f"{100 * r['noise']:g} % / {r['blur']:g} px", combos),
        "",
        "### Accuracy (%) of the elongated classes against aspect ratio",
        "",
        "| class | aspect bin | n | accuracy % | most frequent confusions |",
        "|---|---|---:|---:|---|",
    ]
    for shape_class in ("rectangle", "rhombus", "rod"):
        lo, hi = _ASPECT_DEFAULT[shape_class]
        edges = np.linspace(lo, hi, 4)
        mine = [r for r in recs if r["truth"] == shape_class]
        for a, b in zip(edges, edges[1:]):
            cell = [r for r in mine if a <= r["aspect"] < b or (b == hi and r["aspect"] == hi)]
            confused = Counter(r["predicted"] for r in cell if r["predicted"] != shape_class).most_common(2)
            lines.append(
                f"| {shape_class} | {a:.2f}–{b:.2f} | {len(cell)} | {_acc(cell)} | "
                f"{', '.join(f'{_short(c)} {m}' for c, m in confused) or '–'} |"
            )
    lines += [
        "",
        f"Time per mask (`classify_shape` only): median {1000 * np.median(seconds):.1f} ms, "
        f"p90 {1000 * np.percentile(seconds, 90):.1f} ms, max {1000 * seconds.max():.1f} ms.",
        "",
        "### `measure_particles` on analytic shapes",
        "",
        f"True ECD: disc 20 nm, square {math.sqrt(4 * 400 / math.pi):.2f} nm, ellipse 20 nm; each shape is rasterised exactly — a "
        f"pixel is in the particle when its centre is inside the outline — at {args.n_measure} random sub-pixel "
        f"positions and rotations per pixel size (`default_rng([{args.seed}, shape, pixel size])`). ECD error = "
        "measured `ecd_nm` / true ECD − 1; aspect ratio = `aspect_ratio` column (moment ellipse).",
        "",
    ]
    print(f"{total} masks classified; measuring analytic shapes", file=sys.stderr, flush=True)
    lines += _measure_rows(args.n_measure, args.seed)
    lines += ["", f"Wall time of this benchmark: {time.perf_counter() - wall:.0f} s."]
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(out, text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
