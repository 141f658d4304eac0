"""Tests of nc_synthmodel.descriptors: the table-backed descriptors and intermediate names."""

from __future__ import annotations

import numpy as np
import pytest

from nc_synthmodel.descriptors import (
    DescriptorTable,
    UnknownChemicalError,
    find_intermediates,
    intermediate_name,
)

NAMES = ["PbO", "OLA", "OA", "Se", "PbO@OLA", "OA@Se", "PlaceHolder"]


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def small_npz(tmp_path):
    descriptors = np.arange(len(NAMES) * 4, dtype=np.float32).reshape(len(NAMES), 4)
    descriptors[-1] = 0.0
    return _save(tmp_path / "small.npz", names=np.array(NAMES), descriptors=descriptors)


@pytest.fixture
def table(small_npz):
    return DescriptorTable.from_npz(small_npz)


# ------------------------------------------------------------------ lookups


def test_table_basics(table):
    assert table.dim == 4
    assert len(table) == len(NAMES)
    assert table.names == tuple(NAMES)
    assert "OLA" in table and "ola" not in table and 3 not in table
    assert table.intermediates == {"PbO@OLA", "OA@Se"}
    np.testing.assert_array_equal(table.get("OLA"), [4, 5, 6, 7])
    assert table.get("OLA").dtype == np.float32


def test_get_returns_read_only_view(table):
    vector = table.get("PbO")
    with pytest.raises(ValueError):
        vector[0] = 1.0


def test_lookup_order_and_shape(table):
    out = table.lookup(["Se", "PbO", "Se"])
    assert out.shape == (3, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], table.get("Se"))
    np.testing.assert_array_equal(out[1], table.get("PbO"))
    np.testing.assert_array_equal(out[2], out[0])
    assert table.lookup([]).shape == (0, 4)


def test_lookup_rejects_a_single_string(table):
    with pytest.raises(TypeError, match="single string"):
        table.lookup("PbO")


def test_unknown_names_raise_listing_all_of_them(table):
    with pytest.raises(UnknownChemicalError) as info:
        table.lookup(["PbO", "xyz", "ola", "xyz"])
    error = info.value
    assert isinstance(error, KeyError)
    assert error.names == ["xyz", "ola"]
    message = str(error)
    assert "'xyz'" in message and "did you mean 'OLA'" in message
    assert "fallback=" in message and "Add them to the table" in message
    with pytest.raises(UnknownChemicalError, match="xyz"):
        table.get("xyz")


def test_fallback_fills_unknown_names_and_is_cached(small_npz):
    calls = []

    def fallback(name):
        calls.append(name)
        return np.full(4, 0.5)

    table = DescriptorTable.from_npz(small_npz, fallback=fallback)
    out = table.lookup(["xyz", "PbO", "xyz"])
    np.testing.assert_array_equal(out[0], [0.5] * 4)
    np.testing.assert_array_equal(out[1], table.get("PbO"))
    np.testing.assert_array_equal(table.get("xyz"), [0.5] * 4)
    assert calls == ["xyz"]
    assert "xyz" not in table


@pytest.mark.parametrize(
    ("vector", "match"),
    [(np.zeros(3), r"shape \(3,\).*needs \(4,\)"), (np.full(4, np.nan), "NaN or inf"), (np.zeros((1, 4)), "shape")],
)
def test_fallback_output_is_validated(small_npz, vector, match):
    table = DescriptorTable.from_npz(small_npz, fallback=lambda name: vector)
    with pytest.raises(ValueError, match=match):
        table.lookup(["xyz"])


# ------------------------------------------------------------------ validation of the file


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="descriptor table not found"):
        DescriptorTable.from_npz(tmp_path / "none.npz")


def test_not_an_npz(tmp_path):
    path = tmp_path / "table.npz"
    path.write_text("names,descriptors\n")
    with pytest.raises(ValueError, match="not an .npz"):
        DescriptorTable.from_npz(path)


