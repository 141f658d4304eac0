"""Transformer with retrieval tokens on the paper's split and the publication-grouped split (issue 18).

The CPU transformer of ``synthesis_benchmark.py`` (``TRANSFORMER_CPU``), trained with the
trainer's speed options (bf16 autocast where the CPU has it, fused AdamW), with and without
retrieval tokens (:mod:`nc_synthmodel.models.retrieval`: the k nearest training recipes and
their size and shape; a training recipe never retrieves itself, and on the grouped split never a
recipe of its own publication).

Two modes, one fold per process (``--jobs`` at a time)::

    # choose on a dev split carved from each outer training fold (20 % of its pool recipes,
    # whole publications on the grouped split); the held-out fold is not touched
    python benchmarks/synthesis_retrieval.py --mode dev --protocol paper --folds 0 1 --configs plain retrieval
    # score the chosen configuration on the held-out folds (last epoch kept, nothing selected)
    python benchmarks/synthesis_retrieval.py --mode outer --protocol paper grouped --configs retrieval
    python benchmarks/synthesis_retrieval.py --report      # tables from every cached fold

Each fold is cached as JSON under ``benchmarks/results/synthesis/retrieval/`` (resumable);
``--report`` writes ``benchmarks/results/synthesis_retrieval.md``.  The held-out (or dev) fold
is also scored every ``--monitor-every`` fine-tune epochs - monitoring only, it changes nothing -
so the report can show, labelled as such, what the authors' rule (best checkpoint per fold,
picked on that fold) would claim.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from nc_synthmodel.evaluation import grouped_folds, paper_folds, paper_pool, publication_groups, regression_metrics
from nc_synthmodel.io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CACHE = RESULTS / "synthesis" / "retrieval"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis_benchmark import TRANSFORMER_CPU, _load  # noqa: E402

SMALL = {**TRANSFORMER_CPU, "d_model": 64, "n_layers": 2, "dim_feedforward": 128, "augment": False, "pretrain_epochs": 0}
#: SMALL with 4 retrieval tokens chosen by forest proximity (fp32: faster than bf16 autocast with retrieval tokens here).
FOREST = {**SMALL, "retrieval_k": 4, "retrieval_metric": "forest", "precision": "fp32"}
#: Fifth round's choice: the nested forest tuning's winner as the proximity forest (extremely randomised trees, half
#: of the features per split; no out-of-bag trees, so cross-fitted training tokens), residual from the aggregate.
ET_BASE = {
    **FOREST,
    "retrieval_aggregate": True,
    "retrieval_residual": "aggregate",
    "retrieval_dropout": 0.25,
    "retrieval_crossfit": 5,
    "retrieval_forest": "extra",
    "retrieval_max_features": 0.5,
}

#: Configurations (SynthesisTransformer parameters).  The trainer's defaults now include bf16
#: autocast where native and fused AdamW; ``retrieval`` adds 8 retrieval tokens.
CONFIGS: dict[str, dict] = {
    "plain": {**TRANSFORMER_CPU},
    "retrieval": {**TRANSFORMER_CPU, "retrieval_k": 8},
    "retrieval-k4": {**TRANSFORMER_CPU, "retrieval_k": 4},
    "retrieval-k16": {**TRANSFORMER_CPU, "retrieval_k": 16},
    # a quarter of the compute (width 64, 2 layers, no augmented pretraining): pilots on a starved machine
    "small": {**SMALL},
    "small-retrieval": {**SMALL, "retrieval_k": 4},
    # the same, keeping the epoch with the best MAE on 10 % of the fold's solid training recipes (dev-selected)
    "small-retrieval-devstop": {**SMALL, "retrieval_k": 4, "validation_fraction": 0.1},
    # neighbours by the proximity of a forest fitted on the fold's bank (out-of-bag trees for bank recipes);
    # fp32: faster than bf16 autocast with retrieval tokens on this CPU
    "small-forest": {**FOREST},
    # + the size as a correction to the neighbours' gated mean, + a quarter of the neighbour tokens hidden while training
    "small-forest-res": {**FOREST, "retrieval_residual": True},
    "small-forest-res-drop": {
        **FOREST,
        "retrieval_residual": True,
        "retrieval_dropout": 0.25,
    },
    "small-forest-drop": {**FOREST, "retrieval_dropout": 0.25},
    # + one token holding the proximity-weighted mean of the whole bank (roughly the forest's own estimate)
    "small-forest-agg-drop": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_dropout": 0.25,
    },
    "small-forest-agg-res-drop": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_residual": True,
        "retrieval_dropout": 0.25,
    },
    # fourth round: training recipes' tokens cross-fitted in 5 parts (a forest and bank that never saw the
    # recipe, every tree counted, as for a new recipe), and/or the size as a correction to the aggregate token
    # (the forest's estimate; the correction starts at zero)
    "small-forest-agg-res-drop-cf5": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_residual": True,
        "retrieval_dropout": 0.25,
        "retrieval_crossfit": 5,
    },
    "small-forest-aggres-drop": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_residual": "aggregate",
        "retrieval_dropout": 0.25,
    },
    "small-forest-aggres-drop-cf5": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_residual": "aggregate",
        "retrieval_dropout": 0.25,
        "retrieval_crossfit": 5,
    },
    # the same, 3 networks (random_state 0, 1, 2: their proximity forests and cross-fitting parts too), sizes averaged
    "small-forest-aggres-drop-cf5-x3": {
        **FOREST,
        "retrieval_aggregate": True,
        "retrieval_residual": "aggregate",
        "retrieval_dropout": 0.25,
        "retrieval_crossfit": 5,
        "seeds": 3,
    },
    # fifth round: the same with the nested forest tuning's winner as the proximity forest (extremely randomised
    # trees, half of the features per split; no out-of-bag trees, so cross-fitted training tokens)
    "small-forest-et-aggres-drop-cf5": ET_BASE,
    # issue 18, sixth round: the extra-trees-base choice with the reaction-intermediate augmentation - a fresh
    # copy per recipe and epoch (10 generated per recipe) added to the fine-tune stage (no pretraining stage),
    # or, as the paper does it, a pretraining stage on originals + copies before the same 5 fine-tune epochs
    "small-forest-et-aggres-drop-cf5-augft": {**ET_BASE, "augment": True, "augment_stages": "finetune"},
    "small-forest-et-aggres-drop-cf5-augpre5": {**ET_BASE, "augment": True, "pretrain_epochs": 5},
    "small-forest-res-drop50": {
        **FOREST,
        "retrieval_residual": True,
        "retrieval_dropout": 0.5,
    },
}
#: Share of an outer training fold's pool recipes (or of its pool publications) held out as dev.
DEV_FRACTION = 0.2


def dev_split(protocol: str, recipes, groups, train_idx: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, dev) carved from one outer training fold: dev = 20 % of its pool recipes (paper) or
    the pool recipes of ~20 % of its publications, whose other recipes then leave training (grouped)."""
    rng = np.random.default_rng(seed)
    pool = np.intersect1d(paper_pool(recipes), train_idx)
    if protocol == "paper":
        dev = np.sort(rng.choice(pool, size=int(round(DEV_FRACTION * len(pool))), replace=False))
        return np.setdiff1d(train_idx, dev), dev
    g = np.asarray(groups, dtype=object)
    names = sorted(set(g[pool].tolist()))
    chosen, taken = set(), 0
    for k in rng.permutation(len(names)):
        if taken >= DEV_FRACTION * len(pool):
            break
        chosen.add(names[k])
        taken += int((g[pool] == names[k]).sum())
    dev = pool[np.isin(g[pool], list(chosen))]
    train = train_idx[~np.isin(g[train_idx], list(chosen))]
    return train, dev


