"""measure_particles against analytic shapes, and the particle-table contract."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from nc_synthmodel.contract import PARTICLE_COLUMNS, outcome_from_particles, validate_particle_table
from skimage.draw import disk, ellipse, polygon
from skimage.measure import perimeter_crofton

from napari_nanocrystal.measure import _polygon_perimeter_px, measure_particles


def _disc_image(diameter_px: float, size: int | None = None, centre=None) -> np.ndarray:
    size = size or int(diameter_px + 20)
    centre = centre or (size / 2 + 0.3, size / 2 - 0.2)  # off-grid: no symmetric rounding luck
    labels = np.zeros((size, size), np.int32)
    rr, cc = disk(centre, diameter_px / 2, shape=labels.shape)
    labels[rr, cc] = 1
    return labels


def _square_image(side_px: float, angle_deg: float = 0.0) -> np.ndarray:
    size = int(side_px * 1.5 + 20)
    c = size / 2 + 0.3
    h = side_px / 2
    corners = np.array([[-h, -h], [-h, h], [h, h], [h, -h]])
    t = math.radians(angle_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    corners = corners @ rot.T + c
    labels = np.zeros((size, size), np.int32)
    rr, cc = polygon(corners[:, 0], corners[:, 1], shape=labels.shape)
    labels[rr, cc] = 1
    return labels


@pytest.mark.parametrize("diameter_px", [40, 64, 100])
def test_disc_size_and_shape(diameter_px):
    row = measure_particles(_disc_image(diameter_px), nm_per_px=0.5).iloc[0]
    assert row["ecd_nm"] == pytest.approx(0.5 * diameter_px, rel=0.01)
    assert row["area_nm2"] == pytest.approx(0.25 * row["area_px"])
    assert row["area_px"] == pytest.approx(math.pi * diameter_px**2 / 4, rel=0.02)
    assert row["circularity"] == pytest.approx(1.0, abs=0.05)
    assert row["circularity"] <= 1.0
    assert row["solidity"] == pytest.approx(1.0, abs=0.03)
    assert row["convexity"] == pytest.approx(1.0, abs=0.03)
    assert row["aspect_ratio"] == pytest.approx(1.0, abs=0.03)
    assert row["eccentricity"] < 0.25


@pytest.mark.parametrize("side_px,angle_deg", [(40, 0), (60, 30), (80, 45), (100, 10)])
def test_square_size_and_circularity(side_px, angle_deg):
    row = measure_particles(_square_image(side_px, angle_deg), nm_per_px=2.0).iloc[0]
    assert row["ecd_nm"] == pytest.approx(2.0 * 2 * side_px / math.sqrt(math.pi), rel=0.01)
    assert row["circularity"] == pytest.approx(math.pi / 4, rel=0.06)
    assert row["solidity"] == pytest.approx(1.0, abs=0.03)
    assert row["aspect_ratio"] == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("semi_major_px,angle", [(40, 0.0), (60, 0.7), (50, -1.2)])
def test_ellipse_two_to_one(semi_major_px, angle):
    a, b = semi_major_px, semi_major_px / 2
    size = 2 * a + 20
    labels = np.zeros((size, size), np.int32)
    rr, cc = ellipse(size / 2 + 0.3, size / 2 - 0.2, b, a, shape=labels.shape, rotation=angle)
    labels[rr, cc] = 1
    row = measure_particles(labels, nm_per_px=1.0).iloc[0]
    assert row["ecd_nm"] == pytest.approx(2 * math.sqrt(a * b), rel=0.01)
    assert row["aspect_ratio"] == pytest.approx(2.0, rel=0.03)
    assert row["eccentricity"] == pytest.approx(math.sqrt(3) / 2, abs=0.02)
    h = ((a - b) / (a + b)) ** 2  # Ramanujan's perimeter
    perimeter = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    assert row["circularity"] == pytest.approx(4 * math.pi * math.pi * a * b / perimeter**2, rel=0.03)


def test_perimeter_estimator_choice():
    """Why measure uses the polygonised iso-contour: Crofton is exact for discs but
    biased for upright edges; ours is good for both (see the measure module docstring)."""
    disc = _disc_image(120) > 0
    square = _square_image(80) > 0
    for mask, truth in ((disc, 1.0), (square, math.pi / 4)):
        ours = 4 * math.pi * mask.sum() / _polygon_perimeter_px(mask) ** 2
        assert ours == pytest.approx(truth, rel=0.05)
    crofton = 4 * math.pi * square.sum() / perimeter_crofton(square, 4) ** 2
    assert crofton > 1.1 * math.pi / 4


def test_schema_and_defaults():
    labels = np.zeros((100, 100), np.uint16)
    labels[_disc_image(30, 100, (30, 30)) > 0] = 3
    labels[_disc_image(20, 100, (70, 70)) > 0] = 7
    table = measure_particles(labels)
    assert list(table.columns) == list(PARTICLE_COLUMNS)
    assert [str(t) for t in table.dtypes] == [d for d, _, _ in PARTICLE_COLUMNS.values()]
    assert table["label"].tolist() == [3, 7]
    assert table["area_nm2"].isna().all() and table["ecd_nm"].isna().all()  # uncalibrated
    assert table["confidence"].isna().all()
    assert (table["shape_cluster"] == -1).all()
    assert table["shape_class"].isna().all()
    assert table.loc[0, "centroid_y_px"] == pytest.approx(30, abs=0.5)
    assert table.loc[1, "centroid_x_px"] == pytest.approx(70, abs=0.5)
    validate_particle_table(table)


def test_empty_image_gives_empty_table():
    table = measure_particles(np.zeros((20, 30), np.int32), nm_per_px=1.0)
    assert table.empty and list(table.columns) == list(PARTICLE_COLUMNS)


def test_tiny_particles_do_not_break():
    labels = np.zeros((20, 20), np.int32)
    labels[5, 5] = 1  # one pixel
    labels[10, 3:13] = 2  # a 1-px line: no minor axis
    table = measure_particles(labels, nm_per_px=1.0)
    assert len(table) == 2
    assert (table["circularity"].dropna() <= 1).all()
    assert np.isnan(table.loc[1, "aspect_ratio"])


def test_border_exclusion_and_min_area():
    labels = np.zeros((120, 120), np.int32)
    labels[0:10, 50:60] = 1  # touches the top border
    labels[110:120, 110:120] = 2  # touches the bottom-right corner
    labels[40:60, 40:60] = 3  # 400 px, inside
    labels[80:84, 20:24] = 4  # 16 px, inside
    assert measure_particles(labels)["label"].tolist() == [1, 2, 3, 4]
    assert measure_particles(labels, exclude_border=True)["label"].tolist() == [3, 4]
    assert measure_particles(labels, min_area_px=20)["label"].tolist() == [1, 2, 3]
    assert measure_particles(labels, exclude_border=True, min_area_px=20)["label"].tolist() == [3]


def test_confidence_mapping_and_array():
    labels = np.zeros((30, 30), np.int32)
    labels[2:8, 2:8] = 1
    labels[12:20, 12:20] = 2
    by_map = measure_particles(labels, confidence={2: 0.8})
    assert np.isnan(by_map.loc[0, "confidence"]) and by_map.loc[1, "confidence"] == pytest.approx(0.8)
    by_array = measure_particles(labels, confidence=np.array([0.0, 0.3, 0.9]))
    assert by_array["confidence"].tolist() == pytest.approx([0.3, 0.9])
    with pytest.raises(ValueError, match="indexed by label"):
        measure_particles(labels, confidence=np.array([0.0, 0.3]))


@pytest.mark.parametrize(
    "labels,match",
    [
        (np.zeros((5, 5), float), "dtype float64"),
        (np.zeros((5, 5), bool), "dtype bool"),
        (np.zeros((2, 5, 5), np.int32), "ndim=3"),
        (np.zeros(5, np.int32), "ndim=1"),
        (-np.ones((5, 5), np.int32), "non-negative"),
    ],
)
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        measure_particles(labels)


@pytest.mark.parametrize("nm_per_px", [0, -1.0, float("nan"), float("inf"), "a"])
def test_bad_scale(nm_per_px):
    with pytest.raises(ValueError, match="nm_per_px"):
        measure_particles(np.zeros((5, 5), np.int32), nm_per_px=nm_per_px)


def test_outcome_from_two_disc_sizes():
    """6 discs of 40 px and 4 of 60 px at 0.5 nm/px: D = 24 nm, σ = 4.90 nm (20.4 %), N = 10."""
    labels = np.zeros((300, 500), np.int32)
    label = 0
    for i, diameter in enumerate([40] * 6 + [60] * 4):
        label += 1
        centre = (75 + 150 * (i // 5) + 0.3, 50 + 100 * (i % 5) - 0.2)
        rr, cc = disk(centre, diameter / 2, shape=labels.shape)
        labels[rr, cc] = label
    outcome = outcome_from_particles(measure_particles(labels, nm_per_px=0.5, exclude_border=True))
    sizes = np.array([20.0] * 6 + [30.0] * 4)
    assert outcome.n_particles == 10
    assert outcome.size_nm == pytest.approx(sizes.mean(), rel=0.01)
    assert outcome.size_dispersion_pct == pytest.approx(100 * sizes.std() / sizes.mean(), abs=0.5)
    assert outcome.shape is None  # not classified yet


def test_core_modules_have_no_gui_imports():
    """measure and shapes import with napari and every Qt binding blocked."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6'}:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import napari_nanocrystal.measure, napari_nanocrystal.shapes\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
