"""The plugin's whole workflow without a window, on the sample image, with the shipped models.

    python examples/headless_workflow.py --out demo-output

Sample image (the one under File > Open Sample in napari) -> calibrate from its scale bar (OCR)
-> segment with the shipped default model -> measure every particle in nm -> named shapes and
k-means shape clusters -> the measured Outcome attached to a synthesis recipe, appended to a
recipe dataset (atomic) -> the shipped nc-synthmodel model's predicted size / shape / success
beside the measured values.  Writes the particle table, an overlay PNG, the Outcome JSON and the
recipe dataset to ``--out``; prints a short report (and compares with the sample's ground truth).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (created)")
    parser.add_argument("--k", type=int, default=4, help="k-means shape clusters")
    args = parser.parse_args(argv)

    from nc_synthmodel import Chemical, Conditions, Provenance, Recipe, append_recipes, default_model
    from napari_nanocrystal import ShapeClustering, analyze_image
    from napari_nanocrystal._sample_data import make_synthetic_tem
    from napari_nanocrystal.analysis import write_outputs

    (image, image_meta, _), (truth_labels, _, _) = make_synthetic_tem()
    truth = image_meta["metadata"]
    print(f"sample image {image.shape} {image.dtype}; burned-in scale bar {truth['scale_bar']['text']!r}")

    # calibrate (OCR of the scale bar: no nm/px is given) -> segment -> measure -> named shapes
    analysis = analyze_image(
        image, name="synthetic_tem", model="default", progress=lambda message, fraction: print(f"  [{fraction:4.0%}] {message}")
    )
    calibration = analysis.calibration
    print(
        f"calibration: {calibration.nm_per_px:.4f} nm/px from {calibration.source} "
        f"(label {calibration.text!r}; generator's truth {truth['nm_per_px']:.4f} nm/px)"
    )
    particles = analysis.particles
    if particles.empty:
        print("no particles were measured", file=sys.stderr)
        return 1

    # unsupervised shape clusters on the five standardised descriptors (paper Fig. 2c/d)
    clustering = ShapeClustering(n_clusters=min(args.k, len(particles))).fit(particles)
    particles = particles.assign(shape_cluster=clustering.labels_)
    outcome = analysis.outcome
    true_d = np.asarray(truth["particles"]["ecd_nm"], dtype=float)
    print(
        f"measured: D = {outcome.size_nm:.2f} nm, sigma/D = {outcome.size_dispersion_pct:.1f} %, "
        f"N = {outcome.n_particles}, shape {outcome.shape} "
        f"(truth: D = {true_d.mean():.2f} nm over {true_d.size} particles)"
    )
    print("shape clusters:", np.bincount(clustering.labels_).tolist())

    args.out.mkdir(parents=True, exist_ok=True)
    written = write_outputs(analysis, args.out, overwrite=True)
    particles.to_csv(args.out / "synthetic_tem_particles_clusters.csv", index=False)

    # the measured outcome becomes a row of a recipe dataset, through the shared contract
    recipe = Recipe(
        id="demo-pbse-001",
        product=Chemical(name="PbSe", role="product"),
        chemicals=[
            Chemical(name="PbO", amount_mmol=5.0, role="precursor"),
            Chemical(name="Se", amount_mmol=5.0, role="precursor"),
            Chemical(name="OA", amount_mmol=22.2, role="ligand"),
            Chemical(name="ODE", amount_mmol=46.9, role="solvent"),
        ],
        conditions=Conditions(injection_temp_c=150, reaction_temp_c=150, heating_rate_c_per_min=0, time_min=5),
        outcome=outcome,
        provenance=Provenance(source_images=["synthetic_tem"], nm_per_px=calibration.nm_per_px, calibration_source=calibration.source),
    )
    dataset = args.out / "my_recipes.json"
    if dataset.exists():
        dataset.unlink()  # the demo's own file: start fresh each run
    append_recipes([recipe], dataset)

    model = default_model()
    [predicted] = model.predict_outcomes([recipe])
    top = sorted(predicted["shape_probabilities"].items(), key=lambda kv: -kv[1])[:3]
    print(
        f"nc-synthmodel default model for this recipe: size {predicted['size_nm']:.2f} nm, "
        f"shape {', '.join(f'{n} {p:.0%}' for n, p in top)}, success {predicted['success_probability']:.0%}"
    )
    print("wrote", ", ".join(str(p) for p in [*written.values(), dataset]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
