"""Detection matching: one-to-one, same class, and truth below the region filter ignored."""

from jetson_seg.training.metrics import ConfusionMatrix, match_boxes

import numpy as np


def test_one_to_one_same_class_matching():
    truth = [(0, 0, 10, 10, 1), (20, 20, 30, 30, 2)]
    found = [(0, 0, 10, 10, 1), (1, 1, 10, 10, 1), (20, 20, 30, 30, 1)]
    assert match_boxes(truth, found) == (1, 2, 1)


def test_truth_below_the_region_filter_is_neither_missed_nor_a_false_alarm():
    truth = [(0, 0, 10, 10, 1, 80), (50, 50, 53, 53, 1, 9)]  # a 9 px sliver
    assert match_boxes(truth, [], min_area=32) == (0, 0, 1)
    assert match_boxes(truth, [(50, 50, 53, 53, 1)], min_area=32) == (0, 0, 1)
    assert match_boxes(truth, [(0, 0, 10, 10, 1), (50, 50, 53, 53, 1)], min_area=32) == (
        1, 0, 0)
    assert match_boxes(truth, [(50, 50, 53, 53, 1)], min_area=4) == (1, 0, 1)


def test_a_detection_prefers_the_counted_truth_over_an_ignored_one():
    truth = [(0, 0, 10, 10, 1, 5), (0, 0, 10, 12, 1, 100)]
    assert match_boxes(truth, [(0, 0, 10, 10, 1)], min_area=32) == (1, 0, 0)


def test_confusion_matrix_iou():
    conf = ConfusionMatrix(2)
    conf.add(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
    np.testing.assert_allclose(conf.iou(), [0.5, 2 / 3])
