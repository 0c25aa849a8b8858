"""Logits processors that speak HF's `LogitsProcessor` protocol, plus the consistent variants.

Every processor is a small class: it validates its arguments in ``__init__`` and has a pure
``__call__(input_ids, scores) -> scores`` that never edits its input, so it works both inside
`decoding.decode` and in ``model.generate(logits_processor=LogitsProcessorList([...]))``.

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
from transformers import LogitsProcessor, LogitsProcessorList

from .config import DecodingConfig
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


@PROCESSORS.register("temperature")
class TemperatureProcessor(LogitsProcessor):
    """Divide the logits by ``temperature`` (> 0). Greedy is a strategy, not temperature 0."""

    def __init__(self, temperature: float):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got temperature={temperature}")
        self.temperature = float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


class _EosKeeper(LogitsProcessor):
    """Base of the truncation warpers: ``_remove_mask`` says what to drop; the consistent
    variants then put every end token back in the candidate set."""

    keep_eos = False

    def __init__(
        self, eos_token_id: int | Sequence[int] | None = None, min_tokens_to_keep: int = 1
    ):
        if min_tokens_to_keep < 1:
            raise ValueError(
                f"min_tokens_to_keep must be >= 1, got min_tokens_to_keep={min_tokens_to_keep}"
            )
        self.eos_token_ids = _as_id_list(eos_token_id)
        if self.keep_eos and not self.eos_token_ids:
            raise ValueError(f"{type(self).__name__} needs an eos_token_id, got eos_token_id=None")
        self.min_tokens_to_keep = min_tokens_to_keep
        self._eos = torch.tensor(self.eos_token_ids, dtype=torch.long)

    def _remove_mask(self, scores: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        remove = self._remove_mask(scores)
        if remove is None:
            return scores
        if self.keep_eos:
            check_eos_in_vocab(self.eos_token_ids, scores.shape[-1])
            eos = self._eos.to(scores.device)
            remove = remove.index_fill(-1, eos, False)  # the consistency fix of Welleck et al.
        return scores.masked_fill(remove, -float("inf"))


@PROCESSORS.register("top_k")
class TopKProcessor(_EosKeeper):
    """Keep the ``top_k`` highest scores (ties with the k-th kept, as in HF); 0 switches it off."""

    def __init__(
        self,
        top_k: int,
        eos_token_id: int | Sequence[int] | None = None,
        min_tokens_to_keep: int = 1,
    ):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0, got top_k={top_k!r}")
        super().__init__(eos_token_id, min_tokens_to_keep)
        self.top_k = top_k

    def _remove_mask(self, scores: torch.Tensor) -> torch.Tensor | None:
        if self.top_k == 0:
            return None
        k = min(max(self.top_k, self.min_tokens_to_keep), scores.shape[-1])
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]  # (N, 1)
        return scores < kth


@PROCESSORS.register("top_p")
class TopPProcessor(_EosKeeper):
    """Nucleus filter: keep the smallest top set whose probability mass reaches ``top_p``
    (in (0, 1]; 1 switches it off). Same arithmetic as HF's ``TopPLogitsWarper``."""

    def __init__(
        self,
        top_p: float,
        eos_token_id: int | Sequence[int] | None = None,
        min_tokens_to_keep: int = 1,
    ):
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got top_p={top_p}")
        super().__init__(eos_token_id, min_tokens_to_keep)
        self.top_p = float(top_p)

    def _remove_mask(self, scores: torch.Tensor) -> torch.Tensor | None:
        if self.top_p >= 1.0:
            return None
        sorted_logits, sorted_idx = torch.sort(scores, descending=False)
        cum_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_remove = cum_probs <= (1 - self.top_p)
        sorted_remove[..., -self.min_tokens_to_keep :] = False
        return sorted_remove.scatter(-1, sorted_idx, sorted_remove)


@PROCESSORS.register("consistent_top_k")
class ConsistentTopK(TopKProcessor):
    """Top-k that never removes an end token: V_t = topk(p) U {eos} (Welleck et al. 2020)."""

    keep_eos = True


@PROCESSORS.register("consistent_top_p")
class ConsistentTopP(TopPProcessor):
    """Nucleus that never removes an end token: V_t = nucleus(p) U {eos} (Welleck et al. 2020)."""

    keep_eos = True


