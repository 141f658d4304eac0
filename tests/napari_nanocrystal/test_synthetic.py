"""Synthetic TEM images and scale-bar samples: the truth matches what is drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nc_synthmodel.contract import SHAPE_CLASSES
from scipy import ndimage as ndi

from napari_nanocrystal import synthetic
from napari_nanocrystal.synthetic import make_scale_bar_sample, make_tem_image


@pytest.fixture(scope="module")
def tem():
    return make_tem_image((384, 448), n_particles=50, shape_classes=("sphere", "cube", "rod"), touching_fraction=0.3, rng=3)


def test_tem_image_arrays_and_table(tem):
    assert tem.image.shape == tem.labels.shape == (384, 448)
    assert tem.image.dtype == np.uint8 and tem.labels.dtype == np.int32
    table = tem.particles
    assert list(table.columns[:7]) == ["label", "shape_class", "ecd_nm", "area_px", "centroid_y_px", "centroid_x_px", "rotation_deg"]
    assert 40 <= len(table) <= 50
    assert set(np.unique(tem.labels)) - {0} == set(table["label"])  # every particle visible, labels 1..N
    assert table["label"].tolist() == list(range(1, len(table) + 1))
    assert set(table["shape_class"]) <= {"sphere", "cube", "rod"}
    assert abs(table["ecd_nm"].mean() - 8.0) < 0.6  # mean 8 nm, sd 1 nm
    assert np.allclose(table["ecd_nm"], np.sqrt(4 * table["area_px"] / math.pi) * tem.nm_per_px)


def test_particles_are_dark_on_a_bright_background(tem):
    inside = tem.image[tem.labels > 0].mean()
    grown = ndi.binary_dilation(tem.labels > 0, iterations=4)
    bar = np.zeros_like(grown)
    r0, c0, r1, c1 = tem.scale_bar.bar_box
    bar[r0 - 40 : r1 + 5, c0 - 5 : c1 + 5] = True
    background = tem.image[~grown & ~bar].mean()
    assert inside < background - 20


def test_centroids_and_later_particles_on_top(tem):
    table = tem.particles.set_index("label")
    for label, row in table.iterrows():
        assert 0 <= row.centroid_y_px < tem.labels.shape[0] and 0 <= row.centroid_x_px < tem.labels.shape[1]
    visible = np.bincount(tem.labels.ravel(), minlength=len(table) + 1)[1:]
    assert np.all(visible <= table["area_px"].to_numpy())
    # the last particle is never covered
    assert visible[-1] == table["area_px"].iloc[-1]


def test_touching_fraction_controls_contacts():
    def n_touching(sample):
        labels = sample.labels
        grown = ndi.grey_dilation(labels, size=3)
        return len(np.unique(labels[(grown != labels) & (labels > 0)]))

    apart = make_tem_image((256, 256), n_particles=25, touching_fraction=0.0, scale_bar=False, rng=5)
    together = make_tem_image((256, 256), n_particles=25, touching_fraction=0.6, scale_bar=False, rng=5)
    assert n_touching(apart) == 0
    assert n_touching(together) >= 6
    assert together.particles["touching"].sum() >= 6


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_dtypes(dtype):
    sample = make_tem_image((128, 160), n_particles=10, dtype=dtype, rng=1)
    assert sample.image.dtype == np.dtype(dtype)
    if dtype == "float32":
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
    if sample.scale_bar.polarity == "bright":
        r0, c0, r1, c1 = sample.scale_bar.bar_box
        assert sample.image[r0:r1, c0:c1].min() == (1.0 if dtype == "float32" else np.iinfo(dtype).max)


def test_seed_reproducibility():
    a = make_tem_image((128, 128), n_particles=10, rng=7)
    b = make_tem_image((128, 128), n_particles=10, rng=np.random.default_rng(7))
    c = make_tem_image((128, 128), n_particles=10, rng=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("polarity", ["dark", "bright"])
@pytest.mark.parametrize("panel", [True, False])
def test_scale_bar_truth(polarity, panel):
    sample = make_tem_image(
        (400, 600), n_particles=40, nm_per_px=0.4, bar_polarity=polarity, bar_panel=panel, bar_position="bottom-right", rng=11
    )
    bar = sample.scale_bar
    assert bar.polarity == polarity and bar.panel == panel and bar.position == "bottom-right"
    r0, c0, r1, c1 = bar.bar_box
    assert bar.bar_length_px == c1 - c0
    assert 0.10 * 600 <= bar.bar_length_px <= 0.30 * 600 + 1
    mantissa = bar.value / 10 ** math.floor(math.log10(bar.value))
    assert round(mantissa, 6) in (1, 2, 5)
    assert bar.text == f"{bar.value:g} {bar.unit}"
    assert abs(bar.nm_per_px - 0.4) / 0.4 < 0.01  # rounding the bar to whole pixels
    expected = 0 if polarity == "dark" else 255
    assert np.all(sample.image[r0:r1, c0:c1] == expected)
    assert r1 > 300 and c1 > 300  # bottom-right
    t0, tc0, t1, tc1 = bar.text_box
    assert (sample.image[t0:t1, tc0:tc1] == expected).sum() > 20  # the label's ink is inside its box …
    ring = sample.image[t0 - 1 : t1 + 1, tc0 - 1 : tc1 + 1].copy()
    ring[1:-1, 1:-1] = 255 - expected
    assert not (ring == expected).any()  # … and none outside
    assert t1 <= r0  # label above the bar
    # no particle under the bar or its label
    assert not sample.labels[min(r0, t0) : r1, min(c0, tc0) : max(c1, tc1)].any()


def test_micrometre_label_for_long_bars():
    sample = make_tem_image((256, 512), n_particles=5, diameter_nm=(200.0, 20.0), nm_per_px=20.0, rng=2)
    assert sample.scale_bar.unit == "µm" and sample.scale_bar.value in (1.0, 2.0)


def test_every_shape_class_renders():
    sample = make_tem_image((384, 384), n_particles=22, shape_classes=SHAPE_CLASSES, diameter_nm=(12, 1), scale_bar=False, rng=4)
    assert set(sample.particles["shape_class"]) <= set(SHAPE_CLASSES)
    assert sample.particles["shape_class"].nunique() >= 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape_classes": ("blob",)}, "unknown shape"),
        ({"dtype": "int64"}, "dtype"),
        ({"nm_per_px": -1.0}, "nm_per_px"),
        ({"touching_fraction": 1.5}, "touching_fraction"),
        ({"bar_polarity": "grey"}, "bar_polarity"),
        ({"bar_position": "middle"}, "bar_position"),
        ({"shape": (10, 10)}, "shape"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_tem_image(**({"shape": (64, 64), "n_particles": 2} | kwargs))


def test_scale_bar_samples_are_varied_and_truthful():
    samples = [make_scale_bar_sample(rng=seed) for seed in range(12)]
    params = [s.params for s in samples]
    assert len({p["position"] for p in params}) >= 4
    assert len({p["font"] for p in params}) >= 3
    assert {s.scale_bar.unit for s in samples} >= {"nm", "µm"}
    assert any(p["panel"] for p in params) and not all(p["panel"] for p in params)
    assert any(p["jpeg_quality"] for p in params) and any(p["ticks"] for p in params)
    for s in samples:
        bar = s.scale_bar
        assert s.image.dtype == np.uint8 and s.image.shape[:2] == (512, 512)
        assert (s.image.ndim == 3) == (s.params["colour"] == "yellow")
        r0, c0, r1, c1 = bar.bar_box
        assert bar.bar_length_px == c1 - c0 == s.params["bar_length_px"]
        assert 0.10 * 512 <= bar.bar_length_px <= 0.30 * 512 + 1
        assert math.isclose(bar.nm_per_px, bar.value * {"nm": 1, "µm": 1000, "Å": 0.1}[bar.unit] / bar.bar_length_px)
        assert 0 <= bar.text_box[0] < bar.text_box[2] <= 512 and 0 <= bar.text_box[1] < bar.text_box[3] <= 512


def test_scale_bar_sample_options():
    options = dict(
        rng=1,
        unit="Å",
        value=20,
        bar_length_px=90,
        position="top-left",
        colour="black",
        panel=True,
        ticks=True,
        outline=False,
        font="serif",
        font_px=20,
        thickness_px=5,
        text_side="below",
        noise=0,
    )
    clean = make_scale_bar_sample((300, 400), **options, jpeg_quality=0)
    bar = clean.scale_bar
    assert bar.text in ("20 Å", "20Å") and bar.unit == "Å" and bar.value == 20
    r0, c0, r1, c1 = bar.bar_box
    assert (r1 - r0, c1 - c0) == (5, 90) and r0 < 150 and c0 < 200
    assert np.all(clean.image[r0:r1, c0:c1] == 0)
    assert clean.image[r0 - 1, c0] == clean.image[r0 - 1, c1 - 1] == 0 and clean.image[r0 - 1, c0 + 45] == 255  # ticks, white panel
    assert bar.text_box[0] >= r1
    jpeg = make_scale_bar_sample((300, 400), **options, jpeg_quality=40)
    assert not np.array_equal(jpeg.image, clean.image)
    assert np.abs(jpeg.image.astype(int) - clean.image).mean() < 8
    with pytest.raises(ValueError, match="unit"):
        make_scale_bar_sample(unit="km")
    with pytest.raises(ValueError, match="colour"):
        make_scale_bar_sample(colour="red")


def test_random_tem_images_vary_and_are_reproducible():
    first = [synthetic.random_tem_image((192, 256), rng=seed) for seed in range(6)]
    again = synthetic.random_tem_image((192, 256), rng=3)
    assert np.array_equal(again.image, first[3].image) and np.array_equal(again.labels, first[3].labels)
    sizes = [float(np.median(s.particles["area_px"])) for s in first]
    assert max(sizes) > 2.0 * min(sizes)  # particle sizes differ between images
    assert all(s.image.shape == (192, 256) and s.labels.max() >= 1 for s in first)


def test_write_training_set_is_read_by_training(tmp_path):
    from napari_nanocrystal.segmentation.data import find_labelled_pairs, read_image, read_labels

    messages = []
    paths = synthetic.write_training_set(tmp_path / "syn", 3, shape=(128, 160), seed=5, progress=lambda m, f: messages.append(f))
    pairs = find_labelled_pairs(tmp_path / "syn")
    assert [p.name for p in pairs] == [f"synthetic-5-{i:04d}" for i in range(3)] and len(paths) == 3
    assert messages[-1] == 1.0
    for pair, i in zip(pairs, range(3)):
        truth = synthetic.random_tem_image((128, 160), rng=np.random.default_rng([5, i]))
        assert np.array_equal(read_image(pair.image), truth.image)
        assert np.array_equal(read_labels(pair.labels), truth.labels)
    with pytest.raises(FileExistsError, match="overwrite"):
        synthetic.write_training_set(tmp_path / "syn", 2, shape=(128, 160), seed=5)
    synthetic.write_training_set(tmp_path / "syn", 2, shape=(128, 160), seed=5, overwrite=True)
    with pytest.raises(ValueError, match="n_images"):
        synthetic.write_training_set(tmp_path / "other", 0)


def test_synthesize_cli(tmp_path, capsys):
    from napari_nanocrystal.cli import main

    assert main(["synthesize", str(tmp_path), "--n", "2", "--size", "96", "128", "--seed", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "synthetic-1-0000_image.png",
        "synthetic-1-0000_instances.tif",
        "synthetic-1-0001_image.png",
        "synthetic-1-0001_instances.tif",
    ]
    assert main(["synthesize", str(tmp_path), "--n", "1", "--size", "96", "128", "--seed", "1"]) == 2
    assert "exist already" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synthesize", str(tmp_path), "--n", "0"])


@pytest.mark.parametrize("kind", synthetic.STRIP_KINDS)
def test_strip_samples_draw_their_truth(kind):
    for seed in range(6):
        sample = synthetic.make_strip_sample((448, 640), rng=seed, kind=kind, jpeg_quality=0)
        bar, image = sample.scale_bar, sample.image
        r0, c0, r1, c1 = bar.bar_box
        strip_top = 448 - sample.params["strip_px"]
        assert image.shape == (448, 640) and image.dtype == np.uint8
        assert bar.bar_length_px == c1 - c0 == sample.params["bar_length_px"] and r0 >= strip_top
        assert bar.unit in ("nm", "µm") and not (bar.unit == "µm" and bar.value < 1)  # sub-µm bars are written in nm
        assert math.isclose(bar.nm_per_px, bar.value * {"nm": 1, "µm": 1000}[bar.unit] / bar.bar_length_px)
        assert strip_top <= bar.text_box[0] < bar.text_box[2] <= 448
        row = image[r0:r1, c0:c1].max(axis=0) if kind == "hitachi" else image[r0, c0:c1]
        if kind == "hitachi":  # eleven white ticks on black, first and last at the ruler's ends; label under its right end
            ticks = np.diff(np.concatenate([[0], (row > 128).astype(int)])) == 1
            assert ticks.sum() == 11 and row[0] > 128 and row[-1] > 128
            assert bar.text == synthetic.instrument_strips.hitachi_label(bar.value, bar.unit)
            assert bar.text_box[3] == c1 and bar.text_box[0] >= r1 and bar.polarity == "bright"
        elif kind == "zeiss":  # a dark bar on the white strip under its label, and other text (fields) beside them
            assert np.all(row < 64) and bar.text_box[2] <= r0 and bar.polarity == "dark"
            assert bar.text == f"{bar.value:g} {bar.unit}"
            assert (image[strip_top:, c1 + 20 :] < 128).any()
        else:  # a white bar on the black strip, the label over it (FEI) or right of it (Philips), fields at the left
            assert np.all(row > 192) and bar.polarity == "bright" and bar.text == f"{bar.value:g} {bar.unit}"
            assert (bar.text_box[2] <= r0 and bar.text_box[1] >= c0) if kind == "fei" else bar.text_box[1] > c1
            assert (image[strip_top:, : c0 - 10] > 128).any()
            assert np.all(image[r0, c0 - 3 : c0] < 64) and np.all(image[r0, c1 : c1 + 3] < 64)  # the bar ends where told


def test_strip_sample_labels_and_arguments():
    label = synthetic.instrument_strips.hitachi_label
    assert (label(1, "µm"), label(10, "µm"), label(500, "nm")) == ("1.00um", "10.0um", "500nm")
    first, again = (synthetic.make_strip_sample(rng=7) for _ in range(2))
    assert np.array_equal(first.image, again.image) and first.params == again.params
    with pytest.raises(ValueError, match="kind"):
        synthetic.make_strip_sample(kind="jeol")
    with pytest.raises(ValueError, match="unit"):
        synthetic.make_strip_sample(unit="Å")


def test_print_shrunk_scales_image_and_truth():
    sample = make_scale_bar_sample((600, 800), rng=7, jpeg_quality=0, noise=0.0, colour="black", panel=False, outline=False)
    printed = synthetic.print_shrunk(sample, 2.5)
    bar, small = sample.scale_bar, printed.scale_bar
    assert printed.image.shape == (240, 320) and printed.image.dtype == np.uint8
    assert small.bar_length_px == pytest.approx(bar.bar_length_px / 2.5) and small.nm_per_px == pytest.approx(bar.nm_per_px * 2.5)
    assert (small.value, small.unit, small.text) == (bar.value, bar.unit, bar.text) and printed.params["printed"] == 2.5
    r0, c0, r1, c1 = small.bar_box
    assert printed.image[r0:r1, c0 + 1 : c1 - 1].max() < 128  # the black bar is still dark where it was drawn
    # area averaging: a flat patch keeps its mean; the bar's ink is spread, not lost
    assert printed.image.astype(float).mean() == pytest.approx(sample.image.astype(float).mean(), abs=1.0)
    assert synthetic.print_shrunk(sample, 1.0).image.tobytes() == sample.image.tobytes()
    with pytest.raises(ValueError, match="factor must be >= 1"):
        synthetic.print_shrunk(sample, 0.5)
