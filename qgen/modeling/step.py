"""Token-by-token decoding of `UniLMForQAGeneration` through `decoding.StepModel`.

Under the UniLM mask the keys and values of a position depend only on the positions it may
attend to: source positions never see the target, and each target position sees the source and
the earlier targets. So the keys/values computed once for the prompt stay exact while the target
grows, and each new token needs only **one** position run through the layers, attending to the
cached keys/values of every earlier position (the same argument as a decoder-only KV cache).

``use_cache=False`` is the bert4keras way: re-encode the whole sequence at every step. It is
kept as the reference (tests check cached == uncached) and as the benchmark baseline.

Prompts may be padded *inside*: ``[CLS] passage [SEP] <pad>... answer [SEP] <pad>...`` is fine
(stage 2 of QA generation: every row's source padded to one width, then its answer). Position
ids come from the attention mask, so every real token gets the position it had in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from decoding.protocol import select_rows
from qgen.modeling.unilm import UniLMForQAGeneration, unilm_attention_mask

__all__ = ["PrefilledStepModel", "KVCache", "UniLMState", "UniLMStepModel"]


class KVCache:
    """Per-layer keys and values, each ``(N, heads, capacity, d)``, filled up to ``length``.

    Buffers keep spare capacity so that a new token is written in place; concatenating at every
    step would copy the whole cache once per token and layer.
    """

    GROW = 64  # spare positions allocated at a time

    def __init__(
        self,
        keys: list[torch.Tensor] | None = None,
        values: list[torch.Tensor] | None = None,
        length: int = 0,
    ):
        self.keys = keys or []
        self.values = values or []
        self.length = length

    def write(
        self, layer: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``key``/``value`` ``(N, heads, q, d)`` of layer ``layer`` after the first
        ``length`` positions; returns views of that layer's keys/values up to ``length + q``."""
        end = self.length + key.shape[2]
        if layer == len(self.keys):
            shape = (*key.shape[:2], end + self.GROW, key.shape[3])
            self.keys.append(key.new_empty(shape))
            self.values.append(value.new_empty(shape))
        elif end > self.keys[layer].shape[2]:
            for buffers in (self.keys, self.values):
                old = buffers[layer]
                grown = old.new_empty(
                    (*old.shape[:2], max(2 * old.shape[2], end + self.GROW), old.shape[3])
                )
                grown[:, :, : self.length] = old[:, :, : self.length]
                buffers[layer] = grown
        self.keys[layer][:, :, self.length : end] = key
        self.values[layer][:, :, self.length : end] = value
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, q: int) -> None:
        """Mark ``q`` more positions as filled (after every layer was written)."""
        self.length += q

    def reorder(self, index: torch.Tensor) -> KVCache:
        """A new cache with rows ``index`` (this one is left as it is)."""
        keys = [k.index_select(0, index.to(k.device)) for k in self.keys]
        values = [v.index_select(0, index.to(v.device)) for v in self.values]
        return KVCache(keys, values, self.length)


@dataclass
class UniLMState:
    """State of `UniLMStepModel` for ``N`` rows.

    Attributes:
        cache: keys/values of every position read so far (``None`` without caching).
        attention_mask: ``(N, seen)`` 1 on real tokens (prompt padding 0, generated tokens 1).
        token_type_ids: ``(N, seen)`` segments of the tokens read so far.
        next_position: ``(N,)`` position id of the next token.
        seen: number of columns of the sequence read so far.
        logits: ``(N, V)`` next-token logits from the prompt, not yet returned by ``step``.
    """

    cache: KVCache | None
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    next_position: torch.Tensor
    seen: int
    logits: torch.Tensor | None = None


