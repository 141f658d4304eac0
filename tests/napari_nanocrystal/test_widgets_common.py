"""Widget plumbing: background tasks (threaded and synchronous), cancelling, errors; layer links."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from _widget_helpers import answer, notes  # noqa: F401 - fixtures

from napari_nanocrystal._widgets import _common, _layers
from napari_nanocrystal._widgets._common import Cancelled, TaskPanel, iter_callback

pytestmark = pytest.mark.filterwarnings("ignore:System theme detection requires a Qt6:UserWarning")


def counting(n, delay=0.0):
    for i in range(n):
        time.sleep(delay)
        yield f"step {i + 1}", (i + 1) / n
    return n * 10


def failing():
    yield "about to fail", 0.5
    raise RuntimeError("the tensor is the wrong shape")


def test_threaded_task_reports_progress_and_returns(qtbot, notes, monkeypatch):
    monkeypatch.delenv(_common.SYNC_ENV, raising=False)
    panel = TaskPanel()
    qtbot.addWidget(panel)
    results, progress = [], []
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        worker = panel.run("Count", counting, 4, on_return=results.append, on_yield=progress.append)
        assert worker is not None and panel.is_running
    assert results == [40] and [p[0] for p in progress] == ["step 1", "step 2", "step 3", "step 4"]
    assert panel.bar.value() == 1000 and panel.status.text() == "Count: done" and not panel.is_running
    assert notes() == []


def test_threaded_task_cancel_and_runtime_errors(qtbot, notes, monkeypatch):
    monkeypatch.delenv(_common.SYNC_ENV, raising=False)
    panel = TaskPanel()
    qtbot.addWidget(panel)
    results = []
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.run("Slow", counting, 1000, 0.01, on_return=results.append)
        qtbot.waitUntil(lambda: panel.bar.value() > 0, timeout=5_000)
        panel.cancel_button.click()
    assert results == [] and panel.cancelled and panel.status.text() == "Slow: cancelled"
    assert "Slow: cancelled" in notes("info") and notes() == []
    # a RuntimeError (torch's usual error) reaches the user instead of being taken for a deleted Qt object
    with qtbot.waitSignal(panel.finished, timeout=10_000):
        panel.run("Fail", failing, on_return=results.append)
    assert results == [] and notes() == ["Fail: the tensor is the wrong shape"]
    assert panel.status.text().startswith("Fail: failed")


def test_sync_mode_and_one_task_at_a_time(monkeypatch, qtbot, notes):
    monkeypatch.setenv(_common.SYNC_ENV, "1")
    panel = TaskPanel()
    qtbot.addWidget(panel)
    results = []
    assert panel.run("Count", counting, 3, on_return=results.append) is None  # ran to the end already
    assert results == [30]
    panel.run("Fail", failing, on_return=results.append)
    assert notes() == ["Fail: the tensor is the wrong shape"] and isinstance(panel.last_error, Exception)
    # on_return errors are shown too
    panel.run("Show", counting, 1, on_return=lambda value: 1 / 0)
    assert notes()[-1] == "Show: division by zero"
    panel._active = True  # a task is running
    panel.run("Second", counting, 1, on_return=results.append)
    assert "Second: another task of this widget is still running" in notes()[-1]


def test_iter_callback_forwards_reports_and_cancels():
    seen_stop = threading.Event()

    def work(n, progress=None):
        try:
            for i in range(n):
                progress(f"item {i}", i / n)
                time.sleep(0.01)
        except Cancelled:
            seen_stop.set()
            raise
        return "finished"

    generator = iter_callback(work, 3)
    items = []
    while True:
        try:
            items.append(next(generator))
        except StopIteration as done:
            assert done.value == "finished"
            break
    assert items == [("item 0", 0.0), ("item 1", 1 / 3), ("item 2", 2 / 3)]
    generator = iter_callback(work, 1000)
    next(generator)
    generator.close()  # what cancelling the task does
    assert seen_stop.wait(5)

    def failing_work(progress=None):
        progress("start", 0.0)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        list(iter_callback(failing_work))


def test_guard_triton(tmp_path, monkeypatch):
    maps = tmp_path / "maps"
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    maps.write_text("7f00 r-xp /usr/lib/libc.so.6\n")
    _common.guard_triton(str(maps))
    assert "triton" not in sys.modules
    maps.write_text("7f00 r-xp /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1\n")
    monkeypatch.setenv("NAPARI_NANOCRYSTAL_ALLOW_TRITON", "1")
    _common.guard_triton(str(maps))
    assert "triton" not in sys.modules
    monkeypatch.delenv("NAPARI_NANOCRYSTAL_ALLOW_TRITON")
    _common.guard_triton(str(maps))
    assert sys.modules["triton"] is None
    with pytest.raises(ImportError):
        import triton  # noqa: F401


def test_layer_links_and_calibration(make_napari_viewer):
    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros((20, 30)), name="img")
    labels = viewer.add_labels(np.zeros((20, 30), np.int32), name="lab")
    _layers.link_to_image(labels, image)
    assert _layers.source_image(viewer, labels) is image and _layers.derived_layers(viewer, image) == [labels]
    image.name = "renamed"  # the link survives a rename (by layer id)
    assert _layers.source_image(viewer, labels) is image
    assert _layers.nm_per_px(labels, viewer) is None
    _layers.set_calibration(image, 0.25, "manual")
    assert _layers.nm_per_px(labels, viewer) == 0.25 and image.metadata["calibration_source"] == "manual"
    with pytest.raises(ValueError, match="expected a 2-D image"):
        _layers.layer_array(viewer.add_image(np.zeros((3, 8, 8)), name="stack"))
