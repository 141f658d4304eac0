"""Paper losses: labelled (flows + seed) and weak (seed on certain pixels only)."""

import numpy as np
import pytest
import torch
from skimage.draw import disk

from napari_nanocrystal.segmentation.losses import FLOW_SCALE, UNCERTAIN, labelled_loss, weak_loss
from napari_nanocrystal.segmentation.targets import flow_targets


def _targets():
    labels = np.zeros((32, 32), np.int32)
    labels[disk((12, 12), 7)] = 1
    labels[disk((22, 22), 6)] = 2
    return torch.from_numpy(flow_targets(labels))[None]


def test_labelled_loss_is_zero_for_perfect_predictions():
    t = _targets()
    perfect = torch.cat([FLOW_SCALE * t[:, :2], 40.0 * (2 * t[:, 2:] - 1)], dim=1)
    assert labelled_loss(perfect, t).item() == pytest.approx(0.0, abs=1e-6)
    worse = perfect.clone()
    worse[:, 0] += 1.0  # flow_y off by 1 everywhere: mse/2 over 2 channels = 1/4
    assert labelled_loss(worse, t).item() == pytest.approx(0.25, abs=1e-5)
    with pytest.raises(ValueError):
        labelled_loss(perfect[:, :2], t)


def test_weak_loss_ignores_uncertain_pixels():
    torch.manual_seed(0)
    y = torch.randn(2, 3, 16, 16, requires_grad=True)
    weak = torch.randint(0, 2, (2, 16, 16), dtype=torch.uint8)
    weak[:, 4:9, :] = UNCERTAIN
    loss = weak_loss(y, weak)
    loss.backward()
    assert torch.all(y.grad[:, 2][weak == UNCERTAIN] == 0)
    assert torch.all(y.grad[:, :2] == 0)  # flows never enter the weak loss
    assert torch.all(y.grad[:, 2][weak != UNCERTAIN] != 0)
    # changing the logits of uncertain pixels does not change the loss
    y2 = y.detach().clone()
    y2[:, 2][weak == UNCERTAIN] = 1e3
    assert weak_loss(y2, weak).item() == pytest.approx(loss.item())
    # equals plain BCE over the certain pixels
    certain = weak != UNCERTAIN
    expected = torch.nn.functional.binary_cross_entropy_with_logits(y.detach()[:, 2][certain], weak[certain].float())
    assert loss.item() == pytest.approx(expected.item())


def test_weak_loss_without_certain_pixels_is_zero_and_differentiable():
    y = torch.randn(1, 3, 8, 8, requires_grad=True)
    loss = weak_loss(y, torch.full((1, 8, 8), UNCERTAIN, dtype=torch.uint8))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(y.grad == 0)


def test_weak_flow_term_counts_only_the_outlined_particles():
    """With flow targets (a weak label's single particles), flows are trained on their pixels only."""
    t = _targets()
    t[..., :, 20:] = 0.0  # only the first particle is outlined (no flow target, no mask elsewhere)
    weak = (t[:, 2] > 0.5).to(torch.uint8)
    y = torch.cat([FLOW_SCALE * t[:, :2], 40.0 * (2 * t[:, 2:] - 1)], dim=1).requires_grad_(True)
    seed_only = weak_loss(y, weak)
    assert weak_loss(y, weak, t).item() == pytest.approx(seed_only.item(), abs=1e-6)  # perfect flows add nothing
    worse = y.detach().clone()
    worse[:, 0] += 1.0  # flow_y off by 1 everywhere: 1/4 on the masked pixels, as the labelled term
    assert weak_loss(worse, weak, t).item() == pytest.approx(seed_only.item() + 0.25, abs=1e-5)
    assert weak_loss(worse, weak, t, flow_weight=0.2).item() == pytest.approx(seed_only.item() + 0.05, abs=1e-5)
    noisy = torch.randn(1, 3, 32, 32, requires_grad=True)
    weak_loss(noisy, weak, t).backward()
    mask = t[:, 2] > 0.5
    assert torch.all(noisy.grad[:, :2][mask.expand(1, 2, 32, 32).reshape(noisy.grad[:, :2].shape)] != 0)
    assert torch.all(noisy.grad[:, 0][~mask] == 0) and torch.all(noisy.grad[:, 1][~mask] == 0)
    empty = torch.zeros_like(t)
    assert weak_loss(worse, weak, empty).item() == pytest.approx(weak_loss(worse, weak).item())  # no particle outlined
    with pytest.raises(ValueError, match="flow targets"):
        weak_loss(y[:, 2], weak, t)
