"""``nanocrystal synthesize``: synthetic TEM images with instance maps, as extra training data.

Example::

    nanocrystal synthesize data/synthetic --n 60 --seed 0
    nanocrystal train cpu-small --labeled data/emps-train --labeled data/synthetic --out runs/with-synthetic
"""

from __future__ import annotations

import argparse
import sys

from ._args import positive_int


def _size(text: str) -> int:
    value = positive_int(text)
    if value < 64:
        raise argparse.ArgumentTypeError(f"images must be at least 64 px, not {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synthesize",
        help="write synthetic TEM images with instance maps (training data)",
        description=(
            "Write N synthetic bright-field TEM images (random shape classes, sizes, crowding, contrast, "
            "illumination, blur, dose and scale bars) as <name>_image.png + <name>_instances.tif pairs, "
            "the layout `nanocrystal train --labeled` reads.  Reproducible: image i is drawn from (seed, i)."
        ),
    )
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--n", type=positive_int, default=40, metavar="N", help="number of images (default 40)")
    parser.add_argument("--size", type=_size, nargs=2, default=(512, 512), metavar=("ROWS", "COLS"), help="image size (default 512 512)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the set (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files of the same names")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from napari_nanocrystal.synthetic import write_training_set

    def progress(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", flush=True)

    try:
        paths = write_training_set(args.out, args.n, shape=tuple(args.size), seed=args.seed, overwrite=args.overwrite, progress=progress)
    except (FileExistsError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} image + instance-map pairs to {args.out}")
    return 0
