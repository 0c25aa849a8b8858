"""Logits processors that speak HF's `LogitsProcessor` protocol, plus the consistent variants.

Every processor is a small class: it validates its arguments in ``__init__`` and has a pure
``__call__(input_ids, scores) -> scores`` that never edits its input, so it works both inside
`decoding.decode` and in ``model.generate(logits_processor=LogitsProcessorList([...]))``.

The plain processors *are* HF's (transformers ``generation/logits_process.py``): each subclasses
its HF class (`TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`,
`RepetitionPenaltyLogitsProcessor`, `NoRepeatNGramLogitsProcessor`,
`MinNewTokensLengthLogitsProcessor`) and adds only our argument checks (a `ValueError` naming the
parameter and value), "off" values (``top_k=0``, ``top_p=1``) and, for the two repetition
controls, ``prompt_length`` (``repetition_scope='generated'``: the prompt is not looked at). The
consistent variants (`ConsistentTopK`, `ConsistentTopP`) run the plain warper and put every end
token back.

`build_processors` builds the list for a `DecodingConfig` in a fixed order: repetition
penalty, no-repeat-n-gram, min-new-tokens, then (sampling only) temperature, top-k, top-p --
the order of HF ``generate``.

Using the consistent processors with ``model.generate``: HF appends its own warpers *after*
the ``logits_processor`` list and, when sampling, adds ``top_k=50`` unless told otherwise. Pass
``top_k=0, top_p=1.0, temperature=1.0`` (and put a `TemperatureProcessor` first in the list if
you want a temperature) so that ours are the only filters::

    model.generate(input_ids, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                   logits_processor=LogitsProcessorList([ConsistentTopP(0.4, eos_token_id=2)]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from .config import DecodingConfig
from .nucleus import top_p_threshold
from .registry import Registry

__all__ = [
    "PROCESSORS",
    "ConsistentTopK",
    "ConsistentTopP",
    "MinNewTokensProcessor",
    "NoRepeatNGramProcessor",
    "RepetitionPenaltyProcessor",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "build_processors",
    "check_eos_in_vocab",
]

# name -> processor class; `build_processors` looks its processors up here by name
PROCESSORS: Registry[type[LogitsProcessor]] = Registry("processor")


def _as_id_list(eos_token_id: int | Sequence[int] | None) -> list[int]:
    if eos_token_id is None:
        return []
    if isinstance(eos_token_id, int):
        return [eos_token_id]
    return [int(i) for i in eos_token_id]


def check_eos_in_vocab(eos_token_id: int | Sequence[int] | None, vocab_size: int) -> None:
    """Raise a ValueError naming the id when an end token id is outside ``[0, vocab_size)``."""
    for i in _as_id_list(eos_token_id):
        if not 0 <= i < vocab_size:
            raise ValueError(f"eos_token_id={i} is outside the vocabulary [0, {vocab_size})")


def _check_min_tokens_to_keep(min_tokens_to_keep: int) -> None:
    if not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(
            f"min_tokens_to_keep must be >= 1, got min_tokens_to_keep={min_tokens_to_keep!r}"
        )


@PROCESSORS.register("temperature")
class TemperatureProcessor(TemperatureLogitsWarper):
    """HF's `TemperatureLogitsWarper` (divide the logits by ``temperature``), with our check:
    ``temperature > 0``, an int is fine. Greedy is a strategy, not temperature 0."""

    def __init__(self, temperature: float):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got temperature={temperature}")
        super().__init__(float(temperature))


@PROCESSORS.register("top_k")
class TopKProcessor(TopKLogitsWarper):
    """HF's `TopKLogitsWarper`: keep the ``top_k`` highest scores (at least
    ``min_tokens_to_keep``; ties with the k-th are kept), with our checks; 0 switches it off
    (HF rejects 0)."""

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0, got top_k={top_k!r}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        super().__init__(top_k or 1, min_tokens_to_keep=min_tokens_to_keep)
        if top_k == 0:
            self.top_k = 0  # off

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if self.top_k == 0:
            return scores
        return super().__call__(input_ids, scores)


@PROCESSORS.register("top_p")
class TopPProcessor(TopPLogitsWarper):
    """HF's `TopPLogitsWarper` (nucleus: keep the smallest top set whose probability mass
    reaches ``top_p``), with our checks: ``top_p`` in (0, 1]; 1 switches it off (returns the
    scores untouched, where HF would still drop tokens whose probability underflows to 0).

    With ``fast=True`` (default) CPU scores are cut by `decoding.nucleus.top_p_threshold`:
    HF's kept set bit for bit without its ``torch.sort``; rows where the cut falls inside a
    tie, and other devices, go through HF's code.
    """

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1, fast: bool = True):
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got top_p={top_p}")
        _check_min_tokens_to_keep(min_tokens_to_keep)
        super().__init__(top_p, min_tokens_to_keep=min_tokens_to_keep)
        self.fast = fast

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if self.top_p >= 1.0:
            return scores
        cut = top_p_threshold(scores, self.top_p, self.min_tokens_to_keep) if self.fast else None
        if cut is None:
            return super().__call__(input_ids, scores)
        lowest_kept, exact = cut
        out = scores.masked_fill(scores < lowest_kept, self.filter_value)
        if not bool(exact.all()):
            rows = (~exact).nonzero().squeeze(1)
            out[rows] = super().__call__(input_ids, scores[rows])
        return out


class _KeepEos(LogitsProcessor):
    """A plain truncation warper, then every end token put back at its own score: the
    consistency fix of Welleck et al. 2020 (``V_t = V_warper U {eos}``).

    It wraps the warper rather than subclassing HF's class, so that nothing that recognises
    HF's warpers by type (continuous batching swaps them for its own) mistakes it for the
    plain one.
    """

    def __init__(self, warper: LogitsProcessor, eos_token_id: int | Sequence[int] | None):
        self.warper = warper
        self.eos_token_ids = _as_id_list(eos_token_id)
        if not self.eos_token_ids:
            raise ValueError(f"{type(self).__name__} needs an eos_token_id, got eos_token_id=None")
        self._eos = torch.tensor(self.eos_token_ids, dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        check_eos_in_vocab(self.eos_token_ids, scores.shape[-1])
        eos = self._eos.to(scores.device)
        return self.warper(input_ids, scores).index_copy(-1, eos, scores.index_select(-1, eos))


@PROCESSORS.register("consistent_top_k")
class ConsistentTopK(_KeepEos):
    """Top-k that never removes an end token: V_t = topk(p) U {eos} (Welleck et al. 2020).
    `TopKProcessor` (HF's top-k) does the filtering; this class only puts the end tokens back."""

    def __init__(
        self,
        top_k: int,
        eos_token_id: int | Sequence[int] | None = None,
        min_tokens_to_keep: int = 1,
    ):
        super().__init__(TopKProcessor(top_k, min_tokens_to_keep), eos_token_id)
        self.top_k = top_k


@PROCESSORS.register("consistent_top_p")
class ConsistentTopP(_KeepEos):
    """Nucleus that never removes an end token: V_t = nucleus(p) U {eos} (Welleck et al. 2020).
    `TopPProcessor` (HF's top-p) does the filtering; this class only puts the end tokens back."""

    def __init__(
        self,
        top_p: float,
        eos_token_id: int | Sequence[int] | None = None,
        min_tokens_to_keep: int = 1,
        fast: bool = True,
    ):
        super().__init__(TopPProcessor(top_p, min_tokens_to_keep, fast), eos_token_id)
        self.top_p = float(top_p)


@PROCESSORS.register("repetition_penalty")
class RepetitionPenaltyProcessor(RepetitionPenaltyLogitsProcessor):
    """HF's `RepetitionPenaltyLogitsProcessor` (CTRL: scores of tokens already in
    ``input_ids`` are divided by ``penalty`` when positive and multiplied when negative), with
    our check; ``prompt_length`` (``repetition_scope='generated'``) is HF's int
    ``prompt_ignore_length``, which cuts the prompt off every row.

    Args:
        penalty: > 0; 1 means off.
        prompt_ignore_length: ``(N,)`` number of leading positions per row to ignore (the left
            padding), as HF ``generate`` does; ``None`` counts every position.
        prompt_length: leading positions of every row to ignore (``repetition_scope=
            'generated'``: the whole prompt; it overrides ``prompt_ignore_length``); 0 counts
            them.
    """

    def __init__(
        self, penalty: float, prompt_ignore_length: torch.Tensor | None = None,
        prompt_length: int = 0,
    ):  # fmt: skip
        if not penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got repetition_penalty={penalty}")
        super().__init__(float(penalty), prompt_length or prompt_ignore_length)
        self.prompt_length = prompt_length


@PROCESSORS.register("no_repeat_ngram")
class NoRepeatNGramProcessor(NoRepeatNGramLogitsProcessor):
    """HF's `NoRepeatNGramLogitsProcessor` (ban any token that would repeat an n-gram already
    present in ``input_ids``), with our check, on ``input_ids`` from position ``prompt_length``
    on: with ``repetition_scope='generated'``, n-grams of the prompt may be copied, not
    repeated."""

    def __init__(self, ngram_size: int, prompt_length: int = 0):
        if isinstance(ngram_size, bool) or not isinstance(ngram_size, int) or ngram_size < 1:
            raise ValueError(
                f"no_repeat_ngram_size must be an int >= 1, got no_repeat_ngram_size={ngram_size!r}"
            )
        super().__init__(ngram_size)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return super().__call__(input_ids[:, self.prompt_length :], scores)


@PROCESSORS.register("min_new_tokens")
class MinNewTokensProcessor(MinNewTokensLengthLogitsProcessor):
    """HF's `MinNewTokensLengthLogitsProcessor` (ban every end token until ``min_new_tokens``
    tokens follow the ``prompt_length`` prompt), with our checks: the arguments, and every end
    token id inside the vocabulary (HF ignores one outside it)."""

    def __init__(self, prompt_length: int, min_new_tokens: int, eos_token_id: int | Sequence[int]):
        if min_new_tokens < 0:
            raise ValueError(f"min_new_tokens must be >= 0, got min_new_tokens={min_new_tokens}")
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got prompt_length={prompt_length}")
        self.eos_token_ids = _as_id_list(eos_token_id)
        eos = torch.tensor(self.eos_token_ids, dtype=torch.long)
        super().__init__(prompt_length, min_new_tokens, eos)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        check_eos_in_vocab(self.eos_token_ids, scores.shape[-1])
        # HF builds the end-token tensor on the CPU; follow the scores (later calls: a no-op)
        self.eos_token_id = self.eos_token_id.to(scores.device)
        return super().__call__(input_ids, scores)


def build_processors(
    config: DecodingConfig,
    vocab_size: int,
    prompt_length: int,
    prompt_ignore_length: torch.Tensor | None = None,
    extra: Sequence[LogitsProcessor] = (),
) -> LogitsProcessorList:
    """The processors `decode` applies for ``config``, in the fixed documented order:
    repetition penalty, no-repeat-n-gram, min-new-tokens, the ``extra`` ones, then (sampling
    only) temperature, top-k, top-p -- where HF ``generate`` puts a user's processors too.

    Args:
        config: the decoding configuration.
        vocab_size: size of the score vectors; every end token id must lie inside it.
        prompt_length: length of the (padded) prompt, for ``min_new_tokens`` (and the
            repetition controls with ``repetition_scope='generated'``).
        prompt_ignore_length: ``(N,)`` left-padding length per row (repetition penalty only).
        extra: caller's processors (e.g. a legal-move mask), applied before the warpers.

    Returns:
        A `LogitsProcessorList` (empty when nothing is active).
    """
    eos = config.eos_token_ids
    check_eos_in_vocab(eos, vocab_size)
    skip = prompt_length if config.repetition_scope == "generated" else 0
    constraints = [
        (
            "repetition_penalty",
            config.repetition_penalty != 1.0,
            {
                "penalty": config.repetition_penalty,
                "prompt_ignore_length": prompt_ignore_length,
                "prompt_length": skip,
            },
        ),
        (
            "no_repeat_ngram",
            config.no_repeat_ngram_size > 0,
            {"ngram_size": config.no_repeat_ngram_size, "prompt_length": skip},
        ),
        (
            "min_new_tokens",
            config.min_new_tokens > 0 and bool(eos),
            {
                "prompt_length": prompt_length,
                "min_new_tokens": config.min_new_tokens,
                "eos_token_id": eos,
            },
        ),
    ]
    warpers = []
    if config.strategy == "sample":
        consistent = config.consistent and bool(eos)
        eos_kw = {"eos_token_id": eos} if consistent else {}
        warpers = [
            ("temperature", config.temperature != 1.0, {"temperature": config.temperature}),
            (
                "consistent_top_k" if consistent else "top_k",
                config.top_k > 0,
                {"top_k": config.top_k, **eos_kw},
            ),
            (
                "consistent_top_p" if consistent else "top_p",
                config.top_p < 1.0,
                {"top_p": config.top_p, "fast": config.fast_top_p, **eos_kw},
            ),
        ]
    processors = LogitsProcessorList(
        PROCESSORS[name](**kw) for name, active, kw in constraints if active
    )
    processors.extend(extra)
    processors.extend(PROCESSORS[name](**kw) for name, active, kw in warpers if active)
    return processors
