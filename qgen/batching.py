"""Plumbing of `qgen.generation.QAGenerator`'s decoding calls: a source window of a passage, a
batch of padded (and, with the KV cache, encoded) sources, a step model that hands
`decoding.decode` a state read already, and the decorator that runs generation without dropout.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch

from .fast_decoding import UniLMState, UniLMStepModel


@dataclasses.dataclass
class _Window:
    """One source row: a window of passage ``passage`` with its ids and char offsets."""

    passage: int
    span: tuple[int, int]
    source: list[int]  # [CLS] window [SEP] (+ answer [SEP] for qg)
    window_ids: list[int] = dataclasses.field(default_factory=list)
    offsets: list[tuple[int, int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Answer:
    """A stage-1 answer of window ``window`` (an index into the decoded chunk)."""

    window: int
    ids: list[int]
    text: str  # decoded (lower-cased by uncased tokenizers)
    span: tuple[int, int] | None  # character span in the passage; None: not a span
    score: float  # summed log-probability, [SEP] included
    length: int  # generated tokens, [SEP] included

    def pair(self, question: str, score: float, passage: str) -> dict[str, Any]:
        """The output pair: the answer as written in the passage, and its offset (-1: none)."""
        if self.span is None:
            return {"question": question, "answer": self.text, "answer_start": -1, "score": score}
        start, end = self.span
        return {
            "question": question,
            "answer": passage[start:end],
            "answer_start": start,
            "score": score,
        }


@dataclasses.dataclass
class _Batch:
    """Padded sources and, with the cache, their encoded state."""

    step_model: UniLMStepModel
    ids: torch.Tensor
    mask: torch.Tensor
    tt: torch.Tensor
    state: UniLMState | None


class _Prefilled:
    """A step model whose ``start`` hands `decoding.decode` a state that was read already
    (the sources encoded once, answers appended with `UniLMStepModel.extend`)."""

    def __init__(self, step_model: UniLMStepModel, state: UniLMState):
        self.step_model, self.state = step_model, state

    def start(self, input_ids: torch.Tensor, **_: Any) -> UniLMState:
        return self.state

    def step(self, input_ids: torch.Tensor, state: UniLMState):
        return self.step_model.step(input_ids, state)

    def reorder(self, state: UniLMState, index: torch.Tensor) -> UniLMState:
        return self.step_model.reorder(state, index)


def _in_eval_mode(method):
    """Run a generation method without dropout; a model that was training is put back."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.model.train(was_training)

    return wrapper
