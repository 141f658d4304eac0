"""Training loop (mmengine ``LOOPS``): iteration-based, with the length given in epochs or iterations."""

from __future__ import annotations

import logging
import math

from mmengine.runner import IterBasedTrainLoop

from .registry import LOOPS

__all__ = ["SeedFlowTrainLoop"]

logger = logging.getLogger(__name__)


@LOOPS.register_module()
class SeedFlowTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` with two changes.

    * The length may be given as ``max_epochs`` (× batches per epoch of the dataloader,
      rounded up) instead of ``max_iters``; ``val_interval`` is then in epochs too.
    * On resume the dataloader is *not* advanced through the iterations already trained
      (mmengine does that to replay the exact sample order, which here would decode and
      augment every skipped crop); samples are drawn afresh, crops are random anyway.

    Parameters
    ----------
    max_iters, max_epochs : int or float
        Exactly one of them.
    val_interval : int or float or None
        Validate every this many iterations (epochs with ``max_epochs``); always at the end.
        None: only at the end.
    val_begin : int
        First iteration at which validation may run.
    """

    def __init__(self, runner, dataloader, max_iters=None, max_epochs=None, val_begin: int = 1, val_interval=None, dynamic_intervals=None):
        if (max_iters is None) == (max_epochs is None):
            raise ValueError("give exactly one of max_iters and max_epochs")
        if dynamic_intervals:
            raise ValueError("dynamic_intervals is not supported by SeedFlowTrainLoop")
        super().__init__(runner, dataloader, max_iters=1, val_begin=val_begin, val_interval=1)
        self.iters_per_epoch = len(self.dataloader)
        if max_epochs is not None:
            if not float(max_epochs) > 0:
                raise ValueError(f"max_epochs must be positive, got {max_epochs}")
            self._max_iters = max(1, math.ceil(float(max_epochs) * self.iters_per_epoch))
            unit = self.iters_per_epoch
        else:
            if int(max_iters) < 1:
                raise ValueError(f"max_iters must be >= 1, got {max_iters}")
            self._max_iters = int(max_iters)
            unit = 1
        self.val_interval = self._max_iters if val_interval is None else max(1, round(float(val_interval) * unit))
        self.dynamic_milestones, self.dynamic_intervals = [0], [self.val_interval]

    def run(self):
        """Train from the current iteration to ``max_iters`` (or until ``stop_training``)."""
        self.runner.call_hook("before_train")
        self.runner.call_hook("before_train_epoch")
        if self._iter > 0:
            logger.info("resuming at iteration %d of %d", self._iter, self._max_iters)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (
                self.runner.val_loop is not None
                and self._iter >= self.val_begin
                and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)
            ):
                self.runner.val_loop.run()
        self.runner.call_hook("after_train_epoch")
        self.runner.call_hook("after_train")
        return self.runner.model
