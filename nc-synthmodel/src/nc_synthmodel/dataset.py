"""Dataset-level views of a recipe collection: the summary a chemist reads first."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .contract import ROLES, SHAPE_CLASSES, Recipe
from .io import RecipeSet
from .targets import SOLID_MIN_PARTICLES

__all__ = ["DatasetSummary", "summarize", "read_descriptor_names", "SOLID_MIN_PARTICLES"]


def read_descriptor_names(path: str | os.PathLike) -> set[str]:
    """Names in a descriptor table (``.npz`` with ``names`` and ``descriptors``), without unpickling."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"descriptor table not found: {path}")
    with np.load(path, allow_pickle=False) as table:
        if "names" not in table.files:
            raise ValueError(f"{path}: descriptor table has no 'names' array (has {table.files})")
        return {str(n) for n in table["names"]}


@dataclass
class DatasetSummary:
    """Counts and ranges of a recipe collection (see :func:`summarize`)."""

    n_recipes: int
    n_invalid_rows: int
    n_successful: int
    n_failed: int
    n_products: int
    top_products: list[tuple[str, int]]
    chemicals_by_role: dict[str, int]
    chemicals_without_role: list[str]
    n_solid: int
    n_solid_le_20nm: int
    size_nm_min: float | None
    size_nm_median: float | None
    size_nm_max: float | None
    shape_histogram: dict[str, int]
    missing_descriptors: list[str] | None = None
    invalid_rows: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Human-readable report."""
        lines = [
            f"recipes              {self.n_recipes}  (successful {self.n_successful}, failed {self.n_failed})",
        ]
        if self.n_invalid_rows:
            lines.append(f"invalid rows         {self.n_invalid_rows} (not loaded)")
            lines += [f"  {row}" for row in self.invalid_rows[:10]]
            if self.n_invalid_rows > 10:
                lines.append(f"  … {self.n_invalid_rows - 10} more")
        lines.append(f"products             {self.n_products}  (most recipes: " + ", ".join(f"{p} {n}" for p, n in self.top_products) + ")")
        lines.append("chemicals by role    " + ", ".join(f"{r} {n}" for r, n in self.chemicals_by_role.items()))
        lines.append(
            f"chemicals on no role sheet ({len(self.chemicals_without_role)}): " + (", ".join(self.chemicals_without_role) or "none")
        )
        lines.append(f"rows with N >= {SOLID_MIN_PARTICLES}    {self.n_solid}  (of these, size <= 20 nm: {self.n_solid_le_20nm})")
        if self.size_nm_min is not None:
            lines.append(f"size range (nm)      {self.size_nm_min:g} .. {self.size_nm_max:g}  (median {self.size_nm_median:g})")
        lines.append("shape histogram")
        width = max((len(s) for s in self.shape_histogram), default=0)
        for shape, count in self.shape_histogram.items():
            lines.append(f"  {shape:<{width}}  {count:5d}")
        if self.missing_descriptors is not None:
            lines.append(
                f"chemicals missing from the descriptor table ({len(self.missing_descriptors)}): "
                + (", ".join(self.missing_descriptors) or "none")
            )
        return "\n".join(lines)


def summarize(recipes: RecipeSet | list[Recipe], descriptor_names: set[str] | None = None) -> DatasetSummary:
    """Summarise recipes: products, chemicals by role, solid rows, sizes, shapes, descriptor coverage.

    Chemicals are counted once per distinct name; the product of each recipe counts as a
    chemical of role ``product``.  ``descriptor_names`` (from :func:`read_descriptor_names`)
    adds the list of chemical and product names the table lacks.
    """
    errors = recipes.errors if isinstance(recipes, RecipeSet) else []
    recipes = list(recipes)
    products = Counter(r.product.name for r in recipes if r.product is not None)
    roles: dict[str, str] = {}
    for recipe in recipes:
        for chemical in recipe.chemicals:
            roles.setdefault(chemical.name, chemical.role)
    by_role = Counter(roles.values())
    by_role["product"] = len(products)
    successful = [r for r in recipes if r.outcome is None or r.outcome.success]
    sizes = np.array([r.outcome.size_nm for r in successful if r.outcome and r.outcome.size_nm is not None])
    solid = [r for r in successful if r.outcome and r.outcome.n_particles is not None and r.outcome.n_particles >= SOLID_MIN_PARTICLES]
    shapes = Counter(r.outcome.shape for r in successful if r.outcome and r.outcome.shape)
    missing = None
    if descriptor_names is not None:
        names = set(roles) | set(products)
        missing = sorted(names - descriptor_names)
    return DatasetSummary(
        n_recipes=len(recipes),
        n_invalid_rows=len(errors),
        n_successful=len(successful),
        n_failed=len(recipes) - len(successful),
        n_products=len(products),
        top_products=products.most_common(5),
        chemicals_by_role={role: by_role.get(role, 0) for role in ROLES},
        chemicals_without_role=sorted(n for n, role in roles.items() if role == "other"),
        n_solid=len(solid),
        n_solid_le_20nm=sum(1 for r in solid if r.outcome.size_nm is not None and r.outcome.size_nm <= 20),
        size_nm_min=float(sizes.min()) if sizes.size else None,
        size_nm_median=float(np.median(sizes)) if sizes.size else None,
        size_nm_max=float(sizes.max()) if sizes.size else None,
        shape_histogram={s: shapes.get(s, 0) for s in SHAPE_CLASSES},
        missing_descriptors=missing,
        invalid_rows=[str(e) for e in errors],
    )
