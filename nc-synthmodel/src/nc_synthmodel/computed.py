"""Chemical descriptors computed from structure: RDKit, pymatgen and (optionally) Uni-Mol.

Structures
----------
``data/structures.csv`` (shipped, read by :func:`read_structures`) gives a structure to
every chemical name of the Gu et al. dataset (all reactants of ``recipes.csv`` and
``failed_recipes.csv``, all products) and to every other name of
``chemical_abbreviations.xlsx``.  Columns: ``name, kind, smiles, formula, source, note``.
``kind`` is one of

* ``molecule`` - one covalent molecule, as SMILES (oleic acid, TOP, CS2, TiCl4, ZnEt2);
* ``salt`` - a salt or metal complex as dot-separated SMILES components: metal ions or
  atoms, anions, neutral ligands (``[Pb+2].[O-]C(C)=O.[O-]C(C)=O``; Fe(CO)5 as ``[Fe]``
  and five ``[C-]#[O+]``), net charge 0;
* ``solid`` - a crystalline or inorganic solid by its formula (PbO, Se, Cs2CO3).  A
  product's polymorph suffix ``-k`` is dropped for the formula (``CdSe-1`` -> ``CdSe``);
  the name keeps it.

Where both a SMILES and a formula are given they must agree (checked).

Descriptor vector (``DESCRIPTOR_VERSION`` 1, float32, :data:`FEATURE_NAMES`)
----------------------------------------------------------------------------
174 values in one layout for every kind; a block that does not apply is zero.  Extensive
counts are ``log1p``-transformed (names ``*_log1p_*``).

1. kind (4): ``kind_molecule``, ``kind_salt``, ``kind_solid``, ``intermediate``.
2. molecule (41, RDKit, on the whole SMILES; zero for solids):
   ``mol_log1p_weight`` (g/mol), ``mol_log1p_heavy_atoms``, ``mol_log1p_components``,
   ``mol_log1p_rotatable_bonds``, ``mol_log1p_tpsa`` (A^2), ``mol_logp`` (Crippen),
   ``mol_log1p_mr`` (Crippen molar refractivity), ``mol_log1p_h_donors``,
   ``mol_log1p_h_acceptors``, ``mol_log1p_rings``, ``mol_log1p_aromatic_rings``,
   ``mol_fraction_csp3``, ``mol_max_formal_charge``, ``mol_min_formal_charge``;
   atom counts ``mol_log1p_n_<E>`` for C, H, N, O, F, Si, P, S, Cl, Se, Br, Te, I and
   ``metal``; SMARTS counts ``mol_log1p_<group>`` of carboxylic_acid, carboxylate,
   primary_amine, secondary_amine, tertiary_amine, ammonium, thiol, thiolate,
   trivalent_p, p_oxo (P=O), alcohol, alkene, alkyne.
3. shape (8, RDKit, 3-D conformer of the largest component: ETKDGv3 seeded with
   ``random_state``, then MMFF94 optimisation, UFF where MMFF has no parameters, the
   ETKDG geometry where neither has): ``shape_has_conformer``,
   ``shape_log1p_radius_of_gyration`` (A), ``shape_npr1``, ``shape_npr2``,
   ``shape_asphericity``, ``shape_eccentricity``, ``shape_spherocity``,
   ``shape_log1p_max_extent`` (largest interatomic distance, A).  All zero (flag 0)
   when no conformer can be embedded.
4. inorganic part (44, pymatgen element data): for a solid its formula; for a molecule or
   salt every atom of its carbon-free components (ions such as Pb2+, Br-, NH4+, or the
   whole of H2O, TiCl4) plus the atoms other than H, C, N, O of its carbon-bearing
   components (P of TOP, S of a thiol, Sn of SnPh4).  ``inorg_present``,
   ``inorg_n_elements``, ``inorg_log1p_atoms`` (per formula unit),
   ``inorg_metal_fraction``; for each element property - ``X`` (Pauling
   electronegativity), ``radius`` (atomic radius, A), ``mass`` (atomic mass / 100 u),
   ``group``, ``row``, ``ionization`` (first ionisation energy, eV), ``affinity``
   (electron affinity, eV), ``oxi_min`` and ``oxi_max`` (smallest and largest common
   oxidation state) - the atom-fraction-weighted ``mean``, ``min``, ``max`` and
   ``range`` (``inorg_<prop>_<stat>``); ``inorg_block_<b>``, the fraction of atoms in the
   s, p, d and f blocks.
5. element fractions (77) of the inorganic part: ``frac_<E>`` for H..Bi without the noble
   gases, Tc and Pm (76 elements), and ``frac_other``.

Reaction intermediates ``"A@B"`` get the mean of the vectors of A and B with
``intermediate`` set to 1: the intermediate holds both reactants' atoms in unknown
form, so the mean is the simplest honest stand-in (kind flags become fractions, e.g.
0.5 salt + 0.5 solid).  (Uni-Mol vectors have no flag: there it is the plain mean.)

Routes
------
* :class:`ComputedDescriptors` -> :meth:`~ComputedDescriptors.to_table` gives a fully
  computed :class:`~nc_synthmodel.descriptors.DescriptorTable` whose fallback computes
  any further name of the structure table; :meth:`~ComputedDescriptors.descriptor` is
  a ``DescriptorFn`` for ``DescriptorTable.from_npz(path, fallback=...)`` of a table of
  the *same* vectors (saved earlier).  It cannot extend the 512-d Uni-Mol table (the
  table rejects a vector of the wrong length); for that, use :class:`UniMolDescriptors`.
* :class:`UniMolDescriptors` gives 512-d Uni-Mol v1 representations from weights in
  a local directory (never downloaded).  They match the authors' table only if the
  directory holds the weights that produced it (theirs were fine-tuned).

Computed vectors are cached on disk, one ``.npy`` per structure, keyed by a hash of the
structure (not the name: aliases share a file), the seed, the force-field steps,
``DESCRIPTOR_VERSION`` and the RDKit / pymatgen versions; files are written atomically
and a corrupt file is recomputed with a warning.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .contract import PLACEHOLDER
from .descriptors import INTERMEDIATE_SEP, DescriptorTable, UnknownChemicalError
from .io import atomic_write_bytes

__all__ = [
    "DESCRIPTOR_VERSION",
    "FEATURE_NAMES",
    "FRACTION_ELEMENTS",
    "KINDS",
    "Structure",
    "read_structures",
    "UnknownStructureError",
    "ComputedDescriptors",
    "UniMolDescriptors",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

#: Bump when the vector layout or its computation changes (part of every cache key).
DESCRIPTOR_VERSION = 1

KINDS: tuple[str, ...] = ("molecule", "salt", "solid")

_CHEM_HINT = "install the chemistry extra: pip install 'nc-synthmodel[chem]' (rdkit, pymatgen, unimol-tools)"
_STRUCTURE_COLUMNS = ("name", "kind", "smiles", "formula", "source", "note")

# --------------------------------------------------------------------------- layout

_KIND_FEATURES = ("kind_molecule", "kind_salt", "kind_solid", "intermediate")
_MOL_SCALARS = (
    "mol_log1p_weight",
    "mol_log1p_heavy_atoms",
    "mol_log1p_components",
    "mol_log1p_rotatable_bonds",
    "mol_log1p_tpsa",
    "mol_logp",
    "mol_log1p_mr",
    "mol_log1p_h_donors",
    "mol_log1p_h_acceptors",
    "mol_log1p_rings",
    "mol_log1p_aromatic_rings",
    "mol_fraction_csp3",
    "mol_max_formal_charge",
    "mol_min_formal_charge",
)
_COUNTED_ELEMENTS = ("C", "H", "N", "O", "F", "Si", "P", "S", "Cl", "Se", "Br", "Te", "I")
#: Functional groups counted in the molecule block: name -> SMARTS.
_GROUPS: dict[str, str] = {
    "carboxylic_acid": "[CX3](=O)[OX2H1]",
    "carboxylate": "[CX3](=O)[OX1-]",
    "primary_amine": "[NX3;H2;!$(N[#6]=[O,S,N,Se])][#6]",
    "secondary_amine": "[NX3;H1;!$(N[#6]=[O,S,N,Se])]([#6])[#6]",
    "tertiary_amine": "[NX3;H0;!$(N[#6]=[O,S,N,Se])]([#6])([#6])[#6]",
    "ammonium": "[NX4+]",
    "thiol": "[SX2;H1]",
    "thiolate": "[SX1-]",
    "trivalent_p": "[PX3]",
    "p_oxo": "[PX4]=O",
    "alcohol": "[OX2H][CX4]",
    "alkene": "[CX3]=[CX3]",
    "alkyne": "[CX2]#[CX2]",
}
_MOL_FEATURES = (
    _MOL_SCALARS
    + tuple(f"mol_log1p_n_{e}" for e in _COUNTED_ELEMENTS)
    + ("mol_log1p_n_metal",)
    + tuple(f"mol_log1p_{g}" for g in _GROUPS)
)
_SHAPE_FEATURES = (
    "shape_has_conformer",
    "shape_log1p_radius_of_gyration",
    "shape_npr1",
    "shape_npr2",
    "shape_asphericity",
    "shape_eccentricity",
    "shape_spherocity",
    "shape_log1p_max_extent",
)
#: Element properties of the inorganic block (pymatgen), in feature order.
_ELEMENT_PROPERTIES = ("X", "radius", "mass", "group", "row", "ionization", "affinity", "oxi_min", "oxi_max")
_STATS = ("mean", "min", "max", "range")
_BLOCKS = ("s", "p", "d", "f")
_INORG_FEATURES = (
    ("inorg_present", "inorg_n_elements", "inorg_log1p_atoms", "inorg_metal_fraction")
    + tuple(f"inorg_{p}_{s}" for p in _ELEMENT_PROPERTIES for s in _STATS)
    + tuple(f"inorg_block_{b}" for b in _BLOCKS)
)
_NOBLE_AND_RARE = {2, 10, 18, 36, 54, 43, 61}  # He Ne Ar Kr Xe, Tc, Pm
_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm "
    "Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi"
).split()
#: Elements with their own fraction column (Z = 1..83 without He, Ne, Ar, Kr, Xe, Tc, Pm).
FRACTION_ELEMENTS: tuple[str, ...] = tuple(s for z, s in enumerate(_SYMBOLS, start=1) if z not in _NOBLE_AND_RARE)
_FRACTION_FEATURES = tuple(f"frac_{e}" for e in FRACTION_ELEMENTS) + ("frac_other",)

#: Names of the descriptor vector's entries, in order.
FEATURE_NAMES: tuple[str, ...] = (
    _KIND_FEATURES + _MOL_FEATURES + _SHAPE_FEATURES + _INORG_FEATURES + _FRACTION_FEATURES
)
_N_KIND, _N_MOL, _N_SHAPE, _N_INORG = len(_KIND_FEATURES), len(_MOL_FEATURES), len(_SHAPE_FEATURES), len(_INORG_FEATURES)
_MOL_START = _N_KIND
_SHAPE_START = _MOL_START + _N_MOL
_INORG_START = _SHAPE_START + _N_SHAPE
_INTERMEDIATE_INDEX = _KIND_FEATURES.index("intermediate")


# --------------------------------------------------------------------------- structures


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
            raise ValueError(
                f"structure {name!r}: a solid is given by its formula only (got smiles={smiles!r}, formula={formula!r})"
            )
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
            structures.append(Structure(
                cells["name"], smiles=cells["smiles"], formula=cells["formula"], kind=cells["kind"] or None,
                source=cells.get("source", ""), note=cells.get("note", ""),
            ))
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


# --------------------------------------------------------------------------- chemistry helpers


def _import_chem():
    try:
        from rdkit import Chem  # noqa: F401
        from pymatgen.core import Composition  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"computed descriptors need RDKit and pymatgen ({exc}); {_CHEM_HINT}") from None


def _quiet_rdkit():
    """Silence RDKit's C++ log for a block (its previous state is restored)."""
    from rdkit.rdBase import BlockLogs

    return BlockLogs()


