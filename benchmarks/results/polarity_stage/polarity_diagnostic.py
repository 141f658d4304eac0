"""Issue 15 polarity stage, diagnostic (not deciding): grouped-val AP50 of a model on each image as given,
on the inverted image, and the per-image better of the two (a polarity oracle), all with the defaults.

    python benchmarks/results/polarity_stage/polarity_diagnostic.py MODEL OUT.json [THREADS]
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from napari_nanocrystal.segmentation import segment
from napari_nanocrystal.segmentation.data import emps_split, load_emps_pair
from napari_nanocrystal.segmentation.evaluation import evaluate
from napari_nanocrystal.segmentation.network import resolve_model
from nc_synthmodel.io import atomic_write_text

REPO = Path(__file__).resolve().parents[3]
ROOT = Path(os.environ.get("NANOCRYSTAL_DATASETS", REPO.parent / "shared" / "datasets")) / "emps-train"


def pooled_ap50(rows: list, key: str) -> float:
    """TP / (TP + FP + FN) pooled over images; ``key`` "best" takes each image's better polarity."""
    counts = [r[key] if key in r else max((r["orig"], r["inv"]), key=lambda v: v[0] / max(1, sum(v))) for r in rows]
    tp, fp, fn = np.array(counts).sum(0)
    return float(tp / (tp + fp + fn))


def main() -> None:
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    _, val = emps_split(ROOT)
    net = resolve_model(sys.argv[1])
    rows = []
    for name in val:
        image, labels = load_emps_pair(ROOT, name)
        inverted = 255 - image if image.dtype == np.uint8 else image.max() - image
        row = {"name": name}
        for mode, img in (("orig", image), ("inv", inverted)):
            s = evaluate([segment(img, net).labels], [labels], thresholds=(0.5,))
            row[mode] = [int(s["tp"][0]), int(s["fp"][0]), int(s["fn"][0])]
        rows.append(row)
    out = {"model": sys.argv[1], "orig": pooled_ap50(rows, "orig"), "inv": pooled_ap50(rows, "inv"), "oracle": pooled_ap50(rows, "best")}
    atomic_write_text(sys.argv[2], json.dumps({**out, "rows": rows}))
    print(sys.argv[1], {k: round(out[k], 3) for k in ("orig", "inv", "oracle")})


if __name__ == "__main__":
    main()
