"""Recipe readers and writers: byte-exact CSV round trips, bad rows, xlsx, atomic appends."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nc_synthmodel.contract import Recipe
from nc_synthmodel.io import append_recipes, read_recipes, read_roles, write_recipes


@pytest.fixture(scope="module")
def roles(gu2025):
    return read_roles(gu2025 / "chemical_abbreviations.xlsx")


@pytest.fixture(scope="module")
def recipes(gu2025, roles):
    return read_recipes(gu2025 / "recipes.csv", roles=roles)


@pytest.mark.parametrize("name, layout, count", [("recipes.csv", "gu", 3489), ("failed_recipes.csv", "gu-interleaved", 5245)])
def test_gu_csv_round_trip_is_byte_exact(gu2025, roles, tmp_path, name, layout, count):
    source = gu2025 / name
    loaded = read_recipes(source, roles=roles)
    assert (len(loaded), len(loaded.errors), loaded.layout) == (count, 0, layout)
    out = write_recipes(loaded.recipes, tmp_path / name, layout=layout)
    assert out.read_bytes() == source.read_bytes()


def test_json_round_trip_keeps_every_field(recipes, tmp_path):
    path = write_recipes(recipes.recipes, tmp_path / "recipes.json")
    again = read_recipes(path)
    assert [r.model_dump() for r in again.recipes] == [r.model_dump() for r in recipes.recipes]
    # and back to the Gu et al. CSV: only the 42 cells the source spelled as 5.00E-06 differ
    csv_again = write_recipes(again.recipes, tmp_path / "again.csv").read_text().splitlines()
    source = tmp_path / "src.csv"
    write_recipes(recipes.recipes, source)
    differing = [a for a, b in zip(csv_again, source.read_text().splitlines()) if a != b]
    assert len(differing) <= 42 and all("e-0" in row for row in differing)


def test_roles_come_from_the_abbreviation_sheets(recipes, roles):
    first = recipes.recipes[0]
    assert first.product.name == "PbSe" and first.product.role == "product"
    by_name = {c.name: c.role for c in first.chemicals}
    assert by_name == {"PbO": "precursor", "Se": "precursor", "ODE": "solvent", "OLA": "ligand", "TOP": "precursor", "OA": "ligand"}
    assert roles.role_of("CsPbBr3-2") == "precursor"  # a product used as a seed
    assert roles.role_of("not-a-chemical") == "other"


def test_failed_recipes_have_no_outcome_numbers(gu2025, roles):
    failed = read_recipes(gu2025 / "failed_recipes.csv", roles=roles)
    assert all(not r.outcome.success for r in failed.recipes)
    assert sum(r.product is None for r in failed.recipes) > 0


HEADER = (
    "ID,Temperature1,Temperature2,Speed,Time,Num,Y1,Y2,Y3,T1,T2,"
    + ",".join(f"{s}1" for s in "ABCDEFGHIJKLM")
    + ","
    + ",".join(f"{s}2" for s in "ABCDEFGHIJKLM")
)


def gu_row(
    rid="1",
    t1="140",
    t2="140",
    speed="0",
    time="5",
    num="1195",
    y1="4.87",
    y2="6.49",
    y3="9",
    flag="1",
    product="PbSe",
    amounts=("5", "22.2"),
    names=("PbO", "OA"),
):
    amounts = list(amounts) + ["0"] * (13 - len(amounts))
    names = list(names) + ["PlaceHolder"] * (13 - len(names))
    return ",".join([rid, t1, t2, speed, time, num, y1, y2, y3, flag, product, *amounts, *names])


BAD_ROWS = {
    "negative amount": (gu_row(rid="2", amounts=("-5", "22.2")), "recipe 2: chemicals.0(PbO).amount_mmol = -5.0"),
    "NaN temperature": (gu_row(rid="3", t2="nan"), "recipe 3: conditions.reaction_temp_c"),
    "unknown shape": (gu_row(rid="4", y3="42"), "recipe 4: Y3 = '42': unknown shape index"),
    "missing product": (gu_row(rid="5", product="PlaceHolder"), "recipe 5: product = None: missing product"),
    "text amount": (gu_row(rid="6", amounts=("five", "1")), "recipe 6: A1 = 'five' is not a number"),
    "placeholder with amount": (gu_row(rid="7", amounts=("5", "1", "3")), "recipe 7: C1 = '3': an empty slot"),
    "product flag": (gu_row(rid="8", flag="2"), "recipe 8: T1 = '2': the product flag must be 1"),
    "short row": ("9,140,140", "row 9: has 3 cells, expected 37"),
    "duplicate chemical": (gu_row(rid="10", names=("OA", "OA")), "recipe 10: chemicals"),
    "fractional count": (gu_row(rid="11", num="300.5"), "recipe 11: Num = '300.5'"),
    "failed with size": (gu_row(rid="12", y3="11", num="-1", y1="4"), "recipe 12: Y1 = '4': a failed recipe"),
    "below absolute zero": (gu_row(rid="13", t1="-500"), "recipe 13: conditions.injection_temp_c = -500.0"),
    "negative size": (gu_row(rid="14", y1="-3"), "recipe 14: outcome.size_nm = -3.0"),
    "negative time": (gu_row(rid="15", time="-1"), "recipe 15: conditions.time_min = -1.0"),
    "infinite heating rate": (gu_row(rid="16", speed="inf"), "recipe 16: conditions.heating_rate_c_per_min"),
}


def test_bad_rows_are_reported_and_good_rows_load(tmp_path):
    lines = [HEADER, gu_row(rid="1")] + [row for row, _ in BAD_ROWS.values()] + [gu_row(rid="99")]
    path = tmp_path / "mixed.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    loaded = read_recipes(path)
    assert [r.id for r in loaded.recipes] == ["1", "99"]
    messages = [str(e) for e in loaded.errors]
    assert len(messages) == len(BAD_ROWS)
    for (kind, (_, expected)), message in zip(BAD_ROWS.items(), messages):
        assert expected in message, (kind, message)
    with pytest.raises(ValueError, match="15 invalid row"):
        loaded.raise_for_errors()


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        ("a,b\n1,2\n", ".csv", "not a Gu et al. recipe CSV"),
        ("", ".csv", "empty file"),
        ("{not json", ".json", "not valid JSON"),
        ('{"schema": "nc-recipes", "schema_version": "2.0", "recipes": []}', ".json", "schema_version '2.0' is not supported"),
        ('{"recipes": []}', ".json", "not an nc-recipes JSON document"),
        ("whatever", ".txt", "cannot tell the recipe format"),
    ],
)
def test_unreadable_files_say_why(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_recipes(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_recipes(tmp_path / "nope.csv")


def test_raw_xlsx_reader_keeps_doi_and_reports_bad_rows(gu2025, roles, tmp_path):
    raw = read_recipes(gu2025 / "raw_recipe_dataset.xlsx", roles=roles)
    assert len(raw) + len(raw.errors) == 3508
    assert any("D/nm = 'bs' is not a number" in str(e) for e in raw.errors)
    first = raw.recipes[0]
    assert first.provenance.doi == "self-synthesis" and first.provenance.size_from_segmentation is True
    assert first.outcome.size_nm == pytest.approx(4.87) and first.outcome.shape == "sphere"
    dois = {r.provenance.doi for r in raw.recipes}
    assert len(dois) > 100
    heated = [r for r in raw.recipes if r.conditions.heating_rate_c_per_min > 0]
    assert heated, "heating rates are read"
    again = read_recipes(write_recipes(raw.recipes[:50], tmp_path / "raw.xlsx"), roles=roles)
    assert [r.model_dump(exclude={"id"}) for r in again.recipes] == [r.model_dump(exclude={"id"}) for r in raw.recipes[:50]]


def test_append_adds_rows_and_keeps_existing_bytes(gu2025, recipes, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes((gu2025 / "recipes.csv").read_bytes())
    new = recipes.recipes[0].model_copy(update={"id": "100000"})
    append_recipes([new], path)
    data = path.read_bytes()
    assert data.startswith((gu2025 / "recipes.csv").read_bytes())
    assert data.endswith(b"\r\n") and data.count(b"\r\n") == 3491
    with pytest.raises(ValueError, match="already present: 100000"):
        append_recipes([new], path)


def test_append_to_json_and_new_file(recipes, tmp_path):
    path = tmp_path / "mine.json"
    append_recipes(recipes.recipes[:2], path)
    append_recipes(recipes.recipes[2:3], path)
    assert [r.id for r in read_recipes(path).recipes] == ["1", "2", "3"]


def test_killed_append_leaves_file_intact(recipes, tmp_path):
    path = tmp_path / "data.json"
    write_recipes(recipes.recipes[:20], path)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        from nc_synthmodel.io import append_recipes, read_recipes
        src = read_recipes({str(path)!r}).recipes
        new = [r.model_copy(update={{"id": r.id + "-new"}}) for r in src]
        # die the hard way between writing the temporary file and renaming it
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        append_recipes(new, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert [r.id for r in read_recipes(path).recipes] == [r.id for r in recipes.recipes[:20]]
    leftovers = [p for p in os.listdir(tmp_path) if p not in ("data.json", ".data.json.lock")]
    assert all(p.startswith(".data.") and ".tmp" in p for p in leftovers)  # only our hidden temporary


def test_writer_refuses_recipes_that_do_not_fit(recipes, tmp_path):
    many = [{"name": f"X{i}", "amount_mmol": 1.0} for i in range(14)]
    big = Recipe.model_validate({**recipes.recipes[0].model_dump(), "chemicals": many})
    with pytest.raises(ValueError, match="14 chemicals do not fit the 13 CSV slots"):
        write_recipes([big], tmp_path / "big.csv")
    assert not (tmp_path / "big.csv").exists()
