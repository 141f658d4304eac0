"""Data loss = zero for the image commands: inputs never replaced, outputs only with --overwrite,
an --overwrite run that fails keeps the earlier outputs, summaries are merged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from napari_nanocrystal.analysis import analyze_paths
from napari_nanocrystal.cli import main
from napari_nanocrystal.synthetic import make_tem_image


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained 3-level SeedFlowNet weight file (the commands' file handling is under test, not its accuracy)."""
    import torch

    from napari_nanocrystal.segmentation.network import SeedFlowNet

    torch.manual_seed(0)
    return SeedFlowNet((1, 4, 8), diameter_px=24).save(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def tem():
    return make_tem_image((96, 96), n_particles=8, diameter_nm=(10.0, 1.0), nm_per_px=0.5, scale_bar=False, rng=3)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_segment_never_writes_over_its_input(tmp_path, tem, tiny_model, capsys):
    image = tmp_path / "micrograph.tif"
    tifffile.imwrite(image, tem.image)
    before = image.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main(["segment", str(image), "--out", str(image), "--model", str(tiny_model), *extra]) == 2
        err = capsys.readouterr().err
        assert "would replace the input file" in err and "Traceback" not in err
    assert image.read_bytes() == before
    # an existing CSV beside the output is refused too
    table = tmp_path / "labels.csv"
    Image.fromarray(tem.image).save(tmp_path / "labels.png")
    table.write_text("my notes")
    assert main(["segment", str(tmp_path / "labels.png"), "--out", str(tmp_path / "labels.tif"), "--model", str(tiny_model)]) == 2
    assert "labels.csv: exists; pass --overwrite" in capsys.readouterr().err and table.read_text() == "my notes"


def test_segment_refuses_existing_outputs_without_overwrite(tmp_path, tem, tiny_model, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(tem.image).save(image)
    out = tmp_path / "a_labels.tif"
    assert main(["segment", str(image), "--out", str(out), "--model", str(tiny_model), "--confidence", "0"]) == 0
    before = _snapshot(tmp_path)
    assert main(["segment", str(image), "--out", str(out), "--model", str(tiny_model)]) == 2
    assert "a_labels.tif: exists; pass --overwrite" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before
    assert main(["segment", str(image), "--out", str(out), "--model", str(tiny_model), "--overwrite", "--confidence", "0"]) == 0


def _analyse(images, out, labels, **options):
    return analyze_paths(images, out, labels=labels, nm_per_px=0.5, min_area_px=5, **options)


def test_overwrite_run_that_fails_keeps_the_earlier_outputs(tmp_path, tem):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = folder / "a.tif", folder / "b.tif"
    tifffile.imwrite(a, tem.image)
    tifffile.imwrite(b, tem.image)
    out = tmp_path / "out"
    labels = {a: tem.labels, b: tem.labels}
    assert _analyse([a, b], out, labels).ok
    good = _snapshot(out)
    b.write_bytes(b"II*\x00" + bytes(12))  # b is now broken
    report = _analyse([a, b], out, labels, overwrite=True)
    assert [r.ok for r in report.records] == [True, False]
    assert "b.tif" in report.records[1].error and "earlier outputs of b are kept" in report.records[1].error
    after = _snapshot(out)
    for name in ("b_particles.csv", "b_labels.tif", "b_overlay.png", "b_outcome.json"):
        assert after[name] == good[name]
    summary = pd.read_csv(out / "summary.csv").set_index("output_stem")
    assert summary.loc["b", "status"] == "ok" and summary.loc["a", "status"] == "ok"  # b's earlier row kept
    assert not [p for p in out.iterdir() if ".tmp" in p.name]


def test_adding_an_image_to_a_results_folder_merges_the_summary(tmp_path, tem):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    tifffile.imwrite(a, tem.image)
    tifffile.imwrite(b, np.flipud(tem.image))
    out = tmp_path / "results"
    assert _analyse([a], out, {a: tem.labels}).ok
    assert _analyse([b], out, {b: np.flipud(tem.labels)}).ok  # no --overwrite needed: b's outputs are new
    summary = pd.read_csv(out / "summary.csv")
    assert summary["output_stem"].tolist() == ["a", "b"] and (summary["status"] == "ok").all()
    assert summary["n_particles"].notna().all()
    # a foreign summary.csv is never replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.csv").write_text("my,own\n1,2\n")
    with pytest.raises(ValueError, match="not a nanocrystal summary"):
        _analyse([a], other, {a: tem.labels})
    assert (other / "summary.csv").read_text() == "my,own\n1,2\n"


def test_analyze_never_writes_over_an_input(tmp_path, tem):
    out = tmp_path / "out"
    out.mkdir()
    image = out / "x.tif"
    clash = out / "x_labels.tif"  # an input image named like the output of x.tif
    tifffile.imwrite(image, tem.image)
    tifffile.imwrite(clash, tem.image)
    before = clash.read_bytes()
    with pytest.raises(ValueError, match="would replace the input file"):
        _analyse([image, clash], out, {image: tem.labels, clash: tem.labels}, overwrite=True)
    assert clash.read_bytes() == before
