"""Bad input to the analysis pipeline: every error names its problem; unusual but valid images work."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageDraw, ImageFont

from napari_nanocrystal.analysis import AnalysisError, analyze_image, analyze_paths, read_micrograph
from napari_nanocrystal.cli import main
from napari_nanocrystal.scalebar import ScaleBarError, get_ocr_reader
from napari_nanocrystal.synthetic import make_tem_image


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sample():
    return make_tem_image((192, 192), n_particles=12, shape_classes=("sphere", "cube"), diameter_nm=(14.0, 2.0), nm_per_px=0.5, rng=11)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny SeedFlowNet fitted for 80 steps on one synthetic 128² image, saved as a weight file
    (once per session: the analysis test modules share it)."""
    path = tmp_path_factory.getbasetemp() / "tiny_seedflow" / "tiny.safetensors"
    if path.is_file():
        return path
    from napari_nanocrystal.segmentation._image import prepare_image
    from napari_nanocrystal.segmentation.losses import labelled_loss
    from napari_nanocrystal.segmentation.network import SeedFlowNet
    from napari_nanocrystal.segmentation.targets import flow_targets

    fit = make_tem_image((128, 128), n_particles=12, diameter_nm=(12, 1), nm_per_px=0.5, touching_fraction=0, scale_bar=False, rng=1)
    x = torch.from_numpy(prepare_image(fit.image))[None, None]
    y = torch.from_numpy(flow_targets(fit.labels))[None]
    torch.manual_seed(0)
    net = SeedFlowNet((1, 8, 16, 16), diameter_px=24)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        optimiser.zero_grad()
        labelled_loss(net(x), y).backward()
        optimiser.step()
    return net.save(path)


# ----------------------------------------------------------------------------------------
# Images that must work: 16-bit, float, RGB, RGBA


def test_16_bit_float_rgb_and_rgba_files_give_the_same_results(model_file, tmp_path):
    """Read, calibrated by OCR, segmented and measured like the 8-bit gray file they are made from."""
    sample = make_tem_image(
        (256, 256), n_particles=18, shape_classes=("sphere", "cube", "triangle"), diameter_nm=(14.0, 2.0), nm_per_px=0.5, rng=7
    )
    image = sample.image
    variants = {
        "gray8.png": image,
        "gray16.png": image.astype(np.uint16) * 257,
        "float.tif": image.astype(np.float32) / 255,
        "colour.png": np.dstack([image] * 3),
        "alpha.png": np.dstack([image] * 3 + [np.full(image.shape, 255, np.uint8)]),
    }
    for name, data in variants.items():
        if name.endswith(".tif"):
            tifffile.imwrite(tmp_path / name, data)
        else:
            Image.fromarray(data).save(tmp_path / name)
    assert read_micrograph(tmp_path / "gray16.png")[0].dtype == np.uint16
    assert read_micrograph(tmp_path / "float.tif")[0].dtype == np.float32
    assert read_micrograph(tmp_path / "alpha.png")[0].shape == (*image.shape, 4)
    paths = [tmp_path / n for n in variants]
    reader = get_ocr_reader()

    # the given true labels: every variant gives exactly the true sizes at the OCR calibration
    truth = {p: sample.labels for p in paths}
    measured = analyze_paths(paths, tmp_path / "measured", labels=truth, exclude_border=False, ocr_reader=reader)
    assert measured.ok, [r.error for r in measured.failed]
    areas = np.bincount(sample.labels.ravel())[1:]
    true_ecd_px = np.sqrt(4 * areas[areas > 0] / np.pi)
    for record in measured.records:
        assert record.calibration_source == "ocr" and record.nm_per_px == pytest.approx(0.5, rel=0.01)
        assert record.outcome.n_particles == len(true_ecd_px)
        assert record.outcome.size_nm == pytest.approx(true_ecd_px.mean() * record.nm_per_px, rel=1e-9)

    # segmentation: every variant is segmented like the 8-bit file
    segmented = analyze_paths(paths, tmp_path / "segmented", model=model_file, ocr_reader=reader)
    assert segmented.ok, [r.error for r in segmented.failed]
    reference = segmented.records[0].outcome
    for record in segmented.records:
        assert record.segmented and record.outcome.n_particles == pytest.approx(reference.n_particles, abs=1)
        assert record.outcome.size_nm == pytest.approx(reference.size_nm, rel=0.02)


# ----------------------------------------------------------------------------------------
# Calibration


def test_no_scale_bar_and_no_calibration(sample):
    bare = make_tem_image((160, 160), n_particles=8, scale_bar=False, rng=12)
    with pytest.raises(ScaleBarError, match=r"no scale bar found.*give the pixel size instead .*--nm-per-px"):
        analyze_image(bare.image, labels=bare.labels, ocr_reader=object())  # fails before any OCR


