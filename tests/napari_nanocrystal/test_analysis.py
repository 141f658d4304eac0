"""The headless batch pipeline and ``nanocrystal analyze``: calibration, segmentation with a real
(small, quickly fitted) model file, measurement, shapes, output files, overwrite protection."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from nc_synthmodel.contract import SHAPE_CLASSES, Outcome, Provenance, validate_particle_table
from PIL import Image
from skimage.draw import disk

from napari_nanocrystal.analysis import (
    SUMMARY_COLUMNS,
    AnalysisError,
    BatchReport,
    analyze_image,
    analyze_paths,
    iter_analyze_paths,
)
from napari_nanocrystal.cli import main
from napari_nanocrystal.scalebar import get_ocr_reader, read_image
from napari_nanocrystal.synthetic import make_tem_image

CLASSES = ("sphere", "cube", "triangle")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the machine's 2 cores are shared: one torch thread for the network and OCR
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tem(seed: int, shape=(256, 256), **kwargs):
    options = dict(n_particles=18, shape_classes=CLASSES, diameter_nm=(14.0, 2.0), nm_per_px=0.5, rng=seed)
    options.update(kwargs)
    return make_tem_image(shape, **options)


def _ecd_nm(labels: np.ndarray, nm_per_px: float) -> np.ndarray:
    areas = np.bincount(labels.ravel())[1:]
    return np.sqrt(4 * areas[areas > 0] / math.pi) * nm_per_px


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

    sample = make_tem_image((128, 128), n_particles=12, diameter_nm=(12, 1), nm_per_px=0.5, touching_fraction=0, scale_bar=False, rng=1)
    x = torch.from_numpy(prepare_image(sample.image))[None, None]
    y = torch.from_numpy(flow_targets(sample.labels))[None]
    torch.manual_seed(0)
    net = SeedFlowNet((1, 8, 16, 16), diameter_px=24)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(80):
        optimiser.zero_grad()
        labelled_loss(net(x), y).backward()
        optimiser.step()
    return net.save(path)


@pytest.fixture(scope="module")
def ocr():
    return get_ocr_reader()


# ----------------------------------------------------------------------------------------
# One image


def test_given_labels_give_the_true_sizes_and_shapes():
    sample = _tem(3, scale_bar=False)
    labels = sample.labels.copy()
    labels[disk((0, 128), 8, shape=labels.shape)] = 101  # cut by the border
    labels[200:202, 5:7] = 102  # a 4-px speck
    result = analyze_image(sample.image, labels=labels, nm_per_px=0.5, min_area_px=10)
    n_true = len(np.unique(sample.labels[sample.labels > 0]))
    assert not result.segmented and result.calibration.source == "manual" and result.nm_per_px == 0.5
    assert result.excluded == {"scale_bar": 0, "border": 1, "small": 1}
    table = validate_particle_table(result.particles)
    assert len(table) == n_true == result.outcome.n_particles and 101 not in set(table["label"]) and 102 not in set(table["label"])
    truth = _ecd_nm(sample.labels, 0.5)
    assert result.outcome.size_nm == pytest.approx(truth.mean(), rel=1e-9)
    assert result.outcome.size_dispersion_pct == pytest.approx(100 * truth.std() / truth.mean(), rel=1e-9)
    # named shapes: the classifier recovers the drawn classes of the unoccluded particles
    drawn = dict(zip(sample.particles["label"], sample.particles["shape_class"]))
    alone = sample.particles.loc[~sample.particles["touching"].astype(bool), "label"]
    named = table.set_index("label")["shape_class"]
    agree = [named[k] == drawn[k] for k in alone if k in named.index]
    assert len(agree) >= 8 and np.mean(agree) >= 0.8
    assert set(result.outcome.shape_fractions) <= set(SHAPE_CLASSES)
    assert sum(result.outcome.shape_fractions.values()) == pytest.approx(1.0)
    # keeping border particles measures the cut one too
    kept = analyze_image(sample.image, labels=labels, nm_per_px=0.5, min_area_px=10, exclude_border=False)
    assert kept.outcome.n_particles == n_true + 1 and kept.excluded["border"] == 0


def test_calibration_precedence_manual_metadata_ocr(ocr):
    sample = _tem(4)
    by_ocr = analyze_image(sample.image, labels=sample.labels, ocr_reader=ocr, exclude_border=False)
    assert by_ocr.calibration.source == "ocr" and by_ocr.nm_per_px == pytest.approx(0.5, rel=0.01)
    assert by_ocr.calibration.text == sample.scale_bar.text
    by_file = analyze_image(sample.image, labels=sample.labels, metadata_nm_per_px=0.7, exclude_border=False)
    by_hand = analyze_image(sample.image, labels=sample.labels, nm_per_px=0.3, metadata_nm_per_px=0.7, exclude_border=False)
    assert (by_file.calibration.source, by_hand.calibration.source) == ("metadata", "manual")
    assert by_hand.outcome.size_nm / by_file.outcome.size_nm == pytest.approx(0.3 / 0.7)
    assert by_ocr.outcome.size_nm / by_file.outcome.size_nm == pytest.approx(by_ocr.nm_per_px / 0.7)


def test_instances_on_the_scale_bar_are_not_particles(ocr):
    """Segmentation takes a dark bar or label glyphs for particles: they are dropped when the bar was read."""
    sample = _tem(5, bar_polarity="dark", bar_panel=False)
    labels = sample.labels.copy()
    r0, c0, r1, c1 = sample.scale_bar.bar_box
    labels[r0:r1, c0:c1] = 500  # "the bar"
    t0, tc0, t1, tc1 = sample.scale_bar.text_box
    labels[t0 + 2 : t1 - 2, tc0 + 2 : tc0 + 6] = 501  # "a glyph"
    result = analyze_image(sample.image, labels=labels, ocr_reader=ocr, exclude_border=False)
    assert result.excluded["scale_bar"] >= 2
    assert not {500, 501} & set(result.particles["label"]) and not np.isin(result.labels, [500, 501]).any()


def test_segmentation_with_a_model_file(model_file):
    sample = _tem(6, scale_bar=False, touching_fraction=0.0)
    messages = []
    result = analyze_image(sample.image, model=model_file, nm_per_px=0.5, progress=lambda m, f: messages.append((m, f)))
    assert result.segmented and result.settings["model"] == str(model_file)
    assert result.labels.shape == sample.labels.shape and result.labels.dtype == np.int32
    n_true = len(np.unique(sample.labels[sample.labels > 0]))
    assert 0.6 * n_true <= result.outcome.n_particles <= n_true + 2
    assert result.outcome.size_nm == pytest.approx(_ecd_nm(sample.labels, 0.5).mean(), rel=0.2)
    assert result.particles["confidence"].between(0.5, 1.0).all()  # mean seed probability, filtered at 0.5
    assert [m for m, _ in messages] == [
        "image: calibrating",
        "image: segmenting",
        "image: measuring",
        "image: naming shapes",
        f"image: done ({result.outcome.n_particles} particles)",
    ]
    assert [f for _, f in messages] == sorted(f for _, f in messages) and messages[-1][1] == 1.0


def test_diameter_estimated_by_the_model(model_file):
    sample = _tem(6, scale_bar=False, touching_fraction=0.0)
    result = analyze_image(sample.image, model=model_file, nm_per_px=0.5, diameter_nm="auto")
    assert result.segmented and result.settings["diameter_nm"] == "auto"
    n_true = len(np.unique(sample.labels[sample.labels > 0]))
    assert 0.6 * n_true <= result.outcome.n_particles <= n_true + 2
    with pytest.raises(AnalysisError, match="diameter_nm"):
        analyze_image(sample.image, model=model_file, nm_per_px=0.5, diameter_nm="big")


# ----------------------------------------------------------------------------------------
# Files and the command line


@pytest.fixture
def batch_dir(tmp_path):
    """a.png: scale bar only (OCR); b.tif: calibrated TIFF (0.4 nm/px), no bar; bad.png: truncated; notes.txt."""
    folder = tmp_path / "images"
    folder.mkdir()
    a = _tem(7)
    Image.fromarray(a.image).save(folder / "a.png")
    b = _tem(8, scale_bar=False, nm_per_px=0.4, diameter_nm=(11.0, 1.5))
    tifffile.imwrite(folder / "b.tif", b.image, imagej=True, resolution=(1 / 0.4, 1 / 0.4), metadata={"unit": "nm"})
    (folder / "bad.png").write_bytes((folder / "a.png").read_bytes()[:400])
    (folder / "notes.txt").write_text("not an image")
    return folder, a, b


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_cli_batch_writes_outputs_reports_the_bad_file_and_never_overwrites(batch_dir, model_file, tmp_path, capsys, ocr):
    folder, a, b = batch_dir
    out = tmp_path / "results"
    argv = ["analyze", str(folder), "--out", str(out), "--model", str(model_file), "--min-area-px", "20"]
    assert main(argv) == 1  # one image failed
    captured = capsys.readouterr()
    assert "analysed 2 of 3 input(s)" in captured.out
    assert "FAILED" in captured.err and "bad.png" in captured.err and "truncated" in captured.err

    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    rows = summary.set_index("output_stem")
    assert rows.loc["a", "status"] == "ok" and rows.loc["a", "calibration_source"] == "ocr"
    assert rows.loc["a", "nm_per_px"] == pytest.approx(0.5, rel=0.01)
    assert rows.loc["b", "calibration_source"] == "metadata" and rows.loc["b", "nm_per_px"] == pytest.approx(0.4)
    assert rows.loc["bad", "status"] == "failed" and "bad.png" in rows.loc["bad", "error"]
    assert math.isnan(rows.loc["bad", "size_nm"])
    for stem, sample, nm in (("a", a, 0.5), ("b", b, 0.4)):
        row = rows.loc[stem]
        fractions = row[[c for c in SUMMARY_COLUMNS if c.startswith("fraction_")]].astype(float)
        assert fractions.sum() == pytest.approx(1.0) and row["n_particles"] >= 5
        assert row["size_nm"] == pytest.approx(_ecd_nm(sample.labels, nm).mean(), rel=0.25)

        table = validate_particle_table(pd.read_csv(out / f"{stem}_particles.csv"))
        assert len(table) == row["n_particles"] and table["shape_class"].notna().all() and (table["area_px"] >= 20).all()
        document = json.loads((out / f"{stem}_outcome.json").read_text())
        outcome, provenance = Outcome.model_validate(document["outcome"]), Provenance.model_validate(document["provenance"])
        assert outcome.n_particles == len(table) and outcome.size_nm == pytest.approx(row["size_nm"])
        assert provenance.source_images == [str(folder / f"{stem}.{'png' if stem == 'a' else 'tif'}")]
        assert provenance.size_from_segmentation is True and provenance.calibration_source == row["calibration_source"]
        calibration = document["analysis"]["calibration"]  # where the pixel size came from, in words
        assert calibration["source"] == row["calibration_source"] and calibration["detail"]
        if calibration["source"] == "ocr":
            assert 0 < document["analysis"]["scale_bar"]["confidence"] <= 1
        labels, label_nm, _ = read_image(out / f"{stem}_labels.tif")  # calibrated in nm, like the input
        assert labels.shape == sample.image.shape and label_nm == pytest.approx(row["nm_per_px"], rel=1e-4)
        assert set(table["label"]) <= set(np.unique(labels).tolist())
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert overlay.shape == (*sample.image.shape, 3)
        assert np.all(overlay == (0, 230, 0), axis=2).sum() > 10 * len(table)  # particle outlines
    magenta = np.all(np.asarray(Image.open(out / "a_overlay.png")) == (255, 0, 255), axis=2)
    r0, c0, r1, c1 = a.scale_bar.bar_box
    assert magenta[max(0, r0 - 2) : r1 + 2, max(0, c0 - 2) : c1 + 2].any()  # the bar that was read is framed
    assert not (out / "bad_particles.csv").exists()

    # a second run refuses to touch anything
    before = _snapshot(out)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "already exist" in captured.err and "--overwrite" in captured.err
    assert _snapshot(out) == before
    # unless asked; a file that was good and is now broken keeps its earlier outputs and summary row (issue 19)
    (folder / "b.tif").write_bytes(b"II*\x00" + b"\x00" * 12)
    assert main([*argv, "--overwrite"]) == 1
    assert "b.tif" in capsys.readouterr().err
    summary = pd.read_csv(out / "summary.csv").set_index("output_stem")
    assert summary.loc["b", "status"] == "ok" and summary.loc["bad", "status"] == "failed"
    assert (out / "b_particles.csv").read_bytes() == before["b_particles.csv"] and (out / "a_particles.csv").exists()


def test_missing_default_model_is_a_clear_error_before_any_output(batch_dir, tmp_path, capsys, monkeypatch):
    from napari_nanocrystal.segmentation import network

    monkeypatch.setattr(network, "MODELS_DIR", tmp_path / "no-models")  # an installation without weights
    folder, _, _ = batch_dir
    out = tmp_path / "never"
    with pytest.raises(FileNotFoundError, match="no default segmentation model in this installation"):
        analyze_paths([folder / "a.png"], out, model="default")
    assert not out.exists()
    assert main(["analyze", str(folder / "a.png"), "--out", str(out)]) == 2
    assert "no default segmentation model in this installation" in capsys.readouterr().err and not out.exists()


def test_generator_progress_labels_option_and_clashing_names(tmp_path):
    """Existing label images (no model needed), files sharing a stem, progress as a generator."""
    folder = tmp_path / "in"
    folder.mkdir()
    sample = _tem(9, scale_bar=False)
    Image.fromarray(sample.image).save(folder / "x.png")
    tifffile.imwrite(folder / "x.tif", sample.image)
    tifffile.imwrite(tmp_path / "x_labels.tif", sample.labels.astype(np.uint16))
    labels = {folder / "x.png": tmp_path / "x_labels.tif", folder / "x.tif": sample.labels}
    steps = iter_analyze_paths([folder], tmp_path / "out", model="default", labels=labels, nm_per_px=0.5)
    progress = []
    while True:
        try:
            progress.append(next(steps))
        except StopIteration as stop:
            report = stop.value
            break
    assert isinstance(report, BatchReport) and report.ok
    assert [r.output_stem for r in report.records] == ["x_png", "x_tif"]
    assert all(r.segmented is False and r.calibration_source == "manual" for r in report.records)
    assert report.records[0].outcome == report.records[1].outcome
    fractions = [f for _, f in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(isinstance(m, str) for m, _ in progress)
    assert {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")} == {  # hidden: the summary's lock
        "summary.csv",
        *(f"x_{e}{s}" for e in ("png", "tif") for s in ("_particles.csv", "_labels.tif", "_overlay.png", "_outcome.json")),
    }
    with pytest.raises(AnalysisError, match=r"labels given for image\(s\) that are not among the inputs: .*y\.png"):
        analyze_paths([folder], tmp_path / "out3", labels={**labels, folder / "y.png": sample.labels}, nm_per_px=0.5)
    # the callback form gives the same result
    again = analyze_paths([folder], tmp_path / "out2", labels=labels, nm_per_px=0.5, progress=lambda m, f: None)
    assert [r.outcome for r in again.records] == [r.outcome for r in report.records]
