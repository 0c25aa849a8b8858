"""`LiveRows`: finished rows stop costing compute.

A row that has produced its end token (or, in beam search, every beam of an input whose
hypotheses are final) still goes through the model in HF ``generate``: its logits are computed
and thrown away. `LiveRows` wraps a step model so that only the rows still decoding reach it:
the state holds those rows only (dropped with the model's own ``reorder``), and ``step``
returns ``(N, V)`` scores for all ``N`` rows, with zeros for the dropped ones. The loops and
processors therefore see the same shapes as before; the dropped rows' scores are never used
(their tokens are replaced by the pad id, their hypotheses are final). Sampling draws noise
for all ``N`` rows as before, so the live rows draw the same tokens.

The live rows' logits come from a smaller batch; on the test models they are bitwise those
of the full batch, but a kernel may sum in another order for another batch size (as batched
against one-by-one decoding), so ``DecodingConfig(drop_finished=False)`` switches this off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .protocol import StepModel

__all__ = ["LiveRows", "LiveState"]


@dataclass
class LiveState:
    """The wrapped model's state for the rows ``live`` (``None``: all ``n`` rows)."""

    inner: Any
    n: int
    live: torch.Tensor | None = None


class LiveRows:
    """Run ``base`` on the live rows only, in the full-batch coordinates of the loops.

    Args:
        base: the step model.
    """

    def __init__(self, base: StepModel):
        self.base = base

    def start(self, input_ids: torch.LongTensor, **model_kwargs: Any) -> LiveState:
        return LiveState(self.base.start(input_ids, **model_kwargs), input_ids.shape[0])

    def step(self, input_ids: torch.LongTensor, state: LiveState) -> tuple[torch.Tensor, LiveState]:
        """``(N, V)`` scores; rows not live get zeros."""
        if state.live is None:
            logits, state.inner = self.base.step(input_ids, state.inner)
            return logits, state
        logits, state.inner = self.base.step(input_ids.index_select(0, state.live), state.inner)
        full = logits.new_zeros((state.n, logits.shape[-1]))
        return full.index_copy_(0, state.live, logits), state

    def reorder(
        self, state: LiveState, index: torch.LongTensor, keep: torch.Tensor | None = None
    ) -> LiveState:
        """Row ``i`` becomes row ``index[i]``; then only rows with ``keep[i]`` stay live.

        ``index`` and ``keep`` are in full-batch coordinates; a kept row must come from a
        live one.
        """
        n = index.shape[0]
        rows = torch.arange(n, device=index.device)
        if keep is not None and not bool(keep.all()):
            rows = keep.nonzero().squeeze(1)
        elif state.live is None:  # nothing dropped, before or now
            return LiveState(self.base.reorder(state.inner, index), n)
        source = index.index_select(0, rows)
        if state.live is not None:  # full row -> its position among the live rows
            position = torch.full((state.n,), -1, dtype=torch.long, device=index.device)
            position[state.live] = torch.arange(state.live.shape[0], device=index.device)
            source = position.index_select(0, source)
        live = None if rows.shape[0] == n else rows
        return LiveState(self.base.reorder(state.inner, source), n, live)

    def drop(self, state: LiveState, keep: torch.Tensor) -> LiveState:
        """Keep computing only the rows with ``keep`` (``(N,)`` bool); a no-op when all are."""
        live_now = state.n if state.live is None else state.live.shape[0]
        if int(keep.sum()) == live_now:
            return state
        return self.reorder(state, torch.arange(state.n, device=keep.device), keep)