def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding: the k-th real token of a row gets position k."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _last_rows_mask(
    token_type_ids: torch.Tensor, attention_mask: torch.Tensor, rows: int, dtype: torch.dtype
) -> torch.Tensor:
    """The last ``rows`` query rows of `unilm_attention_mask`: ``(N, 1, rows, seen)``,
    without building the whole ``seen x seen`` mask."""
    idx = torch.cumsum(token_type_ids.long() * attention_mask.long(), dim=1)  # (N, seen)
    allowed = (idx[:, None, :] <= idx[:, -rows:, None]) & attention_mask.bool()[:, None, :]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=idx.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def _cached_layer(layer, index: int, hidden: torch.Tensor, mask: torch.Tensor, cache: KVCache):
    """One `BertLayer` (eval mode) over ``hidden`` ``(N, q, H)`` with cached keys/values.

    The same arithmetic as BERT's layer -- self-attention, output projection + residual +
    LayerNorm, feed-forward + residual + LayerNorm -- written out so that the keys/values can
    be kept without the per-call overhead of the generic cache machinery.
    """
    att = layer.attention.self
    n, q, _ = hidden.shape
    shape = (n, q, att.num_attention_heads, att.attention_head_size)
    query = att.query(hidden).view(shape).transpose(1, 2)  # (N, heads, q, d)
    key = att.key(hidden).view(shape).transpose(1, 2)
    value = att.value(hidden).view(shape).transpose(1, 2)
    key, value = cache.write(index, key, value)  # (N, heads, seen + q, d)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=att.scaling)
    context = context.transpose(1, 2).reshape(n, q, -1)  # (N, q, H)
    attention = layer.attention.output(context, hidden)
    return layer.output(layer.intermediate(attention), attention)


