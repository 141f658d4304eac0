"""Flow/seed targets, rescaling to a diameter, and the on-disk target cache."""

import numpy as np
import pytest
from PIL import Image
from skimage.draw import disk

from napari_nanocrystal.segmentation import targets
from napari_nanocrystal.segmentation.targets import (
    area_weighted_diameter_px,
    cached_targets,
    flow_targets,
    median_diameter_px,
    rescale_to_diameter,
    weak_label_instances,
)


def _disc_labels(shape=(64, 64), center=(32, 30), radius=14):
    labels = np.zeros(shape, np.int32)
    labels[disk(center, radius, shape=shape)] = 1
    return labels


def test_disc_flows_point_inward_and_seed_is_foreground():
    labels = _disc_labels()
    original = labels.copy()
    t = flow_targets(labels)
    assert t.shape == (3, 64, 64) and t.dtype == np.float32
    np.testing.assert_array_equal(labels, original)  # input not renumbered in place
    np.testing.assert_array_equal(t[2], (labels > 0).astype(np.float32))
    assert np.all(t[:2][:, labels == 0] == 0)
    rows, cols = np.nonzero(labels)
    towards_centre = np.stack([32 - rows, 30 - cols]).astype(float)
    far = np.hypot(*towards_centre) > 3
    dots = (t[0, rows, cols] * towards_centre[0] + t[1, rows, cols] * towards_centre[1]) / np.hypot(*towards_centre).clip(1e-9)
    assert np.mean(dots[far] > 0.5) > 0.95  # flows point to the centre
    magnitude = np.hypot(t[0, rows, cols], t[1, rows, cols])
    assert np.median(magnitude) == pytest.approx(1.0, abs=1e-3)  # unit flows
    # right of the centre the x-flow is negative, above it the y-flow is positive
    assert t[1, 30, 40] < -0.5 and t[0, 22, 30] > 0.5


def test_empty_labels_give_zero_targets():
    t = flow_targets(np.zeros((16, 20), np.uint16))
    assert t.shape == (3, 16, 20) and not t.any()


def test_rescale_to_diameter_sets_the_median_diameter():
    labels = np.zeros((200, 200), np.int32)
    for k, (cy, cx) in enumerate([(50, 50), (50, 140), (140, 60), (140, 150)], start=1):
        labels[disk((cy, cx), 30, shape=labels.shape)] = k
    image = np.dstack([labels > 0] * 3).astype(np.uint8) * 200
    assert median_diameter_px(labels) == pytest.approx(60, rel=0.03)
    small_image, small_labels, scale = rescale_to_diameter(image, labels, target_diameter_px=30)
    assert scale == pytest.approx(0.5, rel=0.03)
    assert small_labels.shape == small_image.shape[:2] == (round(200 * scale), round(200 * scale))
    assert small_labels.dtype == np.int32 and small_image.dtype == np.float32
    assert set(np.unique(small_labels)) == {0, 1, 2, 3, 4}
    assert median_diameter_px(small_labels) == pytest.approx(30, rel=0.05)


