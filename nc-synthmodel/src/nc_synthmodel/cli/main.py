"""The ``nc-synthmodel`` argument parser and entry point."""

from __future__ import annotations

import argparse
import logging
import sys

from ..descriptors import UnknownChemicalError
from .commands import ROLES_FILE, _cv, _dataset_summary, _predict, _train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nc-synthmodel", description="Colloidal nanocrystal synthesis models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)

    dataset = commands.add_parser("dataset", help="recipe datasets").add_subparsers(dest="dataset_command", required=True)
    summary = dataset.add_parser("summary", help="summarise a recipe file (.csv, .json, .xlsx)")
    summary.add_argument("path", help="recipe file")
    summary.add_argument("--roles", help=f"{ROLES_FILE} giving chemical roles (default: next to PATH)")
    summary.add_argument("--descriptors", help="descriptor table (.npz with names) to check coverage")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.set_defaults(run=_dataset_summary)

    from ..models import TRANSFORMER_PRESETS, model_names

    cv = commands.add_parser("cv", help="cross-validate a size model (paper protocol, grouped by publication, or by composition)")
    cv.add_argument("path", help="recipes (e.g. gu2025/recipes.csv)")
    cv.add_argument("--model", default="transformer", choices=model_names())
    cv.add_argument("--descriptors", help="descriptor table .npz, or 'computed' (default: unimol_descriptors.npz next to PATH)")
    cv.add_argument("--roles", help=f"{ROLES_FILE} (default: next to PATH)")
    cv.add_argument(
        "--protocol",
        choices=("paper", "grouped", "composition"),
        default="paper",
        help="paper folds, folds grouped by publication, or leave one product composition out",
    )
    cv.add_argument("--source", help="raw_recipe_dataset.xlsx for --protocol grouped")
    cv.add_argument("--train-max-size", type=float, default=None, help="drop training recipes above this size (nm)")
    cv.add_argument("--set", action="append", metavar="NAME=VALUE", help="model parameter (repeatable)")
    cv.add_argument("--predictions", help="write per-recipe validation predictions (CSV)")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing --predictions file (never an input)")
    cv.add_argument("--json", action="store_true")
    cv.set_defaults(run=_cv)

    train = commands.add_parser("train", help="train a synthesis model (transformer or tree ensemble) and save it")
    train.add_argument("path", help="recipes (e.g. gu2025/recipes.csv)")
    train.add_argument("--out", required=True, help="model directory")
    train.add_argument("--failed", help="failed recipes (negatives of the success head)")
    train.add_argument("--descriptors", help="descriptor table .npz, or 'computed'")
    train.add_argument("--roles", help=f"{ROLES_FILE} (default: next to PATH)")
    train.add_argument(
        "--kind",
        choices=("transformer", "forest"),
        default="transformer",
        help="SynthesisTransformer, or SynthesisForest (trees: size, shape, success)",
    )
    train.add_argument("--preset", choices=sorted(TRANSFORMER_PRESETS), default="transformer", help="transformer preset")
    train.add_argument("--set", action="append", metavar="NAME=VALUE", help="model parameter (repeatable)")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    train.set_defaults(run=_train)

    predict = commands.add_parser("predict", help="predict size, shape and success of recipes (JSON or CSV)")
    predict.add_argument("recipes", help="recipe file (.json, .csv, .xlsx)")
    predict.add_argument("--model", default="default", help="model directory, or 'default' (shipped)")
    predict.add_argument("--descriptors", help="descriptor table (.npz; default: the one saved with the model)")
    predict.add_argument("--roles", help=f"{ROLES_FILE} (default: next to RECIPES if present)")
    predict.add_argument("--json", action="store_true")
    predict.set_defaults(run=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (OSError, ValueError, UnknownChemicalError, ImportError, TimeoutError) as exc:
        print(f"nc-synthmodel: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """The error message on one line; OS errors name their file."""
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc):
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
