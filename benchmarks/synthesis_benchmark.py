"""Size-model benchmark on the paper's protocol (Gu, Liang et al. 2025, Extended Data Table 1).

One command runs every model through the same 5-fold harness and writes
``benchmarks/results/synthesis.md`` (tables beside the paper's numbers, split proof,
paired comparison with the paper's own predictions, publication-grouped variant, wall
time and peak memory) plus a parity plot PNG::

    python benchmarks/synthesis_benchmark.py --datasets ../shared/datasets

Each model's cross-validation is cached as JSON under ``benchmarks/results/synthesis/``
(metrics and per-recipe predictions), so an interrupted run resumes where it stopped;
``--rerun`` recomputes.  ``--models`` picks a subset.
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

import numpy as np
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.evaluation import (
    CVResult,
    cross_validate,
    grouped_folds,
    paired_comparison,
    paper_folds,
    publication_groups,
    read_paper_predictions,
    regression_metrics,
)
from nc_synthmodel.io import atomic_path, atomic_write_bytes, read_recipes, read_roles
from nc_synthmodel.models import make_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: The transformer settings used on 2 CPU cores (the paper's 8 x 256 encoder is ~8x slower per epoch):
#: the authors' training choices (conditions in every token, robust-scaled nm target, weight EMA,
#: no dropout, the last epoch kept) with as many epochs as fit ~4 min per fold.  Chosen on a dev
#: split of fold 0's training recipes (20 % of its pool rows), never on a held-out fold.
TRANSFORMER_CPU = {
    "d_model": 128,
    "n_layers": 4,
    "n_heads": 4,
    "dim_feedforward": 256,
    "dropout": 0.0,
    "condition_tokens": True,
    "target_scale": "linear",
    "ema_decay": 0.99,
    "learning_rate": 2e-3,
    "finetune_lr_factor": 1.0,
    "validation_fraction": 0.0,
    "pretrain_epochs": 20,
    "finetune_epochs": 150,
    "finetune_max_size_nm": 20.0,
}

#: The transformers also score their held-out fold every this many fine-tune epochs (monitoring only),
#: to show what the authors' selection rule would report: their ``finetune.py`` scores the held-out fold
#: every 100 of 8,000 epochs and reports, per fold, the best score (``utils/eval_utils.evaluate_model``
#: keeps the minimum MAE); 150 epochs scored every 2 gives a similar number of candidates (75 vs 80).
MONITOR_EVERY = 2

#: key -> (label, registry name, parameters, train_max_size_nm, protocol)
MODELS: dict[str, tuple[str, str, dict, float | None, str]] = {
    "transformer-aug": ("Transformer + augmentation", "transformer", TRANSFORMER_CPU, None, "paper"),
    "transformer": ("Transformer", "transformer-noaug", TRANSFORMER_CPU, None, "paper"),
    "DT": ("Decision tree", "DT", {}, 20.0, "paper"),
    "RF": ("Random forest", "RF", {}, 20.0, "paper"),
    "GB": ("Gradient boosting", "GB", {}, 20.0, "paper"),
    "DNN": ("DNN (MLP)", "DNN", {}, 20.0, "paper"),
    "LSTM": ("LSTM", "LSTM", {}, 20.0, "paper"),
    "DT-all": ("Decision tree, all sizes", "DT", {}, None, "paper"),
    "RF-all": ("Random forest, all sizes", "RF", {}, None, "paper"),
    "transformer-aug-grouped": ("Transformer + augmentation", "transformer", TRANSFORMER_CPU, None, "grouped"),
    "RF-grouped": ("Random forest", "RF", {}, 20.0, "grouped"),
}

#: Unweighted means of cached per-recipe predictions (same folds): label -> member keys.
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "random forest + gradient boosting": ("RF", "GB"),
    "random forest + transformer + augmentation": ("RF", "transformer-aug"),
    "random forest + gradient boosting + transformer + augmentation": ("RF", "GB", "transformer-aug"),
}

#: Extended Data Table 1 of the paper (fold means); None where the paper gives no value.
PAPER = {
    "transformer-aug": {"MAE": 1.39, "MSE": 5.02, "RMSE": 2.23, "MAPE": 17.0, "R2": 0.719},
    "transformer": {"MAE": 1.44},
    "DT": {"MAE": 2.04},
    "RF": {"MAE": 1.63},
    "DNN": {"MAE": 3.36},
    "LSTM": {"MAE": 1.55},
}


def _load(datasets: Path):
    gu = datasets / "gu2025"
    roles = read_roles(gu / "chemical_abbreviations.xlsx")
    recipes = list(read_recipes(gu / "recipes.csv", roles=roles))
    table = DescriptorTable.from_npz(gu / "unimol_descriptors.npz")
    paper_true, paper_pred = read_paper_predictions(gu / "paper_cv_size_predictions.csv")
    return gu, recipes, table, paper_true, paper_pred


def _result_to_json(result: CVResult, params: dict) -> dict:
    return {
        "name": result.name,
        "params": params,
        "fold_metrics": result.fold_metrics,
        "fold_mean": result.fold_mean,
        "pooled": result.pooled,
        "index": result.index.tolist(),
        "fold": result.fold.tolist(),
        "y_true": result.y_true.tolist(),
        "y_pred": result.y_pred.tolist(),
        "fit_seconds": result.fit_seconds,
        "predict_seconds": result.predict_seconds,
        "peak_rss_mb": result.peak_rss_mb,
        "wall_seconds": result.wall_seconds,
        "memory_method": result.memory_method,
        "eval_histories": None
        if result.eval_histories is None
        else [
            [{k: e[k] for k in ("epoch", "MAE", "size_nm")} for e in history if e["stage"] == "finetune"]
            for history in result.eval_histories
        ],
    }


def _run(key: str, recipes, table, gu: Path, threads: int, jobs: int, rerun: bool) -> dict:
    path = RESULTS / "synthesis" / f"{key}.json"
    if path.is_file() and not rerun:
        return json.loads(path.read_text())
    label, name, params, train_max, protocol = MODELS[key]
    params = dict(params)
    transformer = name.startswith("transformer")
    if transformer:
        params["n_threads"] = max(1, threads // jobs)
    if protocol == "paper":
        folds = paper_folds(recipes, train_max_size_nm=train_max)
    else:
        groups = publication_groups(recipes, gu / "raw_recipe_dataset.xlsx")
        folds = grouped_folds(recipes, groups, train_max_size_nm=train_max)
    print(f"[{key}] {label}: {name} {params} train_max_size_nm={train_max} protocol={protocol}", flush=True)
    result = cross_validate(
        lambda: make_model(name, table, **params),
        recipes,
        folds,
        name=key,
        progress=lambda k, n, m: print(f"[{key}] fold {k + 1}/{n}: MAE {m['MAE']:.3f} R2 {m['R2']:.3f}", flush=True),
        monitor_every=MONITOR_EVERY if transformer else None,
        n_jobs=jobs,
    )
    data = _result_to_json(result, {**params, "train_max_size_nm": train_max, "protocol": protocol, "parallel_folds": jobs})
    atomic_write_bytes(path, json.dumps(data).encode())
    return data


def _how_folds_ran(rows: list[tuple[str, str, dict]]) -> str:
    """One sentence per way the models' folds ran (folds at a time, threads per fold process)."""
    ways: dict[tuple[int, int], list[str]] = {}
    for key, _, data in rows:
        way = (data["params"].get("parallel_folds", 1), data["params"].get("n_threads", 1))
        ways.setdefault(way, []).append(MODELS[key][0])
    sentences = []
    for (folds, threads), labels in ways.items():
        who = "All models" if len(ways) == 1 else ", ".join(labels)
        how = (
            f"{folds} folds at a time, each in its own process with {threads} thread(s) (peak memory per fold process)"
            if folds > 1
            else "one fold after the other"
        )
        sentences.append(f" {who}: {how}.")
    return "".join(sentences)


