"""Confirmation on re-drawn folds (issue 18, seventh and tenth rounds): ET vs GB vs a candidate.

``gb-leaf5-it1000`` (the GB preset with ``min_samples_leaf=5``, ``max_iter=1000``) was added as a candidate
after an outer-only look at the seed-0 folds, so those folds cannot select it.  This script re-draws the folds
of both protocols with fold seeds 1, 2, 3 (``paper_folds`` / ``grouped_folds``, ``random_state``; seed 0 is the
folds of every earlier round and is not used) and scores the three size models on each:

* ``ET``   - extra trees, 300 trees, ``max_features=0.5`` (the shipped size member, ``synthesis_forest_tuning.GRID["et-mf0.5"]``)
* ``GB``   - the ``GB`` preset (500 iterations, learning rate 0.05, ln target)
* ``gb-leaf5-it1000`` - ``synthesis_forest_tuning.EXTRA`` (the seventh round's candidate)
* ``R-leaf``, ``BLEND-w0.75`` - ``synthesis_residual`` (tenth round: the blend passed that script's dev gate;
  ``--candidate BLEND-w0.75`` applies the rule to it, report ``results/synthesis_redraw_BLEND-w0.75.md``)

All: computed descriptors, trained on recipes <= 20 nm, model seed 0, one thread.  The re-drawn folds use the
SAME recipes: a check against fold luck, not new data.  On the grouped protocol the ``self-synthesis`` group
(319 of the 617 pool recipes) is fold 0 for every seed, so its predictions are the same in every re-draw (they
are fitted once and reused: same training and validation indices); only the published-paper recipes are re-dealt.

Statistics, per protocol, pooled over the 3 re-draws: pooled MAE and R^2 of all 3 x 617 predictions; paired
difference = per-recipe difference of the mean (over re-draws) absolute errors, 95 % percentile bootstrap over
recipes (2,000 resamples, seed 0).  The decision rule (written before each run, BENCHMARKS.md): ship the
candidate iff on both protocols it is the best or its interval against the best includes 0, and its grouped
pooled R^2 > 0.  The best is taken over ET, GB, ``gb-leaf5-it1000`` and the candidate.

Predictions are cached per fold in ``results/synthesis_redraw_PROTOCOL.json`` (a rerun resumes); the protocols
can run side by side, then the report ``results/synthesis_redraw.md``::

    OMP_NUM_THREADS=1 python benchmarks/synthesis_redraw.py --protocols paper
    OMP_NUM_THREADS=1 python benchmarks/synthesis_redraw.py --protocols grouped
    python benchmarks/synthesis_redraw.py --report [--candidate BLEND-w0.75]

A rerun fits only the candidates a cached fold lacks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from nc_synthmodel.evaluation import regression_metrics
from nc_synthmodel.evaluation.compare import bootstrap_interval
from nc_synthmodel.files import atomic_write_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis_forest_tuning import REFERENCES, _extra_fit_predict, reference_fit_predict  # noqa: E402
from synthesis_residual import blend, residual_fit_predict  # noqa: E402
from synthesis_selection import RESULTS, _folds, _size, complete_caches, protocols_cli, run_protocols, stderr_log  # noqa: E402

SEEDS = (1, 2, 3)
CANDIDATES = ("ET", "GB", "gb-leaf5-it1000", "R-leaf", "BLEND-w0.75")
#: The candidates every rule compares against; ``--candidate`` names the one the rule tests.
COMPARED = ("ET", "GB", "gb-leaf5-it1000")
SEVENTH_ROUND = "gb-leaf5-it1000"
N_BOOT = 2000


def predict(name: str, table, recipes, y, train: np.ndarray, val: np.ndarray) -> np.ndarray:
    if name in REFERENCES:
        return reference_fit_predict(name, table, recipes, y, train, val)
    if name.startswith("R-"):
        return residual_fit_predict(name, table, recipes, y, train, val)
    return _extra_fit_predict(name, table, recipes, y, train, val)


def _versions() -> dict[str, str]:
    """The libraries a fit depends on (the cached predictions are only comparable within one set)."""
    import rdkit
    import sklearn

    return {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "rdkit": rdkit.__version__}


def _digest(train: np.ndarray) -> str:
    """SHA-1 of the training indices (int64): identifies a fold's training set in the cache."""
    return hashlib.sha1(np.asarray(train, dtype=np.int64).tobytes()).hexdigest()


def _cache(protocol: str) -> Path:
    return RESULTS / f"synthesis_redraw_{protocol}.json"