class UniLMStepModel:
    """`decoding.StepModel` for `UniLMForQAGeneration`; every new token goes into segment 1.

    Args:
        model: the UniLM model (put in eval mode by the caller).
        use_cache: True: encode the prompt once and run one position per new token over cached
            keys/values. False: re-encode the whole sequence at every step (naive baseline).
        full_head: with ``use_cache=False``, also apply the LM head at every position before
            taking the last one, exactly like bert4keras's decoder (whose model outputs the
            whole sequence's probabilities). Default False: the head at the last position only.
    """

    def __init__(
        self, model: UniLMForQAGeneration, use_cache: bool = True, full_head: bool = False
    ):
        if use_cache and full_head:
            raise ValueError("full_head=True applies to the naive decoder only (use_cache=False)")
        self.model = model
        self.use_cache = use_cache
        self.full_head = full_head

    # ------------------------------------------------------------------ internals
    def _run(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None,
    ) -> torch.Tensor:
        """Embeddings + encoder layers for the given positions; returns ``(N, q, H)``.

        With ``cache``, the positions attend to the cached ones too and their keys/values are
        appended to it.
        Without it this is BERT's own encoder (the reference path).
        """
        bert = self.model.bert
        hidden = bert.embeddings(
            input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids
        )
        if cache is None:
            return bert.encoder(hidden, attention_mask=mask).last_hidden_state
        for i, layer in enumerate(bert.encoder.layer):
            hidden = _cached_layer(layer, i, hidden, mask, cache)
        cache.advance(input_ids.shape[1])
        return hidden

    def _encode_all(self, state: UniLMState, input_ids: torch.Tensor) -> torch.Tensor:
        """Encode the whole sequence under the UniLM mask; logits ``(N, V)`` of its next token."""
        dtype = self.model.mask_dtype(input_ids.device)
        mask = unilm_attention_mask(state.token_type_ids, state.attention_mask, dtype=dtype)
        hidden = self._run(
            input_ids, state.token_type_ids, _positions(state.attention_mask), mask, state.cache
        )
        # The next token is predicted by the last *real* position of each row.
        last = state.attention_mask.shape[1] - 1 - state.attention_mask.flip(-1).long().argmax(-1)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if self.full_head:
            return self.model.lm_head(hidden)[rows, last].float()
        return self.model.lm_head(hidden[rows, last]).float()

    # ------------------------------------------------------------------ protocol
    def start(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> UniLMState:
        """Read the prompt.

        Args:
            input_ids: ``(B, T0)`` prompt: ``[CLS] source [SEP]`` and optionally the start of
                the target; padding anywhere, marked by ``attention_mask``.
            attention_mask: ``(B, T0)`` 1 on real tokens (default: all ones).
            token_type_ids: ``(B, T0)`` 0 on the source, 1 on a target prefix (default: zeros).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        attention_mask = attention_mask.long()
        state = UniLMState(
            cache=KVCache() if self.use_cache else None,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids.long(),
            next_position=attention_mask.sum(-1),
            seen=input_ids.shape[1],
        )
        state.logits = self._encode_all(state, input_ids)
        if not self.use_cache:
            state.logits = None  # the naive way recomputes it in `step`
        return state

    def step(
        self, input_ids: torch.LongTensor, state: UniLMState
    ) -> tuple[torch.Tensor, UniLMState]:
        """Logits ``(N, V)`` of the token after ``input_ids``; the cached model reads only
        the columns it has not seen."""
        if state.logits is not None:
            logits, state.logits = state.logits, None
            return logits, state
        n, new = input_ids.shape[0], input_ids.shape[1] - state.seen
        if new > 0:
            ones = state.attention_mask.new_ones(n, new)
            state.attention_mask = torch.cat([state.attention_mask, ones], dim=-1)
            state.token_type_ids = torch.cat([state.token_type_ids, ones], dim=-1)
        state.seen = input_ids.shape[1]
        if not self.use_cache:
            return self._encode_all(state, input_ids), state
        if new == 0:
            raise ValueError(
                "step() called without a new token after the prompt logits were returned"
            )
        positions = state.next_position[:, None] + torch.arange(new, device=input_ids.device)
        state.next_position = state.next_position + new
        # New target tokens see every real earlier position and each other causally.
        dtype = self.model.mask_dtype(input_ids.device)
        mask = _last_rows_mask(state.token_type_ids, state.attention_mask, new, dtype)
        hidden = self._run(
            input_ids[:, -new:], state.token_type_ids[:, -new:], positions, mask, state.cache
        )
        return self.model.lm_head(hidden[:, -1]).float(), state

    def extend(
        self,
        state: UniLMState,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> UniLMState:
        """Read a block of new tokens (e.g. a sampled answer + ``[SEP]``) into a cached state in
        one pass, so that a prompt shared by several continuations is encoded only once.

        Args:
            state: a cached state (its rows already selected with `reorder`); updated in place.
            input_ids: ``(N, k)`` the new tokens, right-padded where rows differ.
            attention_mask: ``(N, k)`` 1 on real tokens (default: all ones).
            token_type_ids: ``(N, k)`` segments (default: all 1, target).

        Returns:
            The state; its pending logits are those of the token after each row's last real
            new token, so ``step`` returns them first.
        """
        if state.cache is None:
            raise ValueError("extend needs a cached state (use_cache=True)")
        n, new = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.ones_like(input_ids)
        attention_mask = attention_mask.long()
        positions = state.next_position[:, None] + _positions(attention_mask)
        state.attention_mask = torch.cat([state.attention_mask, attention_mask], dim=-1)
        state.token_type_ids = torch.cat([state.token_type_ids, token_type_ids.long()], dim=-1)
        dtype = self.model.mask_dtype(input_ids.device)
        mask = _last_rows_mask(state.token_type_ids, state.attention_mask, new, dtype)
        hidden = self._run(input_ids, token_type_ids, positions, mask, state.cache)
        last = new - 1 - attention_mask.flip(-1).argmax(-1)
        rows = torch.arange(n, device=hidden.device)
        state.logits = self.model.lm_head(hidden[rows, last]).float()
        state.next_position = state.next_position + attention_mask.sum(-1)
        state.seen += new
        return state

    def reorder(self, state: UniLMState, index: torch.LongTensor) -> UniLMState:
        """Select rows (expand for beams/samples, or follow beams); the cache in place."""
        if state.cache is not None:
            state.cache = state.cache.reorder(index)
        state.attention_mask = select_rows(state.attention_mask, index)
        state.token_type_ids = select_rows(state.token_type_ids, index)
        state.next_position = select_rows(state.next_position, index)
        state.logits = select_rows(state.logits, index)
        return state


class PrefilledStepModel:
    """A step model whose ``start`` hands `decoding.decode` a state that was read already: the
    sources encoded once, then shared by several decoding calls (answers appended with
    `UniLMStepModel.extend`), instead of re-encoding the prompt for each."""

    def __init__(self, step_model: UniLMStepModel, state: UniLMState):
        self.step_model, self.state = step_model, state

    def start(self, input_ids: torch.Tensor, **_: Any) -> UniLMState:
        return self.state

    def step(self, input_ids: torch.Tensor, state: UniLMState):
        return self.step_model.step(input_ids, state)

    def reorder(self, state: UniLMState, index: torch.Tensor) -> UniLMState:
        return self.step_model.reorder(state, index)
