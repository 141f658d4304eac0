"""Silently wrong → a clear error: plausible ranges with units and strict types in the contract, empty inputs."""

from __future__ import annotations

import json

import pytest

from nc_synthmodel.cli import main
from nc_synthmodel.contract import LIMITS, MAX_CHEMICALS, RecipeValidationError, validate_recipe
from nc_synthmodel.io import read_recipes, write_recipes

from test_reliability_recipe_dataloss import recipe


def _with(path: str, value):
    data = recipe("r1")
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return data


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("chemicals.0.amount_mmol", 5e9, "5e+09 mmol is outside the plausible range [0, 1e+06] mmol"),
        ("conditions.time_min", 1e7, "outside the plausible range [0, 100000] min"),
        ("conditions.reaction_temp_c", 5000.0, "outside the plausible range (-273.15, 2000] °C"),
        ("conditions.heating_rate_c_per_min", 1e5, "°C/min"),
        ("outcome.size_nm", 1e32, "1e+32 nm is outside the plausible range (0, 100000] nm"),
        ("outcome.size_dispersion_pct", 5000.0, "%"),
        ("outcome.n_particles", 10**9, "particles"),
        ("conditions.time_min", "20", "expected a number, not str '20'"),
        ("chemicals.0.amount_mmol", True, "expected a number, not bool"),
        ("outcome.success", "yes", "Input should be a valid boolean"),
        ("outcome.size_nm", float("nan"), "finite number"),
    ],
)
def test_absurd_or_mistyped_recipe_fields_are_named(field, value, message):
    with pytest.raises(RecipeValidationError) as caught:
        validate_recipe(_with(field, value))
    text = str(caught.value)
    assert text.startswith("recipe r1: ") and message in text
    assert field.split(".")[-1] in text


def test_provenance_pixel_size_is_bounded_with_its_unit():
    data = recipe("p")
    data["provenance"] = {"nm_per_px": 1e30}
    with pytest.raises(RecipeValidationError, match=r"provenance.nm_per_px = 1e\+30: 1e\+30 nm/px is outside the plausible range"):
        validate_recipe(data)
    data["provenance"] = {"nm_per_px": 0.25}
    assert validate_recipe(data).provenance.nm_per_px == 0.25


def test_too_many_chemicals_name_the_recipe(tmp_path):
    data = recipe("big")
    data["chemicals"] = [{"name": f"X{i}", "amount_mmol": 1.0} for i in range(MAX_CHEMICALS + 150)]
    with pytest.raises(
        RecipeValidationError, match=rf"recipe big: chemicals = .*{MAX_CHEMICALS + 150} chemicals: a recipe lists at most {MAX_CHEMICALS}"
    ):
        validate_recipe(data)
    # in a file, that row is skipped and named; the rest loads
    path = tmp_path / "r.json"
    write_recipes([recipe("ok")], path)
    document = json.loads(path.read_text())
    document["recipes"].append(data)
    path.write_text(json.dumps(document))
    loaded = read_recipes(path)
    assert [r.id for r in loaded.recipes] == ["ok"] and "recipe big" in str(loaded.errors[0])


def test_limits_keep_every_row_of_the_published_data(gu2025):
    """The ranges are plausible, not tight: all 3,489 + 5,245 published recipes still load."""
    assert LIMITS["amount_mmol"][1] >= 55549.39 and LIMITS["size_nm"][1] >= 5822.44
    for name, count in (("recipes.csv", 3489), ("failed_recipes.csv", 5245)):
        loaded = read_recipes(gu2025 / name)
        assert (len(loaded), len(loaded.errors)) == (count, 0)


@pytest.mark.parametrize(
    "content, suffix",
    [
        ('{"schema": "nc-recipes", "schema_version": "1.0", "recipes": []}', ".json"),
        (
            "ID,Temperature1,Temperature2,Speed,Time,Num,Y1,Y2,Y3,T1,T2,"
            + ",".join(f"{s}1" for s in "ABCDEFGHIJKLM")
            + ","
            + ",".join(f"{s}2" for s in "ABCDEFGHIJKLM")
            + "\n",
            ".csv",
        ),
        ("", ".json"),
    ],
)
def test_predict_on_an_empty_file_is_an_error(tmp_path, capsys, content, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_text(content)
    assert main(["predict", str(path)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(errors) == 1 and errors[0].startswith("nc-synthmodel: error: ") and str(path) in errors[0]