def run(protocol: str, table, recipes, groups, log, seeds=SEEDS, refit=False) -> None:
    y = _size(recipes)
    path = _cache(protocol)
    data = json.loads(path.read_text()) if path.is_file() else {"protocol": protocol, "seeds": [], "folds": []}
    data["seeds"] = sorted(set(data["seeds"]) | set(seeds))
    if refit:  # fit every candidate of these seeds' folds again (e.g. after a library upgrade)
        data["folds"] = [f for f in data["folds"] if f["seed"] not in seeds]
    done = {(f["seed"], f["fold"]): f for f in data["folds"]}
    data["y_true"] = y.tolist()
    for seed in seeds:
        for k, (train, val) in enumerate(_folds(protocol, recipes, groups, random_state=seed)):
            entry = done.get((seed, k))
            if entry is None:
                entry = {"seed": seed, "fold": k, "train_sha1": _digest(train), "val": val.tolist(), "pred": {}, "seconds": {}}
                entry["versions"] = _versions()
                data["folds"].append(entry)
                done[(seed, k)] = entry
            for name in CANDIDATES:
                if name in entry["pred"]:
                    continue
                # the same fold in another re-draw (grouped: self-synthesis) is fitted once
                twin = next(
                    (
                        f
                        for f in data["folds"]
                        if f is not entry
                        and f["train_sha1"] == entry["train_sha1"]
                        and f["val"] == entry["val"]
                        and name in f["pred"]
                        and f.get("versions") == entry.get("versions")
                    ),
                    None,
                )
                t = time.perf_counter()
                if twin is not None:
                    entry["pred"][name] = twin["pred"][name]
                    entry["reused_from_seed"] = twin["seed"]
                elif name.startswith("BLEND"):
                    entry["pred"][name] = blend(name, entry["pred"]["ET"], entry["pred"]["R-leaf"]).tolist()
                else:
                    entry["pred"][name] = predict(name, table, recipes, y, train, val).tolist()
                    entry["seconds"][name] = time.perf_counter() - t
                    log(f"[{protocol}] seed {seed} fold {k + 1} {name}: {entry['seconds'][name]:.0f} s")
                atomic_write_bytes(path, json.dumps(data).encode())


def _bootstrap(diff: np.ndarray) -> tuple[float, float, float]:
    """(mean, 95 % interval) of per-recipe differences."""
    return (float(diff.mean()), *bootstrap_interval(diff, n_boot=N_BOOT))


def _compared(ship: str) -> tuple[str, ...]:
    return COMPARED + ((ship,) if ship not in COMPARED else ())


def summarise(data: dict, ship: str = SEVENTH_ROUND, seeds=SEEDS) -> dict:
    """Pooled, per-re-draw and paired statistics of ET, GB, ``gb-leaf5-it1000`` and ``ship`` over the folds of ``seeds``."""
    candidates = _compared(ship)
    y = np.asarray(data["y_true"], dtype=float)
    folds_ = sorted(data["folds"], key=lambda f: (f["seed"], f["fold"]))
    idx = np.concatenate([f["val"] for f in folds_ if f["seed"] == seeds[0]])
    err = {}  # candidate -> (seeds, recipes) absolute errors in idx order
    pooled, per_seed, fold_mae = {}, {}, {}
    for c in candidates:
        rows = []
        for seed in seeds:
            fs = [f for f in folds_ if f["seed"] == seed]
            p = dict(zip((i for f in fs for i in f["val"]), (v for f in fs for v in f["pred"][c])))
            rows.append(np.array([p[i] for i in idx]))
            per_seed.setdefault(c, []).append(regression_metrics(y[idx], rows[-1])["MAE"])
            fold_mae.setdefault(c, []).append([float(np.mean(np.abs(np.array(f["pred"][c]) - y[f["val"]]))) for f in fs])
        P = np.array(rows)
        err[c] = np.abs(P - y[idx]).mean(axis=0)
        m = regression_metrics(np.tile(y[idx], len(seeds)), P.ravel())
        pooled[c] = {"MAE": m["MAE"], "R2": m["R2"], "fold_mean_MAE": float(np.mean(fold_mae[c]))}
    best = min(candidates, key=lambda c: pooled[c]["MAE"])
    paired = {f"{a} - {b}": _bootstrap(err[a] - err[b]) for a in candidates for b in candidates if a < b}
    vs_best = _bootstrap(err[ship] - err[best]) if best != ship else (0.0, 0.0, 0.0)
    parts = {}
    if data["protocol"] == "grouped":  # fold 0 is the same group (self-synthesis) in every re-draw
        first = set(next(f for f in folds_ if f["seed"] == seeds[0] and f["fold"] == 0)["val"])
        in_first = np.array([i in first for i in idx])
        for label, mask in (("fold 1 (self-synthesis)", in_first), ("folds 2-5 (published papers)", ~in_first)):
            parts[label] = {
                "n": int(mask.sum()),
                "MAE": {c: float(err[c][mask].mean()) for c in candidates},
                "paired": {f"{a} - {b}": _bootstrap(err[a][mask] - err[b][mask]) for a in candidates for b in candidates if a < b},
            }
    return {
        "ship": ship,
        "pooled": pooled,
        "per_seed": per_seed,
        "fold_mae": fold_mae,
        "best": best,
        "paired": paired,
        "ship_vs_best": vs_best,
        "parts": parts,
    }


