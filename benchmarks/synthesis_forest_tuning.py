"""Nested tuning of the size forest (issue 18, fifth round): inner folds choose a setting, outer folds score it.

(~550 lines: two nested comparisons - the forest grid and the sixth round's ET / GB ensembles - share the
fold machinery, caches and report conventions here rather than in a third copy of them; the later rounds'
scripts take their reference models from here, :func:`reference_fit_predict`.)

The shipped default model is a :class:`~nc_synthmodel.models.forest.SynthesisForest` whose size model is
the ``RF`` baseline (300 trees, 1/3 of the features per split, ln-size target, trained on recipes
<= 20 nm).  This script asks whether another forest setting is better, without choosing on the
recipes it is scored on.  For each outer fold (the paper's 5 folds, or the 5 publication-grouped
folds; :func:`synthesis_selection._folds`) every candidate of :data:`GRID` is cross-validated inside the
outer training set only (inner folds by the same rule applied to the outer training recipes), the
one with the lowest inner MAE (pooled over the inner folds; ties go to the earlier entry, the
shipped setting first) is the fold's choice, and the outer fold scores it.  Every candidate is also
fitted on the whole outer training set, so each one's own cross-validation is reported beside the
procedure's ("nested choice"), with a paired bootstrap against the shipped forest (``rf``, whose
outer predictions equal ``results/synthesis/RF-computed-*.json``).

"The procedure applied to all recipes" (what a shipped model would be) is the candidate with the
lowest outer cross-validation MAE of a protocol: those outer folds are the inner folds of the whole
data set.

The inner fits grow N_INNER_TREES = 50 trees, the outer ones 300 (the shipped count).  Every candidate is a :class:`~nc_synthmodel.models.baselines.FlatFeatureRegressor` (encoder fitted on
the training recipes given to it, as the shipped model's) with one thread.  Results are cached per
outer fold in ``results/synthesis_forest_tuning_PROTOCOL.json`` (a rerun resumes); the protocols can
run side by side (``--protocols paper`` / ``grouped``, then ``--report``)::

    python benchmarks/synthesis_forest_tuning.py --protocols paper
    python benchmarks/synthesis_forest_tuning.py --protocols grouped
    python benchmarks/synthesis_forest_tuning.py --report

Sixth round, ``--ensembles``: the same nested protocol over the shipped size forest (``et-mf0.5``),
the ``GB`` preset and their convex-weighted / stacked ensembles with the training mean (what
``SynthesisForest(size_model="weighted"/"stack", members=["ET", "GB"], max_features=0.5)`` fits).  ET is
refitted in every inner fold with N_INNER_TREES trees, as the grid's inner fits; GB's inner predictions are
those ``synthesis_selection.py --inner refit`` made on the same inner folds (deterministic: one inner fit
per protocol is redone and compared), the outer ones are ET's of the grid (``et-mf0.5``, 300 trees) and
the cached GB preset's; the ensembles' inner scores are cross-fitted over the inner folds
(``synthesis_selection._inner_scores``), their outer weights fitted on all inner predictions.  Cached per fold in ``results/synthesis_ensemble_PROTOCOL.json``; report
``results/synthesis_ensemble.md``, paired against ET and against GB::

    python benchmarks/synthesis_forest_tuning.py --ensembles --protocols paper
    python benchmarks/synthesis_forest_tuning.py --ensembles --protocols grouped
    python benchmarks/synthesis_forest_tuning.py --ensembles --report

``--extra NAME`` adds single boosting settings of :data:`EXTRA` to those candidates (own caches and report,
suffix ``_extra``), fitted in every inner and outer fold.

The ensemble report ends with a post-hoc diagnostic (nothing is chosen by it): ET's and GB's outer errors by
the distance of a test recipe to its nearest training recipe (standardised flat features).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from nc_synthmodel.evaluation import regression_metrics
from nc_synthmodel.evaluation.compare import paired_comparison
from nc_synthmodel.files import atomic_write_bytes
from nc_synthmodel.models.baselines import BASELINES, FlatFeatureRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis_selection import (  # noqa: E402
    RESULTS,
    _apply_ensemble,
    _fit_ensemble,
    _folds,
    _inner_scores,
    _size,
    complete_caches,
    load_data,
    protocols_cli,
    run_protocols,
    stderr_log,
)
from synthesis_selection import _fit_predict as preset_fit_predict  # noqa: E402

#: name -> forest setting; the first entry is the shipped model's size forest.
GRID: dict[str, dict] = {
    "rf": {"kind": "RF", "max_features": 1 / 3, "min_samples_leaf": 1, "log_target": True, "cap": 20.0},
    "rf-mf0.2": {"kind": "RF", "max_features": 0.2, "min_samples_leaf": 1, "log_target": True, "cap": 20.0},
    "rf-leaf2": {"kind": "RF", "max_features": 1 / 3, "min_samples_leaf": 2, "log_target": True, "cap": 20.0},
    "rf-nm": {"kind": "RF", "max_features": 1 / 3, "min_samples_leaf": 1, "log_target": False, "cap": 20.0},
    "rf-cap30": {"kind": "RF", "max_features": 1 / 3, "min_samples_leaf": 1, "log_target": True, "cap": 30.0},
    "et-mf1/3": {"kind": "ET", "max_features": 1 / 3, "min_samples_leaf": 1, "log_target": True, "cap": 20.0},
    "et-mf0.5": {"kind": "ET", "max_features": 0.5, "min_samples_leaf": 1, "log_target": True, "cap": 20.0},
}
SHIPPED = "rf"
N_TREES = 300
#: Trees of the inner fits (the outer fits have N_TREES): 6x less work on 2 shared cores (the
#: run had ~0.1 core per process); the inner MAEs only rank the candidates.
N_INNER_TREES = 50


def make_regressor(table, setting: dict, n_trees: int = N_TREES) -> FlatFeatureRegressor:
    """The candidate as the shipped model builds its size forest (the ``RF`` / ``ET`` baseline, seed 0, one thread)."""
    return BASELINES[setting["kind"]](
        table,
        random_state=0,
        n_estimators=n_trees,
        max_features=setting["max_features"],
        min_samples_leaf=setting["min_samples_leaf"],
        n_jobs=1,
        log_target=setting["log_target"],
        unknown_product="zeros",
    )


def fit_predict(table, setting: dict, recipes, y, train: np.ndarray, test: np.ndarray, n_trees: int = N_TREES) -> np.ndarray:
    train = train[~(y[train] > setting["cap"])]  # unknown sizes stay (the encoder sees them), as in the benchmark
    model = make_regressor(table, setting, n_trees).fit([recipes[i] for i in train], y[train])
    return model.predict([recipes[i] for i in test])


#: The reference size models every later round compares with (:func:`reference_fit_predict`).
REFERENCES = ("ET", "GB")


def reference_fit_predict(name: str, table, recipes, y, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Predictions of a reference size model fitted on ``train``: ``ET`` (the shipped size member,
    :data:`GRID` ``et-mf0.5``) or ``GB`` (the preset)."""
    if name == "ET":
        return fit_predict(table, GRID["et-mf0.5"], recipes, y, train, test)
    if name == "GB":
        return preset_fit_predict("GB", table, recipes, y, train, test)
    raise ValueError(f"not a reference model: {name!r}; choose one of {REFERENCES}")


