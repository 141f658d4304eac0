"""Scale bars in microscope data strips (issue 16): the reader on generated Hitachi tick rulers and Zeiss, FEI and Philips strips.

The fresh real-label half (``scalebar_fresh_labels.csv``) showed that tick rulers and SEM data strips are where
the reader fails on new publications; this benchmark draws those kinds
(:func:`napari_nanocrystal.synthetic.make_strip_sample`) so that they can be worked on without touching the
real labels. Each sample is read with :func:`read_scale_bar`: *correct* (value and unit exact, bar length within
1 % or 1 px), *refused* (a ``ScaleBarError``) or *wrong* (a silent wrong number). ``--printed`` draws each figure
1.6-3.2x larger and shrinks it by area averaging (:func:`~napari_nanocrystal.synthetic.print_shrunk`, half of them
saved again as JPEG), as figures are printed for the page. Writes a markdown report atomically::

    python benchmarks/scalebar_strips.py --n 40 --seed 50000 --out benchmarks/results/scalebar_strips.md
    python benchmarks/scalebar_strips.py --n 30 --seed 55000 --printed --out benchmarks/results/scalebar_strips_printed.md
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

import numpy as np
from napari_nanocrystal.synthetic import STRIP_KINDS, make_strip_sample
from nc_synthmodel.io import atomic_write_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scalebar_benchmark import _pct, _read, _wilson, printed_figure  # noqa: E402  (one reading and scoring for every scale-bar set)

SHAPES = ((512, 683), (448, 640), (667, 1002), (600, 800))


def strip_sample(kind: str, seed: int, printed: bool = False):
    """The benchmark's sample of ``kind`` for ``seed``; with ``printed``, drawn larger and shrunk to the same shape."""
    shape = SHAPES[seed % len(SHAPES)]
    if not printed:
        return make_strip_sample(shape, rng=seed, kind=kind)
    return printed_figure(lambda drawn: make_strip_sample(drawn, rng=seed, kind=kind), seed, shape)


def run(kind: str, seeds: range, reader, printed: bool = False) -> list[dict]:
    """Read every sample of ``kind``: its truth, outcome and what the reader returned."""
    recs = []
    for seed in seeds:
        sample = strip_sample(kind, seed, printed)
        truth = sample.scale_bar
        result, error, wall, _ = _read(sample.image, reader)
        if result is None:
            outcome, said = "refused", error
        else:
            exact = (result.value, result.unit) == (truth.value, truth.unit)
            close = abs(result.bar_length_px - truth.bar_length_px) <= max(1.0, 0.01 * truth.bar_length_px)
            outcome, said = ("correct" if exact and close else "wrong"), f"{result.value} {result.unit}, {result.nm_per_px:.4g} nm/px"
        recs.append(dict(kind=kind, seed=seed, truth=truth.text, outcome=outcome, said=said, s=wall))
    return recs


def report(recs: list[dict], args) -> str:
    lines = [
        "## Scale bars in data strips (generated)",
        "",
        f"Command: `python benchmarks/scalebar_strips.py --n {args.n} --seed {args.seed}{' --printed' * args.printed}`  ",
        f"Date: {dt.datetime.now().isoformat(timespec='seconds')}; {platform.machine()}, {os.cpu_count()} CPU cores, one torch thread; "
        f"samples `make_strip_sample(shape, rng=seed, kind=kind)`{', printed (drawn 1.6-3.2x larger, shrunk)' * args.printed}, "
        f"seeds {args.seed}–{args.seed + args.n - 1} per kind; correct = value and unit exact, bar length within 1 % or 1 px.",
        "",
        "| kind | n | correct % (95 % CI) | refused % | **silently wrong** | median s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in (*STRIP_KINDS, "all"):
        part = [r for r in recs if kind in ("all", r["kind"])]
        n, ok = len(part), sum(r["outcome"] == "correct" for r in part)
        lo, hi = _wilson(ok, n)
        wrong = sum(r["outcome"] == "wrong" for r in part)
        refused = sum(r["outcome"] == "refused" for r in part)
        lines.append(
            f"| {kind} | {n} | {_pct(ok, n)} ({100 * lo:.1f}–{100 * hi:.1f}) | {_pct(refused, n)} | {wrong} | {np.median([r['s'] for r in part]):.2f} |"
        )
    misses = [r for r in recs if r["outcome"] != "correct"]
    lines += ["", f"Not correct ({len(misses)}):", "", "| kind | seed | truth | outcome | reader |", "|---|---:|---|---|---|"]
    lines += [f"| {r['kind']} | {r['seed']} | {r['truth']} | {r['outcome']} | {r['said'][:160].replace('|', '/')} |" for r in misses]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="samples per kind (default 40)")
    parser.add_argument("--seed", type=int, default=50_000, help="first seed (default 50000)")
    parser.add_argument("--printed", action="store_true", help="draw each figure 1.6-3.2x larger and shrink it (a printed figure)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "scalebar_strips.md"))
    args = parser.parse_args(argv)
    import torch
    from napari_nanocrystal.scalebar import get_ocr_reader

    torch.set_num_threads(1)
    reader = get_ocr_reader()
    recs = []
    for kind in STRIP_KINDS:
        recs += run(kind, range(args.seed, args.seed + args.n), reader, args.printed)
        print(f"{kind}: {sum(r['outcome'] == 'correct' for r in recs if r['kind'] == kind)} / {args.n} correct", file=sys.stderr)
    atomic_write_bytes(Path(args.out), report(recs, args).encode("utf-8"))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
