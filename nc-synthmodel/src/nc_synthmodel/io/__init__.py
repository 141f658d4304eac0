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

Modules: :mod:`.common` (:class:`RecipeSet`, :class:`RowError`), :mod:`.roles`
(``chemical_abbreviations.xlsx``), :mod:`.gu_csv`, :mod:`.json_file`, :mod:`.xlsx`; this module
holds the public read / write / append functions.  The atomic file helpers of
:mod:`nc_synthmodel.files` are re-exported here (their old home).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..contract import Recipe, validate_recipe
from ..files import atomic_path, atomic_write_bytes, atomic_write_text, locked
from .common import Layout, RecipeSet, RowError
from .gu_csv import GU_SLOTS, _gu_csv_text, _read_gu_csv
from .json_file import _json_text, _read_json
from .roles import ChemicalRoles, read_roles
from .xlsx import _read_xlsx, _xlsx_bytes

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
