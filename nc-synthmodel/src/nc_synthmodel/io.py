"""Read and write recipes: schema-versioned JSON, the Gu et al. CSV layouts and raw xlsx sheet.

Every reader returns a :class:`RecipeSet`: the recipes that passed validation plus one
:class:`RowError` per row that did not, so a file with a few bad rows still loads.
Every writer is atomic (temporary file in the same folder, then ``os.replace``).

Gu et al. CSV layouts (``../shared/datasets/gu2025``):

* ``gu`` (``recipes.csv``): ``ID, Temperature1..Y3, T1, T2, A1..M1`` amounts then ``A2..M2`` names;
* ``gu-interleaved`` (``failed_recipes.csv``): same, with ``A1, A2, B1, B2, …`` pairs.

``CSV → recipes → CSV`` reproduces every byte: numbers are written in Python's shortest
form, and the few cells a source spelled differently (``5.00E-06``) keep their spelling
while their value is unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .contract import (
    PLACEHOLDER,
    SCHEMA_VERSION,
    SHAPE_CLASSES,
    FieldProblem,
    Recipe,
    RecipeValidationError,
    validate_recipe,
)
from .files import atomic_path, atomic_write_bytes, atomic_write_text, locked

logger = logging.getLogger(__name__)

__all__ = [
    "RecipeSet",
    "RowError",
    "read_recipes",
    "write_recipes",
    "append_recipes",
    "read_roles",
    "ChemicalRoles",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "GU_SLOTS",
]

#: The Gu et al. CSV holds up to 13 chemicals in slots A..M.
GU_SLOTS = "ABCDEFGHIJKLM"
_GU_HEAD = ["ID", "Temperature1", "Temperature2", "Speed", "Time", "Num", "Y1", "Y2", "Y3", "T1", "T2"]
_GU_COLUMNS = _GU_HEAD + [f"{s}1" for s in GU_SLOTS] + [f"{s}2" for s in GU_SLOTS]
_GU_NUMERIC_COLUMNS = [c for c in _GU_HEAD if c not in ("ID", "T2")] + [f"{s}1" for s in GU_SLOTS]
_GU_INTERLEAVED_COLUMNS = _GU_HEAD + [f"{s}{k}" for s in GU_SLOTS for k in (1, 2)]
_FAILED_SHAPE_INDEX = len(SHAPE_CLASSES)  # Y3 = 11 marks "no product" in failed_recipes.csv
_UNKNOWN = -1  # Num / Y1 / Y2 = -1: not measured

Layout = Literal["json", "gu", "gu-interleaved", "xlsx"]


@dataclass
class RowError:
    """A row that could not be loaded: where it is, which recipe, and why."""

    row: int  # 1-based data row (the header is row 0)
    recipe_id: str | None
    message: str
    problems: list[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass
class RecipeSet:
    """Recipes loaded from one file, with the rows that failed validation."""

    recipes: list[Recipe]
    errors: list[RowError] = field(default_factory=list)
    layout: Layout | None = None
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.recipes)

    def __iter__(self):
        return iter(self.recipes)

    def raise_for_errors(self) -> RecipeSet:
        """Raise ``ValueError`` listing the bad rows, if there are any."""
        if self.errors:
            lines = "\n".join(f"  {e}" for e in self.errors[:20])
            more = f"\n  … and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise ValueError(f"{self.path or 'recipes'}: {len(self.errors)} invalid row(s):\n{lines}{more}")
        return self


# ----------------------------------------------------------------------------------------
# roles


@dataclass(frozen=True)
class ChemicalRoles:
    """Roles of chemical names, read from ``chemical_abbreviations.xlsx`` by :func:`read_roles`."""

    reactants: Mapping[str, str]
    products: frozenset[str] = frozenset()

    def role_of(self, name: str) -> str:
        """Role of a reactant name; ``other`` when no sheet lists it.

        A reactant listed only on the product sheet (a nanocrystal used as a seed or
        reagent, e.g. CsPbBr3-2) is a precursor.
        """
        if name in self.reactants:
            return self.reactants[name]
        return "precursor" if name in self.products else "other"


def read_roles(path: str | os.PathLike) -> ChemicalRoles:
    """Read chemical roles from ``chemical_abbreviations.xlsx``.

    Sheets: ``qd`` → products, ``precursor``, ``ligand``, ``solvent``.  A name on several
    reactant sheets takes the first of precursor, ligand, solvent (TOP, on the precursor
    and ligand sheets, is a precursor).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"chemical abbreviation workbook not found: {path}")
    sheets = _read_workbook(path, sheet_name=None, dtype=str)
    columns = {"qd": "formula", "precursor": "formula/abbreviations", "ligand": "abbreviations", "solvent": "abbreviations"}
    for sheet, column in columns.items():
        if sheet not in sheets:
            raise ValueError(f"{path}: missing sheet {sheet!r}; expected qd, precursor, ligand, solvent")
        if column not in sheets[sheet].columns:
            raise ValueError(f"{path}: sheet {sheet!r} has no column {column!r}")
    reactants: dict[str, str] = {}
    for sheet in ("solvent", "ligand", "precursor"):  # later sheets win
        for name in sheets[sheet][columns[sheet]].dropna():
            reactants[str(name).strip()] = sheet
    products = frozenset(str(n).strip() for n in sheets["qd"][columns["qd"]].dropna())
    return ChemicalRoles(reactants, products)


