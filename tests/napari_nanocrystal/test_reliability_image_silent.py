"""Silently wrong → a clear error: NaN pixels, pixel limits, thresholds, absurd pixel sizes, stacks and
multi-channel TIFFs, absurd model configs — through the API, the CLI and the reader alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanocrystal import segment
from napari_nanocrystal.analysis import AnalysisError, analyze_image, read_micrograph
from napari_nanocrystal.cli import main
from napari_nanocrystal.images import IMAGE_SUFFIXES, ImageReadError, read_image
from napari_nanocrystal.validation import InputError, check_model_file
from napari_nanocrystal.synthetic import make_tem_image

from test_reliability_image_dataloss import tiny_model  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def tem():
    return make_tem_image((64, 64), n_particles=5, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=5)


def test_nan_pixels_are_refused_by_segment(tem, tiny_model):
    image = tem.image.astype(np.float32)
    image[10:20, 10:20] = np.nan
    with pytest.raises(InputError, match=r"image contains NaN or infinite values \(100 of 4,096 values\)"):
        segment(image, tiny_model)
    image[10:20, 10:20] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        segment(image, tiny_model)


@pytest.mark.parametrize("value", [float("nan"), 2.0, -0.1, "0.5"])
def test_confidence_outside_0_1_is_refused(tem, tiny_model, value):
    with pytest.raises(InputError, match="confidence_threshold must"):
        segment(tem.image, tiny_model, confidence_threshold=value)


@pytest.mark.parametrize("value", ["nan", "2", "-1"])
def test_cli_confidence_outside_0_1_is_refused(tmp_path, tem, tiny_model, capsys, value):
    image = tmp_path / "a.png"
    Image.fromarray(tem.image).save(image)
    with pytest.raises(SystemExit) as stopped:
        main(["segment", str(image), "--out", str(tmp_path / "a.tif"), "--model", str(tiny_model), "--confidence", value])
    assert stopped.value.code == 2 and "--confidence" in capsys.readouterr().err and not (tmp_path / "a.tif").exists()


@pytest.mark.parametrize("value", [1e30, 1e-9, 6000.0])
def test_absurd_pixel_sizes_are_refused_with_the_unit(tem, value):
    with pytest.raises(AnalysisError, match=r"nm_per_px = .* nm/px is outside the plausible range 0.001–5000 nm/px"):
        analyze_image(tem.image, labels=tem.labels, nm_per_px=value)


def test_cli_absurd_pixel_size_is_refused(tmp_path, tem, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(tem.image).save(image)
    with pytest.raises(SystemExit) as stopped:
        main(["analyze", str(image), "--out", str(tmp_path / "out"), "--nm-per-px", "1e30"])
    assert stopped.value.code == 2 and "plausible range" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    big_png = tmp_path / "big.png"
    Image.new("1", (14000, 14000)).save(big_png)  # 196 M pixels: beyond Pillow's bomb limit
    with pytest.raises(ImageReadError, match=r"big.png: image too large"):
        read_image(big_png)
    big_tif = tmp_path / "big.tif"
    tifffile.imwrite(big_tif, shape=(20000, 20000), dtype=np.uint8)  # empty pixels, full-size header
    with pytest.raises(ImageReadError, match=r"big.tif: image too large: 20000 × 20000 = 400,000,000 pixels"):
        read_image(big_tif)
    small = tmp_path / "small.png"
    Image.new("L", (40, 30)).save(small)
    with pytest.raises(ImageReadError, match="1,200 pixels exceeds the limit of 1,000"):
        read_image(small, max_pixels=1000)


def test_segment_refuses_images_above_the_limit(tiny_model):
    with pytest.raises(InputError, match="exceeds the limit"):
        segment(np.zeros((8193, 8193), np.uint8), tiny_model)


def test_stacks_need_a_plane_and_get_the_right_one(tmp_path):
    planes = np.stack([np.full((32, 48), 10 * (k + 1), np.uint8) for k in range(3)])
    plain = tmp_path / "stack.tif"
    tifffile.imwrite(plain, planes, photometric="minisblack")
    hyper = tmp_path / "hyper.tif"
    tifffile.imwrite(hyper, planes, imagej=True, metadata={"axes": "TYX"})
    for path in (plain, hyper):
        with pytest.raises(
            ImageReadError,
            match=rf"{path.name}: holds 3 images \(axes .*YX, shape \(3, 32, 48\)\); choose one with plane=K \(CLI: --plane K\)",
        ):
            read_image(path)
        data, _, _ = read_image(path, plane=2)
        assert data.shape == (32, 48) and (data == 30).all()
        with pytest.raises(ImageReadError, match="plane 3 does not exist"):
            read_image(path, plane=3)
    with pytest.raises(AnalysisError, match="choose one with plane"):
        read_micrograph(plain)


def test_two_channel_tiff_is_not_read_as_a_strip(tmp_path):
    path = tmp_path / "two_channel.tif"
    data = np.zeros((64, 64, 2), np.uint16)
    data[..., 1] = 7
    tifffile.imwrite(path, data)
    # rows x columns x 2 without metadata: two channels to choose from, not 64 strips of 64 x 2
    with pytest.raises(ImageReadError, match=r"two_channel.tif: holds 2 images \(axes YXC, shape \(64, 64, 2\)\)"):
        read_image(path)
    second = read_image(path, plane=1)[0]
    assert second.shape == (64, 64) and (second == 7).all()
    channels = tmp_path / "cyx.tif"
    tifffile.imwrite(channels, np.zeros((2, 64, 64), np.uint16), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(ImageReadError, match=r"holds 2 images \(axes CYX"):
        read_image(channels)
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((16, 24, 3), np.uint8), photometric="rgb")
    assert read_image(rgb)[0].shape == (16, 24, 3)  # samples are one image, not a stack
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.zeros((3, 16, 24), np.uint8), photometric="rgb", planarconfig="separate")
    assert read_image(planar)[0].shape == (16, 24, 3)


def test_cli_names_the_stack_and_takes_plane(tmp_path, tiny_model, capsys):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 255, (2, 48, 48), dtype=np.uint8), photometric="minisblack")
    assert main(["segment", str(path), "--out", str(tmp_path / "l.tif"), "--model", str(tiny_model)]) == 2
    err = capsys.readouterr().err
    assert "stack.tif: holds 2 images" in err and "--plane" in err and not (tmp_path / "l.tif").exists()
    assert (
        main(["segment", str(path), "--out", str(tmp_path / "l.tif"), "--model", str(tiny_model), "--plane", "1", "--confidence", "0"]) == 0
    )
    assert tifffile.imread(tmp_path / "l.tif").shape == (48, 48)


def test_absurd_model_config_is_refused_before_building(tmp_path, tem, capsys):
    weights = tmp_path / "huge.pt"
    weights.write_bytes(b"not even read")
    sidecar = weights.with_suffix(".json")
    sidecar.write_text(
        json.dumps(
            {
                "kind": "SeedFlowNet",
                "format_version": 1,
                "nbase": [1, 65536, 65536, 65536],
                "sz": 3,
                "diameter_px": 30.0,
                "percentiles": [1, 99],
                "max_pool": True,
            }
        )
    )
    with pytest.raises(
        InputError,
        match=r"huge.pt: config nbase asks for 65,536 channels in one layer \(at most 1,024; one such layer alone needs ~155 GB\)",
    ):
        check_model_file(weights)
    with pytest.raises(InputError, match="65,536 channels"):
        segment(tem.image, str(weights))
    image = tmp_path / "a.png"
    Image.fromarray(tem.image).save(image)
    assert main(["segment", str(image), "--out", str(tmp_path / "a.tif"), "--model", str(weights)]) == 2
    assert "65,536 channels" in capsys.readouterr().err
    sidecar.write_text(json.dumps({"kind": "SeedFlowNet", "nbase": [1, 8, 16], "sz": 999}))
    with pytest.raises(InputError, match="kernel size sz = 999"):
        check_model_file(weights)


def test_one_suffix_list_for_every_entry_point():
    from napari_nanocrystal import _reader, analysis

    assert analysis.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".dm3", ".dm4", ".bmp", ".tif", ".png"} <= set(IMAGE_SUFFIXES)
    assert _reader.napari_get_reader("x.dm4") is not None and _reader.napari_get_reader("x.bmp") is not None
