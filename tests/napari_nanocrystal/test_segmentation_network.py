"""SeedFlowNet: forward shape, weight files (round trip, invalid files), shipped models."""

import json

import numpy as np
import pytest
import torch

from napari_nanocrystal.segmentation.network import SeedFlowNet, available_models, load_model, resolve_model

TINY = (1, 4, 8, 8, 8)


def test_forward_64_returns_three_maps():
    net = SeedFlowNet().eval()  # the default width (1, 16, 32, 64, 128)
    with torch.no_grad():
        y = net(torch.randn(1, 1, 64, 64))
    assert y.shape == (1, 3, 64, 64)
    assert y.dtype == torch.float32


def test_forward_any_size_is_padded_and_cropped():
    net = SeedFlowNet(TINY).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 1, 37, 50))
    assert y.shape == (2, 3, 37, 50)
    with pytest.raises(ValueError, match="expected input"):
        net(torch.randn(1, 3, 32, 32))


def test_config_is_json_serialisable():
    net = SeedFlowNet(TINY, diameter_px=25)
    config = json.loads(json.dumps(net.config))
    assert config["nbase"] == list(TINY) and config["nout"] == 3 and config["diameter_px"] == 25.0


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ""])
def test_save_load_round_trip_gives_equal_outputs(tmp_path, suffix):
    torch.manual_seed(0)
    net = SeedFlowNet(TINY, diameter_px=20).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics must survive too
        net.cpnet.downsample.down[0].proj[0].running_mean.fill_(0.3)
    written = net.save(tmp_path / f"model{suffix}")
    assert written.is_file() and written.with_suffix(".json").is_file()
    loaded = load_model(written)
    assert loaded.config == net.config and not loaded.training
    x = torch.randn(1, 1, 48, 40)
    with torch.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), loaded(x).numpy())


def test_safetensors_file_loads_without_sidecar(tmp_path):
    net = SeedFlowNet(TINY)
    written = net.save(tmp_path / "model.safetensors")
    written.with_suffix(".json").unlink()
    assert load_model(written).config == net.config


def test_missing_and_invalid_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a model at all")
    with pytest.raises(ValueError, match="model file invalid"):
        load_model(garbage)
    # a pickle of something other than a state dict is refused (weights_only=True)
    not_state = tmp_path / "notstate.pt"
    torch.save({"weights": [1, 2, 3]}, not_state)
    with pytest.raises(ValueError, match="model file invalid"):
        load_model(not_state)
    # weights without any config
    bare = tmp_path / "bare.pt"
    torch.save(SeedFlowNet(TINY).state_dict(), bare)
    with pytest.raises(ValueError, match="model file invalid: .*no config"):
        load_model(bare)
    # weights that do not match their config
    written = SeedFlowNet(TINY).save(tmp_path / "mismatch.pt")
    config = json.loads(written.with_suffix(".json").read_text())
    config["nbase"] = [1, 8, 8, 8, 8]
    written.with_suffix(".json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model file invalid: .*do not match"):
        load_model(written)
    # a truncated safetensors file
    good = SeedFlowNet(TINY).save(tmp_path / "cut.safetensors")
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="model file invalid"):
        load_model(good)


def test_missing_default_model_names_the_file_and_the_command(tmp_path, monkeypatch):
    from napari_nanocrystal.segmentation import network

    monkeypatch.setattr(network, "MODELS_DIR", tmp_path)
    assert "default" not in available_models()
    with pytest.raises(FileNotFoundError, match="default.safetensors is missing.*nanocrystal train"):
        resolve_model("default")
    net = SeedFlowNet(TINY)
    assert resolve_model(net) is net


def test_the_wheel_ships_the_default_model_and_every_config(wheel_files):
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "napari-nanocrystal"
    names = wheel_files(package, "napari_nanocrystal")
    source = package / "src" / "napari_nanocrystal"
    expected = {"models/default.safetensors", "models/default.json", "models/round_shapes.json", "napari.yaml"}
    expected |= {str(p.relative_to(source)) for p in (source / "configs").rglob("*.py")}
    missing = {name for name in expected if f"napari_nanocrystal/{name}" not in names}
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert "default" in available_models()