def _parse_smiles(structure: Structure):
    from rdkit import Chem

    with _quiet_rdkit():
        mol = Chem.MolFromSmiles(structure.smiles)
    if mol is None:
        raise ValueError(f"structure {structure.name!r}: RDKit cannot parse the SMILES {structure.smiles!r}")
    return mol


def _parse_formula(name: str, formula: str):
    from pymatgen.core import Composition

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            composition = Composition(formula, strict=True)
    except Exception as exc:  # pymatgen raises ValueError or its own errors
        raise ValueError(f"structure {name!r}: {formula!r} is not a chemical formula ({exc})") from None
    if composition.num_atoms <= 0:
        raise ValueError(f"structure {name!r}: formula {formula!r} holds no atoms")
    return composition


def _mol_composition(mol) -> dict[str, float]:
    counts: dict[str, float] = {}
    for atom in mol.GetAtoms():
        counts[atom.GetSymbol()] = counts.get(atom.GetSymbol(), 0) + 1
        hydrogens = atom.GetTotalNumHs()
        if hydrogens:
            counts["H"] = counts.get("H", 0) + hydrogens
    return counts


def _check_consistent(structure: Structure, mol) -> None:
    """A SMILES and a formula given together must describe the same atoms."""
    if not structure.formula:
        return
    expected = _parse_formula(structure.name, structure.formula).get_el_amt_dict()
    found = _mol_composition(mol)
    if set(expected) != set(found) or any(abs(expected[e] - found[e]) > 1e-6 for e in expected):
        raise ValueError(
            f"structure {structure.name!r}: the SMILES gives {_hill_formula(found)} "
            f"but the formula says {structure.formula!r}"
        )