def report(summaries: dict, seconds: dict, ship: str = SEVENTH_ROUND, seeds=SEEDS) -> tuple[str, bool]:
    """The markdown report and whether the rule ships ``ship``."""
    round_ = "seventh round" if ship == SEVENTH_ROUND else "tenth round"
    lines = [
        f"# Size model on re-drawn folds (issue 18, {round_}): the rule tested on `{ship}`",
        "",
        f"`benchmarks/synthesis_redraw.py`; {platform.machine()} {os.cpu_count()} cores shared with other jobs, nice 15,",
        f"one thread per fit.  Fold seeds {', '.join(map(str, seeds))}"
        + (" (seed 0 - the earlier rounds' folds - excluded)." if tuple(seeds) == SEEDS else " (not the rule's re-draws: beside it)."),
        "Same recipes, re-drawn folds: a check against fold luck, not new data.  Fit time: "
        + ", ".join(f"{p} {s / 60:.0f} min" for p, s in seconds.items())
        + ".",
        "",
    ]
    ok = True
    for protocol, s in summaries.items():
        lines += [
            f"## {protocol}",
            "",
            "| candidate | pooled MAE (nm) | pooled R² | fold-mean MAE | MAE per re-draw | per-fold MAE (seed 1 / 2 / 3) |",
            "|---|---|---|---|---|---|",
        ]
        for c in _compared(ship):
            p = s["pooled"][c]
            folds_text = " / ".join(" ".join(f"{v:.2f}" for v in fm) for fm in s["fold_mae"][c])
            lines.append(
                f"| {c} | {p['MAE']:.3f} | {100 * p['R2']:+.1f} % | {p['fold_mean_MAE']:.3f} | "
                + " ".join(f"{v:.3f}" for v in s["per_seed"][c])
                + f" | {folds_text} |"
            )
        lines += ["", "Paired (per-recipe mean |error| over the re-draws, bootstrap over recipes):", ""]
        for pair, (d, lo, hi) in s["paired"].items():
            lines.append(f"- {pair}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] nm")
        for label, part in s["parts"].items():
            lines.append(
                f"- {label}, {part['n']} recipes: MAE "
                + ", ".join(f"{c} {v:.3f}" for c, v in part["MAE"].items())
                + "; "
                + "; ".join(f"{pair} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for pair, (d, lo, hi) in part["paired"].items())
            )
        d, lo, hi = s["ship_vs_best"]
        level = s["best"] == ship or lo <= 0
        against = "it is the best" if s["best"] == ship else f"{ship} vs best {d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        ok &= level
        lines += [
            "",
            f"Best: {s['best']}; {against} -> {'level or better' if level else 'worse'}.",
            "",
        ]
    r2 = summaries["grouped"]["pooled"][ship]["R2"] if "grouped" in summaries else float("nan")
    ok = ok and len(summaries) == 2 and r2 > 0
    lines += [
        f"Rule: {ship} level with the best on both protocols and grouped pooled R² > 0 ({100 * r2:+.1f} %) -> {'SHIP ' + ship if ok else 'keep ET'}.",
        "",
    ]
    return "\n".join(lines), ok


def main(argv=None) -> int:
    parser = protocols_cli(__doc__)
    parser.add_argument("--candidate", default=SEVENTH_ROUND, choices=CANDIDATES[2:], help="the candidate the rule tests")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help="fold seeds (default 1 2 3, the rule's; 0 = the paper's folds, beside)"
    )
    parser.add_argument("--refit", action="store_true", help="drop these seeds' cached folds and fit every candidate again")
    args = parser.parse_args(argv)
    log = stderr_log
    seeds = tuple(args.seeds)

    if args.protocols:
        run_protocols(args.datasets, args.protocols, functools.partial(run, seeds=seeds, refit=args.refit), log)
    if args.report:
        summaries, seconds = {}, {}
        for protocol, data in complete_caches(_cache, 5 * len(seeds), log).items():
            summaries[protocol] = summarise(data, args.candidate, seeds)
            fitted = _compared(args.candidate)
            chosen = [f for f in data["folds"] if f["seed"] in seeds]
            seconds[protocol] = sum(sum(v for c, v in f["seconds"].items() if c in fitted) for f in chosen)
        text, _ = report(summaries, seconds, args.candidate, seeds)
        suffix = ("" if args.candidate == SEVENTH_ROUND else f"_{args.candidate}") + (
            "" if seeds == SEEDS else "_seed" + "-".join(map(str, seeds))
        )
        atomic_write_bytes(RESULTS / f"synthesis_redraw{suffix}.md", text.encode())
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
