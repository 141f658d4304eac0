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

Modules: :mod:`.layout` (the vector's layout), :mod:`.structures` (the structure table),
:mod:`.vector` (one structure → its vector: RDKit, pymatgen), :mod:`.intermediates` (names →
vectors, ``A@B`` intermediates), :mod:`.computed` (:class:`ComputedDescriptors`, the disk
cache), :mod:`.unimol` (:class:`UniMolDescriptors`).  ``nc_synthmodel.computed`` re-exports
the public names for existing imports.
"""

from __future__ import annotations

from .computed import ComputedDescriptors, default_cache_dir
from .layout import DESCRIPTOR_VERSION, FEATURE_NAMES, FRACTION_ELEMENTS
from .structures import KINDS, Structure, UnknownStructureError, read_structures
from .unimol import UniMolDescriptors

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
