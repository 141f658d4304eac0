"""Split the labelled PbSe crop of tem-examples into a training part and a held-out part.

The left 668 columns (two thirds) train the default model; the right 334 columns are kept
for evaluation.  Instances cut by the split keep their (partial) masks on each side.

    python benchmarks/pbse_split.py OUT_DIR      # writes pbse_train_* and pbse_test_* TIFFs
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
from skimage.segmentation import relabel_sequential

SPLIT_COLUMN = 668


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", "../shared/datasets")))
    args = parser.parse_args(argv)
    source = args.datasets / "tem-examples"
    image = iio.imread(source / "pbse_1-0001_16_image.png")
    labels = iio.imread(source / "pbse_1-0001_16_instances.png")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, columns in (("pbse_train", slice(0, SPLIT_COLUMN)), ("pbse_test", slice(SPLIT_COLUMN, None))):
        part, _, _ = relabel_sequential(labels[:, columns])
        tifffile.imwrite(args.out / f"{name}_image.tif", np.ascontiguousarray(image[:, columns]))
        tifffile.imwrite(args.out / f"{name}_instances.tif", part.astype(np.uint16))
        print(f"{name}: {part.shape[1]} columns, {int(part.max())} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
