"""One structure → its descriptor vector, with RDKit (molecules, salts) and pymatgen (solids).

:func:`_compute_vector` parses a :class:`~.structures.Structure` (SMILES with RDKit, formula
with pymatgen; both must agree), and fills the blocks of :mod:`.layout`: molecule scalars and
SMARTS group counts, a seeded ETKDG + MMFF/UFF conformer's shape, and the element statistics
and fractions of the inorganic part.  RDKit and pymatgen (install extra ``chem``) are
imported inside the functions.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from functools import cache

import numpy as np

from .layout import (
    _BLOCKS,
    _COUNTED_ELEMENTS,
    _ELEMENT_PROPERTIES,
    _FRACTION_FEATURES,
    _GROUPS,
    _INORG_START,
    _MOL_START,
    _N_INORG,
    _N_SHAPE,
    _SHAPE_START,
    FEATURE_NAMES,
    FRACTION_ELEMENTS,
)
from .structures import _CHEM_HINT, KINDS, Structure

logger = logging.getLogger(__name__)


def _import_chem():
    try:
        from pymatgen.core import Composition  # noqa: F401
        from rdkit import Chem  # noqa: F401
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
            f"structure {structure.name!r}: the SMILES gives {_hill_formula(found)} but the formula says {structure.formula!r}"
        )


def _hill_formula(counts: Mapping[str, float]) -> str:
    order = [e for e in ("C", "H") if e in counts] + sorted(e for e in counts if e not in ("C", "H"))
    return "".join(f"{e}{'' if counts[e] == 1 else f'{counts[e]:g}'}" for e in order)


@cache
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


@cache
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
    """The descriptor vector of one structure (layout: :mod:`nc_synthmodel.chem`)."""
    vector = np.zeros(len(FEATURE_NAMES), dtype=float)
    vector[KINDS.index(structure.kind)] = 1.0
    if structure.kind == "solid":
        counts = _parse_formula(structure.name, structure.formula).get_el_amt_dict()
    else:
        mol = _parse_smiles(structure)
        _check_consistent(structure, mol)
        if structure.kind == "molecule" and mol.GetNumAtoms() and len(_components(mol)) > 1:
            raise ValueError(f"structure {structure.name!r}: a molecule is one component; use kind='salt' for {structure.smiles!r}")
        vector[_MOL_START:_SHAPE_START] = _molecule_features(mol)
        vector[_SHAPE_START:_INORG_START] = _shape_features(mol, random_state, max_iters)
        counts = _inorganic_counts(mol)
    vector[_INORG_START:] = _inorganic_features(counts)
    if not np.isfinite(vector).all():
        bad = [FEATURE_NAMES[i] for i in np.flatnonzero(~np.isfinite(vector))]
        raise ValueError(f"structure {structure.name!r}: non-finite descriptor values for {bad}")
    return vector.astype(np.float32)
