"""Reaction-intermediate augmentation of recipes (Gu, Liang et al., ACS Nano 2025).

Two reactants A and B of a recipe whose intermediate ``A@B`` is known (has a
descriptor) are partly or fully "pre-reacted": with probability ``p_full`` (½ in the
paper) the limiting amount ``min(n_A, n_B)`` reacts, otherwise a random fraction of it.
The intermediate enters the recipe with the reacted amount (mmol) and role
``"precursor"``; A and B lose that amount.  1 to ``max_steps`` such steps make one
augmented copy; the outcome is unchanged, since the same chemistry happened.

Conventions of this implementation:

* amounts are conserved per step: ``n_A(before) = n_A(after) + reacted``, same for B,
  and the intermediate gains exactly ``reacted``.  Amounts never go below 0; what is
  left of A or B below 1e-9 of its amount is float error and becomes exactly 0;
* a reactant reduced to 0 mmol is removed from the recipe (the remaining chemicals keep
  their slot order); the full reaction therefore always removes the limiting reactant;
* the intermediate takes the first free slot (the end of the chemical list).  A step
  needs a free slot *before* it runs (at most ``max_chemicals``, the 13 slots of the
  Gu et al. CSV), as in the authors' code; when the intermediate is already in the
  recipe (same pair reacted again) its amount grows instead and no slot is needed;
* the pair of each step is drawn uniformly among the known pairs present; a copy
  stops early when no pair (or no slot) is left, and a recipe with no usable pair
  gives no copies.  Identical copies are dropped.

Randomness is seeded per recipe from ``(random_state, recipe.id)``, so a recipe gets
the same copies whether it is augmented alone or within a dataset.
"""

from __future__ import annotations

import logging
import numbers
import zlib
from collections.abc import Callable, Collection, Iterable

import numpy as np

from ..contract import Recipe
from ..descriptors import DescriptorTable, find_intermediates
from ..io import GU_SLOTS

__all__ = ["IntermediateAugmenter", "INTERMEDIATE_ROLE"]

logger = logging.getLogger(__name__)

#: Role given to an inserted intermediate.
INTERMEDIATE_ROLE = "precursor"

# what is left of a reactant below this fraction of its amount is float error: set to 0
_RESIDUE_RTOL = 1e-9

# while augmenting, a chemical is a row [name, amount_mmol, role]
_Rows = list[list]
_PairFinder = Callable[[tuple[str, ...]], list[tuple[str, str, str]]]