def test_unreadable_scale_bar_label():
    canvas = Image.new("L", (320, 240), 170)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((30, 200, 129, 205), fill=0)  # a bar …
    from matplotlib import font_manager

    draw.text((40, 168), "scale", font=ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 22), fill=0)  # … labelled in words
    draw.ellipse((150, 60, 180, 90), fill=60)
    image = np.asarray(canvas)
    labels = np.zeros(image.shape, np.int32)
    labels[60:90, 150:180] = 1
    with pytest.raises(ScaleBarError, match=r"scale bar label unreadable.*give the pixel size instead"):
        analyze_image(image, labels=labels, ocr_reader=get_ocr_reader())


@pytest.mark.parametrize(
    "value, problem",
    [
        (-0.5, "finite positive"),
        (0, "finite positive"),
        (float("nan"), "finite positive"),
        (float("inf"), "finite positive"),
        ("abc", "must be a number"),
    ],
)
def test_bad_pixel_size(sample, value, problem, tmp_path):
    with pytest.raises(AnalysisError, match=f"nm_per_px (must be a )?{problem}"):
        analyze_image(sample.image, labels=sample.labels, nm_per_px=value)
    with pytest.raises(AnalysisError, match=f"nm_per_px (must be a )?{problem}"):
        analyze_paths([tmp_path], tmp_path / "out", nm_per_px=value)


def test_bad_pixel_size_on_the_command_line(capsys, tmp_path):
    for text in ("-1", "0", "nan"):
        with pytest.raises(SystemExit) as stop:
            main(["analyze", str(tmp_path), "--out", str(tmp_path / "out"), "--nm-per-px", text])
        assert stop.value.code == 2
        assert f"argument --nm-per-px: must be a finite positive number, not '{text}'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# Labels


def test_empty_labels_and_nothing_left_to_measure(sample):
    with pytest.raises(AnalysisError, match=r"no particles: the label image is empty"):
        analyze_image(sample.image, labels=np.zeros(sample.image.shape, np.int32), nm_per_px=0.5)
    edge = np.zeros(sample.image.shape, np.int32)
    edge[0:10, 50:60] = 1
    edge[100:102, 100:102] = 2
    with pytest.raises(
        AnalysisError, match=r"no particles left to measure: 0 on the scale bar, 1 touching the border .*1 smaller than min_area_px=15"
    ):
        analyze_image(sample.image, labels=edge, nm_per_px=0.5)


def test_labels_of_the_wrong_shape_or_type(sample):
    with pytest.raises(AnalysisError, match=r"labels shape \(192, 191\) does not match the image shape \(192, 192\)"):
        analyze_image(sample.image, labels=sample.labels[:, :-1], nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"integer label image .*got dtype float64"):
        analyze_image(sample.image, labels=sample.labels.astype(float), nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"got dtype bool — label a boolean mask first"):
        analyze_image(sample.image, labels=sample.labels > 0, nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"non-negative .*found -3"):
        analyze_image(sample.image, labels=sample.labels - 3, nm_per_px=0.5)


def test_unreadable_label_files_fail_only_their_image(sample, tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(sample.image).save(tmp_path / name)
    (tmp_path / "a_labels.tif").write_bytes(b"II*\x00garbage")
    Image.fromarray(np.dstack([sample.image] * 3)).save(tmp_path / "b_labels.png")
    tifffile.imwrite(tmp_path / "c_labels.tif", sample.labels.astype(np.uint16))
    labels = {tmp_path / f"{k}.png": tmp_path / f"{k}_labels.{'png' if k == 'b' else 'tif'}" for k in "abc"}
    report = analyze_paths([tmp_path / f"{k}.png" for k in "abc"], tmp_path / "out", labels=labels, nm_per_px=0.5)
    errors = {r.path.name: r.error for r in report.records}
    assert errors["c.png"] is None
    assert "label file unreadable" in errors["a.png"] and "a_labels.tif" in errors["a.png"] and "corrupt" in errors["a.png"]
    assert "label file unreadable" in errors["b.png"] and "an RGB image, not an integer label image" in errors["b.png"]


# ----------------------------------------------------------------------------------------
# Image arrays and files


def test_bad_image_arrays(sample):
    nan_image = sample.image.astype(np.float32)
    nan_image[5, 5] = np.nan
    with pytest.raises(AnalysisError, match="image contains NaN or infinite values"):
        analyze_image(nan_image, labels=sample.labels, nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"image must be 2-D gray .*got shape \(3, 192, 192\)"):
        analyze_image(np.stack([sample.image] * 3), nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"image is empty"):
        analyze_image(np.zeros((0, 10)), nm_per_px=0.5)
    with pytest.raises(AnalysisError, match="real-valued"):
        analyze_image(sample.image.astype(complex), nm_per_px=0.5)


def test_huge_images_are_refused(sample, tmp_path):
    """In memory by their shape; from a file by its header, before 10⁸ pixels are decoded."""
    with pytest.raises(AnalysisError, match=r"image too large: 192 × 192 = 36,864 pixels exceeds the limit of 10,000 pixels"):
        analyze_image(sample.image, labels=sample.labels, nm_per_px=0.5, max_pixels=10_000)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)  # 10000 × 10000, 8-bit gray
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(
        AnalysisError, match=r"huge\.png: image too large: 10000 × 10000 = 100,000,000 pixels exceeds the limit of 67,108,864"
    ):
        read_micrograph(path)


