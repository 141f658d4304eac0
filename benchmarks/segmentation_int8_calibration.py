"""Calibrate the int8 network pass (``segment(..., precision="int8")``) on EMPS grouped *training* images.

    python benchmarks/segmentation_int8_calibration.py [--model default] [--every 12] [--out PATH]

Every ``--every``-th image of the publication-grouped training split (``emps_split``; never a validation
image, never a real TEM test image), normalised as :func:`napari_nanocrystal.segment` does and resized so
its median particle is the model's diameter (what the network sees), at most its central 1024² px, goes
through :func:`~napari_nanocrystal.segmentation.quantize.calibrate_int8`.  Writes the calibration JSON
beside the model's weights (``models/default.int8.json`` for the shipped model) unless ``--out`` says where.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--every", type=int, default=12, help="take every N-th training image (sorted names)")
    parser.add_argument("--datasets", type=Path, default=Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from napari_nanocrystal.segmentation._image import prepare_image, resize_image, scaled_shape
    from napari_nanocrystal.segmentation.data import emps_split, load_emps_pair
    from napari_nanocrystal.segmentation.network import available_models, resolve_model
    from napari_nanocrystal.segmentation.quantize import calibrate_int8, calibration_path
    from napari_nanocrystal.segmentation.targets import median_diameter_px
    from nc_synthmodel.io import atomic_write_text

    torch.set_num_threads(args.threads)
    root = args.datasets / "emps-train"
    train, _val = emps_split(root)
    names = sorted(train)[:: args.every]
    net = resolve_model(args.model)
    diameter, percentiles = float(net.config["diameter_px"]), tuple(net.config["percentiles"])
    images = []
    for name in names:
        image, labels = load_emps_pair(root, name)
        gray = prepare_image(image, percentiles)
        true_px = median_diameter_px(labels)
        if true_px > 0:
            gray = resize_image(gray, scaled_shape(gray.shape, diameter / true_px))
        top, left = max(0, (gray.shape[0] - 1024) // 2), max(0, (gray.shape[1] - 1024) // 2)
        images.append(gray[top : top + 1024, left : left + 1024])
        print(f"{name}: {true_px:.0f} px -> {images[-1].shape}", flush=True)
    calibration = calibrate_int8(net, images)
    calibration["source"] = f"EMPS grouped training split, every {args.every}th of {len(train)} sorted names: {names}"
    if args.out is not None:
        out = args.out
    elif args.model in available_models():
        out = calibration_path(available_models()[args.model])
    else:
        out = calibration_path(args.model)
    atomic_write_text(out, json.dumps(calibration, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(calibration['observers'])} observers, {len(images)} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
