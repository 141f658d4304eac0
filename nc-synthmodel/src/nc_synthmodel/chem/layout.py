"""The computed descriptor vector's layout: :data:`FEATURE_NAMES` and the blocks' offsets.

174 float32 values in one layout for every kind of chemical (kind flags, RDKit molecule
scalars, 3-D shape, pymatgen inorganic-part statistics, element fractions; see
:mod:`nc_synthmodel.chem`).  :data:`DESCRIPTOR_VERSION` is part of every cache key: bump it
when the layout or its computation changes.
"""

from __future__ import annotations

#: Bump when the vector layout or its computation changes (part of every cache key).
DESCRIPTOR_VERSION = 1

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
    _MOL_SCALARS + tuple(f"mol_log1p_n_{e}" for e in _COUNTED_ELEMENTS) + ("mol_log1p_n_metal",) + tuple(f"mol_log1p_{g}" for g in _GROUPS)
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
FEATURE_NAMES: tuple[str, ...] = _KIND_FEATURES + _MOL_FEATURES + _SHAPE_FEATURES + _INORG_FEATURES + _FRACTION_FEATURES
_N_KIND, _N_MOL, _N_SHAPE, _N_INORG = len(_KIND_FEATURES), len(_MOL_FEATURES), len(_SHAPE_FEATURES), len(_INORG_FEATURES)
_MOL_START = _N_KIND
_SHAPE_START = _MOL_START + _N_MOL
_INORG_START = _SHAPE_START + _N_SHAPE
_INTERMEDIATE_INDEX = _KIND_FEATURES.index("intermediate")