def run_fold(protocol, table, recipes, y, groups, k, train, val, log) -> dict:
    sub = [recipes[i] for i in train]
    sub_groups = None if groups is None else [groups[i] for i in train]
    inner = _folds(protocol, sub, sub_groups)
    rows = np.concatenate([train[va] for _, va in inner])
    inner_pred = {c: [] for c in GRID}
    t0 = time.perf_counter()
    for j, (tr, va) in enumerate(inner):
        for name, setting in GRID.items():
            t = time.perf_counter()
            inner_pred[name].append(fit_predict(table, setting, recipes, y, train[tr], train[va], N_INNER_TREES))
            log(f"[{protocol}] outer {k + 1} inner {j + 1}/{len(inner)} {name}: {time.perf_counter() - t:.1f} s")
    inner_pred = {c: np.concatenate(p) for c, p in inner_pred.items()}
    inner_mae = {c: float(np.mean(np.abs(p - y[rows]))) for c, p in inner_pred.items()}
    choice = min(GRID, key=lambda c: inner_mae[c])  # dicts keep order: ties go to the earlier entry
    outer = {}
    for name, setting in GRID.items():
        outer[name] = fit_predict(table, setting, recipes, y, train, val).tolist()
    log(
        f"[{protocol}] outer {k + 1}: inner "
        + ", ".join(f"{c} {m:.3f}" for c, m in inner_mae.items())
        + f" -> {choice}; outer MAE {np.mean(np.abs(np.asarray(outer[choice]) - y[val])):.3f} ({time.perf_counter() - t0:.0f} s)"
    )
    return {
        "fold": k,
        "val": val.tolist(),
        "inner_MAE": inner_mae,
        "choice": choice,
        "outer_pred": outer,
        "seconds": time.perf_counter() - t0,
    }


