"""EMPS fixed split and loader; weak labels from the paper's side-by-side format."""

import numpy as np
import pytest

from napari_nanocrystal.segmentation.data import emps_names, emps_split, load_emps_pair, read_image, weak_label_from_pair


@pytest.fixture(scope="module")
def emps(datasets_dir):
    return datasets_dir / "emps-train"


def test_emps_split_is_fixed_disjoint_and_grouped_by_publication(emps):
    from napari_nanocrystal.segmentation.data import emps_publications

    train, val = emps_split(emps)
    names = emps_names(emps)
    assert len(names) == 366 and len(val) == 79 and len(train) == 287
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(names)
    publications = emps_publications(emps)
    val_pubs, train_pubs = {publications[n] for n in val}, {publications[n] for n in train}
    assert val_pubs.isdisjoint(train_pubs)  # no publication on both sides
    assert len(val_pubs) == 49 and len(val_pubs | train_pubs) == 247  # a fifth of the publications
    assert val[:3] == ["0144266d21", "032bd4a6b1", "03cd0b2741"]  # recorded once: the split must not move
    assert emps_split(emps) == (train, val)


def test_emps_split_without_metadata_holds_out_a_fifth_of_the_names(tmp_path):
    (tmp_path / "train.csv").write_text("\n".join(f"img{i:02d}" for i in range(20)) + "\n", encoding="utf-8")
    train, val = emps_split(tmp_path)
    assert len(val) == 4 and len(train) == 16 and set(train).isdisjoint(val)


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
