"""Raw tracebacks → one line naming the input: ``nanocrystal`` on bad files and folders, DM4 through the one reader."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanocrystal.cli import main
from napari_nanocrystal.synthetic import make_tem_image

from test_reliability_image_dataloss import tiny_model  # noqa: F401 - fixture
from test_scalebar import _write_dm


@pytest.fixture(scope="module")
def tem():
    return make_tem_image((64, 64), n_particles=5, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=7)


def _failed_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith(("FAILED", "nanocrystal"))]


@pytest.mark.parametrize("version", [3, 4])
def test_segment_and_weak_labels_read_dm_files(tmp_path, tem, tiny_model, capsys, version):
    path = tmp_path / f"micrograph.dm{version}"
    _write_dm(path, tem.image.astype(np.float32), 0.5, "nm", version)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(path), "--out", str(out), "--model", str(tiny_model), "--confidence", "0"]) == 0
    assert tifffile.imread(out).shape == tem.image.shape and out.with_suffix(".csv").is_file()
    assert main(["weak-labels", str(path), "--detector", "otsu", "--out", str(tmp_path / "weak")]) == 0
    assert np.asarray(Image.open(tmp_path / "weak" / "micrograph_weak.png")).shape == tem.image.shape
    capsys.readouterr()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("truncated.png", b"\x89PNG\r\n\x1a\n" + bytes(30), "corrupt, truncated or not a PNG image"),
        ("empty.tif", b"", "the file is empty (0 bytes)"),
        ("text.jpg", b"hello, I am not a JPEG", "not a JPG image"),
        ("broken.dm4", b"\x00\x00\x00\x04" + bytes(40), "not a DM4 image"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, tiny_model, capsys, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["segment", str(path), "--out", str(tmp_path / "x.tif"), "--model", str(tiny_model)]) == 2
    lines = _failed_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(path) in lines[0] and message in lines[0]


def test_a_bad_file_among_good_ones_fails_alone(tmp_path, tem, tiny_model, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(tem.image).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    assert main(["segment", str(good), str(bad), "--out", str(out), "--model", str(tiny_model), "--confidence", "0"]) == 1
    lines = _failed_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "bad.png" in lines[0]
    assert (out / "good_labels.tif").is_file() and not (out / "bad_labels.tif").exists()


def test_unwritable_output_is_found_before_inference(tmp_path, tem, tiny_model, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(tem.image).save(image)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert main(["segment", str(image), "--out", str(blocker / "a.tif"), "--model", str(tiny_model)]) == 2
    lines = _failed_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "blocker: output folder is an existing file" in lines[0]
    assert main(["analyze", str(image), "--out", str(blocker / "sub"), "--nm-per-px", "0.5", "--model", str(tiny_model)]) == 2
    assert "blocker" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["segment", str(image), "--out", str(locked / "a.tif"), "--model", str(tiny_model)]) == 2
        assert "permission denied" in capsys.readouterr().err


def test_train_help_says_config_files_are_executed(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "EXECUTED" in capsys.readouterr().out


def test_the_real_command_prints_one_line_and_no_traceback(tmp_path, tiny_model):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(10))
    result = subprocess.run(
        [sys.executable, "-m", "napari_nanocrystal.cli", "segment", str(bad), "--out", str(tmp_path / "x.tif"), "--model", str(tiny_model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(bad) in result.stderr