def test_area_weighted_diameter_follows_the_large_particles_not_the_specks():
    labels = np.zeros((300, 300), np.int32)
    for k, centre in enumerate([(60, 60), (60, 200), (200, 60)], start=1):  # three particles of 60 px
        labels[disk(centre, 30, shape=labels.shape)] = k
    for k in range(10):  # ten specks of ~6 px
        labels[disk((150 + 12 * (k % 5), 180 + 30 * (k // 5)), 3, shape=labels.shape)] = 10 + k
    assert median_diameter_px(labels) < 10
    assert area_weighted_diameter_px(labels) == pytest.approx(60, rel=0.03)
    assert area_weighted_diameter_px(np.zeros((8, 8), np.int32)) == 0.0


def test_cache_computes_flows_once_keyed_by_content(tmp_path, monkeypatch):
    labels = np.zeros((120, 100), np.uint16)
    labels[disk((40, 40), 20, shape=labels.shape)] = 1
    labels[disk((80, 70), 20, shape=labels.shape)] = 7
    image = np.where(labels > 0, 60, 200).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(labels).save(tmp_path / "a_masks.png")
    calls = []
    real = targets.flow_targets
    monkeypatch.setattr(targets, "flow_targets", lambda lab: calls.append(1) or real(lab))

    cache = tmp_path / "cache"
    first = cached_targets(tmp_path / "a.png", tmp_path / "a_masks.png", cache, target_diameter_px=20)
    assert len(calls) == 1 and len(list(cache.glob("*.npz"))) == 1
    assert first["targets"].shape == (3, *first["labels"].shape) == (3, *first["image"].shape)
    assert first["scale"] == pytest.approx(0.5, rel=0.05)
    # same contents under another name: a cache hit, identical arrays
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    second = cached_targets(tmp_path / "b.png", tmp_path / "a_masks.png", cache, target_diameter_px=20)
    assert len(calls) == 1
    for name in ("image", "labels", "targets"):
        np.testing.assert_array_equal(first[name], second[name])
    # other parameters or edited contents: a new entry
    cached_targets(tmp_path / "a.png", tmp_path / "a_masks.png", cache, target_diameter_px=None)
    assert len(calls) == 2
    Image.fromarray(image // 2).save(tmp_path / "a.png")
    cached_targets(tmp_path / "a.png", tmp_path / "a_masks.png", cache, target_diameter_px=20)
    assert len(calls) == 3 and len(list(cache.glob("*.npz"))) == 3
    # a corrupt entry is recomputed, not fatal
    for entry in cache.glob("*.npz"):
        entry.write_bytes(b"broken")
    cached_targets(tmp_path / "b.png", tmp_path / "a_masks.png", cache, target_diameter_px=20)
    assert len(calls) == 4


def test_weak_label_instances_keep_single_particles_grown_into_their_band():
    """Cores grown into the inner half of their uncertain band; merged pairs, fragments and background left out."""
    from napari_nanocrystal.label_files import UNCERTAIN

    weak = np.zeros((120, 160), np.uint8)
    singles = [(20, 20), (20, 60), (20, 100), (20, 140), (60, 20), (60, 140)]
    for center in singles:
        weak[disk(center, 10, shape=weak.shape)] = UNCERTAIN
        weak[disk(center, 7, shape=weak.shape)] = 1
    for center in ((95, 60), (95, 72)):  # two touching particles whose cores merged: one concave core
        weak[disk(center, 10, shape=weak.shape)] = UNCERTAIN
    for center in ((95, 60), (95, 72)):
        weak[disk(center, 7, shape=weak.shape)] = 1
    weak[100:102, 130:132] = 1  # a fragment
    star = np.hypot(*np.ogrid[-11:12, -11:12]) <= 4 + 6 * np.abs(np.cos(2 * np.arctan2(*np.ogrid[-11:12, -11:12])))
    weak[49:72, 69:92][star] = 1  # a four-armed star at (60, 80): concave, but one particle
    instances = weak_label_instances(weak, band_px=4.0)
    assert instances.dtype == np.int32 and instances.max() == len(singles) + 1
    assert instances[60, 80] > 0 and instances[60, 89] == instances[60, 80]  # the star, arm included
    for center in singles:
        label = instances[center]
        assert label > 0
        own = instances == label
        assert own.sum() == pytest.approx(np.pi * 8.5**2, rel=0.1)  # the core (r 7) grown to the band's middle (r 8.5)
    assert (weak[instances > 0] != 0).all()  # never into the background
    assert instances[95, 66] == 0 and instances[100, 130] == 0  # the merged pair and the fragment
    assert weak_label_instances(weak, band_px=4.0, max_elongation=3.0)[95, 66] == 0  # long allowed: two peaks
    assert weak_label_instances(weak, band_px=4.0, max_elongation=3.0, peak_depth=0.5)[95, 66] > 0  # shallow saddle
    assert weak_label_instances(np.zeros((8, 8), np.uint8)).max() == 0
    with pytest.raises(ValueError, match="2-D"):
        weak_label_instances(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="peak_depth"):
        weak_label_instances(weak, peak_depth=0)


def test_pin_weak_edges_resolves_the_band_of_single_particles_only():
    """Around a kept particle the band becomes particle (inner half) and background (outer); elsewhere it stays."""
    from napari_nanocrystal.label_files import UNCERTAIN
    from napari_nanocrystal.segmentation.targets import pin_weak_edges

    weak = np.zeros((60, 120), np.uint8)
    centres = ((30, 20), (30, 50), (30, 82), (30, 94))  # two single particles, then a merged pair
    for centre in centres:
        weak[disk(centre, 10, shape=weak.shape)] = UNCERTAIN
    for centre in centres:
        weak[disk(centre, 7, shape=weak.shape)] = 1
    instances = weak_label_instances(weak, band_px=4.0)
    assert instances[30, 88] == 0 and instances[30, 20] > 0 and instances[30, 50] > 0
    pinned = pin_weak_edges(weak, instances, band_px=4.0)
    assert (pinned[instances > 0] == 1).all()
    assert pinned[30, 20 + 10] == 0 and pinned[30, 50 - 10] == 0  # the outer half of a kept particle's band
    assert pinned[30, 94 + 9] == UNCERTAIN  # the band of a dropped component stays uncertain
    assert ((pinned == weak) | (weak == UNCERTAIN)).all()  # only the band changes
    with pytest.raises(ValueError, match="differ in shape"):
        pin_weak_edges(weak, instances[:5])
