"""Tests of nc_synthmodel.chem (nc_synthmodel.computed): the structure table, computed descriptors, the cache, Uni-Mol."""

from __future__ import annotations

import csv
import logging
import re
import socket

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("pymatgen")

from nc_synthmodel import computed  # noqa: E402
from nc_synthmodel.chem import computed as chem_computed  # noqa: E402
from nc_synthmodel.chem import unimol as chem_unimol  # noqa: E402
from nc_synthmodel.computed import (  # noqa: E402
    FEATURE_NAMES,
    ComputedDescriptors,
    Structure,
    UniMolDescriptors,
    UnknownStructureError,
    read_structures,
)
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe  # noqa: E402
from nc_synthmodel.descriptors import DescriptorTable, UnknownChemicalError  # noqa: E402
from nc_synthmodel.encoding import RecipeEncoder  # noqa: E402
from nc_synthmodel.augment import IntermediateAugmenter  # noqa: E402
from nc_synthmodel.io import GU_SLOTS  # noqa: E402

SMALL = ["OA", "OLA", "ODE", "PbO", "PbOA2", "Se", "TOP", "PbSe"]


@pytest.fixture(scope="module")
def structures():
    return {s.name: s for s in read_structures()}


@pytest.fixture(scope="module")
def dataset_names(gu2025):
    reactants, products = set(), set()
    for file in ("recipes.csv", "failed_recipes.csv"):
        with open(gu2025 / file, newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                reactants |= {row[f"{slot}2"].strip() for slot in GU_SLOTS}
                products.add(row["T2"].strip())
    reactants.discard("PlaceHolder")
    products.discard("PlaceHolder")
    return reactants, products


@pytest.fixture
def descriptors(tmp_path):
    return ComputedDescriptors(cache_dir=tmp_path / "cache").fit()


def _block(prefix):
    return np.array([name.startswith(prefix) for name in FEATURE_NAMES])


# ------------------------------------------------------------------ structure table


def test_structure_table_covers_every_dataset_name(structures, dataset_names):
    reactants, products = dataset_names
    assert len(reactants) == 551 and len(products) == 350
    missing = sorted((reactants | products) - set(structures))
    assert missing == [], f"names without a structure: {missing}"


def test_every_structure_parses_and_smiles_match_formulas(structures):
    from pymatgen.core import Composition
    from rdkit import Chem, RDLogger
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    RDLogger.DisableLog("rdApp.*")
    problems = []
    for s in structures.values():
        if s.formula:
            try:
                composition = Composition(s.formula, strict=True)
            except Exception as exc:
                problems.append(f"{s.name}: formula {s.formula!r} ({exc})")
                continue
        if s.kind == "solid":
            continue
        mol = Chem.MolFromSmiles(s.smiles)
        if mol is None:
            problems.append(f"{s.name}: SMILES {s.smiles!r} does not parse")
            continue
        if Chem.GetFormalCharge(mol) != 0:
            problems.append(f"{s.name}: net charge {Chem.GetFormalCharge(mol)}")
        if (len(Chem.GetMolFrags(mol)) > 1) != (s.kind == "salt"):
            problems.append(f"{s.name}: kind {s.kind} but {len(Chem.GetMolFrags(mol))} component(s)")
        if s.formula:
            rdkit_formula = Composition(re.sub(r"[+-]\d*$", "", CalcMolFormula(mol)))
            if not rdkit_formula.almost_equals(composition, rtol=0.0, atol=1e-6):
                problems.append(f"{s.name}: SMILES gives {rdkit_formula.formula}, formula {composition.formula}")
    assert problems == []
    kinds = {k: sum(s.kind == k for s in structures.values()) for k in computed.KINDS}
    assert kinds["molecule"] > 150 and kinds["salt"] > 150 and kinds["solid"] > 400
    assert all(s.formula for s in structures.values())  # every row states its composition


def test_abbreviations_follow_the_sheets(structures):
    expected = {
        "OA": "C18H34O2",
        "OLA": "C18H37N",
        "ODE": "C18H36",
        "TOP": "C24H51P",
        "TOPO": "C24H51OP",
        "DT": "C12H26S",
        "PbOA2": "C36H66O4Pb",
        "CdSe-1": "CdSe",
        "CsPbBr3-2": "CsPbBr3",
    }
    for name, formula in expected.items():
        assert structures[name].formula == formula, name
    assert "Oleic acid" in structures["OA"].source and "ligand sheet" in structures["OA"].source
    assert "mp-2691" in structures["CdSe-1"].source
    assert structures["PbO"].kind == "solid" and structures["PbAc2"].kind == "salt"
    assert structures["OA"].smiles == r"CCCCCCCC/C=C\CCCCCCCC(=O)O"  # cis-9


def test_structure_validation_and_kind_inference(tmp_path):
    assert Structure("x", smiles="CCO").kind == "molecule"
    assert Structure("x", smiles="[Na+].[Cl-]").kind == "salt"
    assert Structure("x", formula="CsPbI3").kind == "solid"
    with pytest.raises(ValueError, match="SMILES or a formula"):
        Structure("x")
    with pytest.raises(ValueError, match="formula only"):
        Structure("x", smiles="CCO", kind="solid")
    with pytest.raises(ValueError, match="reserved for intermediates"):
        Structure("A@B", smiles="C")
    with pytest.raises(ValueError, match="empty recipe slot"):
        Structure("PlaceHolder", smiles="C")
    path = tmp_path / "s.csv"
    path.write_text("name,kind,smiles\nx,molecule,C\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['formula'\]"):
        read_structures(path)
    path.write_text("name,kind,smiles,formula\nok,,CCO,\nbad,gas,C,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3.*kind must be one of"):
        read_structures(path)


# ------------------------------------------------------------------ vectors


def test_vector_layout_per_kind(descriptors):
    X = descriptors.transform(SMALL)
    assert X.shape == (len(SMALL), len(FEATURE_NAMES)) and X.dtype == np.float32
    assert descriptors.feature_names_ == FEATURE_NAMES and descriptors.n_features_ == X.shape[1] == 174
    assert len(set(FEATURE_NAMES)) == 174  # documented layout: 4 + 41 + 8 + 44 + 77
    assert np.isfinite(X).all()
    row = dict(zip(SMALL, X))
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    mol, shape, inorg = _block("mol_"), _block("shape_"), _block("inorg_") | _block("frac_")
    # a molecule without inorganic part; a solid without molecule and shape blocks
    assert row["OA"][col["kind_molecule"]] == 1 and not row["OA"][inorg].any()
    assert row["OA"][col["shape_has_conformer"]] == 1 and row["OA"][col["mol_log1p_carboxylic_acid"]] > 0
    assert row["PbO"][col["kind_solid"]] == 1 and not row["PbO"][mol | shape].any()
    np.testing.assert_allclose(row["PbO"][[col["frac_Pb"], col["frac_O"]]], [0.5, 0.5])
    # a salt: both, its inorganic part is the Pb2+ ion
    assert row["PbOA2"][col["kind_salt"]] == 1 and row["PbOA2"][col["frac_Pb"]] == 1
    assert row["PbOA2"][col["mol_max_formal_charge"]] == 2 and row["PbOA2"][col["mol_log1p_carboxylate"]] > 0
    assert row["TOP"][col["frac_P"]] == 1 and row["TOP"][col["mol_log1p_trivalent_p"]] > 0
    np.testing.assert_allclose(row["OA"][col["mol_log1p_weight"]], np.log1p(282.468), atol=1e-3)
    # products: polymorphs share a composition
    np.testing.assert_array_equal(descriptors.descriptor("CdSe-1"), descriptors.descriptor("CdSe-2"))


def test_intermediate_is_the_mean_with_a_flag(descriptors):
    a, b, ab = descriptors.transform(["OA", "PbO", "OA@PbO"])
    expected = (a.astype(float) + b) / 2
    expected[FEATURE_NAMES.index("intermediate")] = 1.0
    np.testing.assert_allclose(ab, expected, rtol=1e-6)
    with pytest.raises(UnknownStructureError, match="'nope'"):
        descriptors.transform(["OA@nope"])
    with pytest.raises(ValueError, match="two non-empty parts"):
        descriptors.transform(["OA@PbO@Se"])


def test_new_chemicals_from_smiles_or_formula(tmp_path):
    extra = [Structure("my-amine", smiles="CCCCCCCCCCCCN"), Structure("my-solid", formula="CsPbI3")]
    cd = ComputedDescriptors(read_structures() + extra, cache_dir=tmp_path).fit(["my-amine", "OA@my-solid"])
    X = cd.transform(["my-amine", "DODA", "my-solid", "CsPbI3"])
    np.testing.assert_array_equal(X[0], X[1])  # dodecylamine under another name
    np.testing.assert_array_equal(X[2], X[3])
    with pytest.raises(ValueError, match="given more than once"):
        ComputedDescriptors(read_structures() + [Structure("OA", smiles="CCO")]).fit()


def test_errors_name_the_problem(tmp_path):
    cd = ComputedDescriptors(cache_dir=tmp_path).fit()
    with pytest.raises(UnknownStructureError) as info:
        cd.transform(["OA", "unobtainium", "ola"])
    assert isinstance(info.value, UnknownChemicalError)
    assert "'unobtainium'" in str(info.value) and "Structure(name, smiles=...)" in str(info.value)
    with pytest.raises(ValueError, match="empty recipe slot"):
        cd.transform(["PlaceHolder"])
    with pytest.raises(TypeError, match="single string"):
        cd.transform("OA")
    bad = [Structure("b1", smiles="C1CC"), Structure("b2", formula="Xx2O"), Structure("b3", smiles="CCO", formula="C2H4O")]
    cd = ComputedDescriptors(bad, use_cache=False).fit()
    with pytest.raises(ValueError, match="'b1'.*cannot parse"):
        cd.transform(["b1"])
    with pytest.raises(ValueError, match="'b2'.*not a chemical formula"):
        cd.transform(["b2"])
    with pytest.raises(ValueError, match="'b3'.*SMILES gives C2H6O"):
        cd.transform(["b3"])
    with pytest.raises(RuntimeError, match="not fitted"):
        ComputedDescriptors().transform(["OA"])
    with pytest.raises(ValueError, match="random_state"):
        ComputedDescriptors(random_state=-1).fit()


# ------------------------------------------------------------------ cache


def test_disk_cache_is_reused_and_corrupt_files_are_recomputed(tmp_path, monkeypatch, caplog):
    calls = []
    original = chem_computed._compute_vector
    monkeypatch.setattr(chem_computed, "_compute_vector", lambda *a: calls.append(a[0].name) or original(*a))
    cache = tmp_path / "cache"
    first = ComputedDescriptors(cache_dir=cache).fit()
    X = first.transform(SMALL)
    assert sorted(calls) == sorted(SMALL) and first.n_computed_ == len(SMALL)
    files = sorted(cache.glob("*.npy"))
    assert len(files) == len(SMALL) and not list(cache.glob("*.tmp"))
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    calls.clear()
    second = ComputedDescriptors(cache_dir=cache).fit()  # a new run: nothing recomputed
    np.testing.assert_array_equal(second.transform(SMALL), X)
    assert calls == [] and second.n_computed_ == 0
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes

    files[0].write_bytes(b"not a numpy file")
    np.save(files[1], np.zeros(3, dtype=np.float32))
    third = ComputedDescriptors(cache_dir=cache).fit()
    with caplog.at_level(logging.WARNING, logger="nc_synthmodel.chem"):
        np.testing.assert_array_equal(third.transform(SMALL), X)  # seeded: the same vectors again
    assert len(calls) == 2 and caplog.text.count("corrupt descriptor cache") == 2
    assert all(np.load(f).shape == (len(FEATURE_NAMES),) for f in files[:2])

    calls.clear()
    ComputedDescriptors(cache_dir=cache, random_state=1).fit().transform(["OA"])  # another seed, another key
    assert calls == ["OA"]
    ComputedDescriptors(use_cache=False).fit().transform(["PbO"])
    assert len(list(cache.glob("*.npy"))) == len(SMALL) + 1


# ------------------------------------------------------------------ tables


def _recipe(recipe_id, product, chemicals):
    roles = {"PbO": "precursor", "Se": "precursor", "TOP": "precursor", "OA": "ligand", "OLA": "ligand", "ODE": "solvent"}
    return Recipe(
        id=recipe_id,
        product=Chemical(name=product, role="product"),
        chemicals=[Chemical(name=n, amount_mmol=a, role=roles.get(n, "other")) for n, a in chemicals],
        conditions=Conditions(injection_temp_c=150.0, reaction_temp_c=140.0, heating_rate_c_per_min=0.0, time_min=5.0),
        outcome=Outcome(size_nm=5.0 + len(chemicals), n_particles=400, shape="sphere"),
    )


def test_table_feeds_encoder_and_augmentation(descriptors):
    recipes = [
        _recipe("r1", "PbSe", [("PbO", 1.0), ("OA", 3.0), ("ODE", 10.0), ("Se", 1.0), ("TOP", 2.0)]),
        _recipe("r2", "PbSe", [("PbO", 2.0), ("OA", 4.0), ("OLA", 1.0), ("ODE", 8.0), ("Se", 2.0), ("TOP", 3.0)]),
        _recipe("r3", "CdSe-1", [("CdO", 1.0), ("OA", 2.0), ("ODE", 9.0), ("Se", 1.0), ("TOP", 1.0)]),
    ]
    table = descriptors.to_table(SMALL + ["OA@PbO", "Se@TOP"])
    assert isinstance(table, DescriptorTable) and table.dim == len(FEATURE_NAMES)
    assert table.intermediates == {"OA@PbO", "Se@TOP"}
    encoded = RecipeEncoder(table, n_flat_components=4).fit_transform(recipes)  # CdO, CdSe-1: the fallback
    assert encoded.tokens.shape == (3, 14, 2 + len(FEATURE_NAMES)) and np.isfinite(encoded.tokens).all()
    np.testing.assert_allclose(encoded.tokens[2, 0, 2:], descriptors.descriptor("CdSe-1"))
    copies = IntermediateAugmenter(table, n_copies=3, random_state=0).augment_all(recipes)
    assert copies and any(c.name in table.intermediates for r in copies for c in r.chemicals)
    RecipeEncoder(table, n_flat_components=4).fit(recipes).transform(copies)


def test_fallback_of_a_saved_table_and_of_the_unimol_table(descriptors, tmp_path, gu2025):
    path = tmp_path / "computed.npz"
    np.savez(path, names=np.array(SMALL), descriptors=descriptors.transform(SMALL))
    table = DescriptorTable.from_npz(path, fallback=descriptors.descriptor)
    np.testing.assert_array_equal(table.lookup(["CdO"])[0], descriptors.descriptor("CdO"))
    unimol = DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz", fallback=descriptors.descriptor)
    assert "Cs3FeCl5" not in unimol  # a product the authors' table lacks
    with pytest.raises(ValueError, match=rf"shape \({len(FEATURE_NAMES)},\).*needs \(512,\)"):
        unimol.lookup(["Cs3FeCl5"])


# ------------------------------------------------------------------ Uni-Mol


@pytest.fixture(scope="module")
def unimol_weights(tmp_path_factory):
    """A randomly initialised Uni-Mol v1 molecule checkpoint and token dictionary, written here."""
    pytest.importorskip("unimol_tools")
    import torch

    folder = tmp_path_factory.mktemp("unimol")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # unimol_tools makes ./logs on import
        chem_unimol._import_unimol()
    from unimol_tools.models.unimol import UniMolModel

    weight_name, dict_name = chem_unimol._unimol_files(remove_hs=False)
    tokens = [
        "[PAD]",
        "[CLS]",
        "[SEP]",
        "[UNK]",
        "C",
        "N",
        "O",
        "S",
        "H",
        "Cl",
        "F",
        "Br",
        "I",
        "Si",
        "P",
        "B",
        "Na",
        "K",
        "Al",
        "Ca",
        "Sn",
        "As",
        "Hg",
        "Fe",
        "Zn",
        "Cr",
        "Se",
        "Gd",
        "Au",
        "Li",
    ]
    (folder / dict_name).write_text("\n".join(tokens) + "\n", encoding="utf-8")
    torch.save({}, folder / "empty.pt")
    torch.manual_seed(0)
    model = UniMolModel(
        output_dim=1,
        data_type="molecule",
        remove_hs=False,
        pretrained_model_path=str(folder / "empty.pt"),
        pretrained_dict_path=str(folder / dict_name),
    )
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classification_head.")}
    torch.save({"model": state}, folder / weight_name)
    (folder / "empty.pt").unlink()
    return folder, state


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_unimol_from_local_random_weights_without_network(unimol_weights, no_network, tmp_path, monkeypatch):
    import torch

    folder, state = unimol_weights
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNIMOL_WEIGHT_DIR", raising=False)
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    um = UniMolDescriptors(folder).fit()
    torch.testing.assert_close(um.model_.model.state_dict()["embed_tokens.weight"], state["embed_tokens.weight"])
    X = um.transform(["OA", "OA", "PbOA2", "OA@OLA", "OLA"])
    assert X.shape == (5, 512) and X.dtype == np.float32 and np.isfinite(X).all()
    np.testing.assert_array_equal(X[0], X[1])
    np.testing.assert_allclose(X[3], (X[0].astype(float) + X[4]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(um.descriptor("OA"), X[0], rtol=1e-5, atol=1e-6)  # seeded conformer: reproducible
    assert np.random.random() == before  # unimol_tools' global reseeding is undone
    with pytest.raises(ValueError, match="'PbO' are solids given by formula only"):
        um.transform(["PbO"])
    path = tmp_path / "unimol_small.npz"
    np.savez(path, names=np.array(["OA"]), descriptors=X[:1])
    table = DescriptorTable.from_npz(path, fallback=um.descriptor)  # a 512-d table extended by Uni-Mol
    assert table.lookup(["TOP"]).shape == (1, 512)
    assert not (tmp_path / "logs").exists()


def test_unimol_missing_or_wrong_weights_are_clear_errors(unimol_weights, no_network, tmp_path):
    import torch

    folder, _ = unimol_weights
    with pytest.raises(FileNotFoundError, match="mol_pre_all_h_220816.pt, mol.dict.txt.*huggingface"):
        UniMolDescriptors(tmp_path).fit()
    (tmp_path / "mol.dict.txt").write_text((folder / "mol.dict.txt").read_text())
    torch.save({"model": {}}, tmp_path / "mol_pre_all_h_220816.pt")
    with pytest.raises(ValueError, match="encoder weight.*missing"):
        UniMolDescriptors(tmp_path).fit()
    (tmp_path / "mol_pre_all_h_220816.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable weights-only"):
        UniMolDescriptors(tmp_path).fit()
