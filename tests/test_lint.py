"""Lint: ``ruff check`` (rules and per-file ignores in the repository's ``ruff.toml``) passes on both packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("napari-nanocrystal/src", "nc-synthmodel/src")


def test_ruff_check_passes_on_both_packages():
    pytest.importorskip("ruff", reason="ruff is installed by tools/bootstrap.sh with the test tools")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *PACKAGES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"ruff check found problems (fix them or `ruff check --fix`):\n{done.stdout}{done.stderr}"


def test_ruff_format_leaves_the_repository_unchanged():
    pytest.importorskip("ruff", reason="ruff is installed by tools/bootstrap.sh with the test tools")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *PACKAGES, "tests", "benchmarks", "examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"files ruff would reformat (run `ruff format`):\n{done.stdout}{done.stderr}"
