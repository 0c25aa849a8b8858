"""Su's move scoring: log p(move | history) = sum of the log-probabilities of the move's tokens.

All candidates of a position are scored in one forward (at most 111 of them). The history is
read once into the model's KV cache; the candidates' first ``k - 1`` tokens are then packed
into a single row after it, with a block-causal attention mask (each candidate sees the
history and its own earlier tokens; positions restart after the history for each), so the
history is shared without being copied per candidate. `MoveScorer` keeps that cache
between calls, so following a game costs only the new moves' tokens.

Context window: a model of ``n_positions`` tokens never saw longer games (Su's neither). When
``[BOS] + history + candidate`` no longer fits, the oldest moves are dropped *in pairs* (so
the side to move keeps its parity after ``[BOS]``) -- a sliding window, documented in
docs/xiangqi.md.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PreTrainedModel

from .tokenizer import XiangqiTokenizerBase

__all__ = ["MoveScorer", "score_moves", "window_start"]


def window_start(n_moves: int, tokens_per_move: int, n_positions: int) -> int:
    """Index of the first history move kept so that ``[BOS] + moves + one move`` fits."""
    fit = (n_positions - 1) // tokens_per_move - 1  # moves of history that fit beside a candidate
    drop = max(0, n_moves - fit)
    return drop + (drop % 2)


class MoveScorer:
    """Score candidate moves after a history, reusing the KV cache of the history.

    Args:
        model: a causal LM (GPT-2, causal BERT) in eval mode.
        tokenizer: a Xiangqi tokenizer (char or move level).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: XiangqiTokenizerBase) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.k = tokenizer.tokens_per_move
        self.n_positions = (
            getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
        )
        self._ids: list[int] = []  # tokens in the cache
        self._cache = None
        self._last_logp: torch.Tensor | None = None  # (V,) log p(next token | cached tokens)

    def _context(self, history: list[str]) -> list[int]:
        start = window_start(len(history), self.k, self.n_positions)
        return self.tokenizer.encode_moves(history[start:])

    @torch.no_grad()
    def _advance(self, ids: list[int]) -> None:
        """Make the cache hold exactly ``ids`` (extend it when ``ids`` continues it)."""
        n = len(self._ids)
        if self._cache is None or ids[:n] != self._ids or len(ids) < n:
            self._cache, n = DynamicCache(), 0
        new = ids[n:]
        if new:
            out = self.model(
                input_ids=torch.tensor([new], device=self.model.device),
                cache=self._cache,
                use_cache=True,
            )
            self._cache = out.cache
            self._last_logp = torch.log_softmax(out.logits[0, -1].float(), -1)
        self._ids = list(ids)

    @torch.no_grad()
    def _candidate_logp(self, cand: torch.Tensor) -> torch.Tensor:
        """``(N, k-1)`` log p of each candidate's tokens 2..k, all candidates packed into ONE
        row after the cached history with a block-causal ("tree") attention mask, so the
        history's keys/values are neither recomputed nor copied N times."""
        n, k, past = cand.shape[0], self.k - 1, len(self._ids)
        ids = cand[:, :-1].reshape(1, n * k)
        positions = (past + torch.arange(k, device=ids.device)).repeat(n)[None]
        mask = _tree_mask(n, k, past, torch.bool, ids.device)
        if getattr(self.model.config, "_attn_implementation", "sdpa") == "eager":
            mask = torch.zeros(mask.shape, dtype=self.model.dtype, device=ids.device).masked_fill(
                ~mask, torch.finfo(self.model.dtype).min
            )
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
        )
        self._cache.crop(-n * k)  # forget the candidates: the cache holds the history again
        logits = out.logits[0].view(n, k, -1).float()
        return torch.log_softmax(logits, -1).gather(-1, cand[:, 1:, None])[..., 0]

    @torch.no_grad()
    def score(self, history: list[str], candidates: list[str]) -> torch.Tensor:
        """``(N,)`` sum of log-probabilities of each candidate's tokens after ``history``.

        Args:
            history: the ICCS moves played so far, from the start position.
            candidates: ICCS moves to score (e.g. every legal move; at most 111).
        """
        if not candidates:
            return torch.empty(0)
        self._advance(self._context(history))
        cand = torch.tensor(
            [self.tokenizer.move_ids(m) for m in candidates], device=self.model.device
        )
        scores = self._last_logp[cand[:, 0]]  # (N,)
        if self.k == 1:
            return scores.cpu()
        logp = self._candidate_logp(cand)  # (N, k-1)
        return (scores + logp.sum(-1)).cpu()


def _tree_mask(n: int, k: int, past: int, dtype: torch.dtype, device) -> torch.Tensor:
    """``(1, 1, n*k, past + n*k)`` mask: every candidate token sees the whole history and the
    earlier tokens of its own candidate only (bool: True = attend)."""
    q = torch.arange(n * k, device=device)
    same = (q[:, None] // k == q[None, :] // k) & (q[None, :] <= q[:, None])
    mask = torch.cat([torch.ones(n * k, past, dtype=torch.bool, device=device), same], dim=1)
    return mask[None, None]


def score_moves(
    model: PreTrainedModel,
    tokenizer: XiangqiTokenizerBase,
    history: list[str],
    candidates: list[str],
) -> torch.Tensor:
    """``score_moves(history, candidates) -> (N,)``: Su's sums of token log-probs (docs/xiangqi.md,
    "Modules", ``scoring.py``), without reusing a cache."""
    return MoveScorer(model, tokenizer).score(history, candidates)
