"""What every recipe reader shares: :class:`RecipeSet`, :class:`RowError`, number spelling, workbooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..contract import FieldProblem, Recipe

__all__ = ["Layout", "RecipeSet", "RowError"]

Layout = Literal["json", "gu", "gu-interleaved", "xlsx"]


@dataclass
class RowError:
    """A row that could not be loaded: where it is, which recipe, and why."""

    row: int  # 1-based data row (the header is row 0)
    recipe_id: str | None
    message: str
    problems: list[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass
class RecipeSet:
    """Recipes loaded from one file, with the rows that failed validation."""

    recipes: list[Recipe]
    errors: list[RowError] = field(default_factory=list)
    layout: Layout | None = None
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.recipes)

    def __iter__(self):
        return iter(self.recipes)

    def raise_for_errors(self) -> RecipeSet:
        """Raise ``ValueError`` listing the bad rows, if there are any."""
        if self.errors:
            lines = "\n".join(f"  {e}" for e in self.errors[:20])
            more = f"\n  … and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise ValueError(f"{self.path or 'recipes'}: {len(self.errors)} invalid row(s):\n{lines}{more}")
        return self


def _format_number(value: float | int) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _parse_number(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} = {text!r} is not a number") from None
    return value


def _read_workbook(path: Path, **options):
    """``pandas.read_excel`` with errors that name the file (a corrupt workbook raises zip/XML errors)."""
    import pandas as pd

    try:
        return pd.read_excel(path, **options)
    except (ImportError, FileNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl/zipfile raise many types on a bad workbook
        raise ValueError(
            f"{path}: cannot read the workbook ({type(exc).__name__}: {exc}); the file is corrupt or not an .xlsx file"
        ) from None
