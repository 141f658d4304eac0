"""nc-synthmodel's module layout (issue 17): old names still import, no import circle, sizes, targets, splits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nc_synthmodel
from nc_synthmodel.contract import Chemical, Conditions, Outcome, Recipe

PACKAGE = Path(nc_synthmodel.__file__).resolve().parent


def test_old_import_paths_give_the_same_objects():
    from nc_synthmodel import augment, baselines, encoding, features, io, models, targets
    from nc_synthmodel.evaluation import size_targets, tolerant_size_mask
    from nc_synthmodel.models import baselines as new_baselines
    from nc_synthmodel.models.threads import torch_threads
    from nc_synthmodel.models.transformer import SynthesisTransformer

    assert models.SynthesisTransformer is SynthesisTransformer
    assert baselines.FlatFeatureRegressor is new_baselines.FlatFeatureRegressor
    assert baselines.BASELINES is new_baselines.BASELINES
    assert baselines._torch_threads is torch_threads is models.torch_threads
    assert encoding.RecipeEncoder is features.RecipeEncoder and encoding.flat_features is features.flat_features
    assert augment.IntermediateAugmenter is features.IntermediateAugmenter is nc_synthmodel.IntermediateAugmenter
    assert size_targets is targets.size_targets and tolerant_size_mask is targets.tolerant_size_mask
    assert io.GU_SLOTS == "ABCDEFGHIJKLM" and callable(io.read_recipes)
    assert models._Compact.__module__ == "nc_synthmodel.models.trainer"


def _top_level_imports(path: Path, module: str, is_package: bool) -> set[str]:
    parts = module.split(".")
    base_parts = parts if is_package else parts[:-1]
    out = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = base_parts[: len(base_parts) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nc_synthmodel"):
            out.add(node.module)
    return out


def test_no_import_circle_between_modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = _top_level_imports(path, name, is_package)
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(module, stack):
        state[module] = 1
        stack.append(module)
        for dep in graph[module]:
            if state.get(dep) == 1:
                circles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert circles == []


def test_long_modules_say_why_at_their_top():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 520:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "lines" in doc, f"{path.relative_to(PACKAGE)} has {text.count(chr(10))} lines and no reason at its top"


def test_the_model_layer_imports_neither_evaluation_nor_torch():
    code = (
        "import sys, nc_synthmodel.models, nc_synthmodel.cli; "
        "bad = [m for m in ('nc_synthmodel.evaluation', 'torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_size_target_describes_the_column_and_reads_it():
    from nc_synthmodel.targets import SIZE, TARGETS

    assert TARGETS["size"] is SIZE and SIZE.column == "size_nm" and SIZE.task == "regression"
    recipes = [_recipe("a", "PbSe", 4.0), _recipe("b", "PbSe", None)]
    values = SIZE.values(recipes)
    assert values[0] == 4.0 and np.isnan(values[1])


def _recipe(recipe_id, product, size_nm, n_particles=500):
    return Recipe(
        id=recipe_id,
        product=Chemical(name=product, role="product"),
        chemicals=[Chemical(name="PbO", amount_mmol=2.0, role="precursor")],
        conditions=Conditions(injection_temp_c=140, reaction_temp_c=150, time_min=5),
        outcome=None if size_nm is None else Outcome(size_nm=size_nm, n_particles=n_particles, shape="sphere"),
    )


def test_leave_one_composition_out_folds():
    from nc_synthmodel.evaluation import composition, composition_folds

    recipes = (
        [_recipe(f"s{i}", "CdSe-1" if i % 2 else "CdSe", 3.0 + i) for i in range(4)]
        + [_recipe(f"p{i}", "PbS", 5.0) for i in range(3)]
        + [_recipe("big", "Au", 50.0), _recipe("few", "Au", 4.0, n_particles=20)]
    )
    assert composition(recipes[1]) == "CdSe" and composition(recipes[4]) == "PbS"
    folds = composition_folds(recipes)
    assert [len(v) for _, v in folds] == [4, 3]  # Au has no pool recipe (50 nm; 20 particles)
    for train, val in folds:
        held = {composition(recipes[i]) for i in val}
        assert len(held) == 1 and not held & {composition(recipes[i]) for i in train}
    assert 7 in folds[0][0] and 8 in folds[0][0]  # other compositions train, pool or not
    with pytest.raises(ValueError, match="need at least 2"):
        composition_folds(recipes, min_pool=4)
