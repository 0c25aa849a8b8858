"""Training utilities for the HF ``Trainer`` shared by the packages that train models (`qgen`,
`generative`): a wall-clock budget callback and accelerator detection.

They live here, in the package of add-ons for the ``Trainer``, so that `qgen` and `generative`
both import them from one neutral place instead of one of them importing the other.
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import TrainerCallback

__all__ = ["TimeBudgetCallback", "has_accelerator"]

logger = logging.getLogger(__name__)


def has_accelerator() -> bool:
    """Whether torch sees an accelerator (``torch.accelerator`` on torch >= 2.6, else CUDA)."""
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    if accelerator is not None:
        return accelerator.is_available()
    return torch.cuda.is_available()


class TimeBudgetCallback(TrainerCallback):
    """Stop training once ``minutes`` of wall time have passed since training began.

    In a multi-process run the processes must stop at the same step (otherwise the ones still
    training wait forever for the others' gradients), so they agree: each step, every process
    contributes its own "budget spent" flag and all stop when any of them has spent it.
    """

    def __init__(self, minutes: float):
        self.seconds = 60.0 * minutes
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is None:
            return control
        spent = time.monotonic() - self.start > self.seconds
        if args.world_size > 1 and torch.distributed.is_initialized():
            flag = torch.tensor([float(spent)], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            spent = bool(flag.item())
        if spent:
            logger.warning(
                "time budget of %.1f min reached at step %d", self.seconds / 60, state.global_step
            )
            control.should_training_stop = True
        return control
