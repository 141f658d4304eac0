"""Nested model selection for the size model (issue 18): inner folds choose, outer folds score.

For each outer fold (the paper's 5 folds, or the 5 publication-grouped folds) the candidates
are cross-validated *inside the outer training set only* (inner folds built by the same rule:
:func:`paper_folds` / :func:`grouped_folds` applied to the outer training recipes), the one with
the lowest inner MAE is chosen, refitted on the outer training set and scored on the outer fold.
The reported number is therefore the score of the whole procedure "pick by inner CV", never of a
model picked on the fold it is scored on.

Candidates:

* ``RF``, ``GB`` - :func:`nc_synthmodel.models.make_model` presets, trained on recipes <= 20 nm
  (as in ``synthesis_benchmark.py``), refitted in every inner and outer fold;
* ``transformer`` - the transformer + augmentation of ``synthesis_benchmark.py``.  It is NOT
  refitted inside the inner folds (5 x 5 fits would take ~2 h here): its inner predictions are
  its cached out-of-fold predictions (``results/synthesis/transformer-aug[-grouped].json``).  For an
  inner row in outer-training fold j that prediction comes from a model trained without fold j
  but *with* the outer fold k, i.e. on more data than an honest inner fit: the inner scores
  favour the transformer (never the others).  Its outer predictions are the cached ones of fold k,
  trained without fold k: honest.  These predictions were made with the Uni-Mol descriptor table;
  only the trees below use ``--descriptors``;
* ``weighted`` - convex weights over RF, GB, transformer and the training mean (grid, step 0.05),
  minimising MAE on the inner out-of-fold predictions;
* ``stack`` - non-negative linear regression with intercept on the same predictions;
* ``weighted-trees``, ``stack-trees`` - the same over RF, GB and the mean only: what
  :class:`nc_synthmodel.models.forest.SynthesisForest` (``size_model="weighted"/"stack"``) ships
  (:func:`~nc_synthmodel.models.forest.fit_combination` does the fitting in both places).

The ensembles' inner scores are cross-fitted (weights fitted on four inner folds' predictions,
scored on the fifth), so they compete with the single models on equal terms; their outer
weights are fitted on all inner predictions.

Writes ``benchmarks/results/synthesis_selection.md`` and ``.json``::

    python benchmarks/synthesis_selection.py --descriptors computed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.evaluation import (
    grouped_folds,
    paper_folds,
    publication_groups,
    read_paper_predictions,
    regression_metrics,
)
from nc_synthmodel.files import atomic_write_bytes
from nc_synthmodel.io import read_recipes, read_roles
from nc_synthmodel.models import make_model
from nc_synthmodel.models.forest import combine_members, fit_combination

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TREES = ("RF", "GB")
TRANSFORMER_CACHE = {"paper": "transformer-aug.json", "grouped": "transformer-aug-grouped.json"}
MEMBERS = ("RF", "GB", "transformer", "mean")
#: In order of simplicity: on equal inner scores the first (simpler) one is chosen.
CANDIDATES = ("RF", "GB", "transformer", "weighted-trees", "stack-trees", "weighted", "stack")
TRAIN_MAX_NM = 20.0


# ---------------------------------------------------------------------- ensembles

#: ensemble candidate -> (combination kind, member columns of MEMBERS it combines)
ENSEMBLES = {
    "weighted": ("weighted", (0, 1, 2, 3)),
    "stack": ("stack", (0, 1, 2, 3)),
    "weighted-trees": ("weighted", (0, 1, 3)),
    "stack-trees": ("stack", (0, 1, 3)),
}


def _fit_ensemble(name, P, y, ensembles=ENSEMBLES):
    kind, cols = ensembles[name]
    return fit_combination(kind, P[:, cols], y)


def _apply_ensemble(name, combination, P, ensembles=ENSEMBLES):
    return combine_members(combination, P[:, ensembles[name][1]])


# ---------------------------------------------------------------------- folds


def _folds(protocol: str, recipes: list, groups, train_max=None, random_state: int = 0):
    if protocol == "paper":
        return paper_folds(recipes, train_max_size_nm=train_max, random_state=random_state)
    return grouped_folds(recipes, groups, train_max_size_nm=train_max, random_state=random_state)


def _size(recipes) -> np.ndarray:
    return np.array([np.nan if r.outcome is None or r.outcome.size_nm is None else r.outcome.size_nm for r in recipes])


def _fit_predict(name: str, table, recipes: list, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    train = train[~(y[train] > TRAIN_MAX_NM)]  # trees: recipes <= 20 nm (unknown sizes are skipped by fit)
    model = make_model(name, table, n_jobs=1) if name == "RF" else make_model(name, table)
    model.fit([recipes[i] for i in train], y[train])
    return model.predict([recipes[i] for i in test])


def outer_oof(name: str, protocol: str, table, descriptors: str, recipes, groups, log) -> np.ndarray:
    """Out-of-fold predictions (NaN outside the pool) of a tree model on the outer folds, cached as JSON."""
    path = RESULTS / "synthesis" / f"{name}-{descriptors}-{protocol}.json"
    y = _size(recipes)
    if not path.is_file():
        out = {
            "name": name,
            "descriptors": descriptors,
            "protocol": protocol,
            "train_max_size_nm": TRAIN_MAX_NM,
            "index": [],
            "fold": [],
            "y_pred": [],
            "fit_seconds": [],
        }
        for k, (train, val) in enumerate(_folds(protocol, recipes, groups)):
            t0 = time.perf_counter()
            pred = _fit_predict(name, table, recipes, y, train, val)
            out["index"] += val.tolist()
            out["fold"] += [k] * len(val)
            out["y_pred"] += pred.tolist()
            out["fit_seconds"].append(time.perf_counter() - t0)
            log(f"[{protocol}] {name} ({descriptors}) outer fold {k + 1}: {out['fit_seconds'][-1]:.0f} s")
        out["fold_mean"] = {
            m: float(
                np.mean(
                    [
                        regression_metrics(
                            y[np.asarray(out["index"])[np.asarray(out["fold"]) == k]],
                            np.asarray(out["y_pred"])[np.asarray(out["fold"]) == k],
                        )[m]
                        for k in range(max(out["fold"]) + 1)
                    ]
                )
            )
            for m in ("MAE", "R2")
        }
        atomic_write_bytes(path, json.dumps(out).encode())
    data = json.loads(path.read_text())
    oof = np.full(len(recipes), np.nan)
    oof[np.asarray(data["index"])] = data["y_pred"]
    return oof


def _inner(protocol, table, recipes, y, groups, outer_train, oof, mode, log):
    """Inner out-of-fold predictions (pool rows of the outer training set x members) and inner fold ids.

    ``mode="refit"``: the outer rule applied to the outer training recipes, the trees refitted per
    inner fold.  ``mode="cached"``: the other outer folds are the inner folds and every member's
    inner predictions are its cached outer out-of-fold predictions (models that trained on the
    outer fold as well: approximate).  The transformer is always ``oof["transformer"]``.
    """
    if mode == "cached":
        rows = outer_train[np.isfinite(oof["transformer"][outer_train])]
        fold_id = oof["fold"][rows].astype(int)
        P = np.column_stack([oof[m][rows] if m != "mean" else np.full(len(rows), np.nan) for m in MEMBERS])
        for j in np.unique(fold_id):  # the mean member: mean of what that inner fold's model trained on
            train = outer_train[(oof["fold"][outer_train] != j)]
            known = train[np.isfinite(y[train]) & ~(y[train] > TRAIN_MAX_NM)]
            P[fold_id == j, MEMBERS.index("mean")] = float(np.mean(y[known]))
        return rows, fold_id, P
    sub = [recipes[i] for i in outer_train]
    sub_groups = None if groups is None else [groups[i] for i in outer_train]
    inner = _folds(protocol, sub, sub_groups)
    rows, fold_id, preds = [], [], {m: [] for m in MEMBERS}
    for j, (tr, va) in enumerate(inner):
        g_tr, g_va = outer_train[tr], outer_train[va]
        for name in TREES:
            t0 = time.perf_counter()
            preds[name].append(_fit_predict(name, table, recipes, y, g_tr, g_va))
            log(f"    inner {j + 1}/{len(inner)} {name}: {time.perf_counter() - t0:.0f} s")
        preds["transformer"].append(oof["transformer"][g_va])
        known = g_tr[np.isfinite(y[g_tr]) & ~(y[g_tr] > TRAIN_MAX_NM)]
        preds["mean"].append(np.full(len(g_va), float(np.mean(y[known]))))
        rows.append(g_va)
        fold_id.append(np.full(len(g_va), j))
    rows = np.concatenate(rows)
    P = np.column_stack([np.concatenate(preds[m]) for m in MEMBERS])
    return rows, np.concatenate(fold_id), P


def _inner_scores(P, y_rows, fold_id, members=MEMBERS, ensembles=ENSEMBLES) -> dict[str, float]:
    """Inner MAE of every member column of ``P`` (but the mean) and, cross-fitted over the inner folds, of every ensemble."""
    scores = {m: float(np.mean(np.abs(P[:, i] - y_rows))) for i, m in enumerate(members) if m != "mean"}
    for name in ensembles:
        out = np.empty(len(y_rows))
        for j in np.unique(fold_id):
            fit = fold_id != j
            out[~fit] = _apply_ensemble(name, _fit_ensemble(name, P[fit], y_rows[fit], ensembles), P[~fit], ensembles)
        scores[name] = float(np.mean(np.abs(out - y_rows)))
    return scores


def run(protocol: str, table, recipes, groups, oof, mode, log) -> dict:
    y = _size(recipes)
    outer = _folds(protocol, recipes, groups)
    folds_out = []
    chosen_pred, fixed_pred = {}, {c: {} for c in CANDIDATES}
    for k, (train, val) in enumerate(outer):
        t0 = time.perf_counter()
        log(f"[{protocol}] outer fold {k + 1}/{len(outer)}: {len(train)} train, {len(val)} validation")
        rows, fold_id, P_in = _inner(protocol, table, recipes, y, groups, train, oof, mode, log)
        scores = _inner_scores(P_in, y[rows], fold_id)
        choice = min(CANDIDATES, key=lambda c: scores[c])
        # outer predictions of every member: trees fitted on the whole outer training set (cached)
        outer_p = {name: oof[name][val] for name in (*TREES, "transformer")}
        known = train[np.isfinite(y[train]) & ~(y[train] > TRAIN_MAX_NM)]
        outer_p["mean"] = np.full(len(val), float(np.mean(y[known])))
        P_out = np.column_stack([outer_p[m] for m in MEMBERS])
        combiners = {name: _fit_ensemble(name, P_in, y[rows]) for name in ENSEMBLES}
        for c in CANDIDATES:
            pred = outer_p[c] if c in outer_p else _apply_ensemble(c, combiners[c], P_out)
            fixed_pred[c].update(zip(val.tolist(), pred.tolist()))
        chosen_pred.update((v, fixed_pred[choice][v]) for v in val.tolist())
        fold = {
            "fold": k,
            "inner_MAE": scores,
            "choice": choice,
            "combinations": {
                name: {"intercept": c["intercept"], **dict(zip([MEMBERS[i] for i in ENSEMBLES[name][1]], c["weights"]))}
                for name, c in combiners.items()
            },
            "inner_predictions": {
                "index": rows.tolist(),
                "fold": fold_id.tolist(),
                **{m: P_in[:, i].tolist() for i, m in enumerate(MEMBERS)},
            },
            "outer": {c: regression_metrics(y[val], np.array([fixed_pred[c][v] for v in val.tolist()])) for c in CANDIDATES},
            "seconds": time.perf_counter() - t0,
        }
        fold["outer"]["nested"] = fold["outer"][choice]
        log(
            f"[{protocol}] fold {k + 1}: inner "
            + ", ".join(f"{c} {s:.3f}" for c, s in scores.items())
            + f" -> {choice}; outer MAE {fold['outer'][choice]['MAE']:.3f} ({fold['seconds']:.0f} s)"
        )
        folds_out.append(fold)
    val_all = np.concatenate([v for _, v in outer])
    summary = {}
    for c in (*CANDIDATES, "nested"):
        per_fold = [f["outer"][c] for f in folds_out]
        source = chosen_pred if c == "nested" else fixed_pred[c]
        pred = np.array([source[v] for v in val_all.tolist()])
        summary[c] = {
            "fold_mean": {m: float(np.mean([p[m] for p in per_fold])) for m in per_fold[0]},
            "pooled": regression_metrics(y[val_all], pred),
        }
    return {
        "protocol": protocol,
        "folds": folds_out,
        "summary": summary,
        "index": val_all.tolist(),
        "y_true": y[val_all].tolist(),
        "predictions": {c: [fixed_pred[c][v] for v in val_all.tolist()] for c in CANDIDATES},
        "nested_predictions": [chosen_pred[v] for v in val_all.tolist()],
    }


# ---------------------------------------------------------------------- report


def _report(results: dict, args, seconds: float, split_ok: bool, merged: int = 0) -> str:
    how = (
        f" (the protocols ran side by side, one process each with `--protocols`, merged with `--merge`; "
        f"{seconds / 60:.0f} min for the slower)"
        if merged
        else f" ({seconds / 60:.0f} min)"
    )
    lines = [
        "## Nested model selection (issue 18)",
        "",
        f"Command: `python benchmarks/synthesis_selection.py --descriptors {args.descriptors} --inner {args.inner}` "
        f"({time.strftime('%Y-%m-%d')}; {platform.machine()}, {os.cpu_count()} CPU cores shared with other work, no GPU, "
        f"Python {platform.python_version()}){how}.",
        "",
        f"Split proof (paper split): **{'PASS' if split_ok else 'FAIL'}**.  Trees use the "
        f"`{args.descriptors}` descriptor table; the transformer's predictions are the cached Uni-Mol ones "
        "(see the script's docstring for what is and is not refitted inside the inner folds).",
        "",
    ]
    for protocol, res in results.items():
        lines += [
            f"### {protocol} split",
            "",
            "| candidate | MAE nm (fold mean) | R² % (fold mean) | MAE nm (pooled) | R² % (pooled) |",
            "|---|---:|---:|---:|---:|",
        ]
        for c, s in res["summary"].items():
            label = "**nested choice (inner folds pick, outer folds score)**" if c == "nested" else c
            lines.append(
                f"| {label} | {s['fold_mean']['MAE']:.3f} | {100 * s['fold_mean']['R2']:.1f} "
                f"| {s['pooled']['MAE']:.3f} | {100 * s['pooled']['R2']:.1f} |"
            )
        lines += [
            "",
            "| outer fold | inner MAE: " + " / ".join(CANDIDATES) + " | choice | outer MAE of choice "
            "| combinations fitted on the inner predictions (intercept; weights) |",
            "|---|---|---|---:|---|",
        ]
        for f in res["folds"]:
            combos = "; ".join(
                f"{name} {c['intercept']:.2f} + " + ", ".join(f"{m} {w:.2f}" for m, w in c.items() if m != "intercept")
                for name, c in f["combinations"].items()
            )
            lines.append(
                f"| {f['fold'] + 1} | "
                + " / ".join(f"{f['inner_MAE'][c]:.3f}" for c in CANDIDATES)
                + f" | {f['choice']} | {f['outer']['nested']['MAE']:.3f} | {combos} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def load_data(datasets: str, descriptors: str, protocols) -> tuple[list, DescriptorTable, dict]:
    """The Gu et al. recipes, the trees' descriptor table and each protocol's groups (None for paper)."""
    gu = Path(datasets) / "gu2025"
    recipes = list(read_recipes(gu / "recipes.csv", roles=read_roles(gu / "chemical_abbreviations.xlsx")))
    if descriptors == "unimol":
        table = DescriptorTable.from_npz(gu / "unimol_descriptors.npz")
    else:
        from nc_synthmodel.computed import ComputedDescriptors

        names = sorted({c.name for r in recipes for c in r.chemicals})
        table = ComputedDescriptors().fit(names).to_table(names)
    groups = {p: publication_groups(recipes, gu / "raw_recipe_dataset.xlsx") if p == "grouped" else None for p in protocols}
    return recipes, table, groups


def default_datasets() -> str:
    """``NANOCRYSTAL_DATASETS``, else ``shared/datasets`` beside the repository."""
    return os.environ.get("NANOCRYSTAL_DATASETS", str(REPO.parent / "shared" / "datasets"))


def stderr_log(text: str) -> None:
    """The benchmarks' progress log: one flushed line on stderr."""
    print(text, file=sys.stderr, flush=True)


