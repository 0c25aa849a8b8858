"""Distinct first tokens for the samples of one prompt: sampling without replacement at step 1.

When a decoder draws ``R`` samples per prompt (``num_return_sequences``) from a peaked
distribution, they often agree, and asking for three answers gives one. `FirstTokensWithoutReplacement`
makes the ``R`` rows of a prompt start with ``R`` *different* tokens, drawn without replacement
from the first step's distribution with the Gumbel-top-k trick (Kool, van Hoof and Welling,
2019: the ``R`` largest of ``log p + Gumbel noise`` are a sample without replacement); the rest of
each sequence is sampled as usual. Tokens inside the nucleus (``top_p``, and the ``top_k`` most
likely) come first; tokens outside it only fill in when it holds fewer than ``R``. When fewer than ``R`` tokens are
possible at all, rows repeat them in turn.

It is an HF `LogitsProcessor` that acts only on the first generated step (``input_ids`` as
long as the prompt) and leaves each row a single allowed token; put it after every other
constraint (e.g. `decoding.SpanConstraintProcessor`) so that it draws among allowed tokens.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from .processors import PROCESSORS

__all__ = ["FirstTokensWithoutReplacement"]


@PROCESSORS.register("first_tokens_without_replacement")
class FirstTokensWithoutReplacement(LogitsProcessor):
    """At the first generated step, give the ``group_size`` rows of each prompt distinct tokens.

    Args:
        prompt_length: width of the prompt in ``input_ids`` (the first step is when
            ``input_ids.shape[1] == prompt_length``).
        group_size: rows per prompt (``num_return_sequences``); rows ``i * group_size + j``
            belong to prompt ``i``, as `decoding.decode` and HF ``generate`` lay them out.
        top_p: nucleus of the first step's distribution whose tokens are drawn first.
        top_k: with ``top_k > 0``, only the ``top_k`` most likely tokens are drawn first.
        generator: random generator for the Gumbel noise (seeded: reproducible).
    """

    def __init__(
        self,
        prompt_length: int,
        group_size: int,
        top_p: float = 1.0,
        top_k: int = 0,
        generator: torch.Generator | None = None,
    ):
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got group_size={group_size}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got top_p={top_p}")
        self.prompt_length = prompt_length
        self.group_size = group_size
        self.top_p = top_p
        self.top_k = top_k
        self.generator = generator

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] != self.prompt_length:
            return scores
        n, vocab = scores.shape
        r = self.group_size
        if n % r:
            raise ValueError(f"got {n} rows, not a multiple of group_size={r}")
        first = scores[::r].float()  # (B, V): the rows of a prompt share its distribution
        logp = first.log_softmax(-1)
        possible = torch.isfinite(logp)
        order = logp.argsort(dim=-1, descending=True)
        p_sorted = logp.gather(-1, order).exp()
        # in the nucleus: the mass before a token is below top_p (the token crossing it is in)
        outside_sorted = (p_sorted.cumsum(-1) - p_sorted) >= self.top_p
        if self.top_k > 0:
            outside_sorted[:, self.top_k :] = True
        outside_sorted[:, 0] = False  # the most likely token is always in
        outside = torch.zeros_like(possible).scatter(-1, order, outside_sorted)
        uniform = torch.rand(first.shape, generator=self.generator, device=first.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1 - 1e-7)))
        keys = torch.where(possible, logp + gumbel - 1e9 * outside.float(), -float("inf"))
        k = min(r, vocab)
        drawn = keys.topk(k, dim=-1).indices  # (B, k), best first
        usable = possible.sum(-1).clamp(min=1)  # (B,)
        turn = torch.arange(r, device=scores.device)[None, :] % usable[:, None]  # repeat in turn
        tokens = drawn.gather(-1, turn.clamp(max=k - 1))  # (B, r)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(1, tokens.reshape(-1, 1), True)
        return scores.masked_fill(~keep, -float("inf"))
