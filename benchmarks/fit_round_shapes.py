"""Fit the round-family shape model shipped in ``napari_nanocrystal/models/round_shapes.json``.

    python benchmarks/fit_round_shapes.py [--n 800] [--seed 50000] [--C 100]

The named-shape rules (:func:`napari_nanocrystal.shapes.classify_shape`) tell the round family —
sphere, hexagon, flower — from the other classes reliably, but not from each other once boundary
noise is as large as a hexagon's corners; a multinomial logistic regression on the rules' own
scale-free features (plus the particle size) decides within the family.  Training masks come from
``random_shape_mask`` with seeds ``--seed`` + j (disjoint from the benchmark's 20000–24399 and the
tests'); the setting (features: with the size, without higher harmonics; C = 100) was chosen by
5-fold cross-validation on these training masks only.  Writes the JSON atomically.
"""

from __future__ import annotations

import argparse
import json
import sys

from napari_nanocrystal.shapes import ROUND_MODEL_FILE, fit_round_shape_model
from nc_synthmodel.io import atomic_write_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=800, help="masks per class (all 11 classes are drawn in turn)")
    parser.add_argument("--seed", type=int, default=50000)
    parser.add_argument("--C", type=float, default=100.0, help="inverse regularisation strength")
    parser.add_argument("--out", default=str(ROUND_MODEL_FILE))
    args = parser.parse_args(argv)
    model = fit_round_shape_model(args.n, args.seed, args.C)
    atomic_write_text(args.out, json.dumps(model, indent=1) + "\n")
    print(f"{args.out}: {model['training']['samples']} training masks, classes {model['classes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
