"""Shared test fixtures: where the datasets live.

Data paths come from ``--datasets DIR`` or ``NANOCRYSTAL_DATASETS``; the default is the
``shared/datasets`` folder beside the repository (as in CI).  When the data are absent
the tests that need them are skipped, except in CI (``CI=true``), where that is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"


def pytest_addoption(parser):
    parser.addoption("--datasets", default=None, help="folder holding gu2025/, tem-examples/, emps-train/")


def pytest_configure(config):
    # triton (loaded lazily by torch._dynamo, e.g. via torchvision for EasyOCR) bundles its own
    # LLVM; loading it after a napari viewer has mapped Mesa's libLLVM (Xvfb, llvmpipe) crashes
    # the process.  Load it first, once, so test order cannot matter.
    import torch._dynamo  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Torch on one thread: the CI machine has 2 shared cores, where OpenMP spin-waiting makes 2 threads slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def datasets_dir(pytestconfig) -> Path:
    path = Path(pytestconfig.getoption("--datasets") or os.environ.get("NANOCRYSTAL_DATASETS") or DEFAULT_DATASETS)
    if not (path / "gu2025").is_dir():
        message = f"datasets not found at {path} (use --datasets or NANOCRYSTAL_DATASETS)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gu2025(datasets_dir) -> Path:
    return datasets_dir / "gu2025"


@pytest.fixture(scope="session")
def tem_examples(datasets_dir) -> Path:
    return datasets_dir / "tem-examples"


@pytest.fixture
def wheel_files(tmp_path):
    """``wheel_files(package_dir, "dist_name")`` → the set of file names in the package's built wheel."""
    import subprocess
    import sys
    import zipfile

    def build(package: Path, dist_name: str) -> set[str]:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(package)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stderr
        [wheel] = tmp_path.glob(f"{dist_name}-*.whl")
        return set(zipfile.ZipFile(wheel).namelist())

    return build
