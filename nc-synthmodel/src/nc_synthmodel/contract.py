"""The layer-to-recipe data contract shared by napari-nanocrystal and nc-synthmodel.

A :class:`Recipe` is one synthesis: a product, the chemicals that went in (in slot
order), the reaction conditions, the measured :class:`Outcome` and where the numbers
came from (:class:`Provenance`).  napari-nanocrystal produces a per-particle table
(:data:`PARTICLE_COLUMNS`, what a Labels layer's ``features`` hold) and turns it into an
:class:`Outcome` with :func:`outcome_from_particles`; nc-synthmodel learns from recipes.

Units are part of the field names: ``*_mmol``, ``*_c`` (degrees Celsius), ``*_nm``,
``*_px``, ``*_pct``.  Bad values raise :class:`RecipeValidationError`, which names the
recipe, the field and the value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "SCHEMA_VERSION",
    "ROLES",
    "SHAPE_CLASSES",
    "CALIBRATION_SOURCES",
    "Chemical",
    "Conditions",
    "Outcome",
    "Provenance",
    "Recipe",
    "RecipeValidationError",
    "FieldProblem",
    "LIMITS",
    "MAX_CHEMICALS",
    "PLAUSIBLE_NM_PER_PX",
    "validate_recipe",
    "PARTICLE_COLUMNS",
    "empty_particle_table",
    "validate_particle_table",
    "outcome_from_particles",
]

#: Version of the JSON schema written by :func:`nc_synthmodel.io.write_json`.
#: Readers accept any ``1.x``; a new major version means an incompatible change.
SCHEMA_VERSION = "1.0"

Role = Literal["product", "precursor", "ligand", "solvent", "other"]
ROLES: tuple[str, ...] = ("product", "precursor", "ligand", "solvent", "other")

#: The 11 shape classes of the Gu et al. recipe dataset, in index order (``Y3``).
SHAPE_CLASSES: tuple[str, ...] = (
    "Irregular shape",
    "cube",
    "flower shape",
    "four-pointed star",
    "hexagon",
    "rectangle",
    "rhombus",
    "rod",
    "six-pointed star",
    "sphere",
    "triangle",
)

CalibrationSource = Literal["ocr", "metadata", "manual"]
CALIBRATION_SOURCES: tuple[str, ...] = ("ocr", "metadata", "manual")

#: Name used by the Gu et al. tables for an empty chemical slot.
PLACEHOLDER = "PlaceHolder"

#: Most chemicals one recipe may list (the Gu et al. tables have 13 slots, the raw workbook 10).
MAX_CHEMICALS = 50

#: Plausible pixel sizes of a micrograph (nm/px), inclusive: 1 pm (finer than atomic-resolution
#: STEM) to 5 µm (a light micrograph).  Anything outside is a unit mistake or a misreading.
PLAUSIBLE_NM_PER_PX = (1e-3, 5e3)

#: Plausible ranges of the recipe numbers: field → (low, high, unit).  The Gu et al. data
#: span -50..385 °C, ≤ 60 °C/min, ≤ 14,400 min, ≤ 55,549 mmol, 0.9..5,822 nm, ≤ 78 %, ≤ 18,495 particles.
LIMITS: dict[str, tuple[float, float, str]] = {
    "amount_mmol": (0.0, 1e6, "mmol"),
    "temp_c": (-273.15, 2000.0, "°C"),
    "heating_rate_c_per_min": (0.0, 1000.0, "°C/min"),
    "time_min": (0.0, 1e5, "min"),
    "size_nm": (0.0, 1e5, "nm"),
    "size_dispersion_pct": (0.0, 1000.0, "%"),
    "n_particles": (0, 10_000_000, "particles"),
    "nm_per_px": (*PLAUSIBLE_NM_PER_PX, "nm/px"),
}


def _number_not_text(value: Any) -> Any:
    """Numbers stay numbers: text ("5"), bytes and booleans are refused, not converted."""
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"expected a number, not {type(value).__name__} {value!r}")
    return value


def _limit(name: str, value: float | None, *, low_open: bool = False) -> float | None:
    """``value`` within :data:`LIMITS` ``[name]``, else a ValueError that gives the range and unit."""
    if value is None:
        return None
    low, high, unit = LIMITS[name]
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{value:g} {unit} is outside the plausible range {bracket}{low:g}, {high:g}] {unit}")
    return value


class _FieldError(ValueError):
    """Raised by a model-level check to name the field (relative to the model) and its value."""

    def __init__(self, field: str, value: Any, message: str):
        super().__init__(message)
        self.field, self.value = field, value


_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


class Chemical(BaseModel):
    """One chemical of a recipe: its name, the amount added (mmol) and its role."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    amount_mmol: float | None = Field(default=None, ge=0)
    role: Role = "other"

    @field_validator("amount_mmol", mode="before")
    @classmethod
    def _amount_is_number(cls, value: Any) -> Any:
        return _number_not_text(value)

    @field_validator("amount_mmol")
    @classmethod
    def _amount_range(cls, value: float | None) -> float | None:
        return _limit("amount_mmol", value)

    @field_validator("name")
    @classmethod
    def _clean_name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("chemical name is empty")
        if name == PLACEHOLDER:
            raise ValueError(f"{PLACEHOLDER!r} marks an empty slot, not a chemical")
        return name