def test_corrupt_truncated_and_mislabelled_files(sample, tmp_path):
    Image.fromarray(sample.image).save(tmp_path / "good.png")
    tifffile.imwrite(tmp_path / "good.tif", sample.image)
    (tmp_path / "cut.png").write_bytes((tmp_path / "good.png").read_bytes()[:300])
    (tmp_path / "cut.tif").write_bytes((tmp_path / "good.tif").read_bytes()[:5000])
    (tmp_path / "text.jpg").write_text("this is not a JPEG")
    (tmp_path / "empty.tiff").write_bytes(b"")
    cases = {
        "cut.png": r"cut\.png: cannot read the image \(OSError: image file is truncated.*corrupt, truncated or not a PNG image",
        "cut.tif": r"cut\.tif: cannot read the image .*corrupt, truncated or not a TIF image",
        "text.jpg": r"text\.jpg: cannot read the image \(UnidentifiedImageError.*not a JPG image",
        "empty.tiff": r"empty\.tiff: cannot read the image: the file is empty \(0 bytes\)",
    }
    for name, message in cases.items():
        with pytest.raises(AnalysisError, match=message):
            read_micrograph(tmp_path / name)


def test_missing_unsupported_and_empty_inputs(sample, tmp_path):
    (tmp_path / "scan.gif").write_bytes(b"GIF89a")  # .bmp is read since one suffix list serves every command
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no such image file: .*nowhere\.tif"):
        read_micrograph(tmp_path / "nowhere.tif")
    with pytest.raises(AnalysisError, match=r"scan\.gif: unsupported file type '\.gif'; supported: \.tif, \.tiff, \.png"):
        read_micrograph(tmp_path / "scan.gif")
    with pytest.raises(AnalysisError, match=r"nothing to analyse: .*empty_folder: no images \(.*\) in this folder"):
        analyze_paths([empty], tmp_path / "out", nm_per_px=0.5)
    # with one good image, each bad input becomes a failed record and the good one is analysed
    Image.fromarray(sample.image).save(tmp_path / "good.png")
    tifffile.imwrite(tmp_path / "good_labels.tif", sample.labels.astype(np.uint16))
    inputs = [tmp_path / "nowhere.tif", tmp_path / "scan.gif", empty, tmp_path / "good.png"]
    report = analyze_paths(inputs, tmp_path / "out", nm_per_px=0.5, labels={tmp_path / "good.png": tmp_path / "good_labels.tif"})
    assert not report.ok and [r.path.name for r in report.succeeded] == ["good.png"]
    errors = [r.error for r in report.failed]
    assert any("no such image file" in e and "nowhere.tif" in e for e in errors)
    assert any("unsupported file type '.gif'" in e for e in errors)
    assert any("empty_folder: no images" in e for e in errors)
    summary = report.summary()
    assert summary["status"].tolist().count("failed") == 3 and math.isfinite(summary.set_index("status").loc["ok", "size_nm"])


def test_bad_model_file_and_bad_output_folder(sample, tmp_path):
    Image.fromarray(sample.image).save(tmp_path / "good.png")
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match=r"model file invalid: .*model\.safetensors"):
        analyze_paths([tmp_path / "good.png"], tmp_path / "out", model=broken, nm_per_px=0.5)
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(AnalysisError, match=r"output folder .*taken is an existing file"):
        analyze_paths([tmp_path / "good.png"], tmp_path / "taken", nm_per_px=0.5)
    with pytest.raises(AnalysisError, match=r"min_area_px must be a finite number ≥ 0, not -5"):
        analyze_image(sample.image, labels=sample.labels, nm_per_px=0.5, min_area_px=-5)
