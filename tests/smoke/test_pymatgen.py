"""pymatgen: compositions of nanocrystal formulae."""

from __future__ import annotations

import pytest

CASES = [
    # formula, element amounts, reduced formula, molar mass (g/mol)
    ("PbSe", {"Pb": 1, "Se": 1}, "PbSe", 286.17),
    ("Cs2NaBiCl6", {"Cs": 2, "Na": 1, "Bi": 1, "Cl": 6}, "Cs2NaBiCl6", 710.50),
    ("Ag2S", {"Ag": 2, "S": 1}, "Ag2S", 247.80),
    ("Pb2Se2", {"Pb": 2, "Se": 2}, "PbSe", 572.34),
]


@pytest.mark.smoke
@pytest.mark.parametrize(("formula", "amounts", "reduced", "weight"), CASES)
def test_composition(formula, amounts, reduced, weight):
    """Element amounts, reduced formula and molar mass match hand-computed values."""
    from pymatgen.core import Composition

    comp = Composition(formula)
    assert {str(el): amt for el, amt in comp.items()} == pytest.approx(amounts)
    assert comp.reduced_formula == reduced
    assert float(comp.weight) == pytest.approx(weight, abs=0.05)
