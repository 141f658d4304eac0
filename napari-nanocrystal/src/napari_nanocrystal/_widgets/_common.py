"""Plumbing shared by the widgets: background tasks with progress, notifications.

* :class:`TaskPanel` runs a computation — a generator yielding ``(message, fraction)`` and
  returning its result — in a napari ``thread_worker`` with a napari progress bar, a status
  line and a Cancel button; errors become napari notifications.  With the environment flag
  :data:`SYNC_ENV` set (tests) it runs synchronously in the calling thread.
* :func:`iter_callback` turns a function reporting progress through a
  ``progress(message, fraction)`` callback (``segment``) into such a generator; closing the
  generator (Cancel) makes the next callback raise :class:`Cancelled`.
* :func:`guard_triton` keeps torch from loading triton next to Mesa's LLVM (a crash).
* :data:`TRAINED_MODELS`: models trained in this session (Train → Segment/Weak labels).

Layer conventions are in :mod:`._layers`.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Generator
from typing import Any

from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from psygnal import Signal as PsygnalSignal
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QWidget

logger = logging.getLogger(__name__)

#: Set to 1 to run widget computations synchronously (tests).
SYNC_ENV = "NAPARI_NANOCRYSTAL_SYNC"


class Cancelled(Exception):
    """The user cancelled the task."""


def guard_triton(maps: str = "/proc/self/maps") -> None:
    """Keep torch from importing triton in a process that renders with Mesa's LLVM (llvmpipe).

    Loading triton's LLVM into a process where Mesa's ``libLLVM`` is already mapped (software
    OpenGL: VMs, remote desktops, Xvfb) crashes it (segmentation fault).  torch imports triton
    lazily (``torch._dynamo``, e.g. through torchvision in EasyOCR) and treats a failed import
    as "no triton", which is all CPU inference needs.  Set ``NAPARI_NANOCRYSTAL_ALLOW_TRITON=1``
    to disable this.
    """
    if "triton" in sys.modules or os.environ.get("NAPARI_NANOCRYSTAL_ALLOW_TRITON"):
        return
    try:
        with open(maps, encoding="utf-8", errors="replace") as lines:
            mesa_llvm = any("libLLVM" in line for line in lines)
    except OSError:  # not Linux
        return
    if mesa_llvm:
        logger.info("software OpenGL (Mesa LLVM) in this process: torch will run without triton")
        sys.modules["triton"] = None  # `import triton` now raises ImportError


def is_sync() -> bool:
    return os.environ.get(SYNC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def notify_error(message: str) -> None:
    """Show an error notification in napari (and log it)."""
    logger.warning("%s", message)
    show_error(message)


def notify_info(message: str) -> None:
    logger.info("%s", message)
    show_info(message)


def confirm(parent: QWidget | None, question: str, title: str = "napari-nanocrystal") -> bool:
    """Ask a yes/no question (default No); True for Yes."""
    answer = QMessageBox.question(parent, title, question, QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes


def error_text(error: BaseException) -> str:
    """``str(error)``, or the exception type when the message is empty."""
    text = str(error).strip()
    return text if text else type(error).__name__


# ----------------------------------------------------------------------------------------
# Background tasks


def iter_callback(function: Callable, *args, _convert: Callable | None = None, _stop: threading.Event | None = None, **kwargs) -> Generator:
    """Run ``function(*args, progress=callback, **kwargs)`` in a helper thread, yielding its
    reports; returns its result or raises its exception.

    Reports are ``(message, fraction)`` as the callback receives them, or ``_convert(*values)``.
    Closing the generator (the task was cancelled) makes the next report raise
    :class:`Cancelled` inside ``function`` — or, with ``_stop`` (an event ``function`` watches
    itself), sets that event.
    """
    reports: queue.Queue = queue.Queue()
    stop = _stop if _stop is not None else threading.Event()
    outcome: dict[str, Any] = {}

    def report(*values):
        if stop.is_set() and _stop is None:
            raise Cancelled("cancelled")
        reports.put(_convert(*values) if _convert is not None else (str(values[0]), float(values[1])))

    def run() -> None:
        try:
            outcome["value"] = function(*args, progress=report, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error
        finally:
            reports.put(None)

    thread = threading.Thread(target=run, name=f"nanocrystal-{getattr(function, '__name__', 'task')}", daemon=True)
    thread.start()
    try:
        while (item := reports.get()) is not None:
            yield item
    finally:
        stop.set()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class TaskError(Exception):
    """A ``RuntimeError`` raised by a task, re-raised as a plain exception.

    superqt's workers take a ``RuntimeError`` for a deleted Qt object and only warn about it;
    torch reports most of its errors as ``RuntimeError``, which must reach the user.
    """


def _guarded(stop: threading.Event, function: Callable[..., Generator], args, kwargs) -> Generator:
    """Run a task generator, stopping at its next yield once ``stop`` is set (closing it)."""
    generator = function(*args, **kwargs)
    try:
        while True:
            if stop.is_set():
                raise Cancelled("cancelled")
            try:
                item = next(generator)
            except StopIteration as done:
                return done.value
            except RuntimeError as error:
                raise TaskError(error_text(error)) from error
            yield item
    finally:
        generator.close()


class TaskPanel(QWidget):
    """Status line, progress bar and Cancel button of one widget's background task.

    ``run(description, generator_function, *args, on_return=…)`` starts the task; its
    yields ``(message, fraction, …)`` drive the bars (and go to ``on_yield``), its return
    value goes to ``on_return`` in the main thread.  Errors are shown as notifications
    ``"<description>: <error>"``.  Cancel stops the task at its next progress report, or
    calls ``on_cancel`` when given (a task that stops itself cleanly, e.g. training).
    """

    started = Signal()
    finished = Signal()

    def __init__(self, parent: QWidget | None = None, on_cancel: Callable[[], None] | None = None, cancel_text: str = "Cancel"):
        super().__init__(parent)
        self._on_cancel = on_cancel
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.worker = None
        self.last_error: BaseException | None = None
        self.cancelled = False
        self._active = False
        self._stop = threading.Event()
        self._pbar = None
        self._description = ""

    @property
    def is_running(self) -> bool:
        return self._active

    def run(
        self,
        description: str,
        function: Callable[..., Generator],
        *args,
        on_return: Callable[[Any], None],
        on_yield: Callable[[tuple[str, float]], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        **kwargs,
    ):
        """Start ``function(*args, **kwargs)`` (a generator function); returns the worker (None when sync)."""
        if self.is_running:
            notify_error(f"{description}: another task of this widget is still running; cancel it first")
            return None
        guard_triton()
        self.last_error = None
        self.cancelled = False
        self._stop = threading.Event()
        self._description = description
        self._active = True
        self._begin()

        def yielded(item) -> None:
            self._progress(item)
            if on_yield is not None:
                on_yield(item)

        def failed(error: BaseException) -> None:
            if isinstance(error, Cancelled):
                self.cancelled = True
                notify_info(f"{description}: cancelled")
                return
            self.last_error = error
            if on_error is not None:
                on_error(error)
            notify_error(f"{description}: {error_text(error)}")

        def returned(value) -> None:
            try:
                on_return(value)
            except Exception as error:  # noqa: BLE001 - shown to the user, not swallowed
                logger.exception("%s: putting the result on layers failed", description)
                failed(error)

        task = (self._stop, function, args, kwargs)
        if is_sync():
            generator = _guarded(*task)
            try:
                while True:
                    try:
                        item = next(generator)
                    except StopIteration as done:
                        value = done.value
                        break
                    yielded(item)
            except Exception as error:  # noqa: BLE001
                failed(error)
                self._end()
                return None
            returned(value)
            self._end()
            return None

        from napari.qt.threading import create_worker

        worker = create_worker(_guarded, *task, _start_thread=False, _ignore_errors=True)  # errors: `failed`
        worker.yielded.connect(yielded)
        worker.returned.connect(returned)
        worker.errored.connect(failed)
        worker.finished.connect(self._end)
        self.worker = worker
        self.cancel_button.setEnabled(True)
        worker.start()
        return worker

    def then(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the running task has ended (at once when none runs): to chain tasks."""
        if not self._active:
            callback()
            return

        def once() -> None:
            self.finished.disconnect(once)
            callback()

        self.finished.connect(once)

    def cancel(self) -> None:
        """Ask the running task to stop at its next progress report."""
        if self._active:
            self.cancelled = True
            if self._on_cancel is not None:
                self._on_cancel()
            else:
                self._stop.set()
            self.status.setText(f"{self._description}: stopping…")

    # -- progress display

    def _begin(self) -> None:
        self.bar.setValue(0)
        self.status.setText(f"{self._description}…")
        self._pbar = progress(total=1000, desc=self._description)
        self.started.emit()

    def _progress(self, item) -> None:
        if not self._active:  # a late report of a task that has ended
            return
        message, fraction = item[0], item[1]
        value = int(round(1000 * min(1.0, max(0.0, float(fraction)))))
        self.bar.setValue(value)
        self.status.setText(f"{self._description}: {message}")
        pbar = self._pbar  # (its events may run queued slots that end the task)
        if pbar is not None:
            pbar.set_description(f"{self._description}: {message}")
            if value > pbar.n:
                pbar.update(value - pbar.n)

    def _end(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self.worker = None
        self._active = False
        self.cancel_button.setEnabled(False)
        if self.cancelled:
            self.status.setText(f"{self._description}: {'stopped' if self._on_cancel else 'cancelled'}")
        elif self.last_error is None:
            self.bar.setValue(1000)
            self.status.setText(f"{self._description}: done")
        else:
            self.status.setText(f"{self._description}: failed — {error_text(self.last_error)}")
        self.finished.emit()

    def closeEvent(self, event):  # noqa: N802 - Qt name
        self.cancel()
        super().closeEvent(event)


#: Emitted with the path of a segmentation model trained in this session (Train widget);
#: Segment widgets add it to their model choices.
class _ModelRegistry:
    changed = PsygnalSignal(str)

    def __init__(self):
        self.paths: list[str] = []

    def add(self, path) -> None:
        path = os.fspath(path)
        if path not in self.paths:
            self.paths.append(path)
        self.changed.emit(path)


TRAINED_MODELS = _ModelRegistry()