def _fit_fold(table, params: dict, train, y_train, groups_train, test, y_test, monitor_every: int) -> dict:
    """Fit one fold; ``params["seeds"]`` = n > 1 fits n models (random_state 0 .. n - 1: network,
    batches and proximity forests) and averages their size predictions (and monitored epochs)."""
    from nc_synthmodel.models import SynthesisTransformer

    params = dict(params)
    seeds = int(params.pop("seeds", 1))
    preds, histories, fit_s, rates = [], [], 0.0, []
    for seed in range(seeds):
        model = SynthesisTransformer(table, **{**params, **({"random_state": seed} if seeds > 1 else {})})
        epochs = []
        t0 = time.perf_counter()
        model.fit(
            train,
            y_train,
            groups=groups_train,
            eval_set=(test, y_test),
            eval_every=monitor_every,
            progress=lambda stage, epoch, n, record, epochs=epochs: epochs.append((stage, time.perf_counter())),
        )
        fit_s += time.perf_counter() - t0
        preds.append(model.predict(test))
        stamps = [t for s, t in epochs if s == "finetune"]
        if len(stamps) > 2:
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
        histories.append([e for e in model.eval_history_ if e["stage"] == "finetune"])
    y_test = np.asarray(y_test, dtype=float)
    history = []
    for records in zip(*histories):  # the same monitored epochs in every seed: their mean prediction
        size = np.mean([r["size_nm"] for r in records], axis=0)
        history.append({"epoch": records[0]["epoch"], "MAE": float(np.mean(np.abs(size - y_test))), "size_nm": size.tolist()})
    pred = np.mean(preds, axis=0)
    return {
        "pred": pred.tolist(),
        "fit_s": fit_s,
        "finetune_epochs_per_s": float(np.median(rates)) if rates else None,
        "history": history,
        "train_rows": len(train),
        "seed_MAE": [float(np.mean(np.abs(p - y_test))) for p in preds] if seeds > 1 else None,
    }


