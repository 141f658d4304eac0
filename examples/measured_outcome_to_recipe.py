"""From a per-particle table to a row of a recipe dataset, through the shared contract.

    python examples/measured_outcome_to_recipe.py OUT.json

Builds a per-particle table (as the napari plugin's Measure widget puts in a Labels layer's
``features``), summarises it with ``outcome_from_particles`` and appends the recipe atomically.
"""

import sys

import numpy as np

from nc_synthmodel import Chemical, Conditions, Provenance, Recipe, append_recipes, outcome_from_particles
from nc_synthmodel.contract import empty_particle_table

rng = np.random.default_rng(0)
diameters_nm = rng.normal(6.0, 0.5, size=400)
table = empty_particle_table().reindex(range(diameters_nm.size))
table["label"] = np.arange(1, diameters_nm.size + 1)
table["ecd_nm"] = diameters_nm
table["area_nm2"] = np.pi * diameters_nm**2 / 4
table["area_px"] = table["area_nm2"] / 0.26**2
table["shape_cluster"] = -1
table["shape_class"] = rng.choice(["sphere", "cube"], size=diameters_nm.size, p=[0.9, 0.1])

recipe = Recipe(
    id="my-pbse-001",
    product=Chemical(name="PbSe", role="product"),
    chemicals=[
        Chemical(name="PbO", amount_mmol=5.0, role="precursor"),
        Chemical(name="Se", amount_mmol=5.0, role="precursor"),
        Chemical(name="OA", amount_mmol=22.2, role="ligand"),
        Chemical(name="ODE", amount_mmol=46.9, role="solvent"),
    ],
    conditions=Conditions(injection_temp_c=150, reaction_temp_c=150, heating_rate_c_per_min=0, time_min=5),
    outcome=outcome_from_particles(table),
    provenance=Provenance(source_images=["pbse_150C.tif"], nm_per_px=0.26, calibration_source="ocr"),
)
print(recipe.outcome)
print("appended to", append_recipes([recipe], sys.argv[1] if len(sys.argv) > 1 else "my_recipes.json"))
