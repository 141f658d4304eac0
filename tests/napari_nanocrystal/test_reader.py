"""The npe2 reader: calibrated TIFFs open scaled in nm, other files in pixels; through npe2 and napari."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanocrystal._reader import napari_get_reader, read_micrographs
from napari_nanocrystal.analysis import AnalysisError

PLUGIN = "napari-nanocrystal"


@pytest.fixture
def calibrated_tif(tmp_path):
    """A 16-bit ImageJ TIFF at 0.25 nm/px."""
    data = np.arange(40 * 56, dtype=np.uint16).reshape(40, 56)
    path = tmp_path / "pbse_0.25nm.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "nm"})
    return path, data


def test_tiff_with_resolution_tags_is_scaled_in_nm(calibrated_tif, tmp_path):
    path, data = calibrated_tif
    reader = napari_get_reader(str(path))
    assert callable(reader)
    [(array, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "image" and np.array_equal(array, data) and array.dtype == np.uint16
    assert kwargs["name"] == "pbse_0.25nm"
    assert kwargs["scale"] == pytest.approx((0.25, 0.25)) and kwargs["units"] == ("nm", "nm")
    assert kwargs["metadata"]["nm_per_px"] == pytest.approx(0.25)
    assert kwargs["metadata"]["calibration_source"] == "metadata" and kwargs["metadata"]["calibrated"] is True
    assert "rgb" not in kwargs
    # plain TIFF resolution tags (centimetre unit): 1e7 nm / 2e7 px = 0.5 nm/px
    cm = tmp_path / "cm.TIF"
    tifffile.imwrite(cm, data[:8, :8], resolution=(2e7, 2e7), resolutionunit=tifffile.RESUNIT.CENTIMETER)
    [(_, kwargs, _)] = napari_get_reader(str(cm))(str(cm))
    assert kwargs["scale"] == pytest.approx((0.5, 0.5))


def test_uncalibrated_png_jpeg_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (24, 32), dtype=np.uint8)
    rgb = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, np.full((24, 32), 200, np.uint8)])
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "colour.jpg", quality=95)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    tifffile.imwrite(tmp_path / "dpi.tif", gray, resolution=(72, 72), resolutionunit=tifffile.RESUNIT.INCH)

    paths = [str(tmp_path / n) for n in ("gray.png", "colour.jpg", "alpha.png", "dpi.tif")]
    layers = napari_get_reader(paths)(paths)  # a list of paths: one layer each
    assert [kw["name"] for _, kw, _ in layers] == ["gray", "colour", "alpha", "dpi"]
    for data, kwargs, layer_type in layers:
        assert layer_type == "image" and kwargs["scale"] == (1.0, 1.0) and kwargs["units"] == ("pixel", "pixel")
        assert kwargs["metadata"]["calibrated"] is False and kwargs["metadata"]["nm_per_px"] is None
        assert kwargs["metadata"]["calibration_source"] is None
    (g, gk, _), (c, ck, _), (a, ak, _), (d, dk, _) = layers
    assert np.array_equal(g, gray) and "rgb" not in gk
    assert c.shape == (24, 32, 3) and ck["rgb"] is True  # colour kept as is, shown as RGB
    assert np.array_equal(a, rgba) and ak["rgb"] is True
    assert np.array_equal(d, gray)  # 72 dpi is a print resolution, not a calibration


def test_declines_what_it_cannot_read(tmp_path, calibrated_tif):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "stack.tif").mkdir()  # a folder, even with an image suffix
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_get_reader(str(tmp_path / "image.gif")) is None
    assert napari_get_reader(str(tmp_path / "stack.tif")) is None
    assert napari_get_reader(str(tmp_path)) is None
    assert napari_get_reader([str(calibrated_tif[0]), str(tmp_path / "notes.txt")]) is None
    assert napari_get_reader([]) is None


def test_read_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(AnalysisError, match=r"broken\.tif: cannot read the image .*corrupt, truncated or not a TIF"):
        read_micrographs(str(broken))
    with pytest.raises(FileNotFoundError, match=r"no such image file: .*missing\.png"):
        read_micrographs(str(tmp_path / "missing.png"))


def test_reader_and_sample_data_through_npe2(calibrated_tif):
    """npe2's PluginManager (no Qt): the manifest, the reader for a TIFF and the sample data."""
    from npe2 import PluginManager, PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()  # every python_name resolves
    assert manifest.name == PLUGIN

    pm = PluginManager()  # a private one: napari's global instance is left alone
    pm.discover()
    pm.activate(PLUGIN)  # registers the manifest's commands in pm.commands
    path, data = calibrated_tif
    readers = [r for r in pm.iter_compatible_readers([str(path)]) if r.plugin_name == PLUGIN]
    assert len(readers) == 1
    read = readers[0].exec(kwargs={"path": [str(path)], "stack": False}, _registry=pm.commands)
    [(array, kwargs, layer_type)] = read([str(path)], stack=False)
    assert layer_type == "image" and np.array_equal(array, data)
    assert kwargs["scale"] == pytest.approx((0.25, 0.25)) and kwargs["units"] == ("nm", "nm")

    [sample] = pm.get_manifest(PLUGIN).contributions.sample_data
    assert sample.key == "synthetic_tem"
    layers = sample.open(_registry=pm.commands)
    (image, image_kw, image_type), (labels, labels_kw, labels_type) = layers
    assert (image_type, labels_type) == ("image", "labels")
    assert image.shape == (512, 512) and image.dtype == np.uint8
    assert labels.shape == image.shape and np.issubdtype(labels.dtype, np.integer) and labels.max() >= 30
    nm = image_kw["metadata"]["nm_per_px"]
    assert image_kw["scale"] == labels_kw["scale"] == (nm, nm) and math.isclose(nm, 0.5)
    assert image_kw["units"] == ("nm", "nm")


# napari on PyQt5 cannot detect the desktop theme; harmless here
@pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")
def test_napari_viewer_opens_files_and_sample_in_nm(make_napari_viewer, calibrated_tif):
    viewer = make_napari_viewer()
    path, data = calibrated_tif
    [layer] = viewer.open(str(path), plugin=PLUGIN)
    assert layer.name == "pbse_0.25nm" and np.array_equal(layer.data, data)
    assert tuple(layer.scale) == pytest.approx((0.25, 0.25))
    assert [str(u) for u in layer.units] == ["nanometer", "nanometer"]

    image, labels = viewer.open_sample(PLUGIN, "synthetic_tem")
    assert image.name == "synthetic TEM" and labels.name == "synthetic TEM ground truth"
    assert type(labels).__name__ == "Labels"
    assert tuple(image.scale) == tuple(labels.scale) == pytest.approx((0.5, 0.5))
    assert len(viewer.layers) == 3
