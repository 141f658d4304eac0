"""Run torch with a given number of intra-op threads, then restore the previous count."""

from __future__ import annotations

__all__ = ["torch_threads"]


class torch_threads:
    """Context manager: run with ``n`` torch intra-op threads (None: leave torch's setting), then restore."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        if self.n is not None:
            import torch

            self._old = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.n is not None:
            import torch

            torch.set_num_threads(self._old)
