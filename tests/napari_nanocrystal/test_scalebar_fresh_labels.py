"""The fresh real-label half of the scale-bar benchmark (``benchmarks/scalebar_fresh_labels.csv``):
labels from publications the real-label list never used, so that it stays a scored-only check."""

from __future__ import annotations

import csv
from pathlib import Path

from napari_nanocrystal import scalebar as sb
from napari_nanocrystal.scalebar import read_image

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _rows(name: str) -> list[dict]:
    with open(BENCHMARKS / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fresh_labels_come_from_new_publications(datasets_dir):
    fresh, listed = _rows("scalebar_fresh_labels.csv"), _rows("scalebar_real_labels.csv")
    assert len(fresh) >= 50 and {row["split"] for row in fresh} == {"fresh"}
    assert list(fresh[0]) == list(listed[0])  # the benchmark reads both with one reader
    assert not any("scalebar_5-0011" in row["source"] for row in fresh)  # the test image is never listed
    assert not {row["source"] for row in fresh} & {row["source"] for row in listed}
    assert not {row["group"] for row in fresh} & {row["group"] for row in listed}  # no publication on both lists
    with open(datasets_dir / "emps-train" / "metadata.csv", newline="", encoding="utf-8") as handle:
        doi = {row["filename"]: row["doi"] for row in csv.DictReader(handle)}
    for row in fresh:
        assert doi[Path(row["source"]).name] == row["group"]
        assert sb.parse_scale_text(f"{row['value']} {row['unit']}") == (float(row["value"]), row["unit"])
        assert row["polarity"] in {"dark", "bright"}
        image = read_image(datasets_dir / row["source"])[0]
        r0, c0, r1, c1 = (int(row[k]) for k in ("row0", "col0", "row1", "col1"))
        assert 0 <= r0 < r1 <= image.shape[0] and 0 <= c0 < c1 <= image.shape[1]
