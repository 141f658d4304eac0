"""Fixtures shared by the plugin's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def reader():
    """The shared offline EasyOCR reader (created once; torch already runs on one thread, tests/conftest.py)."""
    from napari_nanocrystal import scalebar

    return scalebar.get_ocr_reader()
