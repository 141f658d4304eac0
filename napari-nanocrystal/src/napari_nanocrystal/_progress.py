"""Progress reporting shared by the headless API: ``(message, fraction)`` callbacks and generators.

Long operations are written once as generators that yield ``(message, fraction)`` and return
their result (the napari widgets run those in a ``thread_worker``); :func:`drive` runs one to
the end for scripts and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")

#: ``progress(message, fraction)`` with ``fraction`` in [0, 1]
ProgressCallback = Callable[[str, float], None]


def drive(generator: Generator[tuple[str, float], None, T], progress: ProgressCallback | None = None) -> T:
    """Run a progress generator to its return value, passing each ``(message, fraction)`` to ``progress``."""
    while True:
        try:
            message, fraction = next(generator)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(message, fraction)
