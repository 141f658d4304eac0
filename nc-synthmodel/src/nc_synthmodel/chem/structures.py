"""The structure table: a structure (SMILES and/or formula) behind every chemical name.

:class:`Structure` is one row of ``data/structures.csv`` (shipped; columns ``name, kind,
smiles, formula, source, note``; ``kind`` one of :data:`KINDS`), :func:`read_structures`
reads and checks a table, :class:`UnknownStructureError` names chemicals without a structure.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..contract import PLACEHOLDER
from ..descriptors import INTERMEDIATE_SEP, UnknownChemicalError

KINDS: tuple[str, ...] = ("molecule", "salt", "solid")

_CHEM_HINT = "install the chemistry extra: pip install 'nc-synthmodel[chem]' (rdkit, pymatgen, unimol-tools)"
_STRUCTURE_COLUMNS = ("name", "kind", "smiles", "formula", "source", "note")


@dataclass(frozen=True)
class Structure:
    """The structure behind a chemical name.

    Parameters
    ----------
    name : str
        Chemical name as used in recipes (no ``@``, not ``PlaceHolder``).
    smiles : str
        SMILES of a molecule, or dot-separated components of a salt / complex.
    formula : str
        Formula of a solid (required for ``kind="solid"``); optional for the others,
        where it must match the SMILES.
    kind : {"molecule", "salt", "solid"} or None
        None infers it: formula only -> solid, SMILES with ``.`` -> salt, else molecule.
    source, note : str
        Where the structure comes from, and assumptions made.
    """

    name: str
    smiles: str = ""
    formula: str = ""
    kind: str | None = None
    source: str = ""
    note: str = ""

    def __post_init__(self):
        name = self.name
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"a structure needs a non-empty name without surrounding whitespace, got {name!r}")
        if INTERMEDIATE_SEP in name:
            raise ValueError(f"structure name {name!r} contains {INTERMEDIATE_SEP!r}, reserved for intermediates 'A@B'")
        if name == PLACEHOLDER:
            raise ValueError(f"{PLACEHOLDER!r} marks an empty recipe slot, not a chemical")
        smiles = (self.smiles or "").strip()
        formula = (self.formula or "").strip()
        object.__setattr__(self, "smiles", smiles)
        object.__setattr__(self, "formula", formula)
        object.__setattr__(self, "source", (self.source or "").strip())
        object.__setattr__(self, "note", (self.note or "").strip())
        kind = self.kind
        if kind is None or kind == "":
            if smiles:
                kind = "salt" if "." in smiles else "molecule"
            elif formula:
                kind = "solid"
            else:
                raise ValueError(f"structure {name!r} needs a SMILES or a formula")
            object.__setattr__(self, "kind", kind)
        if kind not in KINDS:
            raise ValueError(f"structure {name!r}: kind must be one of {KINDS}, got {kind!r}")
        if kind == "solid" and (smiles or not formula):
            raise ValueError(f"structure {name!r}: a solid is given by its formula only (got smiles={smiles!r}, formula={formula!r})")
        if kind != "solid" and not smiles:
            raise ValueError(f"structure {name!r}: a {kind} needs a SMILES")


def read_structures(path: str | os.PathLike | None = None) -> list[Structure]:
    """Structures from a CSV with columns ``name, kind, smiles, formula[, source, note]``.

    ``path=None`` reads the table shipped with the package (``data/structures.csv``).
    """
    if path is None:
        text = resources.files("nc_synthmodel").joinpath("data/structures.csv").read_text(encoding="utf-8")
        where = "nc_synthmodel/data/structures.csv"
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"structure table not found: {path}")
        text = path.read_text(encoding="utf-8")
        where = str(path)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in _STRUCTURE_COLUMNS[:4] if c not in header]
    if missing:
        raise ValueError(f"{where}: structure table lacks column(s) {missing}; expected {', '.join(_STRUCTURE_COLUMNS)}")
    structures = []
    for row_number, row in enumerate(reader, start=2):
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            structures.append(
                Structure(
                    cells["name"],
                    smiles=cells["smiles"],
                    formula=cells["formula"],
                    kind=cells["kind"] or None,
                    source=cells.get("source", ""),
                    note=cells.get("note", ""),
                )
            )
        except ValueError as exc:
            raise ValueError(f"{where}, line {row_number}: {exc}") from None
    return structures


class UnknownStructureError(UnknownChemicalError):
    """Chemical names without a structure; ``names`` lists them."""

    def __str__(self) -> str:
        shown = ", ".join(repr(n) for n in self.names[:20])
        more = f" ... and {len(self.names) - 20} more" if len(self.names) > 20 else ""
        return (
            f"{len(self.names)} chemical(s) without a structure: {shown}{more}. Add them to the structures, e.g. "
            "structures=read_structures() + [Structure(name, smiles=...)] or Structure(name, formula=...) for a solid."
        )


def _structure_map(structures) -> dict[str, Structure]:
    if structures is None or isinstance(structures, (str, os.PathLike)):
        items = read_structures(structures)
    elif isinstance(structures, Mapping):
        raise TypeError("structures must be a CSV path or a sequence of Structure, not a mapping")
    else:
        items = list(structures)
    bad = [s for s in items if not isinstance(s, Structure)]
    if bad:
        raise TypeError(f"structures must be Structure objects, got {type(bad[0]).__name__} {bad[0]!r}")
    table: dict[str, Structure] = {}
    repeated = []
    for structure in items:
        if structure.name in table and table[structure.name] != structure:
            repeated.append(structure.name)
        table[structure.name] = structure
    if repeated:
        raise ValueError(f"structure(s) given more than once with different content: {', '.join(map(repr, repeated[:20]))}")
    return table
