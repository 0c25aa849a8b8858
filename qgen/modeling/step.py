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

``lean=True`` (the default; issue 21) is the same arithmetic with less work around it, and the
same logits bit for bit (tested against ``lean=False``, the earlier step):

* `InPlaceKVCache`: keys, values and the additive padding mask of every position in buffers
  written in place. Rows expanded from one prompt share it, so a beam step's reorder permutes
  only the generated positions (in place) instead of copying every row's whole cache.
* The per-token attention mask is a view of that padding mask: a new target token may see
  every real earlier position, so the UniLM mask row is the padding mask (no per-step cumsum
  over the sequence, no concatenation of the masks and segments).
* `FastLMHead`: the decoder as ``addmm(bias, h, W.T)`` from a transposed copy of the tied
  embedding, used only for row counts at which it gives the model's own logits bit for bit
  (checked once per row count on real hidden states; on this CPU 10-20% faster from 4 rows,
  and a different summation order below 4 rows, so those keep the model's head).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from decoding.protocol import select_rows
from qgen.modeling.unilm import UniLMForQAGeneration, unilm_attention_mask

__all__ = [
    "FastLMHead",
    "InPlaceKVCache",
    "KVCache",
    "PrefilledStepModel",
    "UniLMState",
    "UniLMStepModel",
]


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


class InPlaceKVCache:
    """The lean step's cache: per-layer keys/values ``(rows, heads, capacity, d)`` and the
    additive padding mask ``(rows, 1, capacity)`` of every position, filled up to ``length``.

    Positions are written in place (the mask buffer holds 0 beyond ``length``, so a generated
    token, always a real one, needs no mask write). The first ``n`` buffer rows are the live
    ones. Rows with the same ``group`` id hold the same keys, values and mask in the first
    ``fixed`` positions (the prompt they were expanded from); a reorder that keeps every row
    in its group (a beam search step) permutes only the positions after ``fixed``, in place.
    Any other reorder (expanding a prompt into samples or beams, dropping rows) copies the
    filled part into new buffers. ``owner`` is the token of the `UniLMState` that may change
    the buffers in place; a state copied from another (``dataclasses.replace``) gets its own
    buffers at its first reorder.
    """

    GROW = 64  # spare positions beyond what is needed when (re)allocating

    def __init__(self, n: int, group: torch.Tensor, fixed: int, length: int, owner: object):
        self.n, self.group, self.fixed, self.length, self.owner = n, group, fixed, length, owner
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.mask: torch.Tensor | None = None  # (rows, 1, capacity), the dtype of the scores

    @classmethod
    def empty(cls, n: int, device: torch.device, owner: object) -> InPlaceKVCache:
        """A cache for ``n`` rows, each its own group."""
        return cls(n, torch.arange(n, device=device), 0, 0, owner)

    @property
    def capacity(self) -> int:
        return 0 if self.mask is None else self.mask.shape[2]

    def _buffers(self) -> list[torch.Tensor]:
        return [*self.keys, *self.values, self.mask]

    def reserve(self, end: int, dtype: torch.dtype, device: torch.device) -> None:
        """Room for ``end`` positions, and the padding mask in ``dtype``."""
        if self.mask is None:
            self.mask = torch.zeros((self.n, 1, end + self.GROW), dtype=dtype, device=device)
            return
        if self.mask.dtype != dtype:  # another autocast dtype than at the last call
            allowed = self.mask == 0
            self.mask = torch.zeros(self.mask.shape, dtype=dtype, device=device)
            self.mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        if end > self.capacity:
            capacity = max(2 * self.capacity, end + self.GROW)
            self.keys = [self._grown(k, capacity) for k in self.keys]
            self.values = [self._grown(v, capacity) for v in self.values]
            self.mask = self._grown(self.mask, capacity, zeros=True)

    def _grown(self, old: torch.Tensor, capacity: int, zeros: bool = False) -> torch.Tensor:
        shape = (self.n, old.shape[1], capacity, *old.shape[3:])
        new = old.new_zeros(shape) if zeros else old.new_empty(shape)
        new[:, :, : self.length] = old[: self.n, :, : self.length]
        return new

    def mark_padding(self, attention_mask: torch.Tensor) -> None:
        """Mask the padding of the next ``q`` positions (``attention_mask`` ``(n, q)``)."""
        q = attention_mask.shape[1]
        window = self.mask[: self.n, 0, self.length : self.length + q]
        window.masked_fill_(attention_mask == 0, torch.finfo(self.mask.dtype).min)

    def padding_mask(self, q: int) -> torch.Tensor:
        """``(n, 1, 1, length + q)`` additive mask: what a target token at the end may see."""
        return self.mask[: self.n, :, : self.length + q].unsqueeze(1)

    def write(
        self, layer: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `KVCache.write` (after `reserve`)."""
        end = self.length + key.shape[2]
        if layer == len(self.keys):
            shape = (self.n, key.shape[1], self.capacity, key.shape[3])
            self.keys.append(key.new_empty(shape))
            self.values.append(value.new_empty(shape))
        keys, values = self.keys[layer], self.values[layer]
        keys[: self.n, :, self.length : end] = key
        values[: self.n, :, self.length : end] = value
        return keys[: self.n, :, :end], values[: self.n, :, :end]

    def advance(self, q: int) -> None:
        self.length += q

    def reorder(self, index: torch.Tensor, owner: object) -> InPlaceKVCache:
        """Rows ``index``: in place when ``owner`` owns the buffers and every row stays in its
        group, else a new cache (this one is left as it is)."""
        index = index.to(self.group.device)
        group = self.group.index_select(0, index)
        if self.owner is owner and index.shape[0] == self.n and torch.equal(group, self.group):
            if self.length > self.fixed:
                for buffer in self._buffers():
                    part = buffer[: self.n, :, self.fixed : self.length]
                    part.copy_(part.index_select(0, index))
            return self
        new = InPlaceKVCache(index.shape[0], group, self.fixed, self.length, owner)
        if self.mask is None:
            return new
        capacity = max(self.capacity, self.length + self.GROW)
        for name in ("keys", "values"):
            setattr(new, name, [self._selected(b, index, capacity) for b in getattr(self, name)])
        new.mask = self._selected(self.mask, index, capacity, zeros=True)
        return new

    def _selected(
        self, old: torch.Tensor, index: torch.Tensor, capacity: int, zeros: bool = False
    ) -> torch.Tensor:
        shape = (index.shape[0], old.shape[1], capacity, *old.shape[3:])
        new = old.new_zeros(shape) if zeros else old.new_empty(shape)
        filled = old[: self.n, :, : self.length]
        if torch.is_grad_enabled():  # out= does not record autograd
            new[:, :, : self.length] = filled.index_select(0, index)
        else:  # straight into the new buffer, no temporary
            torch.index_select(filled, 0, index, out=new[:, :, : self.length])
        return new


class FastLMHead:
    """The model's MLM head with the decoder as ``addmm(bias, h, W_t)``, ``W_t`` a contiguous
    ``(H, V)`` copy of the tied embedding (made once per model and weight version).

    On CPU, ``F.linear`` with the ``(V, H)`` layout reads the 47 MB decoder at a fraction of the
    bandwidth for few rows. From 4 rows on this CPU the two give the same logits bit for bit
    (the same GEMM kernel); below, another summation order. So the copy is used only for a row
    count at which it was found to equal the model's own logits, checked once per row count
    (and thread count) on the hidden states of the call that meets it first; fp32 only,
    outside autocast. `for_model` returns None for a head that is not BERT's MLM head.
    """

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, predictions: nn.Module):
        self.transform, self.decoder = predictions.transform, predictions.decoder
        with torch.inference_mode(False):  # plain tensors, also when made inside decode
            self.weight_t = self.decoder.weight.detach().t().contiguous()  # (H, V)
            self.bias = self.decoder.bias.detach()
        self.exact: dict[tuple[int, int], bool] = {}

    @classmethod
    def for_model(cls, model: UniLMForQAGeneration) -> FastLMHead | None:
        predictions = getattr(getattr(model, "cls", None), "predictions", None)
        decoder = getattr(predictions, "decoder", None)
        if type(decoder) is not nn.Linear or decoder.bias is None:
            return None
        weight = decoder.weight
        key = (weight.data_ptr(), weight._version, decoder.bias.data_ptr(), decoder.bias._version)
        cached = cls._cache.get(model)
        if cached is None or cached[0] != key:
            cached = cls._cache[model] = (key, cls(predictions))
        return cached[1]

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, V)
        hidden = self.transform(hidden)
        if hidden.dtype != torch.float32 or torch.is_autocast_enabled(hidden.device.type):
            return self.decoder(hidden)
        key = (hidden.shape[0], torch.get_num_threads())
        exact = self.exact.get(key)
        if exact is None:  # first time at this row count: the model's head decides
            own = self.decoder(hidden)
            fast = torch.addmm(self.bias, hidden, self.weight_t)
            self.exact[key] = torch.equal(own, fast)
            return own
        if exact:
            return torch.addmm(self.bias, hidden, self.weight_t)
        return self.decoder(hidden)


@dataclass
class UniLMState:
    """State of `UniLMStepModel` for ``N`` rows.

    Attributes:
        cache: keys/values of every position read so far (``None`` without caching).
        attention_mask: ``(N, seen - pending)`` 1 on real tokens (prompt padding 0, generated
            tokens 1).
        token_type_ids: ``(N, seen - pending)`` segments of the tokens read so far.
        next_position: ``(N,)`` position id of the next token.
        seen: number of columns of the sequence read so far.
        logits: ``(N, V)`` next-token logits from the prompt, not yet returned by ``step``.
        pending: generated columns (mask 1, segment 1) not yet appended to ``attention_mask``
            and ``token_type_ids`` (the lean step appends them only when they are read).
        token: this state's identity: the owner of an `InPlaceKVCache` it may change in
            place (a copy made with ``dataclasses.replace`` gets a new one).
    """

    cache: KVCache | InPlaceKVCache | None
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    next_position: torch.Tensor
    seen: int
    logits: torch.Tensor | None = None
    pending: int = 0
    token: object = field(default_factory=object, init=False, repr=False, compare=False)

    def history(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``attention_mask`` and ``token_type_ids`` of all ``seen`` columns."""
        if self.pending:
            ones = self.attention_mask.new_ones(self.attention_mask.shape[0], self.pending)
            self.attention_mask = torch.cat([self.attention_mask, ones], dim=-1)
            self.token_type_ids = torch.cat([self.token_type_ids, ones], dim=-1)
            self.pending = 0
        return self.attention_mask, self.token_type_ids


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
        lean: with the cache, the lean step (the module docstring): `InPlaceKVCache`, the
            padding mask as the step's attention mask, `FastLMHead`. Same logits bit for bit;
            False is the earlier step (`KVCache`), kept as the benchmark's "before".
    """

    def __init__(
        self,
        model: UniLMForQAGeneration,
        use_cache: bool = True,
        full_head: bool = False,
        lean: bool = True,
    ):
        if use_cache and full_head:
            raise ValueError("full_head=True applies to the naive decoder only (use_cache=False)")
        self.model = model
        self.use_cache = use_cache
        self.full_head = full_head
        self.lean = lean and use_cache
        self.head = (FastLMHead.for_model(model) if self.lean else None) or model.lm_head

    # ------------------------------------------------------------------ internals
    def _run(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | InPlaceKVCache | None,
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

    def _reserve(self, state: UniLMState, new: int, device: torch.device) -> torch.dtype:
        """The scores' dtype; with the lean cache, room for ``new`` more positions."""
        dtype = self.model.mask_dtype(device)
        if isinstance(state.cache, InPlaceKVCache):
            state.cache.reserve(state.cache.length + new, dtype, device)
        return dtype

    def _encode_all(self, state: UniLMState, input_ids: torch.Tensor) -> torch.Tensor:
        """Encode the whole sequence under the UniLM mask; logits ``(N, V)`` of its next token."""
        attention_mask, token_type_ids = state.history()
        dtype = self._reserve(state, input_ids.shape[1], input_ids.device)
        mask = unilm_attention_mask(token_type_ids, attention_mask, dtype=dtype)
        if isinstance(state.cache, InPlaceKVCache):
            state.cache.mark_padding(attention_mask)
        hidden = self._run(input_ids, token_type_ids, _positions(attention_mask), mask, state.cache)
        # The next token is predicted by the last *real* position of each row.
        last = attention_mask.shape[1] - 1 - attention_mask.flip(-1).long().argmax(-1)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if self.full_head:
            return self.model.lm_head(hidden)[rows, last].float()
        return self.head(hidden[rows, last]).float()

    def _lean_step(self, input_ids: torch.LongTensor, state: UniLMState) -> torch.Tensor:
        """One new target token over the lean cache: it may see every real earlier position,
        so its attention mask is the cache's padding mask."""
        cache = state.cache
        self._reserve(state, 1, input_ids.device)
        positions = state.next_position[:, None]  # (N, 1)
        state.next_position = state.next_position + 1
        state.pending += 1
        state.seen += 1
        last = input_ids[:, -1:]
        hidden = self._run(last, torch.ones_like(last), positions, cache.padding_mask(1), cache)
        return self.head(hidden[:, -1]).float()

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
            cache=None,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids.long(),
            next_position=attention_mask.sum(-1),
            seen=input_ids.shape[1],
        )
        if self.lean:
            state.cache = InPlaceKVCache.empty(input_ids.shape[0], input_ids.device, state.token)
        elif self.use_cache:
            state.cache = KVCache()
        state.logits = self._encode_all(state, input_ids)
        if isinstance(state.cache, InPlaceKVCache):
            state.cache.fixed = state.cache.length  # each row its own group: all of it shared
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
        if new == 1 and self.lean:
            return self._lean_step(input_ids, state), state
        attention_mask, token_type_ids = state.history()
        if new > 0:
            ones = attention_mask.new_ones(n, new)
            state.attention_mask = torch.cat([attention_mask, ones], dim=-1)
            state.token_type_ids = torch.cat([token_type_ids, ones], dim=-1)
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
        dtype = self._reserve(state, new, input_ids.device)
        mask = _last_rows_mask(state.token_type_ids, state.attention_mask, new, dtype)
        hidden = self._run(
            input_ids[:, -new:], state.token_type_ids[:, -new:], positions, mask, state.cache
        )
        return self.head(hidden[:, -1]).float(), state

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
        history, segments = state.history()
        state.attention_mask = torch.cat([history, attention_mask], dim=-1)
        state.token_type_ids = torch.cat([segments, token_type_ids.long()], dim=-1)
        dtype = self._reserve(state, new, input_ids.device)
        mask = _last_rows_mask(state.token_type_ids, state.attention_mask, new, dtype)
        if isinstance(state.cache, InPlaceKVCache):
            state.cache.mark_padding(attention_mask)
        hidden = self._run(input_ids, token_type_ids, positions, mask, state.cache)
        last = new - 1 - attention_mask.flip(-1).argmax(-1)
        rows = torch.arange(n, device=hidden.device)
        state.logits = self.head(hidden[rows, last]).float()
        state.next_position = state.next_position + attention_mask.sum(-1)
        state.seen += new
        return state

    def reorder(self, state: UniLMState, index: torch.LongTensor) -> UniLMState:
        """Select rows (expand for beams/samples, or follow beams). `KVCache` gives a new
        cache; `InPlaceKVCache` reorders in place where it can (a state's own cache only)."""
        if isinstance(state.cache, InPlaceKVCache):
            state.cache = state.cache.reorder(index, state.token)
        elif state.cache is not None:
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