@PROCESSORS.register("repetition_penalty")
class RepetitionPenaltyProcessor(LogitsProcessor):
    """CTRL repetition penalty: scores of tokens already in ``input_ids`` are divided by
    ``penalty`` when positive and multiplied when negative.

    Args:
        penalty: > 0; 1 means off.
        prompt_ignore_length: ``(N,)`` number of leading positions per row to ignore (the left
            padding), as HF ``generate`` does; ``None`` counts every position.
        prompt_length: leading positions of every row to ignore (``repetition_scope=
            'generated'``: the whole prompt); 0 counts them.
    """

    def __init__(
        self, penalty: float, prompt_ignore_length: torch.Tensor | None = None,
        prompt_length: int = 0,
    ):  # fmt: skip
        if not penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got repetition_penalty={penalty}")
        self.penalty = float(penalty)
        self.prompt_ignore_length = prompt_ignore_length
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        ids = input_ids[:, self.prompt_length :]
        if self.prompt_ignore_length is not None and not self.prompt_length:
            pos = torch.arange(ids.shape[1], device=ids.device)
            ignore = pos[None, :] < self.prompt_ignore_length.to(ids.device)[:, None]
            ids = ids.masked_fill(ignore, vocab)  # spare column, dropped below
        seen = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
        seen = seen.scatter(1, ids.clamp(max=vocab), True)[:, :vocab]
        penalized = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return torch.where(seen, penalized, scores)


@PROCESSORS.register("no_repeat_ngram")
class NoRepeatNGramProcessor(LogitsProcessor):
    """Ban any token that would repeat an n-gram already present in ``input_ids`` (from
    position ``prompt_length`` on: with ``repetition_scope='generated'``, n-grams of the prompt
    may be copied, not repeated)."""

    def __init__(self, ngram_size: int, prompt_length: int = 0):
        if isinstance(ngram_size, bool) or not isinstance(ngram_size, int) or ngram_size < 1:
            raise ValueError(
                f"no_repeat_ngram_size must be an int >= 1, got no_repeat_ngram_size={ngram_size!r}"
            )
        self.ngram_size = ngram_size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        input_ids = input_ids[:, self.prompt_length :]
        n, length = self.ngram_size, input_ids.shape[-1]
        if length < n:
            return scores
        prefix = input_ids[:, length + 1 - n :]  # (N, n-1): the n-gram the next token would close
        windows = input_ids.unfold(1, n, 1)  # (N, W, n)
        matches = (windows[..., :-1] == prefix[:, None, :]).all(dim=-1)  # (N, W)
        vocab = scores.shape[-1]
        banned = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
        target = torch.where(matches, windows[..., -1].clamp(max=vocab), vocab)
        banned = banned.scatter(1, target, True)[:, :vocab]
        return scores.masked_fill(banned, -float("inf"))


@PROCESSORS.register("min_new_tokens")
class MinNewTokensProcessor(LogitsProcessor):
    """Ban every end token until ``min_new_tokens`` tokens follow the ``prompt_length`` prompt."""

    def __init__(self, prompt_length: int, min_new_tokens: int, eos_token_id: int | Sequence[int]):
        if min_new_tokens < 0:
            raise ValueError(f"min_new_tokens must be >= 0, got min_new_tokens={min_new_tokens}")
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got prompt_length={prompt_length}")
        self.prompt_length = prompt_length
        self.min_new_tokens = min_new_tokens
        self.eos_token_ids = _as_id_list(eos_token_id)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        check_eos_in_vocab(self.eos_token_ids, scores.shape[-1])
        if input_ids.shape[-1] - self.prompt_length >= self.min_new_tokens:
            return scores
        out = scores.clone()
        out[:, self.eos_token_ids] = -float("inf")
        return out


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
                {"top_p": config.top_p, **eos_kw},
            ),
        ]
    processors = LogitsProcessorList(
        PROCESSORS[name](**kw) for name, active, kw in constraints if active
    )
    processors.extend(extra)
    processors.extend(PROCESSORS[name](**kw) for name, active, kw in warpers if active)
    return processors