def _reactant_role(name: str, roles: ChemicalRoles | None) -> str:
    return "other" if roles is None else roles.role_of(name)


# ----------------------------------------------------------------------------------------
# numbers


def _format_number(value: float | int) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _parse_number(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} = {text!r} is not a number") from None
    return value


# ----------------------------------------------------------------------------------------
# Gu et al. CSV


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


# ----------------------------------------------------------------------------------------
# JSON


def _read_json(path: Path) -> RecipeSet:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != "nc-recipes":
        raise ValueError(f"{path}: not an nc-recipes JSON document (missing \"schema\": \"nc-recipes\")")
    version = str(document.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ValueError(f"{path}: schema_version {version!r} is not supported (this library reads {SCHEMA_VERSION.split('.')[0]}.x)")
    items = document.get("recipes")
    if not isinstance(items, list):
        raise ValueError(f"{path}: \"recipes\" must be a list")
    recipes, errors = [], []
    for row, item in enumerate(items, start=1):
        recipe_id = str(item.get("id")) if isinstance(item, dict) and "id" in item else None
        try:
            if not isinstance(item, dict):
                raise ValueError(f"entry {row} is a {type(item).__name__}, not an object")
            recipes.append(validate_recipe(item))
        except RecipeValidationError as exc:
            errors.append(RowError(row, recipe_id, str(exc), exc.problems))
        except ValueError as exc:
            errors.append(RowError(row, recipe_id, str(exc)))
    return RecipeSet(recipes, errors, "json", path)


def _json_text(recipes: Iterable[Recipe]) -> str:
    document = {
        "schema": "nc-recipes",
        "schema_version": SCHEMA_VERSION,
        "recipes": [r.model_dump(mode="json") for r in recipes],
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------------------
# raw xlsx sheet (raw_recipe_dataset.xlsx)

_XLSX_SLOTS = 10
_XLSX_COLUMNS = (
    ["cationic precursor", "anionic precursor", "Nanocrystal Composition", "injection temperature/℃",
     "reaction temperature/℃", "reaction time/min"]
    + [f"{kind}{'' if i == 0 else f'.{i}'}" for i in range(_XLSX_SLOTS) for kind in ("additive amount/mmol", "reactants")]
    + ["D/nm", "Size distribution/%", "shape", "Number of statistics", "DOI", "Using Segmentation Models/Y or N",
       "heating rate/℃ min-1"]
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


def _read_workbook(path: Path, **options):
    """``pandas.read_excel`` with errors that name the file (a corrupt workbook raises zip/XML errors)."""
    import pandas as pd

    try:
        return pd.read_excel(path, **options)
    except (ImportError, FileNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl/zipfile raise many types on a bad workbook
        raise ValueError(
            f"{path}: cannot read the workbook ({type(exc).__name__}: {exc}); the file is corrupt or not an .xlsx file"
        ) from None


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
        row.update({
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
        })
        for i, chemical in enumerate(recipe.chemicals):
            suffix = "" if i == 0 else f".{i}"
            row[f"reactants{suffix}"] = chemical.name
            row[f"additive amount/mmol{suffix}"] = chemical.amount_mmol
        rows.append(row)
    buffer = io.BytesIO()
    pd.DataFrame(rows, columns=_XLSX_COLUMNS).to_excel(buffer, index=False)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------
# public API


def _layout_of(path: Path, layout: Layout | None) -> Layout:
    if layout is not None:
        return layout
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".csv":
        return "gu"
    raise ValueError(f"{path}: cannot tell the recipe format from the extension {suffix!r} (use .json, .csv or .xlsx)")


def read_recipes(path: str | os.PathLike, *, roles: ChemicalRoles | None = None) -> RecipeSet:
    """Read recipes from JSON, a Gu et al. CSV (either layout) or the raw xlsx workbook.

    ``roles`` (from :func:`read_roles`) assigns each reactant its role; names it does not
    list are ``other``.  Invalid rows are reported in ``RecipeSet.errors``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe file not found: {path}")
    layout = _layout_of(path, None)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes); expected recipes ({layout})")
    try:
        return _read_any(path, layout, roles)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file (byte {exc.start} is not UTF-8); expected recipes ({layout})") from None


def _read_any(path: Path, layout: Layout, roles: ChemicalRoles | None) -> RecipeSet:
    if layout == "json":
        result = _read_json(path)
        if roles is not None:
            for recipe in result.recipes:
                for chemical in recipe.chemicals:
                    if chemical.role == "other":
                        chemical.role = roles.role_of(chemical.name)  # type: ignore[assignment]
        return result
    if layout == "xlsx":
        return _read_xlsx(path, roles)
    return _read_gu_csv(path, roles)


def _encode(recipes: list[Recipe], layout: Layout) -> bytes:
    if layout == "json":
        return _json_text(recipes).encode("utf-8")
    if layout == "xlsx":
        return _xlsx_bytes(recipes)
    return _gu_csv_text(recipes, layout).encode("utf-8")


def write_recipes(recipes: Iterable[Recipe], path: str | os.PathLike, *, layout: Layout | None = None) -> Path:
    """Write recipes atomically; the format follows ``layout`` or the file extension.

    ``layout="gu-interleaved"`` writes the column order of ``failed_recipes.csv``.  The
    write holds the file's lock (:func:`nc_synthmodel.files.locked`), so it never interleaves
    with an :func:`append_recipes` of another process.
    """
    path = Path(path)
    recipes = [validate_recipe(r) for r in recipes]
    data = _encode(recipes, _layout_of(path, layout))
    with locked(path):
        atomic_write_bytes(path, data)
    return path


Duplicates = Literal["error", "skip"]


def _new_recipes(new: list[Recipe], ids: set[str], path: Path, duplicates: Duplicates) -> list[Recipe]:
    """``new`` without IDs already in the file (``duplicates="skip"``), else an error naming them."""
    if duplicates not in ("error", "skip"):
        raise ValueError(f"duplicates must be 'error' or 'skip', not {duplicates!r}")
    seen: set[str] = set()
    repeated = sorted({r.id for r in new if r.id in seen or seen.add(r.id)})
    if repeated:
        raise ValueError(f"{path}: the recipes to append repeat the ID(s) {', '.join(repeated[:10])}")
    clash = [r.id for r in new if r.id in ids]
    if clash and duplicates == "error":
        raise ValueError(
            f"{path}: recipe ID(s) already present: {', '.join(clash[:10])}"
            f"{' …' if len(clash) > 10 else ''}; pass duplicates='skip' to append only the new IDs"
        )
    if clash:
        logger.info("%s: skipped %d recipe(s) already present: %s", path, len(clash), ", ".join(clash[:10]))
    return [r for r in new if r.id not in ids]


def append_recipes(recipes: Iterable[Recipe], path: str | os.PathLike, *, duplicates: Duplicates = "error") -> Path:
    """Append recipes to a dataset file atomically, under an inter-process lock.

    The read-modify-write holds the file's lock (:func:`nc_synthmodel.files.locked`), so
    processes appending to one file at once all keep their recipes; the write is atomic (a
    crash leaves the old file intact, and a temporary file left by a killed writer is removed
    by the next write).  The file's own layout is kept; a new file is created in the layout its
    extension implies.

    Parameters
    ----------
    recipes : iterable of Recipe (or mappings)
    path : the dataset file (.json, .csv, .xlsx)
    duplicates : {"error", "skip"}
        A recipe whose ID is already in the file: ``"error"`` (default) refuses the whole
        append and names the IDs; ``"skip"`` appends only the recipes with new IDs.
    """
    path = Path(path)
    new = [validate_recipe(r) for r in recipes]
    with locked(path):
        if not path.exists():
            new = _new_recipes(new, set(), path, duplicates)
            atomic_write_bytes(path, _encode(new, _layout_of(path, None)))
            return path
        existing = read_recipes(path).raise_for_errors()
        new = _new_recipes(new, {r.id for r in existing.recipes}, path, duplicates)
        if not new:
            return path
        layout = existing.layout or _layout_of(path, None)
        if layout in ("gu", "gu-interleaved"):
            # keep the existing bytes exactly, then add the new rows
            old = path.read_bytes()
            if old and not old.endswith(b"\n"):
                old += b"\r\n"
            data = old + _gu_csv_text(new, layout, header=False).encode("utf-8")
        else:
            data = _encode(existing.recipes + new, layout)
        atomic_write_bytes(path, data)
    return path