def protocols_cli(description: str, report_help: str = "write the report from the cached folds") -> argparse.ArgumentParser:
    """The per-fold benchmarks' command line: ``--datasets``, ``--protocols`` (run them; the caches resume)
    and ``--report`` (write the report from the caches)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=default_datasets())
    parser.add_argument("--protocols", nargs="+", choices=("paper", "grouped"), default=[])
    parser.add_argument("--report", action="store_true", help=report_help)
    return parser


def complete_caches(path_of, n_folds: int, log) -> dict[str, dict]:
    """The per-fold caches (``path_of(protocol)``, JSON with a ``folds`` list) of the protocols that hold all
    ``n_folds`` folds, by protocol; an incomplete or missing one is logged and left out of the report."""
    caches = {}
    for protocol in ("paper", "grouped"):
        path = path_of(protocol)
        data = json.loads(path.read_text()) if path.is_file() else {"folds": []}
        if len(data["folds"]) < n_folds:
            log(f"{path}: {len(data['folds'])} of {n_folds} folds; not reported")
            continue
        caches[protocol] = data
    return caches


def run_protocols(datasets: str, protocols, runner, log) -> None:
    """Load the recipes once (computed descriptors) and run ``runner(protocol, table, recipes, groups, log)``
    for each protocol, logging its wall time: the per-fold benchmarks' run step."""
    recipes, table, groups = load_data(datasets, "computed", protocols)
    for protocol in protocols:
        started = time.perf_counter()
        runner(protocol, table, recipes, groups[protocol], log)
        log(f"[{protocol}] {time.perf_counter() - started:.0f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=default_datasets())
    parser.add_argument(
        "--descriptors",
        choices=("computed", "unimol"),
        default="computed",
        help="descriptor table of the trees (computed: the shipped model's)",
    )
    parser.add_argument("--protocols", nargs="+", choices=("paper", "grouped"), default=["paper", "grouped"])
    parser.add_argument(
        "--inner",
        choices=("refit", "cached"),
        default="refit",
        help="refit: trees refitted in every inner fold (nested); cached: inner predictions are the "
        "cached outer out-of-fold ones (approximate, no refits)",
    )
    parser.add_argument("--out", default=None, help="report path without suffix (default results/synthesis_selection_INNER)")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="only merge the .json outputs of runs with one --protocols each (run side by side) into one report",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        results = {k: v for part in parts for k, v in part["results"].items()}
        seconds = max(part["seconds"] for part in parts)
        out = Path(args.out or RESULTS / f"synthesis_selection_{args.inner}")
        atomic_write_bytes(
            out.with_suffix(".json"),
            json.dumps({"descriptors": args.descriptors, "seconds": seconds, "merged": len(parts), "results": results}).encode(),
        )
        atomic_write_bytes(out.with_suffix(".md"), _report(results, args, seconds, True, merged=len(parts)).encode())
        return 0
    recipes, table, groups = load_data(args.datasets, args.descriptors, args.protocols)
    gu = Path(args.datasets) / "gu2025"
    paper_true, _ = read_paper_predictions(gu / "paper_cv_size_predictions.csv")
    ours = np.concatenate([_size([recipes[i] for i in val]) for _, val in paper_folds(recipes)])
    split_ok = ours.shape == paper_true.shape and np.allclose(ours, paper_true, rtol=0, atol=1e-9)
    print(f"split proof: {'PASS' if split_ok else 'FAIL'}", flush=True)
    if not split_ok:
        return 1
    log = stderr_log
    oofs = {}
    for protocol in args.protocols:  # first every outer fit (the candidates' plain cross-validation)
        cache = json.loads((RESULTS / "synthesis" / TRANSFORMER_CACHE[protocol]).read_text())
        oof = {"transformer": np.full(len(recipes), np.nan), "fold": np.full(len(recipes), -1)}
        oof["transformer"][np.asarray(cache["index"])] = cache["y_pred"]
        oof["fold"][np.asarray(cache["index"])] = cache["fold"]
        for name in TREES:
            oof[name] = outer_oof(name, protocol, table, args.descriptors, recipes, groups[protocol], log)
        oofs[protocol] = oof
    results = {}
    for protocol in args.protocols:
        results[protocol] = run(protocol, table, recipes, groups[protocol], oofs[protocol], args.inner, log)
    seconds = time.perf_counter() - started
    out = Path(args.out or RESULTS / f"synthesis_selection_{args.inner}")
    atomic_write_bytes(
        out.with_suffix(".json"), json.dumps({"descriptors": args.descriptors, "seconds": seconds, "results": results}).encode()
    )
    atomic_write_bytes(out.with_suffix(".md"), _report(results, args, seconds, split_ok).encode())
    print(_report(results, args, seconds, split_ok))
    return 0


if __name__ == "__main__":
    sys.exit(main())
