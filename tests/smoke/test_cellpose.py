"""cellpose: flows computed from a label image point into each cell's centre."""

from __future__ import annotations

import numpy as np
import pytest
import torch

CENTRES = [(16, 16), (16, 46), (46, 30)]
RADIUS = 8


def _discs(shape=(64, 64)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for label, (cy, cx) in enumerate(CENTRES, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= RADIUS**2] = label
    return labels


@pytest.mark.smoke
def test_labels_to_flows_point_to_disc_centres():
    """Y/X flows point inwards on both sides of each centre, and vanish outside the discs."""
    from cellpose.dynamics import labels_to_flows

    labels = _discs()
    (flow,) = labels_to_flows([labels.copy()], device=torch.device("cpu"))

    assert flow.shape == (4, *labels.shape)
    np.testing.assert_array_equal(flow[0], labels)
    np.testing.assert_array_equal(flow[1], labels > 0)
    dy, dx = flow[2], flow[3]

    outside = labels == 0
    assert np.all(dy[outside] == 0) and np.all(dx[outside] == 0)

    d = RADIUS // 2
    for cy, cx in CENTRES:
        assert dx[cy, cx - d] > 0.5 and dx[cy, cx + d] < -0.5
        assert dy[cy - d, cx] > 0.5 and dy[cy + d, cx] < -0.5
        assert abs(dy[cy, cx - d]) < 0.2 and abs(dx[cy - d, cx]) < 0.2

    magnitude = np.hypot(dy, dx)[~outside]
    assert magnitude.max() <= 1.0 + 1e-5