class Conditions(BaseModel):
    """Reaction conditions. A heating rate of 0 means hot injection."""

    model_config = _STRICT

    injection_temp_c: float = Field(gt=-273.15)
    reaction_temp_c: float = Field(gt=-273.15)
    heating_rate_c_per_min: float = Field(default=0.0, ge=0)
    time_min: float = Field(ge=0)

    @field_validator("*", mode="before")
    @classmethod
    def _is_number(cls, value: Any) -> Any:
        return _number_not_text(value)

    @field_validator("injection_temp_c", "reaction_temp_c")
    @classmethod
    def _temperature_range(cls, value: float) -> float:
        return _limit("temp_c", value, low_open=True)

    @field_validator("heating_rate_c_per_min", "time_min")
    @classmethod
    def _range(cls, value: float, info) -> float:
        return _limit(info.field_name, value)


class Outcome(BaseModel):
    """What the synthesis produced: mean size, dispersion, count and shape.

    ``size_nm`` is the mean equivalent-circle diameter, ``size_dispersion_pct`` is
    100·std/mean of the diameters, ``shape_fractions`` maps shape class → fraction of
    particles.  An unsuccessful synthesis (``success=False``) has no size or shape.
    """

    model_config = _STRICT

    size_nm: float | None = Field(default=None, gt=0)
    size_dispersion_pct: float | None = Field(default=None, ge=0)
    n_particles: int | None = Field(default=None, ge=0)
    shape: str | None = None
    shape_fractions: dict[str, float] = Field(default_factory=dict)
    success: bool = Field(default=True, strict=True)

    @field_validator("size_nm", "size_dispersion_pct", "n_particles", mode="before")
    @classmethod
    def _is_number(cls, value: Any) -> Any:
        return _number_not_text(value)

    @field_validator("size_dispersion_pct", "n_particles")
    @classmethod
    def _range(cls, value, info):
        return _limit(info.field_name, value)

    @field_validator("size_nm")
    @classmethod
    def _size_range(cls, value: float | None) -> float | None:
        return _limit("size_nm", value, low_open=True)

    @field_validator("shape")
    @classmethod
    def _known_shape(cls, shape: str | None) -> str | None:
        if shape is not None and shape not in SHAPE_CLASSES:
            raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPE_CLASSES)}")
        return shape

    @field_validator("shape_fractions")
    @classmethod
    def _fractions(cls, fractions: dict[str, float]) -> dict[str, float]:
        for shape, fraction in fractions.items():
            if shape not in SHAPE_CLASSES:
                raise ValueError(f"unknown shape {shape!r} in shape_fractions")
            if not (0.0 <= fraction <= 1.0):
                raise ValueError(f"fraction of {shape!r} is {fraction}, not within [0, 1]")
        if fractions and not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"shape_fractions sum to {sum(fractions.values())}, not 1")
        return fractions

    @model_validator(mode="after")
    def _failed_has_no_product(self) -> Outcome:
        if not self.success:
            for name in ("size_nm", "shape"):
                if getattr(self, name) is not None:
                    raise _FieldError(name, getattr(self, name), "an unsuccessful synthesis has no size or shape")
        return self


