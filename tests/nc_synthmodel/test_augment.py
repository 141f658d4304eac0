"""Tests of nc_synthmodel.augment: reaction-intermediate augmentation of recipes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nc_synthmodel.augment import IntermediateAugmenter
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Provenance, Recipe
from nc_synthmodel.descriptors import DescriptorTable

KNOWN = {"PbO@OLA", "OA@Se", "OLA@OA", "Se@TOP"}


def make_recipe(chemicals, recipe_id="r1"):
    return Recipe(
        id=recipe_id,
        product=Chemical(name="PbSe", role="product"),
        chemicals=[Chemical(name=n, amount_mmol=a, role="precursor") for n, a in chemicals],
        conditions=Conditions(injection_temp_c=140, reaction_temp_c=150, heating_rate_c_per_min=0, time_min=5),
        outcome=Outcome(
            size_nm=4.9, size_dispersion_pct=6.5, n_particles=320, shape="sphere", shape_fractions={"sphere": 0.9, "cube": 0.1}
        ),
        provenance=Provenance(doi="10.1000/example", source_images=["a.tif"]),
    )


PBSE = make_recipe([("PbO", 2.0), ("OLA", 5.0), ("OA", 3.0), ("Se", 1.5), ("TOP", 4.0), ("ODE", 20.0)])


def amounts(recipe):
    return {c.name: c.amount_mmol for c in recipe.chemicals}


def assert_conserved(original, copy, known):
    """n(X) before = n(X) after + the amounts of every intermediate made from X."""
    before, after = amounts(original), amounts(copy)
    made = {n: a for n, a in after.items() if n in known and n not in before}
    for name, amount in before.items():
        used = sum(a for n, a in made.items() if name in n.split("@"))
        assert math.isclose(amount, after.get(name, 0.0) + used, rel_tol=1e-9, abs_tol=1e-12), (name, copy.id)
    assert set(after) <= set(before) | set(made)
    assert all(a > 0 for a in after.values())  # a reactant used up is removed, never left at 0 or below


# ------------------------------------------------------------------ hand-worked recipes


def test_full_reaction_uses_exactly_the_limiting_amount():
    recipe = make_recipe([("PbO", 2.0), ("OLA", 5.0), ("ODE", 10.0)])
    copies = IntermediateAugmenter({"PbO@OLA"}, n_copies=5, max_steps=1, p_full=1.0).augment(recipe)
    assert len(copies) == 1  # every try gives the same copy; duplicates are dropped
    (copy,) = copies
    assert [(c.name, c.amount_mmol, c.role) for c in copy.chemicals] == [
        ("OLA", 3.0, "precursor"),
        ("ODE", 10.0, "precursor"),
        ("PbO@OLA", 2.0, "precursor"),  # PbO, the limiting reactant, is used up and removed
    ]


def test_full_reaction_of_equal_amounts_removes_both():
    recipe = make_recipe([("OLA", 2.5), ("PbO", 2.5)])
    (copy,) = IntermediateAugmenter({"PbO@OLA"}, max_steps=1, p_full=1.0).augment(recipe)
    assert amounts(copy) == {"PbO@OLA": 2.5}


def test_partial_reaction_uses_a_fraction_of_the_limiting_amount():
    recipe = make_recipe([("PbO", 2.0), ("OLA", 5.0)])
    copies = IntermediateAugmenter({"PbO@OLA"}, n_copies=10, max_steps=1, p_full=0.0).augment(recipe)
    assert len(copies) == 10
    for copy in copies:
        n = amounts(copy)
        reacted = n["PbO@OLA"]
        assert 0 < reacted <= 2.0
        assert math.isclose(n["PbO"] + reacted, 2.0) and math.isclose(n["OLA"] + reacted, 5.0)
        assert_conserved(recipe, copy, {"PbO@OLA"})


def test_pair_is_found_in_either_slot_order():
    recipe = make_recipe([("OLA", 5.0), ("PbO", 2.0)])
    copies = IntermediateAugmenter({"PbO@OLA"}, max_steps=1).augment(recipe)
    assert copies and all("PbO@OLA" in amounts(c) for c in copies)


def test_multi_step_copies_conserve_amounts():
    copies = IntermediateAugmenter(KNOWN, n_copies=50, max_steps=3).augment(PBSE)
    assert 10 < len(copies) <= 50
    for copy in copies:
        assert_conserved(PBSE, copy, KNOWN)
    inserted = {c.name for copy in copies for c in copy.chemicals if "@" in c.name}
    assert inserted <= KNOWN and len(inserted) > 1


def test_float_residues_become_zero():
    # B@A leaves 5.015 - 5.0 = 0.01499999999999968 of A; C@A then leaves 3e-16 of C
    recipe = make_recipe([("A", 5.015), ("B", 5.0), ("C", 0.015)])
    copies = IntermediateAugmenter({"B@A", "C@A"}, n_copies=30, max_steps=3, p_full=1.0).augment(recipe)
    assert copies
    for copy in copies:
        assert_conserved(recipe, copy, {"B@A", "C@A"})
        assert min(amounts(copy).values()) > 1e-9


def test_slot_limit_is_respected():
    fillers = [(f"S{i}", 1.0) for i in range(11)]
    full = make_recipe([("PbO", 2.0), ("OLA", 5.0)] + fillers)  # 13 chemicals: no free slot
    assert len(full.chemicals) == 13
    assert IntermediateAugmenter({"PbO@OLA"}, p_full=0.0).augment(full) == []
    # the full reaction would free PbO's slot, but a step needs the slot before it runs
    assert IntermediateAugmenter({"PbO@OLA"}, p_full=1.0).augment(full) == []

    one_free = make_recipe([("PbO", 2.0), ("OLA", 5.0), ("OA", 3.0), ("Se", 1.5)] + fillers[:8])
    copies = IntermediateAugmenter(KNOWN, n_copies=30, p_full=0.0).augment(one_free)
    assert copies
    assert all(len(c.chemicals) <= 13 for c in copies)
    # partial reactions remove nothing, so only one intermediate fits (the same pair may react again)
    assert all(sum("@" in c.name for c in copy.chemicals) == 1 for copy in copies)
    for copy in copies:
        assert_conserved(one_free, copy, KNOWN)


def test_custom_slot_limit():
    recipe = make_recipe([("PbO", 2.0), ("OLA", 5.0)])
    assert IntermediateAugmenter({"PbO@OLA"}, max_chemicals=2).augment(recipe) == []
    assert all(len(c.chemicals) <= 3 for c in IntermediateAugmenter({"PbO@OLA"}, max_chemicals=3).augment(recipe))


def test_recipe_without_a_known_pair_gives_no_copies():
    assert IntermediateAugmenter({"CdO@OA"}).augment(PBSE) == []
    assert IntermediateAugmenter(set()).augment(PBSE) == []
    # a known pair with one reactant at 0 mmol cannot react
    zero = make_recipe([("PbO", 0.0), ("OLA", 5.0)])
    assert IntermediateAugmenter({"PbO@OLA"}).augment(zero) == []


def test_copies_keep_everything_but_the_chemicals():
    copies = IntermediateAugmenter(KNOWN).augment(PBSE)
    assert [c.id for c in copies] == [f"r1-aug{k}" for k in range(len(copies))]
    for copy in copies:
        assert copy.product == PBSE.product
        assert copy.conditions == PBSE.conditions
        assert copy.outcome == PBSE.outcome
        assert copy.provenance == PBSE.provenance
        assert all(c.role == "precursor" for c in copy.chemicals if "@" in c.name)
    copies[0].outcome.shape_fractions["sphere"] = 0.5  # no shared state with the original
    copies[0].provenance.source_images.append("b.tif")
    assert PBSE.outcome.shape_fractions["sphere"] == 0.9 and PBSE.provenance.source_images == ["a.tif"]


def test_copies_are_unique():
    copies = IntermediateAugmenter(KNOWN, n_copies=40).augment(PBSE)
    keys = {tuple((c.name, c.amount_mmol) for c in copy.chemicals) for copy in copies}
    assert len(keys) == len(copies)


def test_same_seed_same_copies():
    def dump(copies):
        return [c.model_dump() for c in copies]

    first = dump(IntermediateAugmenter(KNOWN, random_state=7).augment(PBSE))
    assert first == dump(IntermediateAugmenter(KNOWN, random_state=7).augment(PBSE))
    assert first != dump(IntermediateAugmenter(KNOWN, random_state=8).augment(PBSE))
    # a recipe gets the same copies alone or within a dataset
    other = make_recipe([("OA", 1.0), ("Se", 1.0)], recipe_id="r2")
    together = IntermediateAugmenter(KNOWN, random_state=7).augment_all([other, PBSE])
    assert dump([c for c in together if c.id.startswith("r1-")]) == first


def test_augment_all():
    none = make_recipe([("CdO", 1.0), ("ODE", 5.0)], recipe_id="r0")
    augmenter = IntermediateAugmenter(KNOWN, n_copies=5)
    copies = augmenter.augment_all([none, PBSE])
    assert copies and all(c.id.startswith("r1-aug") for c in copies)
    with_originals = augmenter.augment_all([none, PBSE], include_originals=True)
    assert [r.id for r in with_originals] == ["r0", "r1"] + [c.id for c in copies]


def test_accepts_a_descriptor_table():
    names = ["PbO", "OLA", "PbO@OLA"]
    table = DescriptorTable(names, np.eye(3, dtype=np.float32))
    copies = IntermediateAugmenter(table).augment(PBSE)
    assert copies and {c.name for copy in copies for c in copy.chemicals if "@" in c.name} == {"PbO@OLA"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_copies": 0},
        {"max_steps": 0},
        {"max_chemicals": 0},
        {"p_full": 1.5},
        {"random_state": -1},
        {"random_state": 1.5},
        {"n_copies": True},
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        IntermediateAugmenter(KNOWN, **kwargs).augment(PBSE)


def test_known_intermediates_must_be_a_collection():
    with pytest.raises(TypeError, match="set of 'A@B' names"):
        IntermediateAugmenter("PbO@OLA").augment(PBSE)


# ------------------------------------------------------------------ the Gu et al. recipes


@pytest.fixture(scope="module")
def gu_augmented(gu2025):
    from nc_synthmodel.io import read_recipes

    recipes = read_recipes(gu2025 / "recipes.csv").raise_for_errors().recipes
    table = DescriptorTable.from_npz(gu2025 / "unimol_descriptors.npz")
    copies = IntermediateAugmenter(table, n_copies=10, max_steps=3, random_state=0).augment_all(recipes)
    return recipes, table, copies


def test_gu_expansion(gu_augmented):
    recipes, table, copies = gu_augmented
    with_pair = {r.id for r in recipes if table.intermediates_for([c.name for c in r.chemicals])}
    sources = {c.id.rsplit("-aug", 1)[0] for c in copies}
    assert sources <= with_pair
    assert 5 <= len(copies) / len(with_pair) <= 15


def test_gu_copies_are_valid(gu_augmented):
    recipes, table, copies = gu_augmented
    known = table.intermediates
    by_id = {r.id: r for r in recipes}
    for copy in copies:
        original = by_id[copy.id.rsplit("-aug", 1)[0]]
        inserted = {c.name for c in copy.chemicals} - {c.name for c in original.chemicals}
        assert inserted and all(name in table and name in known for name in inserted)
        assert len(copy.chemicals) <= 13
        assert_conserved(original, copy, known)