def _hill_formula(counts: Mapping[str, float]) -> str:
    order = [e for e in ("C", "H") if e in counts] + sorted(e for e in counts if e not in ("C", "H"))
    return "".join(f"{e}{'' if counts[e] == 1 else f'{counts[e]:g}'}" for e in order)


@lru_cache(maxsize=None)
def _element_row(symbol: str) -> tuple[np.ndarray, bool, str]:
    """Properties of one element in the order of ``_ELEMENT_PROPERTIES``; NaN -> 0."""
    from pymatgen.core import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        element = Element(symbol)
        oxidation = element.common_oxidation_states or (0,)
        values = [
            element.X,
            element.atomic_radius,
            element.atomic_mass / 100.0,
            element.group,
            element.row,
            element.ionization_energy,
            element.electron_affinity,
            min(oxidation),
            max(oxidation),
        ]
        metal = bool(element.is_metal)
        block = element.block
    row = np.array([float(v) if v is not None else np.nan for v in values], dtype=float)
    if not np.isfinite(row).all():
        absent = [p for p, v in zip(_ELEMENT_PROPERTIES, row) if not np.isfinite(v)]
        logger.debug("element %s lacks %s; used 0", symbol, absent)
        row = np.nan_to_num(row, nan=0.0, posinf=0.0, neginf=0.0)
    return row, metal, block


