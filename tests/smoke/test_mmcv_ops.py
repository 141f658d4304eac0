"""mmcv's compiled ops: NMS on CPU tensors."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.smoke
def test_nms_drops_the_lower_scored_of_two_overlapping_boxes():
    """Box 0 overlaps box 1 (IoU ~0.68) and scores lower, so only boxes 1 and 2 are kept."""
    from mmcv.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.6, 0.9, 0.7])

    dets, keep = nms(boxes, scores, iou_threshold=0.5)

    assert keep.tolist() == [1, 2]
    assert dets.shape == (2, 5)
    torch.testing.assert_close(dets[:, :4], boxes[[1, 2]])
    torch.testing.assert_close(dets[:, 4], scores[[1, 2]])
