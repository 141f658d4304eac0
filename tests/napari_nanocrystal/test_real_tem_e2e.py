"""End to end on a real TEM micrograph (not a generated one): analyze with the defaults a user gets.

The labelled PbSe crop of ``tem-examples`` (the paper's authors' image, 324 particles, a burned-in
"200 nm" bar) goes through ``analyze_image`` exactly as ``nanocrystal analyze`` runs it: the scale
bar read by OCR, no diameter (the shipped model's size model estimates it), the shipped default
model (and the shipped ``fast`` model, the option 4x cheaper per pixel).  Its count and mean equivalent circle diameter are compared with those of the true
instance map measured the same way (same nm/px, border particles excluded).

Tolerances: count within 15 % and mean diameter within 10 % of the truth.  They are regression
bounds, not the accuracy target (BENCHMARKS.md, "Real TEM micrographs", holds the measured numbers
and the 5 % target): the model the first round shipped found 57 of 324 particles here, which these
bounds fail by far, while run-to-run differences of the same model (bfloat16 vs float32 network
pass, thread count) move the count by a few particles only.  The shipped models were never trained
on this image or its labels (the fast one measured 317 instances, AP50 0.871 against the default's 325, 0.912).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pbse(tem_examples):
    from napari_nanocrystal.analysis import read_micrograph
    from napari_nanocrystal.segmentation.data import read_labels

    image, _, _ = read_micrograph(tem_examples / "pbse_1-0001_16_image.png")
    return image, read_labels(tem_examples / "pbse_1-0001_16_instances.png")


@pytest.mark.parametrize("model", ["default", "fast"])
def test_default_analysis_of_a_real_tem_image_counts_and_sizes_the_particles(pbse, model):
    from napari_nanocrystal import analyze_image
    from napari_nanocrystal.measure import measure_particles

    image, truth = pbse
    result = analyze_image(image, name="pbse_1-0001_16", model=model)
    assert result.calibration.source == "ocr"
    assert result.nm_per_px == pytest.approx(200 / 234, rel=0.02)  # the "200 nm" bar is 234 px long
    true_table = measure_particles(truth, result.nm_per_px, exclude_border=True, min_area_px=15)
    found, expected = len(result.particles), len(true_table)
    assert abs(found - expected) <= 0.15 * expected, f"{found} particles measured, the truth has {expected}"
    mean, true_mean = result.particles["ecd_nm"].mean(), true_table["ecd_nm"].mean()
    assert mean == pytest.approx(true_mean, rel=0.10)
    assert np.isfinite(result.particles["confidence"]).all() and (result.particles["confidence"] >= 0.5).all()
