"""Peak resident-memory growth of a block of code, for :func:`~.cv.cross_validate`'s reports.

:class:`_ProcessMemory` samples ``/proc/self/statm`` in a thread where it exists (Linux);
elsewhere it falls back to ``resource.getrusage`` (POSIX), imported only there, so that
importing the evaluation layer (and the model layer that uses it) works on Windows too.
"""

from __future__ import annotations

import gc
import os
import sys
import threading


class _ProcessMemory:
    """Context manager: peak growth of the resident set size (MiB) while inside."""

    _STATM = "/proc/self/statm"
    _INTERVAL_S = 0.02

    def __init__(self):
        self.peak_mb = 0.0

    @classmethod
    def available(cls) -> bool:
        return os.path.exists(cls._STATM)

    @classmethod
    def _rss_bytes(cls) -> int:
        with open(cls._STATM) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    @staticmethod
    def _maxrss_bytes() -> int:
        import resource  # POSIX only: imported here so that the package imports on Windows

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss if sys.platform == "darwin" else maxrss * 1024

    def __enter__(self) -> _ProcessMemory:
        # collect garbage left by earlier work first: freeing it inside the block would
        # lower the resident set and hide the growth being measured
        gc.collect()
        self._stop = threading.Event()
        if self.available():
            self._start = self._peak = self._rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._thread = None
            self._start = self._maxrss_bytes()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._INTERVAL_S):
            self._peak = max(self._peak, self._rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._peak = max(self._peak, self._rss_bytes())
            grown = self._peak - self._start
        else:
            grown = self._maxrss_bytes() - self._start
        self.peak_mb = max(grown, 0) / 2**20