class Provenance(BaseModel):
    """Where a recipe and its outcome come from."""

    model_config = _STRICT

    doi: str | None = None
    source_images: list[str] = Field(default_factory=list)
    nm_per_px: float | None = Field(default=None, gt=0)
    calibration_source: CalibrationSource | None = None
    size_from_segmentation: bool | None = Field(default=None, strict=True)

    @field_validator("nm_per_px", mode="before")
    @classmethod
    def _is_number(cls, value: Any) -> Any:
        return _number_not_text(value)

    @field_validator("nm_per_px")
    @classmethod
    def _pixel_size_range(cls, value: float | None) -> float | None:
        return _limit("nm_per_px", value)


class Recipe(BaseModel):
    """One synthesis: product, chemicals in slot order, conditions, outcome, provenance."""

    model_config = _STRICT

    id: str = Field(min_length=1)
    product: Chemical | None = None
    chemicals: list[Chemical] = Field(default_factory=list)
    conditions: Conditions
    outcome: Outcome | None = None
    provenance: Provenance = Field(default_factory=Provenance)
    # how a source file spelled numbers that Python would write differently ("5.00E-06"),
    # so that rewriting an unchanged recipe reproduces the file byte for byte
    _source_spellings: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("product")
    @classmethod
    def _product_role(cls, product: Chemical | None) -> Chemical | None:
        if product is not None and product.role != "product":
            raise ValueError(f"product {product.name!r} has role {product.role!r}, expected 'product'")
        return product

    @field_validator("chemicals")
    @classmethod
    def _reactants(cls, chemicals: list[Chemical]) -> list[Chemical]:
        if len(chemicals) > MAX_CHEMICALS:
            raise ValueError(f"{len(chemicals)} chemicals: a recipe lists at most {MAX_CHEMICALS} (MAX_CHEMICALS)")
        names = [c.name for c in chemicals]
        repeated = sorted(n for n, k in Counter(names).items() if k > 1)
        if repeated:
            raise ValueError(f"chemical listed more than once: {', '.join(repeated)}")
        for chemical in chemicals:
            if chemical.role == "product":
                raise ValueError(f"reactant {chemical.name!r} has role 'product'")
            if chemical.amount_mmol is None:
                raise ValueError(f"reactant {chemical.name!r} has no amount_mmol")
        return chemicals

    @model_validator(mode="after")
    def _needs_product(self) -> Recipe:
        succeeded = self.outcome is None or self.outcome.success
        if succeeded and self.product is None:
            raise _FieldError("product", None, "missing product: a successful recipe names what it makes")
        if not self.chemicals:
            raise _FieldError("chemicals", [], "a recipe needs at least one chemical")
        return self


class FieldProblem(BaseModel):
    """One reason a recipe is invalid: which field, which value, and why."""

    field: str
    value: Any = None
    message: str


class RecipeValidationError(ValueError):
    """A recipe that breaks the contract; lists every field problem it has."""

    def __init__(self, recipe_id: str | None, problems: list[FieldProblem]):
        self.recipe_id = recipe_id
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        who = f"recipe {self.recipe_id}" if self.recipe_id is not None else "recipe"
        return "; ".join(f"{who}: {p.field} = {_short_repr(p.value)}: {p.message}" for p in self.problems)


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a list of 200 chemicals is not a message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem_from_pydantic(error: Mapping[str, Any], data: Any) -> FieldProblem:
    loc = [str(part) for part in error["loc"]]
    value = error.get("input")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _FieldError):
        loc.append(cause.field)
        value = cause.value
    if error["type"].startswith("value_error") or error["type"] == "assertion_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    else:
        message = error["msg"]
    # name a chemical by its name rather than its list index where we can
    if len(loc) >= 2 and loc[0] == "chemicals" and loc[1].isdigit() and isinstance(data, Mapping):
        try:
            name = data["chemicals"][int(loc[1])]["name"]
            loc[1] = f"{loc[1]}({name})"
        except (KeyError, IndexError, TypeError):
            pass
    return FieldProblem(field=".".join(loc) or "recipe", value=value, message=message)


def validate_recipe(data: Mapping[str, Any] | Recipe) -> Recipe:
    """Build a :class:`Recipe` from a mapping, or raise :class:`RecipeValidationError`."""
    if isinstance(data, Recipe):
        return data
    recipe_id = data.get("id") if isinstance(data, Mapping) else None
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(e, data) for e in exc.errors()]
        raise RecipeValidationError(None if recipe_id is None else str(recipe_id), problems) from None


# ----------------------------------------------------------------------------------------
# Per-particle table: what a Labels layer's ``features`` hold.

