"""The Gu et al. CSV layouts: ``gu`` (``recipes.csv``) and ``gu-interleaved`` (``failed_recipes.csv``).

``gu``: ``ID, Temperature1..Y3, T1, T2, A1..M1`` amounts then ``A2..M2`` names;
``gu-interleaved``: same, with ``A1, A2, B1, B2, …`` pairs.  ``CSV → recipes → CSV`` reproduces
every byte (numbers in Python's shortest form; cells a source spelled differently keep their spelling).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..contract import PLACEHOLDER, SHAPE_CLASSES, Recipe, RecipeValidationError, validate_recipe
from .common import Layout, RecipeSet, RowError, _format_number, _parse_number
from .roles import ChemicalRoles, _reactant_role

__all__ = ["GU_SLOTS"]

#: The Gu et al. CSV holds up to 13 chemicals in slots A..M.
GU_SLOTS = "ABCDEFGHIJKLM"
_GU_HEAD = ["ID", "Temperature1", "Temperature2", "Speed", "Time", "Num", "Y1", "Y2", "Y3", "T1", "T2"]
_GU_COLUMNS = _GU_HEAD + [f"{s}1" for s in GU_SLOTS] + [f"{s}2" for s in GU_SLOTS]
_GU_NUMERIC_COLUMNS = [c for c in _GU_HEAD if c not in ("ID", "T2")] + [f"{s}1" for s in GU_SLOTS]
_GU_INTERLEAVED_COLUMNS = _GU_HEAD + [f"{s}{k}" for s in GU_SLOTS for k in (1, 2)]
_FAILED_SHAPE_INDEX = len(SHAPE_CLASSES)  # Y3 = 11 marks "no product" in failed_recipes.csv
_UNKNOWN = -1  # Num / Y1 / Y2 = -1: not measured


def _gu_row_to_dict(cells: Mapping[str, str], roles: ChemicalRoles | None) -> tuple[dict, dict[str, str]]:
    """One CSV row → recipe mapping (validated later) + the cells with a non-canonical spelling."""
    spellings: dict[str, str] = {}
    numbers: dict[str, float] = {}
    for column in _GU_NUMERIC_COLUMNS:
        text = cells[column].strip()
        numbers[column] = _parse_number(text, column)
        if _format_number(numbers[column]) != text:
            spellings[column] = text
    if numbers["T1"] != 1:
        raise ValueError(f"T1 = {cells['T1']!r}: the product flag must be 1")
    chemicals = []
    for slot in GU_SLOTS:
        name = cells[f"{slot}2"].strip()
        amount = numbers[f"{slot}1"]
        if name == PLACEHOLDER:
            if amount != 0:
                raise ValueError(f"{slot}1 = {cells[f'{slot}1']!r}: an empty slot ({PLACEHOLDER}) must have amount 0")
            continue
        chemicals.append({"name": name, "amount_mmol": amount, "role": _reactant_role(name, roles)})
    shape_index = numbers["Y3"]
    success = shape_index != _FAILED_SHAPE_INDEX
    if success:
        if not shape_index.is_integer() or not 0 <= shape_index < len(SHAPE_CLASSES):
            raise ValueError(f"Y3 = {cells['Y3']!r}: unknown shape index (0..{len(SHAPE_CLASSES) - 1})")
        outcome = {
            "size_nm": None if numbers["Y1"] == _UNKNOWN else numbers["Y1"],
            "size_dispersion_pct": None if numbers["Y2"] == _UNKNOWN else numbers["Y2"],
            "n_particles": None if numbers["Num"] == _UNKNOWN else numbers["Num"],
            "shape": SHAPE_CLASSES[int(shape_index)],
            "success": True,
        }
    else:
        for column in ("Num", "Y1", "Y2"):
            if numbers[column] != _UNKNOWN:
                raise ValueError(f"{column} = {cells[column]!r}: a failed recipe (Y3 = 11) has no {column}")
        outcome = {"success": False}
    if outcome.get("n_particles") is not None and not float(outcome["n_particles"]).is_integer():
        raise ValueError(f"Num = {cells['Num']!r}: a particle count is a whole number")
    product = cells["T2"].strip()
    data = {
        "id": cells["ID"].strip(),
        "product": None if product == PLACEHOLDER else {"name": product, "role": "product"},
        "chemicals": chemicals,
        "conditions": {
            "injection_temp_c": numbers["Temperature1"],
            "reaction_temp_c": numbers["Temperature2"],
            "heating_rate_c_per_min": numbers["Speed"],
            "time_min": numbers["Time"],
        },
        "outcome": outcome,
    }
    return data, spellings


def _read_gu_csv(path: Path, roles: ChemicalRoles | None) -> RecipeSet:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected a header row") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        if header == _GU_COLUMNS:
            layout: Layout = "gu"
        elif header == _GU_INTERLEAVED_COLUMNS:
            layout = "gu-interleaved"
        else:
            expected = set(_GU_COLUMNS)
            missing = sorted(expected - set(header))
            extra = sorted(set(header) - expected)
            raise ValueError(
                f"{path}: not a Gu et al. recipe CSV (missing columns {missing}, unexpected {extra}); "
                "expected the layout of recipes.csv or failed_recipes.csv"
            )
        recipes, errors = [], []
        for row_number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            recipe_id = row[0].strip() if row else None
            if len(row) != len(header):
                errors.append(RowError(row_number, recipe_id, f"has {len(row)} cells, expected {len(header)}"))
                continue
            cells = dict(zip(header, row))
            try:
                data, spellings = _gu_row_to_dict(cells, roles)
                recipe = validate_recipe(data)
            except RecipeValidationError as exc:
                errors.append(RowError(row_number, recipe_id, str(exc), exc.problems))
                continue
            except ValueError as exc:
                errors.append(RowError(row_number, recipe_id, f"recipe {recipe_id}: {exc}"))
                continue
            recipe._source_spellings = spellings
            recipes.append(recipe)
    return RecipeSet(recipes, errors, layout, path)


def _recipe_to_gu_cells(recipe: Recipe) -> dict[str, str]:
    if len(recipe.chemicals) > len(GU_SLOTS):
        raise ValueError(f"recipe {recipe.id}: {len(recipe.chemicals)} chemicals do not fit the {len(GU_SLOTS)} CSV slots")
    c, o = recipe.conditions, recipe.outcome
    if o is None:
        raise ValueError(f"recipe {recipe.id}: the Gu et al. CSV layout needs an outcome")
    numbers: dict[str, float] = {
        "Temperature1": c.injection_temp_c,
        "Temperature2": c.reaction_temp_c,
        "Speed": c.heating_rate_c_per_min,
        "Time": c.time_min,
        "T1": 1,
    }
    if o.success:
        if o.shape is None:
            raise ValueError(f"recipe {recipe.id}: the Gu et al. CSV layout needs a shape for a successful recipe")
        numbers.update(
            Num=_UNKNOWN if o.n_particles is None else o.n_particles,
            Y1=_UNKNOWN if o.size_nm is None else o.size_nm,
            Y2=_UNKNOWN if o.size_dispersion_pct is None else o.size_dispersion_pct,
            Y3=SHAPE_CLASSES.index(o.shape),
        )
    else:
        numbers.update(Num=_UNKNOWN, Y1=_UNKNOWN, Y2=_UNKNOWN, Y3=_FAILED_SHAPE_INDEX)
    slots = list(recipe.chemicals) + [None] * (len(GU_SLOTS) - len(recipe.chemicals))
    names: dict[str, str] = {}
    for slot, chemical in zip(GU_SLOTS, slots):
        numbers[f"{slot}1"] = 0 if chemical is None else chemical.amount_mmol
        names[f"{slot}2"] = PLACEHOLDER if chemical is None else chemical.name
    spellings = recipe._source_spellings
    cells = {"ID": recipe.id, "T2": recipe.product.name if recipe.product else PLACEHOLDER, **names}
    for column, value in numbers.items():
        spelled = spellings.get(column)
        if spelled is not None and float(spelled) == float(value):
            cells[column] = spelled
        else:
            cells[column] = _format_number(value)
    return cells


def _gu_csv_text(recipes: Iterable[Recipe], layout: Layout, header: bool = True) -> str:
    columns = _GU_COLUMNS if layout == "gu" else _GU_INTERLEAVED_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for recipe in recipes:
        cells = _recipe_to_gu_cells(recipe)
        writer.writerow([cells[c] for c in columns])
    return buffer.getvalue()
