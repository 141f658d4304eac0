"""Source publications of recipes: ``recipes.csv`` rows linked to ``raw_recipe_dataset.xlsx`` rows.

:func:`link_recipes` matches each recipe to its raw row (exact, then tolerant stages) and so
to a DOI or "self-synthesis" (:class:`SourceLinks`); :func:`publication_groups` turns that
into one group label per recipe, the groups of :func:`~.splits.grouped_folds`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..contract import Recipe
from .splits import _as_list

logger = logging.getLogger(__name__)


_XLSX_CHEMICAL_SLOTS = 10
_RTOL = 0.01  # relative tolerance of the "tolerant" match stage


@dataclass(frozen=True)
class _Source:
    row_id: str
    product: str | None
    numbers: tuple  # injection T, reaction T, time, as _q() keys
    chemicals: tuple  # sorted (name, amount) with raw floats
    size_nm: float | None
    n_particles: float | None
    doi: str | None

    @property
    def names(self) -> tuple:
        return tuple(name for name, _ in self.chemicals)


@dataclass
class SourceLinks:
    """Link of each recipe to a row of the source workbook (:func:`link_recipes`).

    Attributes
    ----------
    source_row : list of str or None
        ID of the linked source row (``"xlsx-<spreadsheet row>"``), None if unmatched.
    doi : list of str or None
        Normalised DOI (lower case, no URL prefix) or ``"self-synthesis"``.
    stage : list of str
        How the link was made: ``"exact"`` (product, temperatures, time, chemicals and
        amounts equal), ``"tolerant"`` (same chemicals, numbers within 1 %),
        ``"names"`` (same product and chemical names, every such source row from one
        publication) or ``"unmatched"``.
    n_ambiguous : int
        Links chosen among candidates from more than one publication.
    """

    source_row: list[str | None]
    doi: list[str | None]
    stage: list[str]
    n_ambiguous: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def match_rate(self) -> float:
        """Fraction of recipes linked to a source row."""
        return sum(s != "unmatched" for s in self.stage) / len(self.stage) if self.stage else float("nan")


def _q(value) -> float | None:
    """A number as a hashable key: 6 significant digits; None for missing."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return float(f"{value:.6g}")


def _normalise_doi(doi) -> str | None:
    if not isinstance(doi, str) or not doi.strip():
        return None
    text = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    return text.strip().lower()


def _source_from_recipe(recipe: Recipe) -> _Source:
    c, o = recipe.conditions, recipe.outcome
    return _Source(
        row_id=recipe.id,
        product=recipe.product.name if recipe.product is not None else None,
        numbers=(_q(c.injection_temp_c), _q(c.reaction_temp_c), _q(c.time_min)),
        chemicals=_sorted_chemicals((ch.name, ch.amount_mmol) for ch in recipe.chemicals),
        size_nm=None if o is None else o.size_nm,
        n_particles=None if o is None else o.n_particles,
        doi=_normalise_doi(recipe.provenance.doi),
    )


