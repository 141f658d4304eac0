"""The size model (style → particle diameter) and segment()'s default diameter estimate."""

import math

import numpy as np
import pytest
import torch

from napari_nanocrystal.segmentation.inference import REFINE_RATIO, SCALE_BAND, second_pass_diameter, segment
from napari_nanocrystal.segmentation.network import SeedFlowNet, load_model
from napari_nanocrystal.segmentation.size_model import DIAMETER_RANGE, SizeModel, fit_size_model, image_style

from test_segmentation_inference import PerfectNet, _discs

TINY = (1, 4, 8, 8, 8)


def test_size_model_learns_a_log_linear_relation_and_round_trips():
    rng = np.random.default_rng(0)
    diameters = np.exp(rng.uniform(np.log(8), np.log(150), 200))
    styles = np.c_[np.log(diameters), rng.normal(size=(200, 3))] / 10.0
    model = SizeModel(alpha=1e-6).fit(styles, diameters)
    np.testing.assert_allclose(model.predict(styles), diameters, rtol=1e-3)
    again = SizeModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again.predict(styles), model.predict(styles))
    assert model.predict(np.c_[[np.log(1e6)], [[0, 0, 0]]] / 10.0)[0] == DIAMETER_RANGE[1]  # clipped


def test_size_model_refuses_bad_use():
    with pytest.raises(RuntimeError, match="not fitted"):
        SizeModel().predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="positive"):
        SizeModel().fit(np.zeros((3, 2)), [1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="malformed"):
        SizeModel.from_dict({"coef": [float("nan")], "intercept": 0.0})
    with pytest.raises(ValueError, match="malformed"):
        SizeModel.from_dict({"intercept": 0.0})
    model = SizeModel().fit(np.eye(3), [10.0, 20.0, 30.0])
    with pytest.raises(ValueError, match="fitted on 3"):
        model.predict(np.zeros((1, 4)))


def test_style_is_a_unit_vector_of_the_deepest_width_and_depends_on_scale():
    torch.manual_seed(0)
    net = SeedFlowNet(TINY)
    image, _ = _discs((200, 200), radius=6, spacing=24)
    style = image_style(net, image)
    assert style.shape == (TINY[-1],) and style.dtype == np.float32
    assert np.linalg.norm(style) == pytest.approx(1.0, abs=1e-4)
    big, _ = _discs((200, 200), radius=30, spacing=80)
    assert not np.allclose(image_style(net, big), style)


def test_fit_size_model_on_zoomed_images_and_save_with_the_network(tmp_path):
    torch.manual_seed(0)
    net = SeedFlowNet(TINY)
    samples = [_discs((160, 160), radius=r, spacing=4 * r) for r in (5, 8, 12)]
    model, info = fit_size_model(net, [(image, 2.0 * r) for (image, _), r in zip(samples, (5, 8, 12))], zooms_per_image=4, max_side=600)
    assert info["samples"] == 12 and math.isfinite(info["train_median_abs_log_error"])
    net.config["size_model"] = model.to_dict()
    loaded = load_model(net.save(tmp_path / "m.safetensors"))
    assert loaded.config["size_model"]["coef"] == pytest.approx(model.to_dict()["coef"])
    broken = dict(net.config, size_model={"coef": "x", "intercept": 0})
    (tmp_path / "m.json").write_text(__import__("json").dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match="model file invalid.*malformed size model"):
        load_model(tmp_path / "m.safetensors")


class SizedPerfectNet(PerfectNet):
    """PerfectNet with a size model that always answers ``diameter`` px, and an encoder style."""

    def __init__(self, diameter: float):
        super().__init__()
        self.config = {"diameter_px": 30.0, "percentiles": [1.0, 99.0], "size_model": {"coef": [0.0, 0.0], "intercept": math.log(diameter)}}
        self.in_channels = 1

    def style(self, x):
        return torch.tensor([[1.0, 0.0]])


def test_default_segment_rescales_to_the_size_model_estimate():
    image, labels = _discs((320, 320), radius=30, spacing=100)  # ~60 px particles
    result = segment(image, SizedPerfectNet(60.0))  # the default: diameter_px="auto"
    assert result.diameter_estimate_px == pytest.approx(60.0)
    assert result.scale == pytest.approx(30 / 60) and result.passes == 1
    assert result.n_objects == labels.max()


def test_estimate_within_the_band_runs_at_the_input_size():
    image, labels = _discs((160, 192), radius=15, spacing=40)
    estimate = 30.0 * SCALE_BAND * 0.95
    result = segment(image, SizedPerfectNet(estimate))
    assert result.scale == 1.0 and result.diameter_px == pytest.approx(estimate) and result.passes == 1
    assert result.n_objects == labels.max()


def test_a_wrong_estimate_is_corrected_by_the_particles_found():
    image, labels = _discs((320, 320), radius=30, spacing=100)  # ~60 px particles, the estimate says 15
    result = segment(image, SizedPerfectNet(15.0))
    assert result.diameter_estimate_px == pytest.approx(15.0)
    assert result.passes == 2 and abs(math.log(result.diameter_px / 60.0)) < math.log(REFINE_RATIO)
    assert result.n_objects == labels.max()


def test_second_pass_follows_the_large_particles_not_the_small_pieces():
    from skimage.draw import disk

    labels = np.zeros((300, 300), np.int32)
    for k, centre in enumerate([(60, 60), (60, 200), (200, 60)], start=1):  # stars found whole at 60 px ...
        labels[disk(centre, 30, shape=labels.shape)] = k
    for k in range(6):  # ... beside more small dots: by count the median particle is a dot
        labels[disk((170 + 20 * (k % 3), 170 + 40 * (k // 3)), 5, shape=labels.shape)] = 10 + k
    assert second_pass_diameter(labels, 30.0) == pytest.approx(60, rel=0.03)  # a second pass, at 60 px
    assert second_pass_diameter(labels, 50.0) is None  # within REFINE_RATIO of what was used
    assert second_pass_diameter(np.zeros((20, 20), np.int32), 30.0) is None


def test_a_given_diameter_overrides_the_size_model():
    image, _ = _discs((240, 240), radius=26, spacing=80)
    result = segment(image, SizedPerfectNet(15.0), diameter_px=52)
    assert result.scale == pytest.approx(30 / 52) and result.diameter_estimate_px is None