#: Column → (dtype, unit, description).  Order is the table's column order.
PARTICLE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "label": ("int64", "", "instance label in the label image (1..N; 0 is background)"),
    "area_px": ("float64", "px²", "area in pixels"),
    "area_nm2": ("float64", "nm²", "area in nm² (NaN when the image is not calibrated)"),
    "ecd_nm": ("float64", "nm", "equivalent circle diameter √(4A/π) in nm (NaN if uncalibrated)"),
    "circularity": ("float64", "", "4πA/P²"),
    "solidity": ("float64", "", "A / A_convex"),
    "convexity": ("float64", "", "P_convex / P"),
    "eccentricity": ("float64", "", "eccentricity of the ellipse with the same second moments"),
    "aspect_ratio": ("float64", "", "major / minor axis length"),
    "centroid_y_px": ("float64", "px", "centroid row"),
    "centroid_x_px": ("float64", "px", "centroid column"),
    "confidence": ("float64", "", "mean seed probability of the instance (NaN if unknown)"),
    "shape_cluster": ("int64", "", "unsupervised shape cluster (-1 = not clustered)"),
    "shape_class": ("object", "", "named shape class from SHAPE_CLASSES (None = not classified)"),
}

_NUMERIC_PARTICLE_COLUMNS = [c for c, (dtype, _, _) in PARTICLE_COLUMNS.items() if dtype != "object"]


def empty_particle_table() -> pd.DataFrame:
    """An empty per-particle table with the contract's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _, _) in PARTICLE_COLUMNS.items()})


def validate_particle_table(table: pd.DataFrame) -> pd.DataFrame:
    """Check a per-particle table against :data:`PARTICLE_COLUMNS`; return it in column order.

    Raises ``ValueError`` naming the missing column, the duplicated label, or the
    first bad value found.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"a particle table is a pandas DataFrame, not {type(table).__name__}")
    missing = [c for c in PARTICLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"particle table is missing column(s): {', '.join(missing)}")
    table = table[list(PARTICLE_COLUMNS)].copy()
    for column in _NUMERIC_PARTICLE_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"particle table column {column!r} row {row}: {table[column].iloc[row]!r} is not a number")
        table[column] = values
    labels = table["label"]
    if labels.isna().any() or (labels <= 0).any():
        raise ValueError("particle table column 'label' must hold positive integers (0 is background)")
    if labels.duplicated().any():
        raise ValueError(f"particle table has duplicated label {int(labels[labels.duplicated()].iloc[0])}")
    for column in ("area_px", "area_nm2", "ecd_nm"):
        if (table[column] < 0).any():
            raise ValueError(f"particle table column {column!r} has a negative value")
    known = table["shape_class"].dropna()
    unknown = sorted(set(known) - set(SHAPE_CLASSES))
    if unknown:
        raise ValueError(f"particle table has unknown shape_class {unknown[0]!r}")
    table["label"] = table["label"].astype("int64")
    table["shape_cluster"] = table["shape_cluster"].fillna(-1).astype("int64")
    return table.reset_index(drop=True)


def outcome_from_particles(table: pd.DataFrame) -> Outcome:
    """Summarise a per-particle table as an :class:`Outcome`.

    D is the mean equivalent-circle diameter (nm), the dispersion is 100·σ/D with σ the
    population standard deviation, N the number of particles; the shape is the majority
    ``shape_class`` and ``shape_fractions`` the fraction of each class among classified
    particles.
    """
    table = validate_particle_table(table)
    if table.empty:
        raise ValueError("no particles: the table is empty")
    diameters = table["ecd_nm"].to_numpy(dtype=float)
    if np.isnan(diameters).any():
        raise ValueError("ecd_nm is missing for some particles: calibrate the image (nm per pixel) first")
    mean = float(diameters.mean())
    dispersion = float(100.0 * diameters.std(ddof=0) / mean)
    shapes = table["shape_class"].dropna()
    fractions: dict[str, float] = {}
    majority = None
    if not shapes.empty:
        counts = shapes.value_counts()
        fractions = {str(k): float(v) / len(shapes) for k, v in counts.items()}
        # majority; ties broken by SHAPE_CLASSES order for a deterministic answer
        top = counts.max()
        majority = next(s for s in SHAPE_CLASSES if counts.get(s, 0) == top)
    return Outcome(
        size_nm=mean,
        size_dispersion_pct=dispersion,
        n_particles=len(table),
        shape=majority,
        shape_fractions=fractions,
        success=True,
    )