def _fmt(value, scale=1.0, digits=2):
    return "–" if value is None else f"{scale * value:.{digits}f}"


def _table(rows: list[tuple[str, str, dict]], which: str) -> list[str]:
    lines = [
        "| model | train rows | MAE nm (paper) | MAE nm | MSE (paper) | MSE | RMSE (paper) | RMSE | MAPE % (paper) | MAPE % "
        "| R² % (paper) | R² % | wall s (5 folds) | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label, data in rows:
        m = data[which]
        p = PAPER.get(key, {}) if which == "fold_mean" else {}
        train = (
            "≤ 20 nm"
            if data["params"].get("train_max_size_nm") == 20.0
            else ("all (fine-tune ≤ 20 nm)" if data["params"].get("finetune_max_size_nm") == 20.0 else "all")
        )
        lines.append(
            f"| {label} | {train} | {_fmt(p.get('MAE'))} | **{m['MAE']:.3f}** | {_fmt(p.get('MSE'))} | {m['MSE']:.2f} "
            f"| {_fmt(p.get('RMSE'))} | {m['RMSE']:.2f} | {_fmt(p.get('MAPE'), digits=1)} | {m['MAPE']:.1f} "
            f"| {_fmt(p.get('R2'), 100, 1)} | {100 * m['R2']:.1f} | {data['wall_seconds']:.0f} | {max(data['peak_rss_mb']):.0f} |"
        )
    return lines


def _selected_on_held_out(data: dict) -> tuple[dict, dict, int] | None:
    """Fold-mean and pooled metrics when each fold keeps its best-scoring checkpoint on that fold itself."""
    histories = data.get("eval_histories")
    if not histories:
        return None
    truth, fold = np.asarray(data["y_true"]), np.asarray(data["fold"])
    chosen = np.empty_like(truth)
    per_fold = []
    for k, history in enumerate(histories):
        best = min(history, key=lambda e: e["MAE"])
        chosen[fold == k] = best["size_nm"]
        per_fold.append(regression_metrics(truth[fold == k], chosen[fold == k]))
    fold_mean = {m: float(np.mean([f[m] for f in per_fold])) for m in per_fold[0]}
    return fold_mean, regression_metrics(truth, chosen), min(len(h) for h in histories)


def _parity_plot(path: Path, truth, ours, paper, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
    for ax, pred, title in ((axes[0], ours, f"ours: {label}"), (axes[1], paper, "paper's own predictions")):
        m = regression_metrics(truth, pred)
        ax.scatter(truth, pred, s=8, alpha=0.6)
        ax.plot([0, 21], [0, 21], "k--", lw=1)
        ax.set_title(f"{title}\nMAE {m['MAE']:.2f} nm, R² {m['R2']:.3f}", fontsize=10)
        ax.set_xlabel("measured size (nm)")
        ax.set_xlim(0, 21)
        ax.set_ylim(0, 30)
    axes[0].set_ylabel("predicted size (nm)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=os.environ.get("NANOCRYSTAL_DATASETS", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the transformer (all folds together)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="folds trained at once, each in its own process (transformers: threads/jobs torch threads; "
        "the others: one thread each). Transformer without augmentation, 5 folds: 2 x 1 thread 913 s, "
        "1 x 2 threads 1,426 s",
    )
    parser.add_argument("--rerun", action="store_true", help="ignore cached results")
    parser.add_argument("--out", default=str(RESULTS / "synthesis.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    gu, recipes, table, paper_true, paper_pred = _load(Path(args.datasets))

    folds = paper_folds(recipes)
    ours_true = np.concatenate([[recipes[i].outcome.size_nm for i in val] for _, val in folds])
    split_ok = ours_true.shape == paper_true.shape and np.allclose(ours_true, paper_true, rtol=0, atol=1e-9)
    print(f"split proof: {'PASS' if split_ok else 'FAIL'} ({len(ours_true)} validation targets)", flush=True)
    if not split_ok:
        return 1

    results = {key: _run(key, recipes, table, gu, args.threads, args.jobs, args.rerun) for key in args.models}
    paper_rows = [(k, MODELS[k][0], results[k]) for k in results if MODELS[k][4] == "paper"]
    grouped_rows = [(k, MODELS[k][0], results[k]) for k in results if MODELS[k][4] == "grouped"]

    lines = [
        "## Synthesis models: size on the paper's 5-fold protocol",
        "",
        f"Command: `python benchmarks/synthesis_benchmark.py --datasets ../shared/datasets` "
        f"({dt.date.today().isoformat()}; {platform.machine()}, {os.cpu_count()} CPU cores, no GPU, "
        f"Python {platform.python_version()}). Per-model results are cached in `benchmarks/results/synthesis/`.",
        "",
        f"**Split proof: {'PASS' if split_ok else 'FAIL'}** — our concatenated validation targets equal the `true` "
        f"column of `paper_cv_size_predictions.csv`, all {len(ours_true)} rows in order "
        "(pool = 617 solid recipes ≤ 20 nm, `KFold(5, shuffle=True, random_state=0)` in file order).",
        "",
        "Paper numbers are the fold means of Extended Data Table 1 (only MAE is given for the other models). "
        "Ours are never selected on the validation fold (the authors keep, per fold, the checkpoint with the best "
        "validation score); the transformer keeps its last epoch (weight EMA, no early stopping); its settings "
        "were chosen on a dev split of fold 0's training recipes." + _how_folds_ran(paper_rows),
        "",
        "### Fold means (the paper's convention)",
        "",
        *_table(paper_rows, "fold_mean"),
        "",
        "### Pooled (all 617 validation predictions together)",
        "",
        *_table(paper_rows, "pooled"),
        "",
    ]
    paper_metrics = regression_metrics(paper_true, paper_pred)
    lines += [
        f"The paper's own per-recipe predictions score pooled MAE {paper_metrics['MAE']:.3f} nm, R² {100 * paper_metrics['R2']:.1f} %.",
        "",
        "### Paired comparison with the paper's own predictions (same 617 recipes)",
        "",
        "| model | MAE ours | MAE paper | Δ MAE (ours − paper) | 95 % bootstrap CI | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, data in paper_rows:
        pred = np.asarray(data["y_pred"])
        if data["params"].get("protocol") != "paper":
            continue
        c = paired_comparison(pred, paper_pred, paper_true)
        lines.append(
            f"| {label} | {c['mae_ours']:.3f} | {c['mae_paper']:.3f} | {c['mean_abs_error_diff']:+.3f} "
            f"| [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['wilcoxon_p']:.2g} |"
        )
    lines.append("")
    selection_rows = []
    for key, label, data in paper_rows:
        selected = _selected_on_held_out(data)
        if selected is None:
            continue
        fold_mean, pooled, n_scored = selected
        p = PAPER.get(key, {})
        selection_rows.append(
            f"| {label} | {_fmt(p.get('MAE'), digits=2)} | {data['fold_mean']['MAE']:.3f} | **{fold_mean['MAE']:.3f}** "
            f"| {_fmt(p.get('R2'), 100, 1)} | {100 * data['fold_mean']['R2']:.1f} | {100 * fold_mean['R2']:.1f} "
            f"| {pooled['MAE']:.3f} | {n_scored} |"
        )
    if selection_rows:
        lines += [
            "### The same runs scored the authors' way: best checkpoint per fold, picked on that held-out fold",
            "",
            "The authors' `finetune.py` scores the held-out fold every 100 of 8,000 fine-tune epochs and reports, per "
            "fold, the best of those scores (`evaluate_model` keeps the minimum MAE); their "
            "`paper_cv_size_predictions.csv` reproduces their 1.39 nm. Our transformers scored their held-out fold every "
            f"{MONITOR_EVERY} fine-tune epochs while training (monitoring only: nothing was selected or changed). "
            "Picking a checkpoint on the data it is scored on is optimistic; the honest numbers are the last-epoch ones.",
            "",
            "| model | MAE nm (paper, best checkpoint) | MAE nm (ours, last epoch) | MAE nm (ours, best checkpoint) "
            "| R² % (paper) | R² % (ours, last) | R² % (ours, best) | MAE nm pooled (ours, best) | checkpoints per fold |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *selection_rows,
            "",
        ]
    ensemble_rows = []
    for label, members in ENSEMBLES.items():
        if not all(m in results for m in members):
            continue
        first = results[members[0]]
        if any(results[m]["index"] != first["index"] for m in members):
            raise ValueError(f"ensemble {label}: members were predicted in different orders")
        truth, fold = np.asarray(first["y_true"]), np.asarray(first["fold"])
        pred = np.mean([np.asarray(results[m]["y_pred"]) for m in members], axis=0)
        per_fold = [regression_metrics(truth[fold == k], pred[fold == k]) for k in np.unique(fold)]
        ensemble_rows.append(
            f"| {label} | {np.mean([m['MAE'] for m in per_fold]):.3f} | {100 * np.mean([m['R2'] for m in per_fold]):.1f} "
            f"| {regression_metrics(truth, pred)['MAE']:.3f} |"
        )
    if ensemble_rows:
        lines += [
            "### Unweighted ensembles of the models above (means of their cached predictions, same folds)",
            "",
            "| ensemble | MAE nm (fold mean) | R² % (fold mean) | MAE nm (pooled) |",
            "|---|---:|---:|---:|",
            *ensemble_rows,
            "",
        ]
    if grouped_rows:
        lines += [
            "### Leak-free variant: folds grouped by source publication",
            "",
            "The same pool, split so that recipes of one publication (DOI from `raw_recipe_dataset.xlsx`, or "
            "self-synthesis) never sit on both sides; near-identical recipes of one paper inflate random-split scores.",
            "",
            *_table(grouped_rows, "fold_mean"),
            "",
        ]
    transformer_key = next((k for k in ("transformer-aug", "transformer") if k in results), None)
    if transformer_key:
        png = RESULTS / "synthesis_parity.png"
        _parity_plot(png, paper_true, np.asarray(results[transformer_key]["y_pred"]), paper_pred, MODELS[transformer_key][0])
        lines += [f"![parity plot]({png.name})", ""]  # relative to the report beside it
    lines.append(f"Benchmark wall time (this invocation, cached models count 0): {time.perf_counter() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(Path(args.out), text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