def _tasks(args, recipes, y, groups_all):
    tasks = []
    for protocol in args.protocol:
        groups = groups_all
        if protocol == "paper":
            folds = paper_folds(recipes)
        else:
            folds = grouped_folds(recipes, groups)
        for name in args.configs:
            params = dict(CONFIGS[name])
            if args.finetune_epochs is not None:
                params["finetune_epochs"] = args.finetune_epochs
            params["n_threads"] = args.threads
            tag = name if args.finetune_epochs is None else f"{name}-ft{args.finetune_epochs}"
            for k in args.folds:
                train, test = folds[k]
                if args.mode == "dev":
                    train, test = dev_split(protocol, recipes, groups, train, seed=k)
                path = CACHE / f"{protocol}-{args.mode}-{tag}-fold{k}.json"
                if path.is_file() and not args.rerun:
                    continue
                # the grouped protocol holds whole publications out, so a training recipe's neighbours
                # exclude its own publication; on the paper split only the recipe itself is excluded
                g_train = [groups[i] for i in train] if (protocol == "grouped" and params.get("retrieval_k")) else None
                tasks.append((path, protocol, tag, k, params, train, test, g_train))
    return tasks


def _run(args) -> None:
    gu, recipes, table, _, _ = _load(Path(args.datasets))
    from nc_synthmodel.evaluation import size_targets

    y = size_targets(recipes)
    groups = publication_groups(recipes, gu / "raw_recipe_dataset.xlsx")
    tasks = _tasks(args, recipes, y, groups)
    print(f"{len(tasks)} fold(s) to train, {args.jobs} at a time; load average {os.getloadavg()}", flush=True)
    from joblib import Parallel, delayed

    def one(task):
        path, protocol, tag, k, params, train, test, g_train = task
        start = time.time()
        out = _fit_fold(
            table, params, [recipes[i] for i in train], y[train], g_train, [recipes[i] for i in test], y[test], args.monitor_every
        )
        out.update(
            protocol=protocol,
            mode=args.mode,
            config=tag,
            fold=k,
            params={p: v for p, v in params.items()},
            test_index=test.tolist(),
            y_true=y[test].tolist(),
            metrics=regression_metrics(y[test], np.asarray(out["pred"])),
            wall_s=time.time() - start,
            load_before=list(os.getloadavg()),
            date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        CACHE.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(out).encode())
        return f"{path.name}: MAE {out['metrics']['MAE']:.3f} R2 {out['metrics']['R2']:.3f} fit {out['fit_s']:.0f} s"

    t0 = time.perf_counter()
    for line in Parallel(n_jobs=args.jobs, return_as="generator")(delayed(one)(t) for t in tasks):
        print(line, flush=True)
    print(f"wall {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()}", flush=True)