def test_missing_array(tmp_path):
    path = _save(tmp_path / "t.npz", names=np.array(["a"]))
    with pytest.raises(ValueError, match=r"lacks \['descriptors'\]"):
        DescriptorTable.from_npz(path)


def test_object_arrays_are_not_unpickled(tmp_path):
    path = _save(tmp_path / "t.npz", names=np.array(["a", "b"], dtype=object), descriptors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="no unpickling"):
        DescriptorTable.from_npz(path)


@pytest.mark.parametrize(
    ("names", "descriptors", "match"),
    [
        (["a", "b"], np.zeros((3, 4)), "2 names but 3 descriptor rows"),
        (["a", "b"], np.zeros(2), "2-D numeric"),
        (["a", "b"], np.zeros((2, 0)), "dimension 0"),
        (["a", "b"], np.array([[0.0, np.nan], [1.0, 2.0]]), r"NaN or inf: 'a'"),
        (["a", "b"], np.array([[0.0, 1.0], [np.inf, 2.0]]), r"NaN or inf: 'b'"),
        (["a", "a", "b"], np.zeros((3, 2)), "more than once: 'a'"),
        (["a", " b"], np.zeros((2, 2)), "whitespace"),
        ([1, 2], np.zeros((2, 2)), "array of strings"),
    ],
)
def test_bad_tables_name_the_problem(tmp_path, names, descriptors, match):
    path = _save(tmp_path / "t.npz", names=np.array(names), descriptors=descriptors)
    with pytest.raises(ValueError, match=match):
        DescriptorTable.from_npz(path)


# ------------------------------------------------------------------ intermediates


def test_intermediate_name():
    assert intermediate_name("PbO", "OLA") == "PbO@OLA"
    with pytest.raises(ValueError):
        intermediate_name("", "OLA")


def test_intermediates_for_tries_both_orientations(table):
    # the table holds PbO@OLA and OA@Se; the tuple follows the table's orientation
    found = table.intermediates_for(["OLA", "Se", "PbO", "OA", "ODE"])
    assert found == [("PbO", "OLA", "PbO@OLA"), ("OA", "Se", "OA@Se")]
    assert table.intermediates_for(["PbO", "Se"]) == []
    assert table.intermediates_for(["PbO", "PbO"]) == []


def test_find_intermediates_prefers_the_given_order_when_both_exist():
    assert find_intermediates(["A", "B"], {"A@B", "B@A"}) == [("A", "B", "A@B")]
    assert find_intermediates(["B", "A"], {"A@B", "B@A"}) == [("B", "A", "B@A")]


# ------------------------------------------------------------------ the Gu et al. table


@pytest.fixture(scope="module")
def gu_table(gu2025):
    return DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz")


def test_gu_table_shape(gu_table):
    assert len(gu_table) == 1800 and gu_table.dim == 512
    assert gu_table.dtype == np.float32
    assert len(gu_table.intermediates) == 910
    assert not gu_table.get("PlaceHolder").any()


def test_gu_table_stores_each_pair_in_one_orientation(gu_table):
    pairs = [name.split("@") for name in gu_table.intermediates]
    assert all(len(pair) == 2 for pair in pairs)
    assert not any(f"{b}@{a}" in gu_table for a, b in pairs)
    # and the orientation is not alphabetical, so lookups must try both
    assert any(a > b for a, b in pairs) and any(a < b for a, b in pairs)


def test_gu_table_covers_reactants_but_not_every_product(gu_table, gu2025):
    from nc_synthmodel.io import read_recipes

    recipes = read_recipes(gu2025 / "recipes.csv").recipes
    reactants = sorted({c.name for r in recipes for c in r.chemicals})
    assert gu_table.lookup(reactants).shape == (len(reactants), 512)
    products = sorted({r.product.name for r in recipes})
    with pytest.raises(UnknownChemicalError) as info:
        gu_table.lookup(products)
    assert len(info.value.names) == 15
    assert "Cs3FeCl5" in info.value.names
