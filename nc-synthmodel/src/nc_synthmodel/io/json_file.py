"""Schema-versioned recipe JSON (``{"schema": "nc-recipes", "schema_version": ..., "recipes": [...]}``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..contract import SCHEMA_VERSION, Recipe, RecipeValidationError, validate_recipe
from .common import RecipeSet, RowError


def _read_json(path: Path) -> RecipeSet:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != "nc-recipes":
        raise ValueError(f'{path}: not an nc-recipes JSON document (missing "schema": "nc-recipes")')
    version = str(document.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ValueError(f"{path}: schema_version {version!r} is not supported (this library reads {SCHEMA_VERSION.split('.')[0]}.x)")
    items = document.get("recipes")
    if not isinstance(items, list):
        raise ValueError(f'{path}: "recipes" must be a list')
    recipes, errors = [], []
    for row, item in enumerate(items, start=1):
        recipe_id = str(item.get("id")) if isinstance(item, dict) and "id" in item else None
        try:
            if not isinstance(item, dict):
                raise ValueError(f"entry {row} is a {type(item).__name__}, not an object")
            recipes.append(validate_recipe(item))
        except RecipeValidationError as exc:
            errors.append(RowError(row, recipe_id, str(exc), exc.problems))
        except ValueError as exc:
            errors.append(RowError(row, recipe_id, str(exc)))
    return RecipeSet(recipes, errors, "json", path)


def _json_text(recipes: Iterable[Recipe]) -> str:
    document = {
        "schema": "nc-recipes",
        "schema_version": SCHEMA_VERSION,
        "recipes": [r.model_dump(mode="json") for r in recipes],
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
