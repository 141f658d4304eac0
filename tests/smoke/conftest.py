"""Smoke tests: one real call into each heavy dependency."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: quick check that a heavy dependency really works")
