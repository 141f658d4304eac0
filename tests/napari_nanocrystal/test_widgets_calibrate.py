"""Calibrate widget: scale bar (OCR), file metadata and typed values → layer scale in nm."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_helpers import TEST_IMAGE, answer, notes, sync_tasks, tem_image  # noqa: F401 - fixtures

from napari_nanocrystal._widgets._layers import scale_bar_overlay
from napari_nanocrystal._widgets.calibrate import CalibrateWidget

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _widget(viewer, layer, mode):
    widget = CalibrateWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = layer
    widget.mode.value = mode
    return widget


def test_scale_bar_sets_scale_units_and_draws_the_bar(viewer, notes):
    sample = tem_image(**TEST_IMAGE)  # "20 nm" over 40 px
    image = viewer.add_image(sample.image, name="tem")
    labels = viewer.add_labels(sample.labels, name="tem labels", metadata={"source_image": "tem"})
    widget = _widget(viewer, image, "scale bar (OCR)")

    widget.read()

    assert notes() == []
    assert image.scale == pytest.approx([0.5, 0.5])
    assert [str(u) for u in image.units] == ["nanometer", "nanometer"]
    assert image.metadata["nm_per_px"] == pytest.approx(0.5)
    assert image.metadata["calibration_source"] == "ocr"
    assert image.metadata["scale_bar"]["value"] == 20 and image.metadata["scale_bar"]["unit"] == "nm"
    # the derived Labels layer follows the image
    assert labels.scale == pytest.approx([0.5, 0.5]) and labels.metadata["nm_per_px"] == pytest.approx(0.5)
    # the bar and its label as rectangles over the image, in the image's pixel grid
    shapes = viewer.layers["tem scale bar"]
    assert shapes.shape_type == ["rectangle", "rectangle"]
    assert shapes.scale == pytest.approx([0.5, 0.5])
    r0, c0, r1, c1 = sample.scale_bar.bar_box
    corners = shapes.data[0]
    assert corners[:, 0].min() == pytest.approx(r0 - 0.5, abs=1.5) and corners[:, 1].max() == pytest.approx(c1 - 0.5, abs=1.5)
    assert list(shapes.features["what"]) == ["", "0.5 nm/px"]
    assert "0.5 nm/px" in widget.reading.value and "20 nm" in widget.reading.value
    assert scale_bar_overlay(viewer).visible


def test_corrected_label_value_is_applied_as_manual(viewer):
    image = viewer.add_image(tem_image(**TEST_IMAGE).image, name="tem")
    widget = _widget(viewer, image, "scale bar (OCR)")
    widget.read()
    # the user says the label reads 50 nm (not 20): nm/px follows the bar length (40 px)
    widget.bar_value.value = 50.0
    assert widget.nm_per_px.value == pytest.approx(1.25)
    widget.bar_unit.value = "µm"
    assert widget.nm_per_px.value == pytest.approx(1250.0)
    widget.bar_unit.value = "nm"
    widget.apply()
    assert image.scale == pytest.approx([1.25, 1.25])
    assert image.metadata["calibration_source"] == "manual"
    assert image.metadata["scale_bar"]["value"] == 50.0 and image.metadata["scale_bar"]["bar_length_px"] == pytest.approx(40.0)
    assert viewer.layers["tem scale bar"].scale == pytest.approx([1.25, 1.25])


def test_typed_value(viewer):
    image = viewer.add_image(np.random.default_rng(0).random((64, 80)).astype(np.float32), name="plain")
    widget = _widget(viewer, image, "typed value (nm per pixel)")
    widget.nm_per_px.value = 0.123456
    widget.read()
    assert image.scale == pytest.approx([0.123456, 0.123456])
    assert image.metadata["calibration_source"] == "manual"
    assert "tem scale bar" not in viewer.layers and "plain scale bar" not in viewer.layers


def test_no_scale_bar_is_a_named_error(viewer, notes):
    image = viewer.add_image(np.full((64, 64), 0.5, np.float32), name="blank")
    widget = _widget(viewer, image, "scale bar (OCR)")
    widget.read()
    assert any("Calibrate blank" in m and "no scale bar found" in m for m in notes())
    assert image.scale == pytest.approx([1.0, 1.0]) and "nm_per_px" not in image.metadata


def test_file_metadata_from_a_calibrated_tiff(viewer, tmp_path, notes):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "calibrated.tif"
    pixels = (np.random.default_rng(1).random((48, 64)) * 65535).astype(np.uint16)
    tifffile.imwrite(path, pixels, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "nm"}, imagej=True)
    image = viewer.add_image(pixels, name="calibrated", metadata={"source_path": str(path)})
    widget = _widget(viewer, image, "auto: file metadata, else scale bar")
    widget.read()
    assert notes() == []
    assert image.scale == pytest.approx([0.25, 0.25])
    assert image.metadata["calibration_source"] == "metadata"
    # asking for the file metadata of an image without a file is a named error
    other = viewer.add_image(pixels, name="no file")
    widget.image.value, widget.mode.value = other, "file metadata"
    widget.read()
    assert any("no pixel size in the file metadata" in m for m in notes())


@pytest.mark.parametrize("dtype", ["uint16", "float32", "rgb"])
def test_16_bit_float_and_rgb_images(viewer, dtype):
    sample = tem_image(**TEST_IMAGE, dtype="uint8" if dtype == "rgb" else dtype)
    data = np.repeat(sample.image[..., None], 3, axis=2) if dtype == "rgb" else sample.image
    image = viewer.add_image(data, name=dtype, rgb=dtype == "rgb")
    widget = _widget(viewer, image, "scale bar (OCR)")
    widget.read()
    assert image.scale[-2:] == pytest.approx([0.5, 0.5])


def test_shows_the_crop_text_confidence_and_source(viewer, notes):
    sample = tem_image(**TEST_IMAGE)
    image = viewer.add_image(sample.image, name="tem")
    widget = _widget(viewer, image, "scale bar (OCR)")
    widget.read()
    assert notes() == []
    bar = image.metadata["scale_bar"]
    # the crop shown spans the bar and its label, cut from the image itself
    r0 = min(bar["bar_box"][0], bar["text_box"][0])
    c1 = max(bar["bar_box"][3], bar["text_box"][3])
    assert widget.crop is not None and widget.crop.dtype == np.uint8
    assert widget.crop.shape[1] == pytest.approx(c1 - min(bar["bar_box"][1], bar["text_box"][1]) + 8, abs=1)
    assert not widget.preview.pixmap().isNull() and widget.preview.pixmap().width() > 0
    assert r0 >= 0
    text = widget.reading.value
    assert "source: ocr (scale bar: label '20 nm'" in text and "OCR confidence" in text
    assert 0 < bar["confidence"] <= 1


def test_refused_label_lets_the_user_type_it(viewer, notes):
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (400, 300), 170)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((40, 250, 139, 255), fill=0)  # a 100 px bar
    draw.text((50, 215), "scale", font=ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 22), fill=0)
    image = viewer.add_image(np.asarray(canvas), name="refused")
    widget = _widget(viewer, image, "scale bar (OCR)")
    widget.read()
    assert any("Calibrate refused" in m and "scale bar label unreadable" in m for m in notes())
    assert "label refused" in widget.reading.value and widget.bar_value.enabled
    assert widget.crop is not None and not widget.preview.pixmap().isNull()  # the bar that was found
    assert "nm_per_px" not in image.metadata
    widget.bar_value.value = 50.0
    widget.bar_unit.value = "nm"
    assert widget.nm_per_px.value == pytest.approx(0.5, rel=0.02)
    widget.apply()
    assert image.metadata["calibration_source"] == "manual"
    assert image.scale == pytest.approx([widget.nm_per_px.value] * 2)
    assert image.metadata["scale_bar"]["detail"].startswith("label typed by the user")


def test_file_metadata_tag_is_named(viewer, tmp_path, notes):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "fei.tif"
    pixels = (np.random.default_rng(2).random((48, 64)) * 255).astype(np.uint8)
    fei = "[Scan]\r\nPixelWidth=2.5e-009\r\nPixelHeight=2.5e-009\r\n"
    tifffile.imwrite(path, pixels, resolution=(72, 72), extratags=[(34682, "s", 0, fei, True)])
    image = viewer.add_image(pixels, name="fei", metadata={"source_path": str(path)})
    widget = _widget(viewer, image, "auto: file metadata, else scale bar")
    widget.read()
    assert notes() == []
    assert image.scale == pytest.approx([2.5, 2.5]) and image.metadata["calibration_source"] == "metadata"
    assert "FEI_HELIOS tag: Scan/PixelWidth" in widget.reading.value
