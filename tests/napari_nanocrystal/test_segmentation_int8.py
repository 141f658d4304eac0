"""The int8 network pass (segmentation/quantize.py): the traceable graph, calibration JSON, segment(precision="int8")."""

import json

import numpy as np
import pytest
import torch
from napari_nanocrystal import make_tem_image
from napari_nanocrystal.segmentation import quantize
from napari_nanocrystal.segmentation.inference import predict_flows, segment
from napari_nanocrystal.segmentation.network import SeedFlowNet, available_models, load_model

pytestmark = pytest.mark.skipif(not quantize.int8_supported(), reason="torch without the onednn quantised engine")

SMALL = (1, 8, 16, 16, 32)


def _net(seed: int = 0) -> SeedFlowNet:
    torch.manual_seed(seed)
    net = SeedFlowNet(SMALL)
    for module in net.modules():  # non-trivial batch-norm statistics, as a trained net has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _images(count: int, size: int = 96) -> list:
    rng = np.random.default_rng(1)
    return [rng.random((size, size)).astype(np.float32) for _ in range(count)]


def test_the_traceable_graph_is_the_float_network():
    net = _net()
    x = torch.rand(2, 1, 64, 80)
    with torch.inference_mode():
        np.testing.assert_allclose(quantize._TraceableCPnet(net.cpnet).eval()(x).numpy(), net(x).numpy(), atol=1e-5)


def test_int8_network_is_close_to_float_and_keeps_shapes():
    net = _net()
    calibration = quantize.calibrate_int8(net, _images(3), tile_size=64)
    int8 = quantize.quantize_int8(net, json.loads(json.dumps(calibration)))  # survives JSON
    x = torch.from_numpy(_images(1, 100)[0][:, :90].copy())[None, None]  # not a multiple of the divisor: padded, cropped
    with torch.inference_mode():
        expected, got = net(x).numpy(), int8(x).numpy()
        style = int8.style(x)
    assert got.shape == expected.shape == (1, 3, 100, 90) and got.dtype == np.float32
    error = np.abs(got - expected).mean(axis=(0, 2, 3)) / expected.std(axis=(0, 2, 3))
    assert (error < 0.35).all(), error  # random weights on noise: a loose bound (the shipped model: ~3 %, below)
    assert int8.config == net.config and int8.in_channels == 1
    torch.testing.assert_close(style, net.style(x))  # the size estimate stays float32


def test_a_calibration_that_does_not_fit_is_refused():
    net = _net()
    calibration = quantize.calibrate_int8(net, _images(1), tile_size=64)
    other = SeedFlowNet((1, 8, 16, 32)).eval()  # one level fewer: other observers
    with pytest.raises(ValueError, match="does not fit this network"):
        quantize.quantize_int8(other, calibration)
    with pytest.raises(ValueError, match="format"):
        quantize.quantize_int8(net, {"observers": calibration["observers"]})
    name = next(iter(calibration["observers"]))
    bad = dict(calibration, observers=dict(calibration["observers"], **{name: [0.0, 300]}))
    with pytest.raises(ValueError, match="bad quantisation parameters"):
        quantize.quantize_int8(net, bad)


def test_int8_needs_a_weight_file_with_its_calibration(tmp_path):
    net = _net()
    with pytest.raises(ValueError, match="weight file"):
        segment(np.zeros((64, 64), np.float32), net, diameter_px=None, precision="int8")
    path = net.save(tmp_path / "model.pt")
    with pytest.raises(ValueError, match="no int8 calibration"):
        segment(np.zeros((64, 64), np.float32), str(path), diameter_px=None, precision="int8")
    calibration = quantize.calibrate_int8(net, _images(2), tile_size=64)
    quantize.calibration_path(path).write_text(json.dumps(calibration))
    image = _images(1, 160)[0]
    loaded = load_model(path)
    first, again = quantize.int8_network(loaded), quantize.int8_network(load_model(path))
    assert first is again  # built once per weight + calibration file
    float_maps = predict_flows(loaded, image, tile_size=96, precision="float32")
    int8_maps = predict_flows(loaded, image, tile_size=96, precision="int8")
    assert int8_maps.shape == float_maps.shape
    assert np.abs(int8_maps - float_maps).mean() < 0.35 * float_maps.std()
    assert np.abs(int8_maps - float_maps).max() > 0  # it is the int8 network that ran


@pytest.mark.skipif("default" not in available_models(), reason="no shipped default model")
def test_shipped_model_int8_segments_like_float32():
    assert quantize.calibration_path(available_models()["default"]).is_file()
    gray = make_tem_image((384, 384), n_particles=70, diameter_nm=(15, 1.5), nm_per_px=0.5, rng=3).image / 255.0
    float_maps = predict_flows(load_model(available_models()["default"]), gray, precision="float32")
    int8_maps = predict_flows(load_model(available_models()["default"]), gray, precision="int8")
    error = np.abs(int8_maps - float_maps).mean(axis=(1, 2)) / float_maps.std(axis=(1, 2))
    assert (error < 0.06).all() and (error > 0).all(), error  # ~3 % of each output's spread
    tem = make_tem_image((384, 384), n_particles=70, diameter_nm=(15, 1.5), nm_per_px=0.5, rng=3)
    reference = segment(tem.image, "default", precision="float32")
    int8 = segment(tem.image, "default", precision="int8")
    assert int8.diameter_estimate_px == pytest.approx(reference.diameter_estimate_px)  # float32 size estimate
    assert abs(int8.n_objects - reference.n_objects) <= max(2, 0.05 * reference.n_objects)
    same = (int8.labels > 0) == (reference.labels > 0)
    assert same.mean() > 0.98