class IntermediateAugmenter:
    """Augment recipes by pre-reacting pairs of reactants into known intermediates.

    Parameters
    ----------
    known_intermediates : set of str or DescriptorTable
        Names ``"A@B"`` of intermediates that may be inserted; with a
        :class:`~nc_synthmodel.descriptors.DescriptorTable`, the ``A@B`` names it holds.
        A pair is found in either orientation (``A@B`` or ``B@A``), the name used is the
        known one.
    n_copies : int
        Augmented copies tried per recipe (duplicates are dropped, so fewer may come back).
    max_steps : int
        Each copy performs a random number of reaction steps in ``1..max_steps``.
    p_full : float
        Probability that a step reacts the whole limiting amount; otherwise a fraction
        drawn uniformly from (0, 1] of it reacts.
    max_chemicals : int
        Most chemicals a recipe may hold (13, the slots A..M of the Gu et al. CSV).
    random_state : int or None
        Seed; ``None`` draws fresh entropy on every call.

    Examples
    --------
    >>> table = DescriptorTable.from_npz("gu2025/unimol_descriptors.npz")  # doctest: +SKIP
    >>> copies = IntermediateAugmenter(table, n_copies=10).augment_all(recipes)  # doctest: +SKIP
    """

    def __init__(
        self,
        known_intermediates: Collection[str] | DescriptorTable,
        n_copies: int = 10,
        max_steps: int = 3,
        p_full: float = 0.5,
        max_chemicals: int = len(GU_SLOTS),
        random_state: int | None = 0,
    ):
        self.known_intermediates = known_intermediates
        self.n_copies = n_copies
        self.max_steps = max_steps
        self.p_full = p_full
        self.max_chemicals = max_chemicals
        self.random_state = random_state

    # ------------------------------------------------------------------ public

    def augment(self, recipe: Recipe) -> list[Recipe]:
        """Augmented copies of one recipe, with IDs ``f"{recipe.id}-aug{k}"`` (k = 0, 1, …)."""
        return self._augment(recipe, self._prepare())

    def augment_all(self, recipes: Iterable[Recipe], *, include_originals: bool = False) -> list[Recipe]:
        """Augmented copies of every recipe, in input order.

        With ``include_originals=True`` each recipe is followed by its copies, otherwise
        only the copies are returned.
        """
        known = self._prepare()
        out: list[Recipe] = []
        n_recipes = n_augmented = n_copies = 0
        for recipe in recipes:
            n_recipes += 1
            copies = self._augment(recipe, known)
            if include_originals:
                out.append(recipe)
            out.extend(copies)
            n_augmented += bool(copies)
            n_copies += len(copies)
        logger.info(
            "augmented %d of %d recipes into %d copies (%.2f per augmented recipe)",
            n_augmented,
            n_recipes,
            n_copies,
            n_copies / n_augmented if n_augmented else 0.0,
        )
        return out

    # ------------------------------------------------------------------ internals

    def _prepare(self) -> Collection[str]:
        """Validate the parameters; the container that answers ``"A@B" in known``."""
        for name in ("n_copies", "max_steps", "max_chemicals"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.p_full, numbers.Real) or not 0.0 <= self.p_full <= 1.0:
            raise ValueError(f"p_full must be a probability in [0, 1], got {self.p_full!r}")
        seed = self.random_state
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"random_state must be a non-negative int or None, got {seed!r}")
        known = self.known_intermediates
        if isinstance(known, DescriptorTable):
            return known.intermediates
        if isinstance(known, str) or not isinstance(known, Collection):
            raise TypeError(f"known_intermediates must be a set of 'A@B' names or a DescriptorTable, got {type(known).__name__}")
        return frozenset(known)

    def _rng(self, recipe_id: str) -> np.random.Generator:
        if self.random_state is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.random_state), zlib.crc32(recipe_id.encode("utf-8"))])

    def _augment(self, recipe: Recipe, known: Collection[str]) -> list[Recipe]:
        start = [[c.name, float(c.amount_mmol), c.role] for c in recipe.chemicals]
        if not find_intermediates([row[0] for row in start if row[1] > 0], known):
            return []
        rng = self._rng(recipe.id)
        pairs_of: dict[tuple[str, ...], list] = {}  # memo: reactant names → known pairs

        def find_pairs(names: tuple[str, ...]) -> list[tuple[str, str, str]]:
            if names not in pairs_of:
                pairs_of[names] = find_intermediates(names, known)
            return pairs_of[names]

        base = recipe.model_dump(exclude={"id", "chemicals"})
        seen: set[tuple] = set()
        copies: list[Recipe] = []
        for _ in range(self.n_copies):
            rows = self._react(start, find_pairs, rng)
            if rows is None:
                continue
            key = tuple(map(tuple, rows))
            if key in seen:
                continue
            seen.add(key)
            chemicals = [{"name": n, "amount_mmol": a, "role": r} for n, a, r in rows]
            copies.append(Recipe.model_validate({**base, "id": f"{recipe.id}-aug{len(copies)}", "chemicals": chemicals}))
        return copies

    def _react(self, start: _Rows, find_pairs: _PairFinder, rng: np.random.Generator) -> _Rows | None:
        """One augmented chemical list (rows of ``[name, amount_mmol, role]``), or None."""
        rows = [list(row) for row in start]
        n_steps = 1 + _draw_index(rng, self.max_steps)
        done = 0
        for _ in range(n_steps):
            by_name = {row[0]: row for row in rows}
            pairs = find_pairs(tuple(row[0] for row in rows if row[1] > 0))
            has_slot = len(rows) < self.max_chemicals
            pairs = [p for p in pairs if has_slot or p[2] in by_name]
            if not pairs:
                break
            a, b, name = pairs[_draw_index(rng, len(pairs))]
            row_a, row_b = by_name[a], by_name[b]
            limiting = min(row_a[1], row_b[1])
            reacted = limiting if rng.random() < self.p_full else limiting * (1.0 - rng.random())
            if not 0.0 < reacted <= limiting:  # underflow of a subnormal amount
                reacted = limiting
            for row in (row_a, row_b):
                left = row[1] - reacted  # fl(x - y) >= 0 for floats x >= y: the limiting one hits 0 exactly
                # a residue of earlier float error (0.015 - 0.01499999999999968) is 0, not 3e-16 mmol
                row[1] = left if left > _RESIDUE_RTOL * row[1] else 0.0
            if name in by_name:
                by_name[name][1] += reacted
            else:
                rows.append([name, reacted, INTERMEDIATE_ROLE])
            rows = [row for row in rows if not (row[1] == 0.0 and row[0] in (a, b))]
            done += 1
        return rows if done else None


def _draw_index(rng: np.random.Generator, n: int) -> int:
    """Uniform integer in ``0..n-1`` (``rng.integers`` is several times slower per call)."""
    return min(int(rng.random() * n), n - 1)
