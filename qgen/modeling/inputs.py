"""The model's inputs: how a passage becomes ``[CLS] passage [SEP]`` rows, long passages become
windows, and features become padded batches. Training (`qgen.training.features`) and generation
(`qgen.generation.generator`) both build their rows here, so the two agree on the format.

One model, three tasks (``TASKS``); ``|`` separates the source (segment 0) from the target
(segment 1), and ``[CLS]`` / ``[SEP]`` are whatever the tokenizer uses (``<s>`` / ``</s>`` for
SentencePiece vocabularies):

* ``qag``: ``[CLS] passage [SEP] | answer [SEP] question [SEP]`` (end-to-end answer + question);
* ``qg``: ``[CLS] passage [SEP] answer [SEP] | question [SEP]`` (answer-aware question generation);
* ``sentence-qg``: ``[CLS] sentence [SEP] | question [SEP]`` (Du et al. 2017: the sentence that
  holds the answer -> question).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from qgen.modeling.unilm import packed_position_ids

__all__ = [
    "TASKS",
    "UniLMCollator",
    "answer_sentence_span",
    "encode_source",
    "passage_windows",
    "sentence_spans",
    "special_token_ids",
    "split_passage",
]

TASKS = ("qag", "qg", "sentence-qg")


# --------------------------------------------------------------------------- text helpers

_SENTENCE_END = re.compile(r"(?:[.!?](?=[\"'”’)\]]*\s)|[。！？；]|\n)[\"'”’)\]]*\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text`` (English and Chinese
    punctuation, and newlines). The spans cover the text without gaps."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans or [(0, len(text))]


def answer_sentence_span(context: str, answer_start: int, answer_end: int) -> tuple[int, int]:
    """The span of the sentence(s) that hold ``context[answer_start:answer_end]``, stripped."""
    spans = sentence_spans(context)
    first = next((s for s in spans if s[0] <= answer_start < s[1]), spans[0])
    last = next((s for s in spans if s[0] < max(answer_end, answer_start + 1) <= s[1]), first)
    start, end = first[0], max(first[1], last[1])
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


def special_token_ids(tokenizer) -> tuple[int, int]:
    """``(cls_id, sep_id)`` from the tokenizer (``[CLS]``/``[SEP]`` or ``<s>``/``</s>``)."""
    cls_id = (
        tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    )
    sep_id = (
        tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    )
    if cls_id is None or sep_id is None:
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} has no cls/bos or sep/eos token "
            f"(cls_token={tokenizer.cls_token!r}, sep_token={tokenizer.sep_token!r})"
        )
    return cls_id, sep_id


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"a fast tokenizer (with offsets) is required, got {type(tokenizer).__name__}"
        )


def _tokenize(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    _require_fast(tokenizer)
    # verbose=False: a long passage is cut into windows later; no "longer than 512" warning
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]


def _ids(tokenizer, text: str, limit: int) -> list[int]:
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][:limit]


def _window(n: int, size: int, lo: int, hi: int) -> tuple[int, int]:
    """A window of ``size`` token positions in ``[0, n)`` that holds ``[lo, hi)``, centred on it."""
    if n <= size:
        return 0, n
    start = lo - (size - (hi - lo)) // 2
    start = max(0, min(start, n - size))
    return start, start + size


def _grid_window(n: int, size: int, lo: int, hi: int) -> tuple[int, int]:
    """The window of a fixed grid (``size`` positions, a quarter overlap, the last one flush with
    the end) that holds ``[lo, hi)`` farthest from its edges; `_window` when none holds it. The
    questions of one passage then share windows, so packing can put them after one source."""
    if n <= size:
        return 0, n
    step = max(1, size - size // 4)
    starts = list(range(0, n - size, step)) + [n - size]
    fits = [s for s in starts if s <= lo and hi <= s + size]
    if not fits:
        return _window(n, size, lo, hi)
    best = max(fits, key=lambda s: min(lo - s, s + size - hi))
    return best, best + size


def passage_windows(
    text: str, tokenizer, max_tokens: int, stride: int | None = None
) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Cut a passage into overlapping windows of at most ``max_tokens`` tokens, in one tokenizer
    call (``return_overflowing_tokens`` with ``stride``).

    Args:
        text: the passage.
        tokenizer: a fast tokenizer.
        max_tokens: tokens per window (special tokens not counted).
        stride: tokens shared by consecutive windows (``< max_tokens``; default a quarter).

    Returns:
        Per window, its token ids and their ``(start, end)`` character offsets in ``text``.
        One window when the passage fits.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got max_tokens={max_tokens}")
    if stride is None:
        stride = max_tokens // 4
    if not 0 <= stride < max_tokens:
        raise ValueError(f"stride must be in [0, max_tokens={max_tokens}), got stride={stride}")
    _require_fast(tokenizer)
    enc = tokenizer(
        text,
        add_special_tokens=False,
        truncation=True,
        max_length=max_tokens,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    return [
        (list(ids), [tuple(o) for o in offsets])
        for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"])
    ]


def split_passage(
    text: str, tokenizer, max_tokens: int, stride: int | None = None
) -> list[tuple[int, int]]:
    """The character spans ``(start, end)`` of `passage_windows`: ``text[start:end]`` is a
    window. One span covering the whole text when it fits."""
    windows = passage_windows(text, tokenizer, max_tokens, stride)
    if len(windows) == 1:
        return [(0, len(text))]
    return [(offsets[0][0], offsets[-1][1]) for _, offsets in windows]


def encode_source(
    tokenizer,
    passage: str,
    answer: str | None = None,
    max_length: int = 384,
    reserve: int = 0,
    answer_span: tuple[int, int] | None = None,
    max_answer_length: int = 64,
    shared_windows: bool = False,
) -> tuple[list[int], tuple[int, int]]:
    """Encode ``[CLS] passage [SEP]`` (or ``[CLS] passage [SEP] answer [SEP]`` when ``answer`` is
    given), cutting the passage to fit ``max_length - reserve`` tokens.

    Args:
        tokenizer: a fast tokenizer.
        passage: the passage text.
        answer: the answer to put in the source (task ``qg``), or None.
        max_length: budget for the whole sequence.
        reserve: tokens kept free for the target.
        answer_span: character span of the answer in ``passage``; the window keeps it.
            Without it the window is the start of the passage.
        max_answer_length: cap on the answer's tokens in the source (a very long answer must
            not crowd the passage out of the budget).
        shared_windows: take the window from a fixed grid over the passage (`_grid_window`)
            instead of centring it on the answer, so that answers of one passage share windows.

    Returns:
        ``(ids, (char_start, char_end))``: the source ids and the character span of the passage
        that made it into the window.
    """
    cls_id, sep_id = special_token_ids(tokenizer)
    ids, offsets = _tokenize(tokenizer, passage)
    extra = [] if answer is None else _ids(tokenizer, answer, max_answer_length) + [sep_id]
    budget = max_length - reserve - 2 - len(extra)
    if budget < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for the passage "
            f"(target reserve {reserve}, answer {len(extra)} tokens)"
        )
    lo = hi = 0
    if answer_span is not None:
        inside = [
            k for k, (s, e) in enumerate(offsets) if s < answer_span[1] and e > answer_span[0]
        ]
        if inside:
            lo, hi = inside[0], inside[-1] + 1
    start, end = (_grid_window if shared_windows else _window)(len(ids), budget, lo, hi)
    if not ids:
        span = (0, 0)
    else:
        span = (offsets[start][0], offsets[end - 1][1])
    return [cls_id] + ids[start:end] + [sep_id] + extra, span


# --------------------------------------------------------------------------- batching


@dataclass
class UniLMCollator:
    """Pad UniLM features to the longest row of the batch (right padding).

    Returns ``input_ids`` (padded with the tokenizer's pad id), ``token_type_ids`` (padded with
    0), ``attention_mask`` and ``labels``: the *unshifted* ``input_ids`` with -100 on every
    non-target token (source and padding); `UniLMForQAGeneration` shifts them. Packed features
    (`pack_features`) also give ``target_segment_ids`` (padded with 0) and their
    ``position_ids``. Other keys of the features are ignored.

    Args:
        tokenizer: gives ``pad_token_id``.
        pad_to_multiple_of: round the padded length up to a multiple of this (or None).
    """

    tokenizer: Any
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            raise ValueError(f"tokenizer {type(self.tokenizer).__name__} has no pad token")
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = len(features)
        input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
        token_type_ids = torch.zeros((batch, length), dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[i, :n] = torch.as_tensor(f["input_ids"], dtype=torch.long)
            token_type_ids[i, :n] = torch.as_tensor(f["token_type_ids"], dtype=torch.long)
            attention_mask[i, :n] = 1
        labels = input_ids.masked_fill((token_type_ids == 0) | (attention_mask == 0), -100)
        batch_out = {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
            "labels": labels,
        }
        if "target_segment_ids" in features[0]:
            segments = torch.zeros((batch, length), dtype=torch.long)
            for i, f in enumerate(features):
                n = len(f["target_segment_ids"])
                segments[i, :n] = torch.as_tensor(f["target_segment_ids"], dtype=torch.long)
            batch_out["target_segment_ids"] = segments
            batch_out["position_ids"] = packed_position_ids(segments)
        return batch_out
