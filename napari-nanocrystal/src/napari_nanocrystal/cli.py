"""``nanocrystal`` batch command line (headless).

Each subcommand lives in its own module under :mod:`napari_nanocrystal._commands` and
defines ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
Modules are imported only to build the parser; heavy libraries (torch, cellpose, mmdet,
EasyOCR) are imported inside ``func``, so ``nanocrystal --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("analyze", "segment", "evaluate", "train", "weak_labels", "synthesize")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanocrystal", description="Headless nanocrystal TEM analysis.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"napari_nanocrystal._commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
