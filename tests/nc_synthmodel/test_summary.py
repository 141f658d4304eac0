"""`nc-synthmodel dataset summary` on the Gu et al. data."""

import json

from nc_synthmodel.cli import main
from nc_synthmodel.dataset import read_descriptor_names, summarize
from nc_synthmodel.io import read_recipes, read_roles


def test_summary_numbers_on_the_real_dataset(gu2025):
    recipes = read_recipes(gu2025 / "recipes.csv", roles=read_roles(gu2025 / "chemical_abbreviations.xlsx"))
    summary = summarize(recipes, read_descriptor_names(gu2025 / "unimol_descriptors.npz"))
    assert summary.n_recipes == 3489 and summary.n_invalid_rows == 0
    assert summary.n_solid == 720 and summary.n_solid_le_20nm == 617
    assert summary.n_products == 350 and summary.top_products[0] == ("PbSe", 386)
    assert summary.chemicals_by_role["product"] == 350 and summary.chemicals_by_role["other"] == 0
    assert sum(summary.shape_histogram.values()) == 3489 and summary.shape_histogram["sphere"] == 1605
    assert summary.size_nm_min == 0.9
    assert len(summary.missing_descriptors) == 15 and "Cs3FeCl5" in summary.missing_descriptors


def test_cli_prints_summary(gu2025, capsys):
    code = main(["dataset", "summary", str(gu2025 / "recipes.csv"), "--descriptors", str(gu2025 / "unimol_descriptors.npz")])
    out = capsys.readouterr().out
    assert code == 0
    assert "recipes              3489" in out and "rows with N >= 300    720  (of these, size <= 20 nm: 617)" in out
    assert "chemicals missing from the descriptor table (15)" in out


def test_cli_json_and_errors(gu2025, tmp_path, capsys):
    assert main(["dataset", "summary", str(gu2025 / "failed_recipes.csv"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_recipes"] == 5245 and data["n_failed"] == 5245
    assert main(["dataset", "summary", str(tmp_path / "missing.csv")]) == 2
    assert "recipe file not found" in capsys.readouterr().err