def _inorganic_features(counts: Mapping[str, float]) -> np.ndarray:
    """Blocks 4 and 5 of the layout from element amounts (zeros when there are none)."""
    out = np.zeros(_N_INORG + len(_FRACTION_FEATURES), dtype=float)
    counts = {e: float(n) for e, n in counts.items() if n > 0}
    if not counts:
        return out
    symbols = sorted(counts)
    amounts = np.array([counts[s] for s in symbols])
    fractions = amounts / amounts.sum()
    rows = np.stack([_element_row(s)[0] for s in symbols])  # (k, n_props)
    metal = np.array([_element_row(s)[1] for s in symbols], dtype=float)
    blocks = [_element_row(s)[2] for s in symbols]
    mean = fractions @ rows
    low, high = rows.min(axis=0), rows.max(axis=0)
    stats = np.stack([mean, low, high, high - low], axis=1).ravel()  # property-major, as in the names
    block_fractions = [float(sum(f for f, b in zip(fractions, blocks) if b == name)) for name in _BLOCKS]
    head = [1.0, float(len(symbols)), math.log1p(amounts.sum()), float(fractions @ metal)]
    out[:_N_INORG] = np.concatenate([head, stats, block_fractions])
    index = {e: i for i, e in enumerate(FRACTION_ELEMENTS)}
    for symbol, fraction in zip(symbols, fractions):
        out[_N_INORG + index.get(symbol, len(FRACTION_ELEMENTS))] += fraction
    return out


def _components(mol) -> tuple[tuple[int, ...], ...]:
    from rdkit import Chem

    return Chem.GetMolFrags(mol)


def _inorganic_counts(mol) -> dict[str, float]:
    """Atoms of the carbon-free components, plus non-H/C/N/O atoms of the others."""
    counts: dict[str, float] = {}
    for indices in _components(mol):
        atoms = [mol.GetAtomWithIdx(i) for i in indices]
        organic = any(a.GetAtomicNum() == 6 for a in atoms)
        for atom in atoms:
            symbol = atom.GetSymbol()
            if not (organic and symbol in ("H", "C", "N", "O")):
                counts[symbol] = counts.get(symbol, 0) + 1
            hydrogens = 0 if organic else atom.GetTotalNumHs()
            if hydrogens:
                counts["H"] = counts.get("H", 0) + hydrogens
    return counts


@lru_cache(maxsize=None)
def _group_patterns():
    from rdkit import Chem

    return {name: Chem.MolFromSmarts(smarts) for name, smarts in _GROUPS.items()}