def summarise(runs: list[dict]) -> dict:
    """Fold-mean and pooled metrics of one configuration's folds, last epoch and the held-out-picked checkpoint."""
    runs = sorted(runs, key=lambda r: r["fold"])
    last = [r["metrics"] for r in runs]
    truth = np.concatenate([r["y_true"] for r in runs])
    pred = np.concatenate([r["pred"] for r in runs])
    picked, picked_pred, final = [], [], []
    for r in runs:
        if r["history"]:
            final.append(regression_metrics(np.asarray(r["y_true"]), np.asarray(r["history"][-1]["size_nm"])))
        if r["history"]:
            best = min(r["history"], key=lambda e: e["MAE"])
            picked.append(regression_metrics(np.asarray(r["y_true"]), np.asarray(best["size_nm"])))
            picked_pred.append(best["size_nm"])
    out = {
        "folds": [r["fold"] for r in runs],
        "fold_mean": {m: float(np.mean([f[m] for f in last])) for m in last[0]},
        "pooled": regression_metrics(truth, pred),
        "fold_MAE": [f["MAE"] for f in last],
        "fit_s": [r["fit_s"] for r in runs],
        "epochs_per_s": [r.get("finetune_epochs_per_s") for r in runs],
        "wall_s": [r["wall_s"] for r in runs],
    }
    if len(final) == len(runs):
        out["last_epoch"] = {m: float(np.mean([f[m] for f in final])) for m in final[0]}
    if len(picked) == len(runs):
        out["held_out_picked"] = {m: float(np.mean([f[m] for f in picked])) for m in picked[0]}
        out["held_out_picked_pooled"] = regression_metrics(truth, np.concatenate(picked_pred))
    return out


