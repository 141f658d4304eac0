"""EMPS fixed split and loader; weak labels from the paper's side-by-side format."""

import numpy as np
import pytest

from napari_nanocrystal.segmentation.data import emps_names, emps_split, load_emps_pair, read_image, weak_label_from_pair


@pytest.fixture(scope="module")
def emps(datasets_dir):
    return datasets_dir / "emps-train"


def test_emps_split_is_fixed_and_disjoint(emps):
    train, val = emps_split(emps)
    names = emps_names(emps)
    assert len(names) == 366 and len(val) == 74 and len(train) == 292
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(names)
    assert val == names[::5]
    assert val[:3] == ["00655d9628", "0289bd97e6", "06f605c0b1"]  # recorded once: the split must not move
    assert emps_split(emps) == (train, val)


def test_load_emps_pair(emps):
    _, val = emps_split(emps)
    image, labels = load_emps_pair(emps, val[0])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert labels.dtype == np.int32 and labels.shape == image.shape[:2] and labels.max() > 0


def test_weak_label_from_pair():
    pair = np.zeros((4, 8), np.uint8)
    pair[:, 4:6] = 255  # right half: foreground in columns 0-1
    pair[1, 1] = 255  # left half: uncertain pixel at (1, 1)
    weak = weak_label_from_pair(pair)
    expected = np.array([[1, 1, 0, 0]] * 4, np.uint8)
    expected[1, 1] = 255
    np.testing.assert_array_equal(weak, expected)
    with pytest.raises(ValueError):
        weak_label_from_pair(np.zeros((4, 7)))


def test_weak_label_of_the_paper_example(datasets_dir):
    pair = read_image(datasets_dir / "tem-examples" / "weak_1-0001_weaklabel_pair.png")
    image = read_image(datasets_dir / "tem-examples" / "weak_1-0001_image.png")  # a palette PNG
    weak = weak_label_from_pair(pair)
    assert weak.shape == image.shape[:2] and image.ndim == 3
    assert set(np.unique(weak)) == {0, 1, 255}