def _cache(protocol: str) -> Path:
    return RESULTS / f"synthesis_forest_tuning_{protocol}.json"


def run(protocol, table, recipes, groups, log) -> None:
    y = _size(recipes)
    path = _cache(protocol)
    spec = {"protocol": protocol, "grid": GRID, "trees": [N_TREES, N_INNER_TREES]}
    done = json.loads(path.read_text()) if path.is_file() else {**spec, "folds": []}
    if {k: done.get(k) for k in spec} != json.loads(json.dumps(spec)):
        raise SystemExit(f"{path}: made with another grid; move it away to rerun")
    for k, (train, val) in enumerate(_folds(protocol, recipes, groups)):
        if k < len(done["folds"]):
            continue
        done["folds"].append(run_fold(protocol, table, recipes, y, groups, k, train, val, log))
        done["y_true"] = y.tolist()
        atomic_write_bytes(path, json.dumps(done).encode())


# ---------------------------------------------------------------------- report


def summarise(data: dict, shipped_path: Path | None) -> dict:
    y = np.asarray(data["y_true"], dtype=float)
    folds = data["folds"]
    index = np.concatenate([f["val"] for f in folds])
    preds = {c: np.concatenate([f["outer_pred"][c] for f in folds]) for c in GRID}
    preds["nested"] = np.concatenate([f["outer_pred"][f["choice"]] for f in folds])
    out = {"index": index.tolist(), "choices": [f["choice"] for f in folds], "rows": {}}
    for c, p in preds.items():
        per_fold = []
        start = 0
        for f in folds:
            n = len(f["val"])
            per_fold.append(regression_metrics(y[f["val"]], p[start : start + n]))
            start += n
        paired = paired_comparison(p, preds[SHIPPED], y[index], n_boot=2000) if c != SHIPPED else None
        out["rows"][c] = {
            "fold_mean": {m: float(np.mean([q[m] for q in per_fold])) for m in ("MAE", "R2")},
            "per_fold_MAE": [q["MAE"] for q in per_fold],
            "pooled": regression_metrics(y[index], p),
            "vs_shipped": paired,
        }
    if shipped_path is not None and shipped_path.is_file():  # the shipped forest's own cached outer predictions
        cached = json.loads(shipped_path.read_text())
        ref = dict(zip(cached["index"], cached["y_pred"]))
        out["rf_equals_cached"] = bool(np.allclose([ref[i] for i in index.tolist()], preds[SHIPPED], rtol=0, atol=1e-9))
    return out


