"""The raw recipe workbook of Gu et al. (``raw_recipe_dataset.xlsx``): read and write."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..contract import Recipe, RecipeValidationError, validate_recipe
from .common import RecipeSet, RowError, _read_workbook
from .roles import ChemicalRoles, _reactant_role

_XLSX_SLOTS = 10
_XLSX_COLUMNS = (
    [
        "cationic precursor",
        "anionic precursor",
        "Nanocrystal Composition",
        "injection temperature/℃",
        "reaction temperature/℃",
        "reaction time/min",
    ]
    + [f"{kind}{'' if i == 0 else f'.{i}'}" for i in range(_XLSX_SLOTS) for kind in ("additive amount/mmol", "reactants")]
    + ["D/nm", "Size distribution/%", "shape", "Number of statistics", "DOI", "Using Segmentation Models/Y or N", "heating rate/℃ min-1"]
)
_XLSX_UNKNOWN = {"?", "？", ""}


def _xlsx_value(value: Any, column: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in _XLSX_UNKNOWN:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{column} = {value!r} is not a number") from None
    return float(value)


def _xlsx_row_to_dict(row: Mapping[str, Any], row_number: int, roles: ChemicalRoles | None) -> dict:
    chemicals = []
    for i in range(_XLSX_SLOTS):
        suffix = "" if i == 0 else f".{i}"
        name = row.get(f"reactants{suffix}")
        amount = _xlsx_value(row.get(f"additive amount/mmol{suffix}"), f"additive amount/mmol{suffix}")
        if name is None or (isinstance(name, float) and math.isnan(name)) or not str(name).strip():
            continue
        name = str(name).strip()
        chemicals.append({"name": name, "amount_mmol": amount, "role": _reactant_role(name, roles)})
    shape = row.get("shape")
    shape = None if shape is None or (isinstance(shape, float) and math.isnan(shape)) else str(shape).strip()
    n = _xlsx_value(row.get("Number of statistics"), "Number of statistics")
    doi = row.get("DOI")
    segmented = row.get("Using Segmentation Models/Y or N")
    segmented = str(segmented).strip().upper() if isinstance(segmented, str) else None
    product = row.get("Nanocrystal Composition")
    return {
        "id": f"xlsx-{row_number}",
        "product": None if not isinstance(product, str) or not product.strip() else {"name": product.strip(), "role": "product"},
        "chemicals": chemicals,
        "conditions": {
            "injection_temp_c": _xlsx_value(row.get("injection temperature/℃"), "injection temperature/℃"),
            "reaction_temp_c": _xlsx_value(row.get("reaction temperature/℃"), "reaction temperature/℃"),
            "heating_rate_c_per_min": _xlsx_value(row.get("heating rate/℃ min-1"), "heating rate/℃ min-1") or 0.0,
            "time_min": _xlsx_value(row.get("reaction time/min"), "reaction time/min"),
        },
        "outcome": {
            "size_nm": _xlsx_value(row.get("D/nm"), "D/nm"),
            "size_dispersion_pct": _xlsx_value(row.get("Size distribution/%"), "Size distribution/%"),
            "n_particles": None if n is None else n,
            "shape": shape,
            "success": True,
        },
        "provenance": {
            "doi": doi.strip() if isinstance(doi, str) and doi.strip() else None,
            "size_from_segmentation": {"Y": True, "N": False}.get(segmented) if segmented else None,
        },
    }


def _read_xlsx(path: Path, roles: ChemicalRoles | None) -> RecipeSet:
    frame = _read_workbook(path, sheet_name=0, dtype=object)
    missing = [c for c in _XLSX_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not the raw recipe workbook layout; missing columns {missing}")
    recipes, errors = [], []
    for index, row in enumerate(frame.to_dict("records")):
        row_number = index + 2  # spreadsheet row (row 1 is the header)
        recipe_id = f"xlsx-{row_number}"
        try:
            recipes.append(validate_recipe(_xlsx_row_to_dict(row, row_number, roles)))
        except RecipeValidationError as exc:
            errors.append(RowError(index + 1, recipe_id, str(exc), exc.problems))
        except ValueError as exc:
            errors.append(RowError(index + 1, recipe_id, f"recipe {recipe_id}: {exc}"))
    return RecipeSet(recipes, errors, "xlsx", path)


def _xlsx_bytes(recipes: Iterable[Recipe]) -> bytes:
    import pandas as pd

    rows = []
    for recipe in recipes:
        if len(recipe.chemicals) > _XLSX_SLOTS:
            raise ValueError(f"recipe {recipe.id}: {len(recipe.chemicals)} chemicals do not fit the {_XLSX_SLOTS} xlsx slots")
        c, o, p = recipe.conditions, recipe.outcome, recipe.provenance
        row: dict[str, Any] = dict.fromkeys(_XLSX_COLUMNS)
        row.update(
            {
                "Nanocrystal Composition": recipe.product.name if recipe.product else None,
                "injection temperature/℃": c.injection_temp_c,
                "reaction temperature/℃": c.reaction_temp_c,
                "reaction time/min": c.time_min,
                "heating rate/℃ min-1": c.heating_rate_c_per_min,
                "D/nm": "?" if o is None or o.size_nm is None else o.size_nm,
                "Size distribution/%": "?" if o is None or o.size_dispersion_pct is None else o.size_dispersion_pct,
                "shape": None if o is None else o.shape,
                "Number of statistics": "?" if o is None or o.n_particles is None else o.n_particles,
                "DOI": p.doi,
                "Using Segmentation Models/Y or N": None if p.size_from_segmentation is None else "YN"[not p.size_from_segmentation],
            }
        )
        for i, chemical in enumerate(recipe.chemicals):
            suffix = "" if i == 0 else f".{i}"
            row[f"reactants{suffix}"] = chemical.name
            row[f"additive amount/mmol{suffix}"] = chemical.amount_mmol
        rows.append(row)
    buffer = io.BytesIO()
    pd.DataFrame(rows, columns=_XLSX_COLUMNS).to_excel(buffer, index=False)
    return buffer.getvalue()
