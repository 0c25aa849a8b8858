"""Constrain generation to copy a contiguous span of a per-row source (extractive answers).

`SpanConstraintProcessor` is an HF `LogitsProcessor`: for each row it allows only the tokens
that extend what was generated so far to a contiguous span of that row's source token sequence,
and the end token once the span is at least one token long. Optional word boundaries say where a
span may start and end, so that an answer never starts on a word piece that continues a word
(WordPiece ``##x``, a SentencePiece piece without the word-start marker) nor stops in the middle
of a word. `word_boundaries` computes them from the source text and token offsets, the same way
for every tokenizer: a token continues a word when the characters on both sides of its start
are letters or digits of a script written with spaces (every CJK character is a word boundary).

Put it before temperature / top-k / top-p (``decoding.decode``'s ``logits_processor`` already
sits there; with ``model.generate`` switch HF's own warpers off, see `decoding.processors`), so
that truncation acts on the allowed tokens only; the consistent warpers still keep the end token
whenever the constraint allows it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from .processors import PROCESSORS, _as_id_list, check_eos_in_vocab

__all__ = ["SpanConstraintProcessor", "word_boundaries"]

# scripts written without spaces between words: every character is a boundary (CJK, kana,
# Hangul syllables, Thai, Lao, Myanmar, Khmer)
_UNSPACED = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
)
_SPACED_WORD_CHAR = re.compile(rf"[^\W_{_UNSPACED}]")  # a letter or digit of a script with spaces
_SEPARATORS = ",;:\u3001\uff0c\uff1b\uff1a"  # , ; : and their CJK forms


def _in_word(ch: str) -> bool:
    """A letter or digit of a spaced script, or a combining mark (Devanagari vowel signs and
    virama, Arabic harakat ...), which always belongs to the word before it."""
    return bool(_SPACED_WORD_CHAR.match(ch)) or unicodedata.category(ch).startswith("M")


def _joins_word(left: str, right: str) -> bool:
    return _in_word(left) and _in_word(right)


def word_boundaries(text: str, offsets: Sequence[tuple[int, int]]) -> tuple[list[bool], list[bool]]:
    """Where a span of these tokens may start and end without cutting a word.

    Args:
        text: the text the tokens came from.
        offsets: ``(start, end)`` character offsets of each token in ``text`` (a fast
            tokenizer's ``return_offsets_mapping``).

    Returns:
        ``(starts, ends)``: ``starts[i]`` is True when a span may begin at token ``i`` (the
        character before it does not belong to the same word), ``ends[i]`` when a span may end
        with token ``i`` (the character after it does not continue its word). Judged on the
        text, so the tokens may be a window cut from it: a window cut inside a word does not
        end a span there. Tokens with no visible text (a bare SentencePiece ``▁``) or only
        separators (``,`` ``;`` ``:``) neither start nor end a span ("1644," is not an answer;
        a span may still cross a comma).
    """

    def cut_before(pos: int) -> bool:  # the characters on both sides of pos form one word
        return 0 < pos < len(text) and _joins_word(text[pos - 1], text[pos])

    # a token with no visible text, or only separators (",", ";", ":"), is no edge of a span
    edge = [text[s:e].strip().strip(_SEPARATORS) != "" for s, e in offsets]
    starts = [v and not cut_before(s) for v, (s, _) in zip(edge, offsets)]
    ends = [v and not cut_before(e) for v, (_, e) in zip(edge, offsets)]
    # byte-fallback pieces share a character: never start or end between two of them
    for i in range(1, len(offsets)):
        if offsets[i][0] < offsets[i - 1][1]:
            starts[i] = False
            ends[i - 1] = False
    return starts, ends


@PROCESSORS.register("span")
class SpanConstraintProcessor(LogitsProcessor):
    """Allow only tokens that keep the generation a contiguous span of the row's source.

    Args:
        sources: one token id sequence per input row (``B`` rows, each non-empty). When the
            decoder expands rows (``num_return_sequences``, beams), the ``N = B * R`` rows it
            passes must be grouped by input row (row ``i * R + j`` belongs to source ``i``),
            as in `decoding.decode` and HF ``generate``.
        prompt_length: width of the prompt in the ``input_ids`` the processor is called with;
            generation starts there (``decode``: the padded prompt's width; HF ``generate``
            with a decoder-only model: ``input_ids.shape[1]``; with an encoder-decoder: 1).
        eos_token_id: the end token(s), allowed once at least one token was generated and the
            span may end there.
        starts: per source, per token, whether a span may start there (default: everywhere).
        ends: per source, per token, whether a span may end there (default: everywhere).

    A span that reaches the decoder's length cap is still a span (it may stop inside a word).
    A row whose generated tokens are not a span (a finished row padded by the decoder, or a
    prefix forced from outside) may only end.
    """

    def __init__(
        self,
        sources: Sequence[Sequence[int]],
        prompt_length: int,
        eos_token_id: int | Sequence[int],
        starts: Sequence[Sequence[bool]] | None = None,
        ends: Sequence[Sequence[bool]] | None = None,
    ):
        if not sources:
            raise ValueError("sources is empty: give one token id sequence per input row")
        for i, src in enumerate(sources):
            if len(src) == 0:
                raise ValueError(f"sources[{i}] is empty: a span needs at least one token")
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got prompt_length={prompt_length}")
        self.eos_token_ids = _as_id_list(eos_token_id)
        if not self.eos_token_ids:
            raise ValueError("SpanConstraintProcessor needs an eos_token_id, got None")
        self.prompt_length = prompt_length
        width = max(len(s) for s in sources)
        self.sources = torch.full((len(sources), width), -1, dtype=torch.long)
        self.starts = torch.zeros((len(sources), width), dtype=torch.bool)
        self.ends = torch.zeros((len(sources), width), dtype=torch.bool)
        for name, flags in (("starts", starts), ("ends", ends)):
            if flags is not None and len(flags) != len(sources):
                raise ValueError(f"{name} has {len(flags)} rows, sources has {len(sources)}")
        for i, src in enumerate(sources):
            n = len(src)
            self.sources[i, :n] = torch.as_tensor(list(src), dtype=torch.long)
            for name, flags, out in (("starts", starts, self.starts), ("ends", ends, self.ends)):
                if flags is None:
                    out[i, :n] = True
                elif len(flags[i]) != n:
                    raise ValueError(
                        f"{name}[{i}] has {len(flags[i])} entries, sources[{i}] has {n} tokens"
                    )
                else:
                    out[i, :n] = torch.as_tensor(list(flags[i]), dtype=torch.bool)
        self._eos = torch.tensor(self.eos_token_ids, dtype=torch.long)

    def _rows(self, n: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        b = self.sources.shape[0]
        if n % b:
            raise ValueError(
                f"got {n} rows for {b} sources: the rows must be the sources' rows, each "
                "repeated the same number of times (num_return_sequences / beams)"
            )
        tensors = (self.sources, self.starts, self.ends)
        return tuple(t.to(device).repeat_interleave(n // b, dim=0) for t in tensors)

    def allowed_tokens(self, input_ids: torch.LongTensor, vocab_size: int) -> torch.Tensor:
        """``(N, vocab_size)`` bool: the tokens each row may generate next."""
        n, device = input_ids.shape[0], input_ids.device
        src, starts, ends = self._rows(n, device)  # (N, S) each
        real = src >= 0
        generated = input_ids[:, self.prompt_length :]  # (N, m)
        m = generated.shape[1]
        if m == 0:
            nxt, may_end = starts & real, torch.zeros(n, dtype=torch.bool, device=device)
        else:
            # match[:, i]: generated == src[i : i + m], with a span allowed to start at i
            width = src.shape[1]
            match = starts.clone()
            for k in range(m):
                shifted = torch.full_like(src, -1)
                shifted[:, : max(width - k, 0)] = src[:, k:]
                match &= shifted == generated[:, k : k + 1]
            nxt = torch.zeros_like(match)  # next token at i + m
            last = torch.zeros_like(match)  # current last token at i + m - 1
            if m <= width:  # longer than the source: no span (the row may only end)
                nxt[:, m:] = match[:, : width - m]
                last[:, m - 1 :] = match[:, : width - m + 1]
            nxt &= real
            may_end = (last & ends).any(dim=1)
        allowed = torch.zeros(n, vocab_size + 1, dtype=torch.bool, device=device)
        allowed.scatter_(1, torch.where(nxt, src, vocab_size), True)  # spare column for misses
        allowed = allowed[:, :vocab_size]
        stuck = ~allowed.any(dim=1)  # not a span (e.g. a finished row's padding): only end
        eos = self._eos.to(device)
        allowed[:, eos] = (may_end | stuck)[:, None]
        return allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        check_eos_in_vocab(self.eos_token_ids, scores.shape[-1])
        allowed = self.allowed_tokens(input_ids, scores.shape[-1])
        out = scores.masked_fill(~allowed, -float("inf"))
        # A row left with nothing (no token may start a span, and an earlier processor such as
        # min_new_tokens banned the end token) ends: sampling from all -inf would fail.
        dead = ~torch.isfinite(out).any(dim=-1)
        if bool(dead.any()):
            is_eos = torch.zeros(out.shape[-1], dtype=torch.bool, device=out.device)
            is_eos[self._eos.to(out.device)] = True
            out = out.masked_fill(dead[:, None] & is_eos, 0.0)
        return out
