"""``nc-synthmodel`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .dataset import read_descriptor_names, summarize
from .io import read_recipes, read_roles

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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"nc-synthmodel: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
