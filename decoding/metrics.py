"""Metrics for decoded continuations: non-termination, repetition, diversity, length.

Every function takes *continuations* (the generated tokens only, prompt removed) as a list of
token lists, a list of 1-D tensors, or a 2-D tensor ``(N, T)``. A row is read up to and
including its first end token; without an end token, trailing ``pad_token_id`` tokens are
dropped (so padding that equals the end token, the `decoding.decode` default, is handled).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "non_termination_ratio",
    "repetition_rate",
    "distinct_n",
    "mean_length",
    "split_continuations",
]

Sequences = torch.Tensor | Sequence[Sequence[int]] | Sequence[torch.Tensor]


def _eos_set(eos_token_id: int | Iterable[int] | None) -> set[int]:
    if eos_token_id is None:
        return set()
    if isinstance(eos_token_id, int):
        return {eos_token_id}
    return set(eos_token_id)


def split_continuations(
    sequences: Sequences,
    eos_token_id: int | Iterable[int] | None = None,
    pad_token_id: int | None = None,
) -> list[tuple[list[int], bool]]:
    """Normalise continuations to ``(tokens, ended)`` pairs.

    ``tokens`` excludes the end token and everything after it; ``ended`` says whether an end
    token occurred. Rows without an end token lose their trailing ``pad_token_id`` tokens.
    """
    eos = _eos_set(eos_token_id)
    if isinstance(sequences, torch.Tensor):
        if sequences.dim() != 2:
            raise ValueError(f"sequences must be a 2-D tensor, got shape {tuple(sequences.shape)}")
        rows = sequences.tolist()
    else:
        rows = [s.tolist() if isinstance(s, torch.Tensor) else list(s) for s in sequences]
    out = []
    for row in rows:
        cut = next((i for i, tok in enumerate(row) if tok in eos), None)
        if cut is not None:
            out.append((row[:cut], True))
            continue
        if pad_token_id is not None:
            while row and row[-1] == pad_token_id:
                row = row[:-1]
        out.append((row, False))
    return out


def non_termination_ratio(
    sequences: Sequences,
    eos_token_id: int | Iterable[int],
    max_length: int,
    pad_token_id: int | None = None,
) -> float:
    """r_L of Welleck et al. 2020: the fraction of continuations that reach the length cap
    ``L = max_length`` without producing an end token.

    A continuation counts as non-terminated when none of its first ``max_length`` tokens is
    an end token and it has at least ``max_length`` tokens. Returns 0.0 for no sequences.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got max_length={max_length}")
    rows = split_continuations(sequences, eos_token_id, pad_token_id)
    if not rows:
        return 0.0
    # An end token after the cap does not count: the decoder would have been stopped.
    stuck = sum(1 for toks, _ in rows if len(toks) >= max_length)
    return stuck / len(rows)


def _ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition_rate(
    sequences: Sequences,
    n: int = 4,
    eos_token_id: int | Iterable[int] | None = None,
    pad_token_id: int | None = None,
) -> float:
    """Share of repeated n-grams within a continuation ("seq-rep-n", Welleck et al. 2019):
    ``1 - |unique n-grams| / |n-grams|`` per continuation (end token excluded), averaged over
    the continuations that have at least one n-gram. A continuation stuck in a loop tends to
    1; one with no repeated n-gram scores 0. Returns 0.0 when no continuation has an n-gram.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    rates = []
    for toks, _ in split_continuations(sequences, eos_token_id, pad_token_id):
        grams = _ngrams(toks, n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else 0.0


def distinct_n(
    sequences: Sequences,
    n: int = 2,
    eos_token_id: int | Iterable[int] | None = None,
    pad_token_id: int | None = None,
) -> float:
    """Corpus-level distinct-n (Li et al. 2016): the number of distinct n-grams over all
    continuations divided by the total number of n-grams (end token excluded).
    Returns 0.0 when there is no n-gram."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got n={n}")
    grams = [
        g
        for toks, _ in split_continuations(sequences, eos_token_id, pad_token_id)
        for g in _ngrams(toks, n)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_length(
    sequences: Sequences,
    eos_token_id: int | Iterable[int] | None = None,
    pad_token_id: int | None = None,
) -> float:
    """Mean number of generated tokens per continuation, the end token included (the length
    that the decoder's cap applies to). Returns 0.0 for no sequences."""
    rows = split_continuations(sequences, eos_token_id, pad_token_id)
    if not rows:
        return 0.0
    return sum(len(toks) + int(ended) for toks, ended in rows) / len(rows)
