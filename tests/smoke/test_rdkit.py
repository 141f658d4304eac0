"""RDKit: a 3D conformer of a real capping ligand."""

from __future__ import annotations

import numpy as np
import pytest

OLEIC_ACID = r"CCCCCCCC/C=C\CCCCCCCC(=O)O"  # C18H34O2


@pytest.mark.smoke
def test_oleic_acid_etkdg_conformer_mmff_optimised():
    """ETKDG embeds all 54 atoms in 3D, MMFF converges, and the cis double bond survives."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(OLEIC_ACID))
    assert mol.GetNumAtoms() == 18 + 34 + 2

    params = AllChem.ETKDGv3()
    params.randomSeed = 42
    assert AllChem.EmbedMolecule(mol, params) == 0
    assert AllChem.MMFFHasAllMoleculeParams(mol)
    assert AllChem.MMFFOptimizeMolecule(mol, maxIters=2000) == 0

    conf = mol.GetConformer()
    assert conf.Is3D()
    xyz = conf.GetPositions()
    assert xyz.shape == (54, 3)
    assert np.all(np.isfinite(xyz))
    assert np.ptp(xyz[:, 2]) > 0.5

    double = next(
        b
        for b in mol.GetBonds()
        if b.GetBondType() == Chem.BondType.DOUBLE and b.GetBeginAtom().GetSymbol() == b.GetEndAtom().GetSymbol() == "C"
    )
    assert double.GetStereo() in (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS)
    Chem.AssignStereochemistryFrom3D(mol)
    assert double.GetStereo() in (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS)
