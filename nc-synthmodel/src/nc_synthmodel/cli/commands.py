"""The ``nc-synthmodel`` commands: ``dataset summary``, ``cv``, ``train``, ``predict`` (one function each)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..dataset import read_descriptor_names, summarize
from ..descriptors import DescriptorTable, UnknownChemicalError
from ..files import atomic_write_bytes, check_output, check_writable_dir
from ..io import read_recipes, read_roles

ROLES_FILE = "chemical_abbreviations.xlsx"


def _dataset_summary(args: argparse.Namespace) -> int:
    path = Path(args.path)
    roles_path = Path(args.roles) if args.roles else path.with_name(ROLES_FILE)
    if args.roles is None and not roles_path.is_file():
        print(f"note: no {ROLES_FILE} next to {path}; every chemical gets role 'other' (use --roles)", file=sys.stderr)
        roles = None
    else:
        roles = read_roles(roles_path)
    recipes = read_recipes(path, roles=roles)
    names = read_descriptor_names(args.descriptors) if args.descriptors else None
    summary = summarize(recipes, names)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        print(f"{path}")
        print(summary.format())
    return 0


def _parse_params(pairs: list[str] | None) -> dict:
    """``["k=v", ...]`` → dict; values are JSON literals (numbers, true/false, null, strings in quotes) or bare strings."""
    params = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--set expects NAME=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def _load_dataset(path: str, roles: str | None):
    """Recipes of a dataset file; roles from ``--roles`` or the sheet next to a CSV/xlsx file.

    JSON recipes carry their roles.  Rows that fail validation are reported on stderr and skipped.
    """
    return _read_dataset(path, roles)[0]


def _read_dataset(path: str, roles: str | None) -> tuple[list, int]:
    """(recipes, number of rows skipped) of :func:`_load_dataset`."""
    path = Path(path)
    roles_path = Path(roles) if roles else path.with_name(ROLES_FILE)
    if roles is None and not roles_path.is_file():
        if path.suffix.lower() != ".json":
            print(f"note: no {ROLES_FILE} next to {path}; every chemical gets role 'other' (use --roles)", file=sys.stderr)
        loaded = read_recipes(path)
    else:
        loaded = read_recipes(path, roles=read_roles(roles_path))
    for error in loaded.errors[:5]:
        print(f"skipped: {error}", file=sys.stderr)
    if len(loaded.errors) > 5:
        print(f"skipped {len(loaded.errors) - 5} more invalid row(s)", file=sys.stderr)
    return list(loaded.recipes), len(loaded.errors)


def _descriptor_table(spec: str | None, data_path: str | None = None, recipes=()):
    """``--descriptors``: an .npz table, or ``computed`` (structure-based, shipped with the package).

    A computed table covers the chemicals of ``recipes`` plus the ``A@B`` intermediates that
    augmentation may insert: those named in ``unimol_descriptors.npz`` next to the data, if present.
    """
    neighbour = Path(data_path).with_name("unimol_descriptors.npz") if data_path is not None else None
    if spec is None and neighbour is not None and neighbour.is_file():
        spec = str(neighbour)
    if spec is None:
        raise ValueError("no descriptor table: pass --descriptors FILE.npz or --descriptors computed")
    if spec != "computed":
        return DescriptorTable.from_npz(spec)
    from ..computed import ComputedDescriptors

    names = {c.name for recipe in recipes for c in recipe.chemicals}
    if neighbour is not None and neighbour.is_file():
        known = DescriptorTable.from_npz(neighbour).intermediates
        names |= {name for name in known if set(name.split("@")) <= names}
    if not names:
        raise ValueError("--descriptors computed needs recipes to know which chemicals to describe")
    return ComputedDescriptors().fit(sorted(names)).to_table(sorted(names))


def _check_new_file(path: str | None, overwrite: bool, inputs) -> None:
    """An output file may be written (before any work): see :func:`nc_synthmodel.files.check_output`."""
    if path:
        check_output(path, overwrite=overwrite, inputs=[p for p in inputs if p])
        check_writable_dir(Path(path).resolve().parent)


def _cv(args: argparse.Namespace) -> int:
    from ..evaluation import (
        composition_folds,
        cross_validate,
        format_results,
        grouped_folds,
        paper_folds,
        publication_groups,
    )
    from ..models import make_model

    _check_new_file(args.predictions, args.overwrite, [args.path, args.source, args.roles, args.descriptors])
    recipes = _load_dataset(args.path, args.roles)
    table = _descriptor_table(args.descriptors, args.path, recipes)
    params = _parse_params(args.set)
    if args.protocol == "paper":
        folds = paper_folds(recipes, train_max_size_nm=args.train_max_size)
    elif args.protocol == "composition":
        folds = composition_folds(recipes, train_max_size_nm=args.train_max_size)
    else:
        if not args.source:
            raise ValueError("--protocol grouped needs --source raw_recipe_dataset.xlsx (publication of each recipe)")
        folds = grouped_folds(recipes, publication_groups(recipes, args.source), train_max_size_nm=args.train_max_size)
    make_model(args.model, table, **params)  # fail on bad names/parameters before the first fold
    result = cross_validate(
        lambda: make_model(args.model, table, **params),
        recipes,
        folds,
        name=args.model,
        progress=lambda k, n, m: print(f"fold {k + 1}/{n}: MAE {m['MAE']:.3f} R2 {m['R2']:.3f}", file=sys.stderr),
    )
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "params": params,
                    "fold_mean": result.fold_mean,
                    "pooled": result.pooled,
                    "wall_s": result.wall_seconds,
                    "peak_rss_mb": max(result.peak_rss_mb),
                },
                indent=1,
            )
        )
    else:
        print(format_results([result], "fold_mean"))
        print(format_results([result], "pooled"))
    if args.predictions:
        data = result.to_frame().to_csv(index=False).encode("utf-8")
        atomic_write_bytes(Path(args.predictions), data)
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..models import TRANSFORMER_PRESETS, SynthesisForest, SynthesisTransformer

    recipes = _load_dataset(args.path, args.roles)
    failed = _load_dataset(args.failed, args.roles) if args.failed else None
    table = _descriptor_table(args.descriptors, args.path, recipes + (failed or []))
    if args.kind == "forest":
        params = _parse_params(args.set)
        SynthesisForest(table, **params)._check_params()  # bad names / values fail before any work
    else:
        params = {**TRANSFORMER_PRESETS[args.preset], **_parse_params(args.set)}
    out = Path(args.out)
    if (out / "model.json").exists() and not args.overwrite:
        raise ValueError(f"{out} already holds a model; pass --overwrite to replace it")
    for source in (args.path, args.failed, args.descriptors):
        if source and source != "computed" and Path(source).resolve().parent == out.resolve():
            raise ValueError(f"{out}: the model folder holds the input {source}; choose another --out")
    check_writable_dir(out)
    if args.kind == "forest":
        model = SynthesisForest(table, **params).fit(recipes, failed_recipes=failed)
    else:
        model = SynthesisTransformer(table, **params)
        model.fit(
            recipes,
            failed_recipes=failed,
            progress=lambda stage, e, n, rec: print(
                f"{stage} {e}/{n}: " + " ".join(f"{k} {v:.4f}" for k, v in rec.items() if k != "epoch"), file=sys.stderr
            ),
        )
    spec = "computed" if args.descriptors == "computed" else str(Path(args.descriptors or "").name or "unimol")
    model.save(
        out,
        metadata={
            "data": str(args.path),
            "failed": str(args.failed) if args.failed else None,
            "descriptors": spec,
            "n_recipes": len(recipes),
        },
    )
    print(f"saved {out}")
    return 0


def _encodable(model, recipes: list) -> tuple[list, list[str]]:
    """The recipes the model can encode, and one line per recipe it cannot (unknown or too many chemicals)."""
    try:
        model.encoder_.transform(recipes)
        return recipes, []
    except (UnknownChemicalError, ValueError):
        pass
    good, problems = [], []
    for recipe in recipes:
        try:
            model.encoder_.transform([recipe])
        except (UnknownChemicalError, ValueError) as exc:
            problems.append(f"recipe {recipe.id}: {exc}")
        else:
            good.append(recipe)
    return good, problems


def _predict(args: argparse.Namespace) -> int:
    from ..models import default_model, load_model

    recipes, n_invalid = _read_dataset(args.recipes, args.roles)
    if not recipes:
        raise ValueError(f"{args.recipes}: no valid recipes to predict" + (f" ({n_invalid} invalid row(s) skipped)" if n_invalid else ""))
    if args.model == "default":
        model = default_model()
    else:
        model = load_model(args.model, _descriptor_table(args.descriptors, None, recipes) if args.descriptors else None)
    recipes, problems = _encodable(model, recipes)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not recipes:
        raise ValueError(f"{args.recipes}: none of the recipes can be predicted ({len(problems)} skipped)")
    outcomes = model.predict_outcomes(recipes)
    if args.json:
        print(json.dumps(outcomes, indent=1))
        return 1 if problems or n_invalid else 0
    for out in outcomes:
        top = sorted(out["shape_probabilities"].items(), key=lambda kv: -kv[1])[:3]
        shapes = ", ".join(f"{name} {p:.0%}" for name, p in top)
        success = "n/a" if out["success_probability"] is None else f"{out['success_probability']:.0%}"
        print(f"{out['id']}: size {out['size_nm']:.2f} nm | shape {out['shape']} ({shapes}) | success {success}")
    return 1 if problems or n_invalid else 0
