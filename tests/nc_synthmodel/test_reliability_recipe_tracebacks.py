"""Raw tracebacks → one line naming the input: ``nc-synthmodel`` on bad recipes, files and model folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from nc_synthmodel.cli import main
from nc_synthmodel.io import read_recipes, write_recipes
from nc_synthmodel.models import ModelFormatError, SynthesisTransformer

from test_reliability_recipe_dataloss import recipe


def pbse(rid: str, extra: list[dict] | None = None) -> dict:
    """Recipe 62 of the published data (PbSe from PbO, Se, ODE, OLA, TOP, OA), plus ``extra`` chemicals."""
    data = recipe(rid)
    data["chemicals"] = [
        {"name": n, "amount_mmol": a, "role": "other"}
        for n, a in (("PbO", 5.0), ("Se", 5.0), ("ODE", 46.875), ("OLA", 5.015), ("TOP", 5.605), ("OA", 44.459))
    ] + (extra or [])
    data["conditions"] = {"injection_temp_c": 160.0, "reaction_temp_c": 160.0, "time_min": 2.0}
    return data


def _one_error_line(err: str, *names: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("nc-synthmodel: error:")]
    assert len(lines) == 1 and all(name in lines[0] for name in names), err


def test_predict_isolates_recipes_it_cannot_encode(tmp_path, capsys):
    path = tmp_path / "mine.json"
    unknown = pbse("unknown", [{"name": "NotAChemical42", "amount_mmol": 1.0}])
    crowded = pbse("crowded", [{"name": f"C{i}H{2 * i + 2}", "amount_mmol": 1.0} for i in range(1, 31)])
    write_recipes([pbse("good-1"), unknown, crowded, pbse("good-2")], path)
    assert main(["predict", str(path)]) == 1  # some recipes skipped
    captured = capsys.readouterr()
    predicted = [line.split(":")[0] for line in captured.out.splitlines()]
    assert predicted == ["good-1", "good-2"]
    assert "Traceback" not in captured.err
    assert "skipped: recipe unknown:" in captured.err and "NotAChemical42" in captured.err
    assert "skipped: recipe crowded:" in captured.err and "max_chemicals" in captured.err


def test_corrupt_workbook_and_binary_json_name_the_file(tmp_path, capsys):
    workbook = tmp_path / "recipes.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + bytes(200))
    assert main(["predict", str(workbook)]) == 2
    _one_error_line(capsys.readouterr().err, str(workbook), "corrupt or not an .xlsx file")
    binary = tmp_path / "recipes.json"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["predict", str(binary)]) == 2
    _one_error_line(capsys.readouterr().err, str(binary), "not a text file")
    csv = tmp_path / "recipes.csv"
    csv.write_bytes(b"\xff\xfe\x00" * 50)
    with pytest.raises(ValueError, match="recipes.csv: not a text file"):
        read_recipes(csv)


@pytest.fixture(scope="module")
def tiny_transformer(tmp_path_factory):
    """A saved (barely trained) transformer: the shipped default model is a forest."""
    import numpy as np

    from nc_synthmodel.contract import validate_recipe
    from nc_synthmodel.descriptors import DescriptorTable

    names = ["PbSe", "PbO", "Se", "ODE", "OLA", "TOP", "OA"]
    table = DescriptorTable(names, np.random.default_rng(0).normal(size=(len(names), 4)).astype(np.float32))
    recipes = [validate_recipe({**pbse(str(i)), "outcome": {"size_nm": 5.0 + i, "shape": "cube"}}) for i in range(8)]
    model = SynthesisTransformer(
        table,
        d_model=8,
        n_layers=1,
        n_heads=2,
        dim_feedforward=8,
        augment=False,
        pretrain_epochs=0,
        finetune_epochs=1,
        validation_fraction=0.0,
    ).fit(recipes)
    return model.save(tmp_path_factory.mktemp("tiny") / "model")


def _model_copy(tmp_path, source, **params):
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    config = json.loads((folder / "model.json").read_text())
    config["params"].update(params)
    (folder / "model.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "params, message",
    [
        ({"d_model": 65536}, "params.d_model = 65536; expected a whole number 1..4,096"),
        ({"d_model": 4096, "n_layers": 64, "dim_feedforward": 16384}, "parameters"),
        ({"n_layers": "4"}, "params.n_layers = '4'"),
        ({"n_heads": 3}, "not divisible by params.n_heads"),
        ({"surprise": 1}, "unknown parameter(s) ['surprise']"),
    ],
)
def test_absurd_model_configs_are_refused_before_the_network_is_built(tmp_path, capsys, params, message, tiny_transformer):
    folder = _model_copy(tmp_path, tiny_transformer, **params)
    with pytest.raises(ModelFormatError) as caught:
        SynthesisTransformer.load(folder)
    assert "model.json" in str(caught.value) and message in str(caught.value)
    data = tmp_path / "r.json"
    write_recipes([pbse("x")], data)
    assert main(["predict", str(data), "--model", str(folder)]) == 2
    _one_error_line(capsys.readouterr().err, "model.json")


def test_unwritable_output_is_found_before_the_work(tmp_path, capsys):
    data = tmp_path / "r.json"
    write_recipes([recipe("1")], data)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["cv", str(data), "--model", "RF", "--predictions", str(blocker / "pred.csv")]) == 2
    _one_error_line(capsys.readouterr().err, str(blocker), "existing file")


def test_the_real_command_prints_one_line_and_no_traceback(tmp_path):
    binary = tmp_path / "recipes.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    result = subprocess.run(
        [sys.executable, "-m", "nc_synthmodel.cli", "predict", str(binary)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and str(binary) in result.stderr