def report(summaries: dict, seconds: dict) -> str:
    lines = [
        "## Nested tuning of the size forest (issue 18, fifth round)",
        "",
        "Command: `python benchmarks/synthesis_forest_tuning.py --protocols paper` and `--protocols grouped` side by side, "
        f"then `--report` ({time.strftime('%Y-%m-%d')}; {platform.machine()}, {os.cpu_count()} CPU cores shared with other "
        f"work, nice 15, one thread per process; "
        + ", ".join(f"{p} {s / 60:.0f} min" for p, s in seconds.items())
        + ").  Computed descriptors (the shipped model's).  Inner folds choose (lowest pooled inner MAE), outer folds score.",
        "",
        "Grid: "
        + "; ".join(f"`{c}` {GRID[c]}" for c in GRID)
        + f" ({N_TREES} trees in the outer fits, {N_INNER_TREES} in the inner ones; seed 0; `cap`: training recipes <= cap nm).",
        "",
    ]
    for protocol, s in summaries.items():
        lines += [
            f"### {protocol} split",
            "",
            f"`rf` reproduces the shipped forest's cached outer predictions: {s.get('rf_equals_cached')}.  "
            f"Inner choices per outer fold: {', '.join(s['choices'])}.",
            "",
            "| candidate | MAE nm fold mean | R² % fold mean | MAE nm pooled | R² % pooled | per-fold MAE "
            "| vs shipped forest: Δ|error| nm [95 % CI], Wilcoxon p |",
            "|---|---:|---:|---:|---:|---|---|",
        ]
        for c, r in s["rows"].items():
            v = r["vs_shipped"]
            vs = "–" if v is None else f"{v['mean_abs_error_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}], p {v['wilcoxon_p']:.2g}"
            label = "**nested choice**" if c == "nested" else f"`{c}`"
            lines.append(
                f"| {label} | {r['fold_mean']['MAE']:.3f} | {100 * r['fold_mean']['R2']:.1f} | {r['pooled']['MAE']:.3f} "
                f"| {100 * r['pooled']['R2']:.1f} | {' '.join(f'{m:.2f}' for m in r['per_fold_MAE'])} | {vs} |"
            )
        best = min(GRID, key=lambda c: s["rows"][c]["pooled"]["MAE"])
        lines += [
            "",
            f"The procedure applied to all recipes with this protocol (lowest outer CV MAE, pooled) picks `{best}`.",
            "",
        ]
    for protocol, s in summaries.items():
        lines += [f"Inner MAE per outer fold ({protocol}):", "", "| outer fold | " + " | ".join(GRID) + " | choice |"]
        lines.append("|---|" + "---:|" * len(GRID) + "---|")
        for f in s["folds"]:
            lines.append(f"| {f['fold'] + 1} | " + " | ".join(f"{f['inner_MAE'][c]:.3f}" for c in GRID) + f" | {f['choice']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- ET + GB ensembles (sixth round)

#: Members (columns of the inner / outer prediction matrices): the shipped size forest, the GB preset, the mean.
ENSEMBLE_MEMBERS = ("ET", "GB", "mean")
#: ensemble candidate -> (combination kind, member columns), as ``synthesis_selection.ENSEMBLES``.
ENSEMBLES = {"weighted": ("weighted", (0, 1, 2)), "stack": ("stack", (0, 1, 2))}
#: Candidates in order of simplicity: on equal inner scores the earlier one is chosen.
ENSEMBLE_CANDIDATES = ("ET", "GB", "weighted", "stack")
ENSEMBLE_CAP_NM = 20.0
#: Further single candidates (``--extra``): GB factory parameters beyond the preset's (seed 0, <= 20 nm).
EXTRA = {"gb-leaf5-it1000": {"min_samples_leaf": 5, "max_iter": 1000}}
_MIN_SIZE_NM = 0.1  # SynthesisForest's floor under an ensemble's prediction


def _mean_member(y, train: np.ndarray, n: int) -> np.ndarray:
    known = train[np.isfinite(y[train]) & ~(y[train] > ENSEMBLE_CAP_NM)]
    return np.full(n, float(np.mean(y[known])))


def _cached_members(protocol: str) -> dict:
    """GB's inner predictions per outer fold (``synthesis_selection_refit.json``), ET's and GB's outer predictions."""
    selection = json.loads((RESULTS / "synthesis_selection_refit.json").read_text())
    if selection["descriptors"] != "computed":
        raise SystemExit("synthesis_selection_refit.json was not made with the computed descriptors")
    inner = [
        dict(zip(f["inner_predictions"]["index"], zip(f["inner_predictions"]["fold"], f["inner_predictions"]["GB"])))
        for f in selection["results"][protocol]["folds"]
    ]
    tuning = json.loads(_cache(protocol).read_text())
    et = [dict(zip(f["val"], f["outer_pred"]["et-mf0.5"])) for f in tuning["folds"]]
    gb = json.loads((RESULTS / "synthesis" / f"GB-computed-{protocol}.json").read_text())
    return {"gb_inner": inner, "et_outer": et, "gb_outer": dict(zip(gb["index"], gb["y_pred"]))}


def _extra_fit_predict(name, table, recipes, y, train, test):
    train = train[~(y[train] > ENSEMBLE_CAP_NM)]
    model = BASELINES["GB"](table, random_state=0, **EXTRA[name]).fit([recipes[i] for i in train], y[train])
    return model.predict([recipes[i] for i in test])


def run_ensemble_fold(protocol, table, recipes, y, groups, k, train, val, cached, log, extras=()) -> dict:
    sub = [recipes[i] for i in train]
    sub_groups = None if groups is None else [groups[i] for i in train]
    t0 = time.perf_counter()
    rows, fold_id, P_in, check = [], [], [], None
    extra_in = {name: [] for name in extras}
    for j, (tr, va) in enumerate(_folds(protocol, sub, sub_groups)):
        t = time.perf_counter()
        g_tr, g_va = train[tr], train[va]
        et = fit_predict(table, GRID["et-mf0.5"], recipes, y, g_tr, g_va, N_INNER_TREES)
        for name in extras:
            extra_in[name].append(_extra_fit_predict(name, table, recipes, y, g_tr, g_va))
        gb_fold = {cached["gb_inner"][k][i][0] for i in g_va.tolist()}
        if gb_fold != {j}:
            raise SystemExit(f"[{protocol}] outer {k + 1} inner {j + 1}: the cached GB inner folds differ ({gb_fold})")
        gb = np.array([cached["gb_inner"][k][i][1] for i in g_va.tolist()])
        if k == 0 and j == 0:  # the cache is deterministic: redo this one GB fit and compare
            check = bool(np.allclose(preset_fit_predict("GB", table, recipes, y, g_tr, g_va), gb, rtol=0, atol=1e-9))
        P_in.append(np.column_stack([et, gb, _mean_member(y, g_tr, len(g_va))]))
        rows.append(g_va)
        fold_id.append(np.full(len(va), j))
        log(f"[{protocol}] outer {k + 1} inner {j + 1}: {time.perf_counter() - t:.0f} s")
    rows, fold_id, P_in = np.concatenate(rows), np.concatenate(fold_id), np.concatenate(P_in)
    if len(rows) != len(cached["gb_inner"][k]):
        raise SystemExit(f"[{protocol}] outer {k + 1}: {len(rows)} inner rows, the GB cache has {len(cached['gb_inner'][k])}")
    scores = _inner_scores(P_in, y[rows], fold_id, ENSEMBLE_MEMBERS, ENSEMBLES)
    scores.update({name: float(np.mean(np.abs(np.concatenate(p) - y[rows]))) for name, p in extra_in.items()})
    choice = min((*ENSEMBLE_CANDIDATES, *extras), key=lambda c: scores[c])  # ties go to the earlier (simpler) one
    P_out = np.column_stack(
        [
            [cached["et_outer"][k][i] for i in val.tolist()],
            [cached["gb_outer"][i] for i in val.tolist()],
            _mean_member(y, train, len(val)),
        ]
    )
    combinations = {c: _fit_ensemble(c, P_in, y[rows], ENSEMBLES) for c in ENSEMBLES}
    outer = {"ET": P_out[:, 0], "GB": P_out[:, 1]}
    for c, combination in combinations.items():
        outer[c] = np.maximum(_apply_ensemble(c, combination, P_out, ENSEMBLES), _MIN_SIZE_NM)
    for name in extras:
        outer[name] = _extra_fit_predict(name, table, recipes, y, train, val)
    log(
        f"[{protocol}] outer {k + 1}: inner "
        + ", ".join(f"{c} {m:.3f}" for c, m in scores.items())
        + f" -> {choice}; outer MAE {np.mean(np.abs(outer[choice] - y[val])):.3f} ({time.perf_counter() - t0:.0f} s)"
    )
    return {
        "fold": k,
        "val": val.tolist(),
        "inner_MAE": scores,
        "choice": choice,
        "combinations": combinations,
        "outer_pred": {c: p.tolist() for c, p in outer.items()},
        "gb_refit_equals_cache": check,
        "seconds": time.perf_counter() - t0,
    }


def _ensemble_cache(protocol: str, extras=()) -> Path:
    return RESULTS / f"synthesis_ensemble_{protocol}{'_extra' if extras else ''}.json"


def run_ensembles(protocol, table, recipes, groups, log, extras=()) -> None:
    y = _size(recipes)
    path = _ensemble_cache(protocol, extras)
    spec = {
        "protocol": protocol,
        "members": {"ET": GRID["et-mf0.5"], "GB": "preset", **{name: EXTRA[name] for name in extras}},
        "trees": [N_TREES, N_INNER_TREES],
        "candidates": [*ENSEMBLE_CANDIDATES, *extras],
    }
    done = json.loads(path.read_text()) if path.is_file() else {**spec, "folds": []}
    if {k: done.get(k) for k in spec} != json.loads(json.dumps(spec)):
        raise SystemExit(f"{path}: made with other candidates; move it away to rerun")
    cached = _cached_members(protocol)
    for k, (train, val) in enumerate(_folds(protocol, recipes, groups)):
        if k < len(done["folds"]):
            continue
        done["folds"].append(run_ensemble_fold(protocol, table, recipes, y, groups, k, train, val, cached, log, extras))
        done["y_true"] = y.tolist()
        atomic_write_bytes(path, json.dumps(done).encode())


def summarise_ensembles(data: dict, protocol: str) -> dict:
    """Each candidate's and the procedure's outer metrics, paired against ET and GB; reproducibility checks."""
    y = np.asarray(data["y_true"], dtype=float)
    folds = data["folds"]
    index = np.concatenate([f["val"] for f in folds])
    preds = {c: np.concatenate([f["outer_pred"][c] for f in folds]) for c in data["candidates"]}
    preds["nested"] = np.concatenate([f["outer_pred"][f["choice"]] for f in folds])
    out = {"index": index.tolist(), "choices": [f["choice"] for f in folds], "rows": {}, "checks": {}}
    out["candidates"] = data["candidates"]
    for c, p in preds.items():
        per_fold, start = [], 0
        for f in folds:
            per_fold.append(regression_metrics(y[f["val"]], p[start : start + len(f["val"])]))
            start += len(f["val"])
        out["rows"][c] = {
            "fold_mean": {m: float(np.mean([q[m] for q in per_fold])) for m in ("MAE", "R2")},
            "per_fold_MAE": [q["MAE"] for q in per_fold],
            "pooled": regression_metrics(y[index], p),
            "vs": {ref: paired_comparison(p, preds[ref], y[index], n_boot=2000) for ref in ("ET", "GB") if ref != c},
        }
    out["checks"]["a GB inner fit redone equals its cached prediction"] = folds[0].get("gb_refit_equals_cache")
    return out


def distance_table(datasets: str) -> list[str]:
    """ET and GB outer MAE by quartile (over both splits) of each test recipe's distance to its nearest
    training recipe <= 20 nm: standardised flat features of an encoder fitted on the fold's training recipes."""
    from nc_synthmodel.features.encoding import RecipeEncoder
    from nc_synthmodel.features.flat import flat_features

    recipes, table, groups = load_data(datasets, "computed", ["paper", "grouped"])
    y = _size(recipes)
    rows = {}
    for protocol in ("paper", "grouped"):
        data = json.loads(_ensemble_cache(protocol).read_text())
        out = []
        for f, (train, val) in zip(data["folds"], _folds(protocol, recipes, groups[protocol])):
            bank = train[np.isfinite(y[train]) & ~(y[train] > ENSEMBLE_CAP_NM)]
            encoder = RecipeEncoder(table, unknown_product="zeros").fit([recipes[i] for i in train])
            A, B = (flat_features(encoder.transform([recipes[i] for i in idx])) for idx in (bank, val))
            mu, sd = A.mean(0), A.std(0) + 1e-9
            A, B = (A - mu) / sd, (B - mu) / sd
            d2 = (B**2).sum(1)[:, None] + (A**2).sum(1)[None, :] - 2 * B @ A.T
            errors = [np.abs(np.asarray(f["outer_pred"][c]) - y[val]) for c in ("ET", "GB")]
            out.append(np.column_stack([np.sqrt(np.maximum(d2.min(1), 0)), *errors]))
        rows[protocol] = np.concatenate(out)
    edges = np.quantile(np.concatenate([r[:, 0] for r in rows.values()]), [0, 0.25, 0.5, 0.75, 1])
    lines = [
        "### ET and GB by distance to the nearest training recipe (post-hoc diagnostic, nothing chosen by it)",
        "",
        "| split | distance (quartiles over both splits) | recipes | ET MAE nm | GB MAE nm | ET − GB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for protocol, r in rows.items():
        for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            m = (r[:, 0] >= lo) & ((r[:, 0] < hi) if i < len(edges) - 2 else (r[:, 0] <= hi))  # half-open bins, the last closed
            if m.any():
                et, gb = r[m, 1].mean(), r[m, 2].mean()
                lines.append(f"| {protocol} | {lo:.2f}–{hi:.2f} | {m.sum()} | {et:.3f} | {gb:.3f} | {et - gb:+.3f} |")
    return lines + [""]


def ensemble_report(summaries: dict, seconds: dict) -> str:
    extras = sorted({c for s in summaries.values() for c in s["candidates"] if c in EXTRA})
    flag = "".join(f" --extra {c}" for c in extras)
    lines = [
        "## ET + GB ensembles, nested (issue 18, sixth round)",
        "",
        f"Command: `python benchmarks/synthesis_forest_tuning.py --ensembles{flag} --protocols paper` and `--protocols grouped` "
        f"side by side, then `--ensembles{flag} --report` ({time.strftime('%Y-%m-%d')}; {platform.machine()}, {os.cpu_count()} CPU cores "
        "shared with other work, nice 15, one thread per process; "
        + ", ".join(f"{p} {s / 60:.0f} min" for p, s in seconds.items())
        + ").  Computed descriptors.  Candidates: `ET` (extra trees, 1/2 of the features, ln target: the shipped size "
        "member), `GB` (the preset), `weighted` (convex MAE weights over ET, GB, training mean) and `stack` (non-negative "
        "linear stack with intercept over the same); all trained <= 20 nm.  Inner folds (the outer rule inside each outer "
        f"training set) choose by pooled inner MAE (ensembles cross-fitted over the inner folds), the outer fold scores.  ET "
        f"grows {N_INNER_TREES} trees in the inner fits, {N_TREES} in the outer ones (the grid's `et-mf0.5` outer predictions); "
        "GB's inner and outer predictions are `synthesis_selection.py --inner refit`'s (same folds, deterministic).",
        "",
    ]
    if extras:
        lines += [
            "Further single candidates (GB factory parameters beyond the preset's; fitted in every inner fold and outer "
            "fold): " + "; ".join(f"`{c}` {EXTRA[c]}" for c in extras) + ".",
            "",
        ]
    for protocol, s in summaries.items():
        lines += [
            f"### {protocol} split",
            "",
            f"Checks: {s['checks']}.  Inner choices per outer fold: {', '.join(s['choices'])}.",
            "",
            "| candidate | MAE nm fold mean | MAE nm pooled | R² % fold mean | R² % pooled | per-fold MAE "
            "| vs ET: Δ|error| nm [95 % CI] | vs GB: Δ|error| nm [95 % CI] |",
            "|---|---:|---:|---:|---:|---|---|---|",
        ]
        for c, r in s["rows"].items():
            vs = []
            for ref in ("ET", "GB"):
                v = r["vs"].get(ref)
                vs.append("–" if v is None else f"{v['mean_abs_error_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]")
            label = "**nested choice**" if c == "nested" else f"`{c}`"
            lines.append(
                f"| {label} | {r['fold_mean']['MAE']:.3f} | {r['pooled']['MAE']:.3f} | {100 * r['fold_mean']['R2']:.1f} "
                f"| {100 * r['pooled']['R2']:.1f} | {' '.join(f'{m:.2f}' for m in r['per_fold_MAE'])} | {vs[0]} | {vs[1]} |"
            )
        candidates = s["candidates"]
        best = min(candidates, key=lambda c: s["rows"][c]["pooled"]["MAE"])
        lines += ["", f"The procedure applied to all recipes with this protocol (lowest outer CV MAE, pooled) picks `{best}`.", ""]
        lines += ["| outer fold | " + " | ".join(candidates) + " (inner MAE) | choice | weights (intercept; ET, GB, mean) |"]
        lines.append("|---|" + "---:|" * len(candidates) + "---|---|")
        for f in s["folds"]:
            combos = "; ".join(
                f"{c} {v['intercept']:.2f}; " + ", ".join(f"{w:.2f}" for w in v["weights"]) for c, v in f["combinations"].items()
            )
            lines.append(
                f"| {f['fold'] + 1} | " + " | ".join(f"{f['inner_MAE'][c]:.3f}" for c in candidates) + f" | {f['choice']} | {combos} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = protocols_cli(__doc__)
    parser.add_argument("--ensembles", action="store_true", help="the sixth round's ET / GB / ensemble comparison instead of the grid")
    parser.add_argument("--extra", nargs="+", choices=list(EXTRA), default=[], help="with --ensembles: further single candidates")
    args = parser.parse_args(argv)
    log = stderr_log

    if args.ensembles:
        if args.protocols:
            run_protocols(args.datasets, args.protocols, partial(run_ensembles, extras=tuple(args.extra)), log)
        if args.report:
            summaries, seconds = {}, {}
            for protocol, data in complete_caches(partial(_ensemble_cache, extras=args.extra), 5, log).items():
                summaries[protocol] = summarise_ensembles(data, protocol)
                summaries[protocol]["folds"] = data["folds"]
                seconds[protocol] = sum(f["seconds"] for f in data["folds"])
            text = ensemble_report(summaries, seconds)
            if len(summaries) == 2 and not args.extra:
                text += "\n".join(distance_table(args.datasets)) + "\n"
            out = RESULTS / f"synthesis_ensemble{'_extra' if args.extra else ''}"
            atomic_write_bytes(out.with_suffix(".md"), text.encode())
            print(text)
        return 0
    if args.protocols:
        run_protocols(args.datasets, args.protocols, run, log)
    if args.report:
        summaries, seconds = {}, {}
        for protocol, data in complete_caches(_cache, 5, log).items():
            summaries[protocol] = summarise(data, RESULTS / "synthesis" / f"RF-computed-{protocol}.json")
            summaries[protocol]["folds"] = [{k: f[k] for k in ("fold", "inner_MAE", "choice")} for f in data["folds"]]
            seconds[protocol] = sum(f["seconds"] for f in data["folds"])
        text = report(summaries, seconds)
        out = RESULTS / "synthesis_forest_tuning"
        atomic_write_bytes(out.with_suffix(".md"), text.encode())
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
