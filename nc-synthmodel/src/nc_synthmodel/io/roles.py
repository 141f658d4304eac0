"""Chemical roles (precursor, ligand, solvent, product) from ``chemical_abbreviations.xlsx``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .common import _read_workbook

__all__ = ["ChemicalRoles", "read_roles"]


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