def _sorted_chemicals(chemicals) -> tuple:
    return tuple(sorted(chemicals, key=lambda item: (item[0], item[1] is None, item[1] or 0.0)))


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _read_sources(path: Path) -> list[_Source]:
    """Rows of ``raw_recipe_dataset.xlsx``, leniently: a bad cell is missing, not an error."""
    import pandas as pd

    frame = pd.read_excel(path, sheet_name=0, dtype=object)
    needed = ["Nanocrystal Composition", "injection temperature/℃", "reaction temperature/℃", "reaction time/min", "DOI"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not the raw recipe workbook layout; missing columns {missing}")
    sources = []
    for index, row in enumerate(frame.to_dict("records")):
        chemicals = []
        for i in range(_XLSX_CHEMICAL_SLOTS):
            suffix = "" if i == 0 else f".{i}"
            name = _text(row.get(f"reactants{suffix}"))
            if name:
                chemicals.append((name, _number(row.get(f"additive amount/mmol{suffix}"))))
        sources.append(
            _Source(
                row_id=f"xlsx-{index + 2}",
                product=_text(row.get("Nanocrystal Composition")),
                numbers=tuple(_q(_number(row.get(c))) for c in ("injection temperature/℃", "reaction temperature/℃", "reaction time/min")),
                chemicals=_sorted_chemicals(chemicals),
                size_nm=_number(row.get("D/nm")),
                n_particles=_number(row.get("Number of statistics")),
                doi=_normalise_doi(row.get("DOI")),
            )
        )
    return sources


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= _RTOL * max(abs(a), abs(b)) + 1e-12


def link_recipes(recipes: Sequence[Recipe], source: Sequence[Recipe] | str | os.PathLike) -> SourceLinks:
    """Link recipes (e.g. ``recipes.csv``) to rows of their source workbook by content.

    Parameters
    ----------
    recipes : sequence of Recipe
    source : path of ``raw_recipe_dataset.xlsx``, or recipes read from it
        A path is read leniently (rows with unreadable cells still take part; the
        strict reader :func:`~nc_synthmodel.io.read_recipes` drops 15 of the 3,508 rows).

    The chemical sets and amounts, product, temperatures and time must agree
    ("exact", 6 significant digits), or agree within 1 % ("tolerant"); sizes are not
    compared, because ``recipes.csv`` rescales the sizes of some publications.  Among
    several candidates, an unused row with the same size and particle count wins.
    Failing both, a recipe takes the publication of the source rows with the same
    product and chemical names if they all come from one ("names").
    """
    recipes = _as_list(recipes)
    if isinstance(source, (str, os.PathLike)):
        sources = _read_sources(Path(source))
    else:
        sources = [_source_from_recipe(r) for r in _as_list(source)]
    exact: dict[tuple, list[int]] = defaultdict(list)
    by_names: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sources):
        exact[(s.product, s.numbers, tuple((n, _q(a)) for n, a in s.chemicals))].append(i)
        by_names[(s.product, s.names)].append(i)
    used: set[int] = set()
    rows: list[str | None] = []
    dois: list[str | None] = []
    stages: list[str] = []
    n_ambiguous = 0
    for recipe in recipes:
        mine = _source_from_recipe(recipe)
        candidates = exact.get((mine.product, mine.numbers, tuple((n, _q(a)) for n, a in mine.chemicals)), [])
        stage = "exact"
        if not candidates:
            stage = "tolerant"
            candidates = [
                i
                for i in by_names.get((mine.product, mine.names), [])
                if all(_close(a, b) for a, b in zip(mine.numbers, sources[i].numbers))
                and all(_close(a[1], b[1]) for a, b in zip(mine.chemicals, sources[i].chemicals))
            ]
        if candidates:
            ranked = sorted((_preference(mine, sources[i], i in used), i) for i in candidates)
            best = ranked[0][1]
            n_ambiguous += len({sources[i].doi for rank, i in ranked if rank[:3] == ranked[0][0][:3]}) > 1
            used.add(best)
            rows.append(sources[best].row_id)
            dois.append(sources[best].doi)
            stages.append(stage)
            continue
        publications = {sources[i].doi for i in by_names.get((mine.product, mine.names), [])}
        if len(publications) == 1:
            rows.append(None)
            dois.append(publications.pop())
            stages.append("names")
        else:
            rows.append(None)
            dois.append(None)
            stages.append("unmatched")
    counts = dict(Counter(stages))
    links = SourceLinks(rows, dois, stages, n_ambiguous, counts)
    logger.info(
        "linked %d of %d recipes to a source row or publication (%.2f %%): %s; %d ambiguous",
        len(stages) - counts.get("unmatched", 0),
        len(stages),
        100 * links.match_rate,
        counts,
        n_ambiguous,
    )
    return links


def _preference(mine: _Source, other: _Source, used: bool) -> tuple:
    same_size = mine.size_nm is not None and other.size_nm is not None and math.isclose(mine.size_nm, other.size_nm, rel_tol=1e-6)
    same_n = mine.n_particles is not None and mine.n_particles == other.n_particles
    return (used, not same_size, not same_n, other.row_id)


def publication_groups(
    recipes: Sequence[Recipe],
    source: Sequence[Recipe] | str | os.PathLike,
    *,
    unmatched: Literal["own", "product"] = "own",
) -> list[str]:
    """Source publication of each recipe: its DOI (lower case), ``"self-synthesis"``, or
    for a recipe that :func:`link_recipes` cannot link, ``"unmatched:<id>"`` (its own
    group) or, with ``unmatched="product"``, ``"unmatched:<product>"`` (a coarser,
    more conservative grouping).
    """
    if unmatched not in ("own", "product"):
        raise ValueError(f"unmatched must be 'own' or 'product', got {unmatched!r}")
    recipes = _as_list(recipes)
    links = link_recipes(recipes, source)
    groups = []
    for recipe, doi in zip(recipes, links.doi):
        if doi is not None:
            groups.append(doi)
        elif unmatched == "own":
            groups.append(f"unmatched:{recipe.id}")
        else:
            groups.append(f"unmatched:{recipe.product.name if recipe.product else recipe.id}")
    return groups
