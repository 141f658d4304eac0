"""Transformer training throughput on CPU (issue 18, part 2): epochs per second of each speed-up.

Trains the benchmark's CPU transformer (``synthesis_benchmark.TRANSFORMER_CPU``: width 128, 4
layers, feed-forward 256, conditions in every token) on the real fine-tuning batches - the
3,489 recipes of ``recipes.csv`` through :class:`~nc_synthmodel.models.trainer._Batches`, rows
of similar length together - and times one epoch of forward + backward + optimiser step for:

* ``fp32`` - the trainer as it is (batch 128, AdamW);
* ``bf16`` - the same under ``torch.autocast("cpu", dtype=torch.bfloat16)``;
* ``fused`` - AdamW with ``fused=True``;
* ``batch512`` - batch 512 (a 4x learning rate and a one-cycle schedule would keep the
  optimisation comparable; the schedule does not change the time of an epoch);
* ``compile`` - ``torch.compile(net)`` (the first epoch, which compiles, is reported apart);
* ``bf16+batch512+fused`` - the three together.

Variants run in rounds (each round times every variant once), so that load from other work on
a shared machine spreads over all of them; the median epoch of each is reported::

    python benchmarks/synthesis_throughput.py --rounds 3 --threads 1

``--trainer`` times the options as built into :class:`~nc_synthmodel.models.SynthesisTransformer`
instead (a whole ``fit`` per variant and round, augmentation off; the time between the ends of
its two fine-tune epochs is one epoch, validation-free)::

    python benchmarks/synthesis_throughput.py --trainer --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from nc_synthmodel.descriptors import DescriptorTable
from nc_synthmodel.features.encoding import RecipeEncoder
from nc_synthmodel.io import read_recipes, read_roles
from nc_synthmodel.models.network import build_network
from nc_synthmodel.models.trainer import _Batches, _Compact, _masked_ce

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis_benchmark import TRANSFORMER_CPU  # noqa: E402

VARIANTS = {
    "fp32": {},
    "bf16": {"bf16": True},
    "fused": {"fused": True},
    "batch512": {"batch": 512},
    "compile": {"compile": True},
    "bf16+batch512+fused": {"bf16": True, "batch": 512, "fused": True},
}


#: Trainer options (SynthesisTransformer parameters) timed by ``--trainer``.
TRAINER_VARIANTS = {
    "fp32, AdamW (the old trainer)": {"precision": "fp32", "fused_optimizer": False},
    "defaults: bf16 where native + fused AdamW": {},
    "defaults + batch 512 (sqrt-scaled lr) + one-cycle": {"batch_size": 512, "schedule": "onecycle"},
    "defaults + retrieval tokens (k = 8)": {"retrieval_k": 8},
}


def _trainer_epochs(datasets: Path, rounds: int, threads: int) -> None:
    from nc_synthmodel.evaluation import size_targets
    from nc_synthmodel.models import SynthesisTransformer

    gu = datasets / "gu2025"
    recipes = list(read_recipes(gu / "recipes.csv", roles=read_roles(gu / "chemical_abbreviations.xlsx")))
    table = DescriptorTable.from_npz(gu / "unimol_descriptors.npz")
    y = size_targets(recipes)
    base = {**TRANSFORMER_CPU, "pretrain_epochs": 0, "finetune_epochs": 2, "augment": False, "n_threads": threads}
    times: dict[str, list[float]] = {name: [] for name in TRAINER_VARIANTS}
    for r in range(rounds):
        for name, options in TRAINER_VARIANTS.items():
            stamps = []
            model = SynthesisTransformer(table, **{**base, **options})
            model.fit(recipes, y, progress=lambda stage, epoch, n, record: stamps.append(time.perf_counter()))
            times[name].append(stamps[1] - stamps[0])
            print(f"round {r} {name}: {times[name][-1]:.2f} s/epoch; load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    first = float(np.median(next(iter(times.values()))))
    print(f"\n{len(recipes)} recipes per epoch; {threads} thread(s); median of {rounds} rounds; load average now {os.getloadavg()}\n")
    print("| trainer options | s / epoch (median) | epochs / s | × old trainer |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        median = float(np.median(values))
        print(f"| {name} | {median:.2f} | {1 / median:.3f} | {first / median:.2f} |")


def _setup(datasets: Path):
    gu = datasets / "gu2025"
    recipes = list(read_recipes(gu / "recipes.csv", roles=read_roles(gu / "chemical_abbreviations.xlsx")))
    table = DescriptorTable.from_npz(gu / "unimol_descriptors.npz")
    encoder = RecipeEncoder(table, unknown_product="zeros").fit(recipes)
    vocabulary, vectors = {}, []
    data = _Compact(encoder, recipes, vocabulary, vectors)
    data.success[:] = 1
    return encoder, data, np.stack(vectors).astype(np.float32)


def _epoch(net, optimizer, data, matrix, batch, bf16, rng) -> float:
    import torch

    huber = torch.nn.HuberLoss(delta=1.0)
    net.train()
    t0 = time.perf_counter()
    for b in _Batches([data], batch, rng, torch.device("cpu"), matrix):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            size, shape, _ = net(b["prefix"], b["descriptors"], b["mask"], b["conditions"])
        target = torch.nan_to_num(torch.log(b["size"].clamp(min=1e-3)))
        loss = huber(size.float(), target) + 0.3 * _masked_ce(shape.float(), b["shape"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=os.environ.get("NANOCRYSTAL_DATASETS", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--trainer", action="store_true", help="time the options built into SynthesisTransformer")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.trainer:
        _trainer_epochs(Path(args.datasets), args.rounds, args.threads)
        return 0
    encoder, data, vectors = _setup(Path(args.datasets))
    matrix = torch.from_numpy(vectors)
    p = TRANSFORMER_CPU
    runs = {}
    for name in args.variants:
        v = VARIANTS[name]
        torch.manual_seed(0)
        net = build_network(
            encoder.token_dim, 4, p["d_model"], p["n_layers"], p["n_heads"], p["dim_feedforward"], p["dropout"], 11, p["condition_tokens"]
        )
        optimizer = torch.optim.AdamW(net.parameters(), lr=p["learning_rate"], fused=bool(v.get("fused")))
        model = torch.compile(net) if v.get("compile") else net
        runs[name] = {"net": model, "opt": optimizer, "times": [], "first": None, "v": v}
    rng = np.random.default_rng(0)
    for r in range(args.rounds + 1):  # round 0 warms up (and compiles)
        for name, run in runs.items():
            seconds = _epoch(run["net"], run["opt"], data, matrix, run["v"].get("batch", 128), bool(run["v"].get("bf16")), rng)
            if r == 0:
                run["first"] = seconds
            else:
                run["times"].append(seconds)
            print(f"round {r} {name}: {seconds:.1f} s/epoch", file=sys.stderr, flush=True)
    base = float(np.median(runs["fp32"]["times"])) if "fp32" in runs else None
    print(
        f"\n{len(data)} recipes per epoch; torch {torch.__version__}, {args.threads} thread(s), "
        f"{platform.machine()} {os.cpu_count()} cores, median of {args.rounds} epochs after a warm-up epoch\n"
    )
    print("| variant | s / epoch (median) | epochs / s | × fp32 | first epoch s |")
    print("|---|---:|---:|---:|---:|")
    for name, run in runs.items():
        median = float(np.median(run["times"]))
        speed = f"{base / median:.2f}" if base else "–"
        print(f"| {name} | {median:.2f} | {1 / median:.3f} | {speed} | {run['first']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
