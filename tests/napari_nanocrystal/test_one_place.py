"""Issue 17: each rule lives in one place — label files, the pipeline steps the widgets share, shipped
weights, the Otsu marker distance — and the non-training path needs no mmengine."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tifffile
from napari_nanocrystal.analysis import (
    iter_calibrate,
    remove_scale_bar_particles,
    scale_bar_boxes,
    size_summary,
)
from napari_nanocrystal.images import read_image
from napari_nanocrystal.label_files import (
    UNCERTAIN,
    label_png_bytes,
    label_tiff_bytes,
    weak_label_name,
    weak_pair_paths,
)
from napari_nanocrystal.scalebar import ScaleBar, ScaleBarError
from napari_nanocrystal.segmentation.data import find_weak_pairs, read_labels


def _many_labels(n: int = 70_000) -> np.ndarray:
    """A (350, 400) image of n one-pixel particles (ids 1..n, well past 65,535)."""
    labels = np.zeros(350 * 400, np.int64)
    labels[:n] = np.arange(1, n + 1)
    return labels.reshape(350, 400)


# -- label files: one encoder rule


def test_label_tiff_beyond_65535_labels_is_uint32_and_reads_back_exactly(tmp_path):
    labels = _many_labels()
    path = tmp_path / "many_labels.tif"
    path.write_bytes(label_tiff_bytes(labels, nm_per_px=0.25))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].dtype == np.uint32
    back, nm_per_px, source = read_image(path)
    assert np.issubdtype(back.dtype, np.integer) and np.array_equal(back, labels)
    assert nm_per_px == pytest.approx(0.25) and source == "metadata"
    assert np.array_equal(read_labels(path), labels)


def test_label_tiff_up_to_65535_is_a_calibrated_imagej_uint16(tmp_path):
    labels = np.zeros((40, 50), np.int32)
    labels[5:9, 5:9], labels[20:30, 30:45] = 1, 65_535
    path = tmp_path / "labels.tif"
    path.write_bytes(label_tiff_bytes(labels, nm_per_px=1.5))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].dtype == np.uint16 and tif.is_imagej and tif.imagej_metadata["unit"] == "nm"
    back, nm_per_px, _ = read_image(path)
    assert np.array_equal(back, labels) and nm_per_px == pytest.approx(1.5)


def test_label_png_refuses_more_than_65535_labels_and_label_tiff_refuses_floats():
    with pytest.raises(ValueError, match="at most 65,535 labels"):
        label_png_bytes(_many_labels())
    with pytest.raises(ValueError, match="integer image"):
        label_tiff_bytes(np.ones((4, 4), np.float32))
    small = np.arange(12, dtype=np.int64).reshape(3, 4)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(label_png_bytes(small)))), small)


def test_analysis_output_labels_use_the_same_rule(tmp_path):
    """write_outputs writes the label TIFF with label_tiff_bytes: > 65,535 particles stay integers."""
    from napari_nanocrystal.analysis import analyze_image, write_outputs

    labels = np.zeros((64, 64), np.int32)
    labels[10:20, 10:20], labels[30:42, 30:42] = 1, 70_000
    image = np.where(labels > 0, 40, 200).astype(np.uint8)
    result = analyze_image(image, nm_per_px=0.5, labels=labels, min_area_px=1)
    paths = write_outputs(result, tmp_path, "x")
    back, nm_per_px, _ = read_image(paths["labels"])
    assert back.dtype == np.uint32 and np.array_equal(back, labels) and nm_per_px == pytest.approx(0.5)


def test_training_pair_layout_written_is_the_layout_read(tmp_path):
    image_path, weak_path = weak_pair_paths(tmp_path, "my image: 1")
    assert (image_path.name, weak_path.name) == ("my_image_1_image.tif", "my_image_1_weak.png")
    assert weak_label_name(tmp_path / "a_image.png") == "a_weak.png" and weak_label_name("b.tif") == "b_weak.png"
    image_path.write_bytes(b"")
    weak_path.write_bytes(b"")
    pairs = find_weak_pairs(tmp_path)
    assert [(p.image, p.labels) for p in pairs] == [(image_path, weak_path)]


def test_uncertain_is_defined_once_and_the_weak_label_code_is_torch_free():
    from napari_nanocrystal import weak_labels
    from napari_nanocrystal.segmentation import losses

    assert UNCERTAIN == 255 and weak_labels.UNCERTAIN is UNCERTAIN and losses.UNCERTAIN is UNCERTAIN
    code = "import sys, napari_nanocrystal.weak_labels.label_map, napari_nanocrystal.label_files; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# -- pipeline steps shared by the widgets and the analysis


def test_remove_scale_bar_particles_renumbers_and_keeps_confidences_with_their_particles():
    labels = np.zeros((30, 30), np.int32)
    labels[2:5, 2:5], labels[10:13, 10:13], labels[20:23, 20:23] = 1, 2, 3
    confidence = np.array([0.9, 0.5, 0.7], np.float32)
    out, kept, dropped = remove_scale_bar_particles(labels, confidence, [(9, 9, 11, 11)])
    assert dropped == 1 and out.dtype == np.int32 and out.max() == 2
    assert out[3, 3] == 1 and out[21, 21] == 2 and not out[11, 11]
    assert kept.tolist() == pytest.approx([0.9, 0.7])
    untouched, same, none = remove_scale_bar_particles(out.copy(), kept, [])
    assert none == 0 and np.array_equal(untouched, out) and same is kept


def test_scale_bar_boxes_of_a_reading_and_of_its_layer_metadata():
    bar = ScaleBar(nm_per_px=1.0, bar_box=(1, 2, 3, 4), text_box=None, source="ocr")
    assert scale_bar_boxes(bar) == [(1, 2, 3, 4)]
    assert scale_bar_boxes({"bar_box": [1, 2, 3, 4], "text_box": [5, 6, 7, 8]}) == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert scale_bar_boxes(None) == []


def test_size_summary_is_the_outcome_numbers_in_nm_and_px():
    from nc_synthmodel.contract import PARTICLE_COLUMNS, outcome_from_particles

    rng = np.random.default_rng(0)
    table = pd.DataFrame({c: np.nan for c in PARTICLE_COLUMNS}, index=range(20))
    table["label"] = np.arange(1, 21)
    table["area_px"] = rng.integers(50, 400, 20)
    table["ecd_nm"] = 0.5 * np.sqrt(4 * table["area_px"] / np.pi)
    table["shape_class"] = "sphere"
    outcome = outcome_from_particles(table)
    diameters, unit, text = size_summary(table)
    assert unit == "nm" and diameters.mean() == pytest.approx(outcome.size_nm)
    assert text == f"D = {outcome.size_nm:.3g} nm, σ/D = {outcome.size_dispersion_pct:.1f} %, N = 20"
    px, unit_px, text_px = size_summary(table.assign(ecd_nm=np.nan))
    assert unit_px == "px" and px == pytest.approx(diameters / 0.5)
    assert text_px.startswith(f"D = {outcome.size_nm / 0.5:.3g} px, σ/D = {outcome.size_dispersion_pct:.1f} %")


def _drive(generator):
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def test_calibration_order_is_read_scale_bars():
    image = np.full((64, 64), 128, np.uint8)  # no scale bar in it
    assert _drive(iter_calibrate(image, manual_nm_per_px=0.3, metadata_nm_per_px=0.7)).source == "manual"
    found = _drive(iter_calibrate(image, metadata_nm_per_px=0.7))
    assert (found.source, found.nm_per_px) == ("metadata", 0.7)
    with pytest.raises(ScaleBarError, match="no pixel size in the file metadata"):
        _drive(iter_calibrate(image, "metadata"))
    with pytest.raises(ScaleBarError, match="no scale bar found"):
        _drive(iter_calibrate(image, "ocr", metadata_nm_per_px=0.7))  # OCR asked: the file's value is not used
    with pytest.raises(ValueError, match="unknown calibration mode"):
        _drive(iter_calibrate(image, "guess"))


def test_one_otsu_marker_distance_rule():
    from napari_nanocrystal.segmentation.evaluation import otsu_min_distance_px

    assert [otsu_min_distance_px(d) for d in (None, 1.0, 4.0, 18.0, 41.0)] == [20, 2, 2, 9, 20]


def test_shipped_weights_are_found_in_one_place(tmp_path):
    from napari_nanocrystal._widgets import segment as segment_widget  # noqa: F401 - the widget lists the same
    from napari_nanocrystal.segmentation import network
    from napari_nanocrystal.segmentation.weights import shipped_weights

    for name in ("b.pt", "a.safetensors", "a.pt", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert shipped_weights(tmp_path) == {"a": tmp_path / "a.safetensors", "b": tmp_path / "b.pt"}
    assert network.available_models() == shipped_weights() == segment_widget.shipped_models()


# -- dependencies


def test_the_non_training_path_imports_and_runs_without_mmengine():
    script = textwrap.dedent("""
        import sys
        for name in ("mmengine", "mmdet", "mmcv"):
            sys.modules[name] = None  # as if not installed: importing it raises ImportError
        import numpy as np
        import napari_nanocrystal
        from napari_nanocrystal import analyze_image, segment
        import napari_nanocrystal.cli, napari_nanocrystal.weak_labels, napari_nanocrystal.segmentation.training
        from napari_nanocrystal.segmentation.network import SeedFlowNet
        labels = np.zeros((64, 64), np.int32)
        labels[10:20, 10:20] = 1
        image = np.where(labels > 0, 40, 200).astype(np.uint8)
        print(analyze_image(image, nm_per_px=0.5, labels=labels).outcome.n_particles)
        print(segment(image, SeedFlowNet((1, 8, 16, 32), diameter_px=30.0), diameter_px=None).labels.shape)
        try:
            napari_nanocrystal.train("tiny", labeled=[(image, labels)], out="never")
        except ImportError as error:
            print("ImportError", "napari-nanocrystal[training]" in str(error))
        from napari_nanocrystal._commands.train import parse_cfg_options
        try:
            parse_cfg_options(["stages.finetune.max_epochs=1"])  # `nanocrystal train --cfg-options ...`
        except ImportError as error:
            print("ImportError", "napari-nanocrystal[training]" in str(error))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:4] == ["1", "(64, 64)", "ImportError True", "ImportError True"]


def test_one_validation_rule_for_training_and_evaluation(tmp_path):
    """resolve_data (training) and split_files (evaluate_model, the cellpose baseline) hold out the same images."""
    from napari_nanocrystal.segmentation.training import collect_sources, resolve_data, split_files

    for name in ("e", "a", "g", "c", "b", "f", "d"):
        (tmp_path / f"{name}_image.png").write_bytes(b"")
        (tmp_path / f"{name}_instances.tif").write_bytes(b"")
    data = resolve_data(str(tmp_path))
    files, _ = collect_sources(str(tmp_path), "labels")
    val, note = split_files(files, "val")
    train, _ = split_files(files, "train")
    assert [e["name"] for e in data.val_files] == [e["name"] for e in val] == ["a", "f"]
    assert sorted(e["name"] for e in data.train_files) == sorted(e["name"] for e in train) == ["b", "c", "d", "e", "g"]
    assert note == "val split (every 5th image)" and data.val_note == "every 5th labelled image (sorted by name)"