def _report(args) -> str:
    runs: dict[tuple, list] = {}
    for path in sorted(CACHE.glob("*.json")):
        r = json.loads(path.read_text())
        runs.setdefault((r["protocol"], r["mode"], r["config"]), []).append(r)
    lines = [
        "## Transformer with retrieval tokens (issue 18)",
        "",
        "Command: `python benchmarks/synthesis_retrieval.py ...` (see the script's docstring; "
        f"report {dt.date.today().isoformat()}; {platform.machine()}, {os.cpu_count()} CPU cores shared with other work, "
        "one fold per process, 1 torch thread each, bf16 autocast + fused AdamW; the `*forest*` configurations fp32, "
        "faster with retrieval tokens on this CPU).",
        "",
        "`dev` rows: trained on an outer training fold minus a dev split carved from it, scored on that dev split "
        "(what the choices were made on).  `outer` rows: trained on the whole outer training fold, scored on the "
        "held-out fold, last epoch kept - nothing selected on it (`devstop` configurations keep the epoch with the best MAE "
        "on 10 % of the fold's own solid training recipes; their last epoch is in its own column).  The `held-out-picked` columns are the authors' "
        "rule (per fold the best monitored checkpoint, scored on the same fold): optimistic, shown only for comparison.",
        "",
        "| protocol | mode | config | folds | MAE nm (fold mean) | R² % (fold mean) | MAE nm (pooled) | R² % (pooled) "
        "| per-fold MAE | last-epoch MAE | held-out-picked MAE (oracle) | fine-tune epochs/s | fit s per fold |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (protocol, mode, config), items in sorted(runs.items()):
        s = summarise(items)
        picked = s.get("held_out_picked")
        eps = [e for e in s["epochs_per_s"] if e]
        picked_mae = "–" if picked is None else f"{picked['MAE']:.3f}"
        last_mae = f"{s['last_epoch']['MAE']:.3f}" if "last_epoch" in s else "–"
        lines.append(
            f"| {protocol} | {mode} | {config} | {','.join(map(str, s['folds']))} | **{s['fold_mean']['MAE']:.3f}** "
            f"| {100 * s['fold_mean']['R2']:.1f} | {s['pooled']['MAE']:.3f} | {100 * s['pooled']['R2']:.1f} "
            f"| {' '.join(f'{m:.2f}' for m in s['fold_MAE'])} | {last_mae} | {picked_mae} "
            f"| {np.median(eps) if eps else float('nan'):.3f} | {np.mean(s['fit_s']):.0f} |"
        )
    lines += _forest_comparison(runs)
    return "\n".join(lines) + "\n"


def _forest_references() -> dict[str, dict]:
    """Outer predictions of the shipped forests: protocol -> {"index", "y_true", "pred"} per forest."""
    refs: dict[str, dict] = {}
    path = RESULTS / "synthesis_selection_refit.json"
    if path.is_file():
        results = json.loads(path.read_text())["results"]
        refs["random forest shipped until the fifth round (`RF` of `synthesis_selection_refit.json`)"] = {
            p: {"index": r["index"], "y_true": r["y_true"], "pred": r["predictions"]["RF"]} for p, r in results.items()
        }
    tuned = {}
    for protocol in ("paper", "grouped"):
        path = RESULTS / f"synthesis_forest_tuning_{protocol}.json"
        if path.is_file():
            data = json.loads(path.read_text())
            index = [i for f in data["folds"] for i in f["val"]]
            pred = [p for f in data["folds"] for p in f["outer_pred"]["et-mf0.5"]]
            tuned[protocol] = {"index": index, "y_true": [data["y_true"][i] for i in index], "pred": pred}
    if tuned:
        refs["extra trees shipped since the fifth round (`et-mf0.5` of `synthesis_forest_tuning_*.json`)"] = tuned
    return refs


def _forest_comparison(runs: dict) -> list[str]:
    """Outer rows beside the shipped forests' outer predictions (same recipes and folds):
    paired per-recipe difference of absolute errors, with a 95 % bootstrap interval over recipes."""
    lines = []
    for label, forest in _forest_references().items():
        lines += [
            "",
            f"Outer rows against the {label}, same recipes and folds: "
            "mean over recipes of |error| - |forest error|, 95 % bootstrap interval (2,000 resamples of recipes).",
            "",
            "| protocol | config | recipes | MAE nm | forest MAE nm | difference nm [95 % CI] |",
            "|---|---|---:|---:|---:|---|",
        ]
        for (protocol, mode, config), items in sorted(runs.items()):
            if mode != "outer" or protocol not in forest or len(items) < 5:
                continue
            rng = np.random.default_rng(0)  # per row: a row's interval does not depend on the others
            ref = forest[protocol]
            position = {int(i): k for k, i in enumerate(ref["index"])}
            pred = {int(i): p for r in items for i, p in zip(r["test_index"], r["pred"])}
            rows = [i for i in pred if i in position]
            truth = np.asarray(ref["y_true"])[[position[i] for i in rows]]
            ours = np.abs(np.asarray([pred[i] for i in rows]) - truth)
            theirs = np.abs(np.asarray(ref["pred"])[[position[i] for i in rows]] - truth)
            diff = ours - theirs
            boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
            low, high = np.percentile(boot, [2.5, 97.5])
            lines.append(
                f"| {protocol} | {config} | {len(rows)} | {ours.mean():.3f} | {theirs.mean():.3f} "
                f"| {diff.mean():+.3f} [{low:+.3f}, {high:+.3f}] |"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=os.environ.get("NANOCRYSTAL_DATASETS", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--mode", choices=("dev", "outer"), default="dev")
    parser.add_argument("--protocol", nargs="+", choices=("paper", "grouped"), default=["paper"])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=["plain", "retrieval"])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--finetune-epochs", type=int, default=None, help="override the configurations' fine-tune epochs (pilots)")
    parser.add_argument("--monitor-every", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fold process")
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--report", action="store_true", help="only write the report from the cached folds")
    args = parser.parse_args(argv)
    if not args.report:
        _run(args)
    text = _report(args)
    atomic_write_bytes(RESULTS / "synthesis_retrieval.md", text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
