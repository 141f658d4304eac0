"""Scale bars on printed figures (issue 16): ``scalebar_benchmark.py --printed``.

Real figures are micrographs shrunk for the page; the benchmark's ``--printed`` option draws each generated
sample 1.6-3.2x larger and shrinks it (``synthetic.print_shrunk``), as ``scalebar_strips.py --printed`` does,
and scores its fractional bar length within max(1 px, 1 %).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scalebar_benchmark as bench  # noqa: E402
import scalebar_strips as strips  # noqa: E402

SEEDS = (62000, 62001, 62002, 62003)  # neither the tests' generator seeds nor the benchmark's dev / screen seeds


@pytest.mark.parametrize("seed", SEEDS)
def test_printed_sample_is_printed_as_the_strip_benchmark_prints(seed):
    shape = bench.SHAPES[seed % len(bench.SHAPES)]
    sample = bench.printed_sample(seed, shape)
    factor, quality = sample.params["printed"], sample.params["printed_jpeg_quality"]
    # the same shrink and JPEG as the strip benchmark's printed sample of this seed (one stream per seed)
    strip = strips.strip_sample("zeiss", seed, printed=True)
    assert (factor, quality) == (strip.params["printed"], strip.params["printed_jpeg_quality"])
    assert 1.6 <= factor <= 3.2 and (quality == 0 or 70 <= quality < 95)
    assert all(abs(a - b) <= 1 for a, b in zip(sample.image.shape, shape))  # shrunk back to about the seed's shape
    big = bench.make_scale_bar_sample((round(shape[0] * factor), round(shape[1] * factor)), rng=seed)
    truth = sample.scale_bar
    assert (truth.value, truth.unit) == (big.scale_bar.value, big.scale_bar.unit)
    assert truth.bar_length_px == pytest.approx(big.scale_bar.bar_length_px * sample.image.shape[1] / big.image.shape[1])
    assert truth.bar_length_px != round(truth.bar_length_px)  # fractional: scored with a tolerance


def test_printed_length_counts_within_one_px_or_one_percent():
    assert bench._length_ok(100.9, 100.0, printed=True) and not bench._length_ok(101.1, 100.0, printed=True)
    assert bench._length_ok(251.9, 250.0, printed=True)  # 1 % of 250 px
    assert not bench._length_ok(251.9, 250.0, printed=False)  # unprinted samples: ±1 px as before
    assert not bench._length_ok(253.0, 250.0, printed=True)


def test_printed_option_reads_printed_samples(tmp_path):
    out, records = tmp_path / "printed.md", tmp_path / "printed.csv"
    argv = ["--set", "generated", "--printed", "--n", "2", "--seed", str(SEEDS[0]), "--datasets", str(tmp_path)]
    assert bench.main([*argv, "--out", str(out), "--records", str(records)]) == 0
    with open(records, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["seed"]) for r in rows] == [SEEDS[0], SEEDS[0] + 1]
    for row in rows:
        seed = int(row["seed"])
        sample = bench.printed_sample(seed, bench.SHAPES[seed % len(bench.SHAPES)])
        assert float(row["printed"]) == pytest.approx(sample.params["printed"])
        assert int(row["printed_jpeg_quality"]) == sample.params["printed_jpeg_quality"]
        assert float(row["bar_px"]) == pytest.approx(sample.scale_bar.bar_length_px)
        if row["outcome"] == "correct":  # scored on the printed truth, its length within max(1 px, 1 %)
            assert (float(row["read_value"]), row["read_unit"]) == (sample.scale_bar.value, sample.scale_bar.unit)
            assert abs(float(row["read_px"]) - float(row["bar_px"])) <= max(1.0, 0.01 * float(row["bar_px"]))
    text = out.read_text(encoding="utf-8")
    assert "**Printed**" in text and "print shrink factor" in text
    assert np.isfinite([float(r["bar_px"]) for r in rows]).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_small_print_sizes_label_and_bar_for_the_printed_shape(seed):
    shape = bench.SHAPES[seed % len(bench.SHAPES)]
    as_drawn, small = bench.printed_sample(seed, shape), bench.printed_sample(seed, shape, small=True)
    factor = small.params["printed"]
    assert factor == as_drawn.params["printed"]  # the same print of the same seed
    # the same random draws, sized for the printed side instead of the drawn one (clamped at 12 px and 2 px)
    drawn_side, printed_side = round(min(shape) * factor), min(shape)
    for key, least, low, high in (("font_px", 12, 0.03, 0.06), ("thickness_px", 2, 0.006, 0.02)):
        assert max(least, round(low * printed_side)) <= small.params[key] <= max(least, round(high * printed_side))
        assert small.params[key] <= as_drawn.params[key] * printed_side / drawn_side + 1
    assert (small.scale_bar.value, small.scale_bar.unit) == (as_drawn.scale_bar.value, as_drawn.scale_bar.unit)
    assert small.params["font_px"] / factor < 0.06 * min(shape) / 1.6  # printed, the label is small print


def test_sized_for_the_drawn_shape_is_the_default_sample():
    sample = bench.make_scale_bar_sample((448, 640), rng=SEEDS[1])
    same = bench.make_scale_bar_sample((448, 640), rng=SEEDS[1], sized_for=(448, 640))
    assert np.array_equal(sample.image, same.image) and sample.params == same.params
    with pytest.raises(ValueError, match="shape"):
        bench.make_scale_bar_sample((448, 640), rng=SEEDS[1], sized_for=(0, 640))


def test_printed_small_option_reads_small_print(tmp_path):
    out, records = tmp_path / "small.md", tmp_path / "small.csv"
    argv = ["--set", "generated", "--printed", "small", "--n", "1", "--seed", str(SEEDS[2]), "--datasets", str(tmp_path)]
    assert bench.main([*argv, "--out", str(out), "--records", str(records)]) == 0
    with open(records, newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    sample = bench.printed_sample(SEEDS[2], bench.SHAPES[SEEDS[2] % len(bench.SHAPES)], small=True)
    assert int(row["font_px"]) == sample.params["font_px"] and float(row["bar_px"]) == pytest.approx(sample.scale_bar.bar_length_px)
    assert "**Small print**" in out.read_text(encoding="utf-8")