def _molecule_features(mol) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import Crippen, Descriptors, rdMolDescriptors

    charges = [a.GetFormalCharge() for a in mol.GetAtoms()]
    counts = _mol_composition(mol)
    n_metal = sum(1 for a in mol.GetAtoms() if _element_row(a.GetSymbol())[1])
    scalars = [
        math.log1p(Descriptors.MolWt(mol)),
        math.log1p(mol.GetNumHeavyAtoms()),
        math.log1p(len(Chem.GetMolFrags(mol))),
        math.log1p(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        math.log1p(rdMolDescriptors.CalcTPSA(mol)),
        Crippen.MolLogP(mol),
        math.log1p(max(Crippen.MolMR(mol), 0.0)),
        math.log1p(rdMolDescriptors.CalcNumHBD(mol)),
        math.log1p(rdMolDescriptors.CalcNumHBA(mol)),
        math.log1p(rdMolDescriptors.CalcNumRings(mol)),
        math.log1p(rdMolDescriptors.CalcNumAromaticRings(mol)),
        rdMolDescriptors.CalcFractionCSP3(mol),
        float(max(charges)),
        float(min(charges)),
    ]
    elements = [math.log1p(counts.get(e, 0)) for e in _COUNTED_ELEMENTS] + [math.log1p(n_metal)]
    groups = [math.log1p(len(mol.GetSubstructMatches(p))) for p in _group_patterns().values()]
    return np.array(scalars + elements + groups, dtype=float)


def _embed(mol, random_state: int, max_iters: int):
    """``mol`` with hydrogens and one optimised conformer, or None when embedding fails."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(random_state)
    with _quiet_rdkit():
        if AllChem.EmbedMolecule(mol, params) != 0:
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(mol, params) != 0:
                return None
        try:
            if AllChem.MMFFHasAllMoleculeParams(mol):
                AllChem.MMFFOptimizeMolecule(mol, maxIters=max_iters)
            elif AllChem.UFFHasAllMoleculeParams(mol):
                AllChem.UFFOptimizeMolecule(mol, maxIters=max_iters)
        except (RuntimeError, ValueError) as exc:  # keep the ETKDG geometry
            logger.debug("force-field optimisation failed (%s); ETKDG geometry kept", exc)
    return mol


def _shape_features(mol, random_state: int, max_iters: int) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import rdMolDescriptors

    fragments = Chem.GetMolFrags(mol, asMols=True)
    largest = max(fragments, key=lambda m: (m.GetNumHeavyAtoms(), m.GetNumAtoms()))
    out = np.zeros(_N_SHAPE, dtype=float)
    embedded = _embed(largest, random_state, max_iters)
    if embedded is None or embedded.GetNumAtoms() < 2:
        return out
    positions = embedded.GetConformer().GetPositions()
    extent = float(np.sqrt(((positions[:, None, :] - positions[None, :, :]) ** 2).sum(-1)).max())
    values = [
        1.0,
        math.log1p(rdMolDescriptors.CalcRadiusOfGyration(embedded)),
        rdMolDescriptors.CalcNPR1(embedded),
        rdMolDescriptors.CalcNPR2(embedded),
        rdMolDescriptors.CalcAsphericity(embedded),
        rdMolDescriptors.CalcEccentricity(embedded),
        rdMolDescriptors.CalcSpherocityIndex(embedded),
        math.log1p(extent),
    ]
    out[:] = np.nan_to_num(np.array(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    return out


def _compute_vector(structure: Structure, random_state: int, max_iters: int) -> np.ndarray:
    """The descriptor vector of one structure (layout in the module docstring)."""
    vector = np.zeros(len(FEATURE_NAMES), dtype=float)
    vector[KINDS.index(structure.kind)] = 1.0
    if structure.kind == "solid":
        counts = _parse_formula(structure.name, structure.formula).get_el_amt_dict()
    else:
        mol = _parse_smiles(structure)
        _check_consistent(structure, mol)
        if structure.kind == "molecule" and mol.GetNumAtoms() and len(_components(mol)) > 1:
            raise ValueError(
                f"structure {structure.name!r}: a molecule is one component; use kind='salt' for {structure.smiles!r}"
            )
        vector[_MOL_START:_SHAPE_START] = _molecule_features(mol)
        vector[_SHAPE_START:_INORG_START] = _shape_features(mol, random_state, max_iters)
        counts = _inorganic_counts(mol)
    vector[_INORG_START:] = _inorganic_features(counts)
    if not np.isfinite(vector).all():
        bad = [FEATURE_NAMES[i] for i in np.flatnonzero(~np.isfinite(vector))]
        raise ValueError(f"structure {structure.name!r}: non-finite descriptor values for {bad}")
    return vector.astype(np.float32)


# --------------------------------------------------------------------------- estimators


class _NamedDescriptors:
    """Name -> vector resolution shared by the estimators: structures, intermediates, tables."""

    def _fit_structures(self, names) -> None:
        self.structures_ = _structure_map(self.structures)
        if names is not None:
            self._resolve(_name_list(names))

    def _check_fitted(self) -> None:
        if not hasattr(self, "structures_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def _resolve(self, names: list[str]) -> list[Structure]:
        """Structures behind ``names`` and the parts of intermediates (unique, in order)."""
        needed: dict[str, None] = {}
        unknown: dict[str, None] = {}
        for name in names:
            for part in _parts(name):
                if part in self.structures_:
                    needed[part] = None
                else:
                    unknown[part] = None
        if unknown:
            raise UnknownStructureError(list(unknown), "structure table")
        return [self.structures_[n] for n in needed]

    def transform(self, names: Iterable[str]) -> np.ndarray:
        """Descriptors of ``names``, shape ``(n, n_features_)`` float32, in order.

        ``"A@B"`` intermediates are the mean of A and B with the ``intermediate`` flag
        set (see the module docstring).
        """
        self._check_fitted()
        names = _name_list(names)
        structures = self._resolve(names)
        vectors = dict(zip((s.name for s in structures), self._vectors(structures)))
        out = np.empty((len(names), self.n_features_), dtype=np.float32)
        for row, name in enumerate(names):
            parts = _parts(name)
            if len(parts) == 1:
                out[row] = vectors[name]
            else:
                out[row] = (vectors[parts[0]].astype(float) + vectors[parts[1]]) / 2.0
                if self._intermediate_index is not None:
                    out[row, self._intermediate_index] = 1.0
        return out

    def descriptor(self, name: str) -> np.ndarray:
        """Descriptor of one name, shape ``(n_features_,)``: a ``DescriptorFn``."""
        if not isinstance(name, str):
            raise TypeError(f"a chemical name must be a str, got {type(name).__name__} {name!r}")
        return self.transform([name])[0]

    def to_table(self, names: Iterable[str]) -> DescriptorTable:
        """A :class:`DescriptorTable` of ``names`` (duplicates dropped) whose fallback is :meth:`descriptor`.

        Include the ``"A@B"`` intermediates that augmentation may insert: the table's
        ``intermediates`` are its ``A@B`` names.
        """
        names = list(dict.fromkeys(_name_list(names)))
        if not names:
            raise ValueError("to_table needs at least one chemical name")
        return DescriptorTable(names, self.transform(names), fallback=self.descriptor, source=self._source())


def _name_list(names) -> list[str]:
    if isinstance(names, str):
        raise TypeError("expected a sequence of chemical names, got a single string; wrap it in a list")
    names = list(names)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"chemical names must be str, got {type(bad[0]).__name__} {bad[0]!r}")
    return names


def _parts(name: str) -> tuple[str, ...]:
    if name == PLACEHOLDER:
        raise ValueError(f"{PLACEHOLDER!r} marks an empty recipe slot, not a chemical; drop it before computing descriptors")
    if INTERMEDIATE_SEP not in name:
        return (name,)
    parts = tuple(name.split(INTERMEDIATE_SEP))
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"intermediate name {name!r} must be 'A{INTERMEDIATE_SEP}B' with two non-empty parts")
    return parts


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nc-synthmodel/descriptors`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nc-synthmodel" / "descriptors"


class ComputedDescriptors(_NamedDescriptors):
    """Fixed-length descriptors computed from structure with RDKit and pymatgen.

    Parameters
    ----------
    structures : path, sequence of Structure, or None
        The name -> structure table; None reads the shipped ``data/structures.csv``.
        Add chemicals with ``read_structures() + [Structure("X", smiles="...")]``.
    cache_dir : path or None
        Folder of the disk cache (one ``.npy`` per structure, keyed by a hash of the
        structure, ``random_state``, ``max_iters``, ``DESCRIPTOR_VERSION`` and the RDKit
        and pymatgen versions); None is :func:`default_cache_dir`.
    use_cache : bool
        False computes everything in memory only.
    random_state : int
        Seed of the ETKDG conformer embedding.
    max_iters : int
        Force-field optimisation steps.

    Attributes
    ----------
    structures_ : dict of str -> Structure
    feature_names_ : tuple of str
        :data:`FEATURE_NAMES`.
    n_features_ : int
    n_computed_ : int
        Structures computed (not read from the cache) by this instance so far.

    Examples
    --------
    >>> table = ComputedDescriptors().fit().to_table(names)  # doctest: +SKIP
    >>> encoder = RecipeEncoder(table).fit(recipes)  # doctest: +SKIP
    """

    _intermediate_index = _INTERMEDIATE_INDEX

    def __init__(
        self,
        structures: str | os.PathLike | Sequence[Structure] | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        random_state: int = 0,
        max_iters: int = 500,
    ):
        self.structures = structures
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.random_state = random_state
        self.max_iters = max_iters

    def fit(self, names: Iterable[str] | None = None, y=None) -> ComputedDescriptors:
        """Read and check the structure table; with ``names``, check each has a structure."""
        _import_chem()
        _check_int("random_state", self.random_state, minimum=0)
        _check_int("max_iters", self.max_iters, minimum=1)
        self._fit_structures(names)
        self._key_base = _key_base(self.random_state, self.max_iters)
        self.feature_names_ = FEATURE_NAMES
        self.n_features_ = len(FEATURE_NAMES)
        self.n_computed_ = 0
        self._memory: dict[str, np.ndarray] = {}
        self._cache_warned = False
        return self

    # ------------------------------------------------------------------ internals

    def _source(self) -> str:
        return f"computed descriptors v{DESCRIPTOR_VERSION}"

    def _cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_dir()

    def _key(self, structure: Structure) -> str:
        payload = dict(self._key_base, kind=structure.kind, smiles=structure.smiles, formula=structure.formula)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32]

    def _vectors(self, structures: list[Structure]) -> list[np.ndarray]:
        start = time.perf_counter()
        n_cached = n_new = 0
        out = []
        for structure in structures:
            key = self._key(structure)
            vector = self._memory.get(key)
            if vector is None and self.use_cache:
                vector = self._read_cache(key, structure.name)
                n_cached += vector is not None
            if vector is None:
                vector = _compute_vector(structure, self.random_state, self.max_iters)
                n_new += 1
                self.n_computed_ += 1
                logger.debug("computed descriptors of %r", structure.name)
                if self.use_cache:
                    self._write_cache(key, vector)
            self._memory[key] = vector
            out.append(vector)
        if n_new or n_cached:
            logger.log(
                logging.INFO if n_new else logging.DEBUG,
                "descriptors of %d structure(s): %d computed, %d from the cache (%.1f s)",
                len(structures), n_new, n_cached, time.perf_counter() - start,
            )
        return out

    def _read_cache(self, key: str, name: str) -> np.ndarray | None:
        path = self._cache_path() / f"{key}.npy"
        if not path.is_file():
            return None
        try:
            vector = np.load(path, allow_pickle=False)
            if vector.shape != (self.n_features_,) or vector.dtype != np.float32 or not np.isfinite(vector).all():
                raise ValueError(f"holds {vector.shape} {vector.dtype}, expected ({self.n_features_},) finite float32")
        except (OSError, ValueError, EOFError) as exc:
            logger.warning("corrupt descriptor cache file %s for %r (%s); recomputing it", path, name, exc)
            return None
        vector.flags.writeable = False
        return vector

    def _write_cache(self, key: str, vector: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        path = self._cache_path() / f"{key}.npy"
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as exc:
            if not self._cache_warned:
                logger.warning("cannot write the descriptor cache %s (%s); continuing without it", path.parent, exc)
                self._cache_warned = True


def _key_base(random_state: int, max_iters: int) -> dict:
    """What, besides the structure, determines a vector: part of every cache key."""
    from importlib.metadata import PackageNotFoundError, version

    import rdkit

    try:
        pymatgen_version = version("pymatgen")
    except PackageNotFoundError:
        pymatgen_version = "unknown"
    return {
        "descriptor_version": DESCRIPTOR_VERSION,
        "random_state": int(random_state),
        "max_iters": int(max_iters),
        "rdkit": rdkit.__version__,
        "pymatgen": pymatgen_version,
    }


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


# --------------------------------------------------------------------------- Uni-Mol


def _unimol_files(remove_hs: bool) -> tuple[str, str]:
    from unimol_tools.config import MODEL_CONFIG

    name = "molecule_no_h" if remove_hs else "molecule_all_h"
    return MODEL_CONFIG["weight"][name], MODEL_CONFIG["dict"][name]


def _import_unimol():
    """Import unimol_tools, undoing its import-time side effects on logging and the cwd."""
    logs = Path.cwd() / "logs"
    had_logs = logs.exists()
    root_level = logging.root.level
    try:
        import unimol_tools  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"Uni-Mol descriptors need unimol-tools ({exc}); {_CHEM_HINT}") from None
    finally:
        logging.root.setLevel(root_level)  # unimol_tools sets the root logger to NOTSET
    unimol_logger = logging.getLogger("Uni-Mol Tools")
    for handler in list(unimol_logger.handlers):
        if isinstance(handler, logging.FileHandler):  # it logs to ./logs/ in the working directory
            unimol_logger.removeHandler(handler)
    unimol_logger.setLevel(logging.WARNING)
    if not had_logs and logs.is_dir() and not any(logs.iterdir()):
        logs.rmdir()


@contextmanager
def _keep_global_rng():
    """unimol_tools reseeds torch and numpy globally on every call: restore their state."""
    import torch

    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)


class UniMolDescriptors(_NamedDescriptors):
    """512-d Uni-Mol v1 molecular representations from a local weight folder (no download).

    ``weights_dir`` must hold the files unimol-tools names for the molecule model:
    ``mol_pre_all_h_220816.pt`` (``mol_pre_no_h_220816.pt`` with ``remove_hs=True``) and
    ``mol.dict.txt``, as published at https://huggingface.co/dptech/Uni-Mol-Models
    (download them on a machine with internet access and copy the folder).  The weights
    are read with ``torch.load(weights_only=True)`` and must cover the whole encoder.

    Conformers come from the same seeded ETKDG + force field as
    :class:`ComputedDescriptors` (all components of a salt; 2-D coordinates when
    embedding fails).  Solids (formula only) have no SMILES and raise.  Elements outside
    the model's token dictionary (most metals for the published weights) are ``[UNK]``.

    Parameters
    ----------
    weights_dir : path
    structures : path, sequence of Structure, or None
        As for :class:`ComputedDescriptors`.
    remove_hs : bool
        Use the model trained without hydrogens.
    batch_size : int
    random_state : int
        Seed of the conformer embedding.

    Attributes
    ----------
    structures_ : dict of str -> Structure
    model_ : unimol_tools.UniMolRepr
    n_features_ : int
        512.
    """

    _intermediate_index = None  # a Uni-Mol vector has no flag: an intermediate is the plain mean

    def __init__(
        self,
        weights_dir: str | os.PathLike,
        *,
        structures: str | os.PathLike | Sequence[Structure] | None = None,
        remove_hs: bool = False,
        batch_size: int = 16,
        random_state: int = 0,
    ):
        self.weights_dir = weights_dir
        self.structures = structures
        self.remove_hs = remove_hs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, names: Iterable[str] | None = None, y=None) -> UniMolDescriptors:
        """Check the weight files, load the model on the CPU and read the structures."""
        _check_int("random_state", self.random_state, minimum=0)
        _check_int("batch_size", self.batch_size, minimum=1)
        _import_chem()
        _import_unimol()
        import torch

        folder = Path(self.weights_dir)
        weight_name, dict_name = _unimol_files(bool(self.remove_hs))
        missing = [n for n in (weight_name, dict_name) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"Uni-Mol weights not found: {folder} lacks {', '.join(missing)}. Put {weight_name} and {dict_name} "
                "(from https://huggingface.co/dptech/Uni-Mol-Models, downloaded on a machine with internet access) "
                "in that folder; nothing is downloaded at run time."
            )
        try:
            checkpoint = torch.load(folder / weight_name, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{folder / weight_name}: not a readable weights-only PyTorch checkpoint ({exc})") from None
        state = _state_dict(checkpoint, folder / weight_name)
        from unimol_tools import UniMolRepr

        # UniMolRepr reads the file again itself; it passed the weights-only check above.
        try:
            with _keep_global_rng():
                model = UniMolRepr(
                    data_type="molecule", remove_hs=bool(self.remove_hs), model_name="unimolv1", use_cuda=False,
                    batch_size=int(self.batch_size), pretrained_model_path=str(folder / weight_name),
                    pretrained_dict_path=str(folder / dict_name),
                )
        except RuntimeError as exc:  # load_state_dict: shapes that do not fit the architecture
            raise ValueError(f"{folder / weight_name}: does not fit the Uni-Mol v1 molecule model ({exc})") from None
        expected = {k for k in model.model.state_dict() if not k.startswith("classification_head.")}
        absent = sorted(expected - set(state))
        if absent:
            raise ValueError(
                f"{folder / weight_name}: {len(absent)} encoder weight(s) missing (e.g. {absent[:3]}); "
                "expected a Uni-Mol v1 molecule checkpoint"
            )
        self.model_ = model
        self.n_features_ = int(model.model.args.encoder_embed_dim)
        self._fit_structures(names)
        return self

    def _source(self) -> str:
        return f"Uni-Mol v1 descriptors from {self.weights_dir}"

    def _vectors(self, structures: list[Structure]) -> list[np.ndarray]:
        solids = [s.name for s in structures if s.kind == "solid"]
        if solids:
            raise ValueError(
                f"Uni-Mol needs a SMILES; {', '.join(map(repr, solids[:10]))} are solids given by formula only "
                "(use ComputedDescriptors for them)"
            )
        if not structures:
            return []
        atoms, coordinates = [], []
        for structure in structures:
            mol = _parse_smiles(structure)
            _check_consistent(structure, mol)
            symbols, xyz = self._coordinates(mol)
            atoms.append(symbols)
            coordinates.append(xyz)
        with _keep_global_rng(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*")  # unimol_tools' DataLoader on a CPU
            np.random.seed(self.random_state)  # unimol_tools crops molecules above 256 atoms at random
            vectors = self.model_.get_repr({"atoms": atoms, "coordinates": coordinates}, return_tensor=True)
        vectors = np.asarray(vectors.cpu().numpy(), dtype=np.float32)
        return list(vectors)

    def _coordinates(self, mol) -> tuple[list[str], np.ndarray]:
        from rdkit import Chem
        from rdkit.Chem import AllChem

        embedded = _embed(mol, self.random_state, 500)
        if embedded is None:
            embedded = Chem.AddHs(mol)
            AllChem.Compute2DCoords(embedded)
        symbols = [a.GetSymbol() for a in embedded.GetAtoms()]
        return symbols, embedded.GetConformer().GetPositions().astype(np.float32)


def _state_dict(checkpoint, path: Path) -> Mapping:
    import torch

    if isinstance(checkpoint, Mapping):
        for key in ("model", "model_state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(
            f"{path}: expected a state dict of tensors (optionally under 'model'), got {type(checkpoint).__name__}"
        )
    return checkpoint
