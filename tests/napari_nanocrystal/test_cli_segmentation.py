"""``nanocrystal train`` / ``evaluate`` / ``segment`` end to end on a model trained here for 2+2 iterations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from napari_nanocrystal.cli import main
from napari_nanocrystal.synthetic import make_tem_image


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three 96x96 synthetic TEM images in the flat convention: <name>_image.tif + <name>_instances.tif."""
    folder = tmp_path_factory.mktemp("labelled")
    for seed in range(3):
        tem = make_tem_image((96, 96), n_particles=8, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=seed)
        tifffile.imwrite(folder / f"s{seed}_image.tif", tem.image)
        tifffile.imwrite(folder / f"s{seed}_instances.tif", tem.labels.astype(np.uint16))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("run") / "tiny"
    cache = tmp_path_factory.mktemp("cache")
    args = ["train", "tiny", "--labeled", str(data_dir), "--out", str(out), "--cache-dir", str(cache), "--cfg-options", "log_level=WARNING"]
    assert main(args) == 0
    return out, cache, args


def test_train_writes_model_log_and_config(trained, capsys):
    out, _, args = trained
    assert (out / "model.safetensors").is_file() and (out / "model.json").is_file() and (out / "config.py").is_file()
    log = json.loads((out / "training_log.json").read_text())
    assert [r["iter"] for r in log["stages"]["finetune"]["train"]] == [1, 2]
    assert main(args) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # finished stages are skipped
    assert "model:" in capsys.readouterr().out


def test_evaluate_prints_the_table(trained, data_dir, tmp_path, capsys):
    out, _, _ = trained
    report = tmp_path / "report.json"
    assert main(["evaluate", str(out / "model.safetensors"), str(data_dir), "--split", "all", "--baseline", "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "AP50" in text and "AP75" in text and "AP90" in text and "meanIoU" in text and "otsu+watershed" in text
    assert "3 images (all images" in text
    scores = json.loads(report.read_text())
    assert 0.0 <= scores["model"]["ap50"] <= 1.0 and scores["otsu"]["n_true"] == scores["model"]["n_true"] > 0


def test_evaluate_on_the_emps_layout(trained, datasets_dir, capsys):
    out, _, _ = trained
    assert (
        main(["evaluate", str(out / "model.safetensors"), str(datasets_dir / "emps-train"), "--max-images", "1", "--diameter", "none"]) == 0
    )
    assert "1 images (val split (EMPS publication-grouped split))" in capsys.readouterr().out
    assert (
        main(["evaluate", str(out / "model.safetensors"), str(datasets_dir / "emps-train"), "--max-images", "1", "--diameter", "auto"]) == 0
    )
    assert "diameter: estimated by the model" in capsys.readouterr().out


def test_segment_writes_labels_and_confidence(trained, data_dir, tmp_path, capsys):
    out, _, _ = trained
    image = data_dir / "s0_image.tif"
    target = tmp_path / "labels.tif"
    assert (
        main(
            [
                "segment",
                str(image),
                "--out",
                str(target),
                "--model",
                str(out / "model.safetensors"),
                "--confidence",
                "0",
                "--diameter",
                "10",
            ]
        )
        == 0
    )
    labels = tifffile.imread(target)
    assert labels.shape == (96, 96) and labels.dtype == np.uint16
    table = pd.read_csv(target.with_suffix(".csv"))
    assert list(table.columns) == ["label", "confidence", "area_px", "centroid_y_px", "centroid_x_px"]
    assert len(table) == labels.max() and (table["area_px"] > 0).all()
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary files left

    folder = tmp_path / "many"
    assert (
        main(["segment", str(image), str(data_dir / "s1_image.tif"), "--out", str(folder), "--model", str(out / "model.safetensors")]) == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "s0_image_labels.csv",
        "s0_image_labels.tif",
        "s1_image_labels.csv",
        "s1_image_labels.tif",
    ]
    assert "particles ->" in capsys.readouterr().out

    estimated = tmp_path / "auto.tif"
    assert main(["segment", str(image), "--out", str(estimated), "--model", str(out / "model.safetensors"), "--diameter", "auto"]) == 0
    assert tifffile.imread(estimated).shape == (96, 96)
    with pytest.raises(SystemExit) as stopped:
        main(["segment", str(image), "--out", str(estimated), "--diameter", "big"])
    assert stopped.value.code == 2 and "'auto'" in capsys.readouterr().err


def test_clear_errors(trained, data_dir, tmp_path, capsys):
    out, cache, _ = trained
    assert main(["train", "no-such-preset", "--labeled", str(data_dir), "--out", str(tmp_path / "a")]) == 2
    assert "unknown config 'no-such-preset'" in capsys.readouterr().err
    assert main(["train", "tiny", "--labeled", str(tmp_path / "missing"), "--out", str(tmp_path / "b"), "--cache-dir", str(cache)]) == 2
    assert "not found" in capsys.readouterr().err
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    tifffile.imwrite(mismatched / "x_image.tif", np.zeros((8, 8), np.uint8))
    assert main(["train", "tiny", "--labeled", str(mismatched), "--out", str(tmp_path / "c"), "--cache-dir", str(cache)]) == 2
    assert "mismatched pairs" in capsys.readouterr().err
    assert (
        main(["train", "tiny", "--labeled", str(data_dir), "--out", str(tmp_path / "d"), "--cfg-options", "stages.finetune.max_iter=3"])
        == 2
    )
    assert "unknown keys ['max_iter']" in capsys.readouterr().err
    assert main(["evaluate", "no-such-model.safetensors", str(data_dir)]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "none.png"), "--out", str(tmp_path / "x.tif"), "--model", str(out / "model.safetensors")]) == 2
    assert "image not found" in capsys.readouterr().err
    two = [str(data_dir / "s0_image.tif"), str(data_dir / "s1_image.tif")]
    assert main(["segment", *two, "--out", str(tmp_path / "x.tif"), "--model", str(out / "model.safetensors")]) == 2
    assert "need --out to be a folder" in capsys.readouterr().err
