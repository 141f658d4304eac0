"""evaluate(): cellpose AP pooled and per image; otsu_watershed baseline."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_nanocrystal.segmentation.evaluation import evaluate, otsu_watershed


def _labels(centres, shape=(64, 64), radius=6):
    labels = np.zeros(shape, np.int32)
    for k, c in enumerate(centres, start=1):
        labels[disk(c, radius, shape=shape)] = k
    return labels


def test_perfect_prediction_scores_one_and_numbering_does_not_matter():
    truth = _labels([(15, 15), (15, 45), (45, 30)])
    pred = truth.copy()
    pred[truth == 1], pred[truth == 3] = 9, 40  # other numbering, with gaps
    scores = evaluate([pred], [truth])
    assert scores["ap"] == [1.0, 1.0, 1.0] and scores["ap50"] == scores["ap90"] == 1.0
    assert scores["mean_iou_matched"] == 1.0 and scores["n_true"] == scores["n_pred"] == 3


def test_one_missed_instance_hand_computed():
    truth_a = _labels([(15, 15), (15, 45), (45, 30)])
    pred_a = truth_a.copy()
    pred_a[pred_a == 2] = 0  # missed: TP 2, FP 0, FN 1 → AP 2/3
    truth_b = _labels([(20, 20), (40, 40)])
    pred_b = truth_b.copy()  # perfect: AP 1
    scores = evaluate([pred_a, pred_b], [truth_a, truth_b], thresholds=(0.5, 0.75))
    assert scores["tp"] == [4, 4] and scores["fp"] == [0, 0] and scores["fn"] == [1, 1]
    assert scores["ap"] == pytest.approx([4 / 5, 4 / 5])  # pooled: 4 / (4 + 0 + 1)
    assert scores["ap_mean_per_image"] == pytest.approx([(2 / 3 + 1) / 2] * 2)
    assert scores["ap_per_image"][0] == pytest.approx([2 / 3, 2 / 3])
    assert scores["ap50"] == pytest.approx(0.8) and "ap75" in scores


def test_shifted_prediction_fails_strict_thresholds_and_empty_images_are_skipped():
    truth = _labels([(30, 30)], radius=10)
    pred = np.roll(truth, 3, axis=1)  # IoU of a disc (r = 10) shifted by 3 px ≈ 0.68
    empty = np.zeros((64, 64), np.int32)
    scores = evaluate([pred, empty], [truth, empty])
    assert scores["ap"] == [1.0, 0.0, 0.0]
    assert scores["fp"] == [0, 1, 1] and scores["fn"] == [0, 1, 1]
    assert 0.6 < scores["mean_iou_matched"] < 0.75
    assert scores["ap_mean_per_image"] == [1.0, 0.0, 0.0]  # the empty pair has no AP
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate([truth], [truth[:10]])


def test_otsu_watershed_separates_two_touching_discs():
    shape = (80, 110)
    image = np.full(shape, 200.0)
    centres = [(40, 35), (40, 70)]  # radius 20, 35 px apart: one connected blob
    for c in centres:
        image[disk(c, 20, shape=shape)] = 60.0  # dark particles, bright background (TEM)
    image += np.random.default_rng(0).normal(0, 3, shape)
    labels = otsu_watershed(image.astype(np.float32))
    assert labels.dtype == np.int32 and labels.shape == shape
    assert labels.max() == 2
    assert {labels[c] for c in centres} == {1, 2}
    truth = _labels(centres, shape, radius=20)
    assert evaluate([labels], [truth])["ap50"] == 1.0
    assert not otsu_watershed(np.zeros(shape)).any()


def test_count_merges_counts_predictions_that_swallow_two_true_particles():
    from napari_nanocrystal.segmentation.evaluation import count_merges, merged_pairs

    truth = np.zeros((20, 40), np.int32)
    truth[2:8, 2:8], truth[2:8, 9:15], truth[12:18, 2:8], truth[12:18, 20:26] = 1, 2, 3, 4
    pred = np.zeros_like(truth)
    pred[2:8, 2:15] = 1  # true 1 and 2 as one object: a merge
    pred[12:18, 2:8] = 2  # true 3 alone
    pred[12:18, 20:22] = 3  # a third of true 4: not a merge, not a match
    assert count_merges(pred, truth) == 1
    assert merged_pairs(pred, truth).tolist() == [[1, 1], [1, 2]]  # prediction 1 holds true 1 and 2
    assert evaluate([pred], [truth])["n_merged"] == 1
    assert count_merges(truth, truth) == 0 and count_merges(np.zeros_like(truth), truth) == 0
    assert merged_pairs(np.zeros_like(truth), truth).shape == (2, 0)
    with pytest.raises(ValueError, match="differ in shape"):
        count_merges(pred[:5], truth)


def test_weak_label_agreement_counts_particle_pixels_and_ignores_the_uncertain_band():
    from napari_nanocrystal.segmentation.evaluation import weak_label_agreement

    weak = np.zeros((10, 10), np.uint8)
    weak[2:6, 2:6] = 1  # 16 particle pixels
    weak[6, 2:6] = 255  # their uncertain rim
    pred = np.zeros((10, 10), np.int32)
    pred[2:4, 2:6] = 1  # half the particle
    pred[6, 2:6] = 1  # the rim: neither right nor wrong
    pred[8, 8] = 2  # one background pixel
    scores = weak_label_agreement(pred, weak)
    assert scores["recall"] == 0.5 and scores["precision"] == 8 / 9
    empty = weak_label_agreement(np.zeros_like(pred), weak)
    assert empty["recall"] == 0.0 and empty["precision"] == 0.0 and empty["object_recall"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        weak_label_agreement(pred[:5], weak)


def test_weak_label_agreement_counts_single_particles_matched_and_objects_on_background():
    """Object scores: one small particle found counts as much as one large one, by pixels it would not."""
    from skimage.draw import disk

    from napari_nanocrystal.label_files import UNCERTAIN
    from napari_nanocrystal.segmentation.evaluation import weak_label_agreement

    weak = np.zeros((80, 120), np.uint8)
    centres = [(20, 20), (20, 60), (20, 100), (60, 20), (60, 60)]
    for centre in centres:
        weak[disk(centre, 10, shape=weak.shape)] = UNCERTAIN
        weak[disk(centre, 7, shape=weak.shape)] = 1
    pred = np.zeros(weak.shape, np.int32)
    for label, centre in enumerate(centres[:3], start=1):
        pred[disk(centre, 9, shape=weak.shape)] = label  # three of the five particles, a little larger
    pred[disk((60, 100), 6, shape=weak.shape)] = 4  # an object on the background
    scores = weak_label_agreement(pred, weak)
    assert scores["n_weak_particles"] == 5 and scores["object_recall"] == 3 / 5
    assert scores["false_objects"] == 1 and scores["recall"] == pytest.approx(3 / 5, abs=0.01)


def test_edges_are_scored_against_the_weak_label_and_the_half_contrast_edge():
    """Dark discs of radius 10 whose weak label's band middle is at 8.5 px: predictions of radius 10 match
    the image's half-contrast edge (ratio ~1) and are ~(10 / 8.5)² larger than the weak label."""
    from scipy import ndimage
    from skimage.draw import disk

    from napari_nanocrystal.label_files import UNCERTAIN
    from napari_nanocrystal.segmentation.evaluation import half_contrast_areas, weak_label_agreement
    from napari_nanocrystal.segmentation.targets import weak_label_instances

    centres = [(25, 25), (25, 75), (75, 25), (75, 75)]
    image, weak, pred = np.ones((100, 100)), np.zeros((100, 100), np.uint8), np.zeros((100, 100), np.int32)
    for label, centre in enumerate(centres, start=1):
        image[disk(centre, 10, shape=image.shape)] = 0.2
        weak[disk(centre, 10, shape=weak.shape)] = UNCERTAIN
        weak[disk(centre, 7, shape=weak.shape)] = 1
        pred[disk(centre, 10, shape=weak.shape)] = label
    image = ndimage.gaussian_filter(image, 1.5)
    areas = half_contrast_areas(image, weak, weak_label_instances(weak))
    assert areas == pytest.approx(np.pi * 10**2, rel=0.1)
    scores = weak_label_agreement(pred, weak, image=image)
    assert scores["object_recall"] == 1.0 and scores["contrast_area_ratio"] == pytest.approx(1.0, abs=0.05)
    assert scores["weak_area_ratio"] > 1.2 and "contrast_area_ratio" not in weak_label_agreement(pred, weak)
    # no contrast (a flat image): nothing can be measured
    assert np.isnan(half_contrast_areas(np.ones((100, 100)), weak, weak_label_instances(weak))).all()
    with pytest.raises(ValueError, match="differ in shape"):
        half_contrast_areas(image[:50], weak, weak_label_instances(weak))
