"""Legal-move constrained generation through `decoding.decode`.

`LegalMovesLogitsProcessor` is a prefix tree of the position's legal moves as token ids: after
the prompt, only tokens that continue some legal move keep their score; once a move is complete
only the end token is allowed. It is a pure transformers ``LogitsProcessor`` (so it also plugs
into ``model.generate(logits_processor=...)``).

`generate_move` passes it to ``decoding.decode(..., logits_processor=[...])``, which runs it
before temperature / top-k / top-p, so those choose among legal continuations only (a top-k
taken before the mask could keep only illegal tokens).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, PreTrainedModel

from decoding import DecodingConfig, decode

from .tokenizer import XiangqiTokenizerBase

__all__ = ["LegalMovesLogitsProcessor", "generate_move"]


class LegalMovesLogitsProcessor(LogitsProcessor):
    """Allow only tokens that continue one of ``allowed`` after the prompt.

    Args:
        allowed: token-id sequences of the legal moves (all the same length ``k``).
        prompt_length: length of the prompt; tokens after it are the move being generated.
        eos_token_id: the only token allowed once ``k`` tokens were generated.
    """

    def __init__(self, allowed: list[list[int]], prompt_length: int, eos_token_id: int) -> None:
        if not allowed:
            raise ValueError(
                "allowed must hold at least one legal move (the side to move has none)"
            )
        if len({len(a) for a in allowed}) != 1:
            raise ValueError(
                f"allowed moves must all have the same number of tokens, got {allowed!r}"
            )
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got prompt_length={prompt_length}")
        self.k = len(allowed[0])
        self.prompt_length = prompt_length
        self.eos_token_id = eos_token_id
        self.tree: dict[tuple[int, ...], list[int]] = {}
        for seq in allowed:
            for j in range(self.k):
                nxt = self.tree.setdefault(tuple(seq[:j]), [])
                if seq[j] not in nxt:
                    nxt.append(seq[j])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.ones_like(scores, dtype=torch.bool)  # True = banned
        for row in range(input_ids.shape[0]):
            prefix = tuple(input_ids[row, self.prompt_length :].tolist())
            ok = [self.eos_token_id] if len(prefix) >= self.k else self.tree.get(prefix, [])
            mask[row, ok] = False
        return scores.masked_fill(mask, float("-inf"))


@torch.no_grad()
def generate_move(
    model: PreTrainedModel,
    tokenizer: XiangqiTokenizerBase,
    context_ids: list[int],
    legal_moves: list[str],
    config: DecodingConfig,
) -> str:
    """Generate one move with ``decoding.decode`` under the legality constraint.

    Args:
        context_ids: ``[BOS]`` + history token ids (already windowed to fit the model).
        legal_moves: the ICCS legal moves of the position (non-empty).
        config: strategy / top-k / top-p / temperature / seed; ``max_new_tokens`` and
            ``eos_token_id`` are overridden to one move.
    Returns:
        The generated ICCS move, always one of ``legal_moves``.
    """
    k = tokenizer.tokens_per_move
    by_ids = {tuple(tokenizer.move_ids(m)): m for m in legal_moves}
    processor = LegalMovesLogitsProcessor(
        [list(key) for key in by_ids], len(context_ids), tokenizer.eos_token_id
    )
    cfg = DecodingConfig(
        **{
            **config.__dict__,
            "max_new_tokens": k,
            "min_new_tokens": 0,
            "eos_token_id": tokenizer.eos_token_id,
        }
    )
    out = decode(
        model, torch.tensor([context_ids], device=model.device), cfg, logits_processor=[processor]
    )
    return by_ids[tuple(out.sequences[0, len(context_ids) : len(context_ids) + k].tolist())]
