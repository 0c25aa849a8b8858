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

``lean=True`` (the default; issue 21) does less work around the same model:

* The per-token attention mask is a view of the cached padding mask: a new target token may
  see every real earlier position, so the UniLM mask row is the padding mask (no per-step
  cumsum over the sequence, no concatenation of the masks and segments).
* `FastLMHead`: the decoder as ``addmm(bias, h, W.T)`` from a transposed copy of the tied
  embedding, used only for row counts at which it gives the model's own logits bit for bit
  (checked once per row count on real hidden states; on this CPU 10-20% faster from 4 rows,
  and a different summation order below 4 rows, so those keep the model's head).
* `SharedPrefixKVCache` (``shared_prefix=True``, the default): many rows read the same prompt
  (stage 1 expands each passage window into answer samples, stage 2 into one row per answer
  and then beams), so the prompt's keys/values and padding mask are kept **once per prompt**
  (a *group*), and only the positions after it (the answer, the generated tokens) per row.
  A reorder (beam step, expansion, finished rows leaving, choosing sources) changes each row's
  group index and moves only the per-row part. A new position attends to its group's prompt
  and its own positions with one softmax (`_split_attention`): the queries of a group's rows go
  in one batched matmul against that group's prompt, so no prompt is ever copied per row.
  Kept and computed in fp32 (also under bf16 autocast). Not bit for bit the earlier logits
  (another summation order): the same within float tolerance, tested against re-encoding.
* `InPlaceKVCache` (``shared_prefix=False``): every row its own copy of its prompt in
  buffers written in place; a beam step's reorder permutes only the generated positions in
  place. Bit for bit the earlier step (``lean=False``, `KVCache`); kept as the benchmark's
  "before".
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
    "SharedPrefixKVCache",
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
    """The lean step's cache with ``shared_prefix=False``: per-layer keys/values ``(rows,
    heads, capacity, d)`` and the additive padding mask ``(rows, 1, capacity)`` of every
    position, filled up to ``length``.

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


@dataclass(frozen=True)
class _Prefix:
    """The prompt, once per group: per layer its keys, transposed, ``(G, heads, d, S)`` and
    values ``(G, heads, S, d)``, and its additive padding mask ``(G, 1, 1, S)``; fp32. Never
    written after the prompt is read, so caches share it by reference."""

    keys_t: list[torch.Tensor]
    values: list[torch.Tensor]
    mask: torch.Tensor

    @property
    def groups(self) -> int:
        return self.mask.shape[0]

    def select(self, groups: torch.Tensor) -> _Prefix:
        """Only ``groups`` (sorted): a view where they are consecutive, else a copy of theirs."""
        count = groups.shape[0]
        first = int(groups[0]) if count else 0
        if count == 0 or int(groups[-1]) - first + 1 == count:
            pick = lambda t: t.narrow(0, first, count)  # noqa: E731
        else:
            pick = lambda t: t.index_select(0, groups)  # noqa: E731
        return _Prefix([*map(pick, self.keys_t)], [*map(pick, self.values)], pick(self.mask))


@dataclass(frozen=True)
class _Layout:
    """Where each row sits in the per-group padded batch ``(G, width, ...)``: row ``i`` in slot
    ``slots[i]`` (group * width + rank in its group); ``slots`` None: row ``i`` in slot ``i``
    (rows sorted by group, ``width`` each, as after expanding prompts into beams or samples)."""

    groups: int
    width: int
    slots: torch.Tensor | None

    @classmethod
    def of(cls, group: torch.Tensor, groups: int) -> _Layout:
        counts = torch.bincount(group, minlength=groups)
        width, n = max(1, int(counts.max())) if groups else 1, group.shape[0]
        if n == groups * width and bool((group[1:] >= group[:-1]).all()):
            return cls(groups, width, None)
        order = torch.argsort(group, stable=True)
        starts = counts.cumsum(0) - counts
        rank = torch.empty_like(group)
        rank[order] = torch.arange(n, device=group.device) - starts.index_select(0, group[order])
        return cls(groups, width, group * width + rank)

    def to_groups(self, rows: torch.Tensor) -> torch.Tensor:
        """``(N, heads, q, X)`` per row -> ``(G, heads, width * q, X)`` (empty slots 0)."""
        _, heads, q, x = rows.shape
        rows = rows.transpose(1, 2)  # (N, q, heads, X)
        if self.slots is not None:
            padded = rows.new_zeros((self.groups * self.width, q, heads, x))
            rows = padded.index_copy_(0, self.slots, rows)
        return rows.reshape(self.groups, self.width * q, heads, x).transpose(1, 2)

    def to_rows(self, grouped: torch.Tensor, q: int) -> torch.Tensor:
        """``(G, heads, width * q, X)`` -> ``(N, q, heads, X)``."""
        _, heads, _, x = grouped.shape
        grouped = grouped.transpose(1, 2).reshape(self.groups * self.width, q, heads, x)
        return grouped if self.slots is None else grouped.index_select(0, self.slots)


def _split_attention(
    query: torch.Tensor,
    prefix: _Prefix,
    layer: int,
    layout: _Layout,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Attention of ``query`` ``(N, heads, q, d)`` (fp32, scaled) to its group's prompt and
    its row's own positions (``keys``/``values`` ``(N, heads, L, d)``, additive ``mask``
    broadcastable to ``(N, 1, q, L)``), one softmax over both; the context ``(N, q, heads*d)``.

    Computed in the per-group padded layout (`_Layout`): the queries of a group's rows go in
    one batched matmul against that group's prompt, ``(G, heads, width * q, d) @ (G, heads, d,
    S)``, and the large ``(…, S)`` scores and probabilities stay in that layout; only the small
    per-row tensors (queries, the rows' own scores, contexts) move between the layouts.
    """
    n, heads, q, d = query.shape
    s = prefix.mask.shape[-1]
    own = torch.matmul(query, keys.transpose(-1, -2)) + mask  # (N, heads, q, L)
    scores = torch.matmul(layout.to_groups(query), prefix.keys_t[layer])  # (G, heads, w*q, S)
    scores = torch.cat([scores.add_(prefix.mask), layout.to_groups(own)], dim=-1).softmax(-1)
    context = torch.matmul(scores[..., :s], prefix.values[layer])  # (G, heads, w*q, d)
    context = layout.to_rows(context, q).reshape(n, q, heads * d)
    probs = layout.to_rows(scores[..., s:], q).transpose(1, 2)  # (N, heads, q, L)
    own = torch.matmul(probs, values).transpose(1, 2).reshape(n, q, heads * d)
    return context + own


class SharedPrefixKVCache:
    """The lean step's cache with the prompt stored once per group (issue 21).

    The prompt read by ``start`` (keys, values, padding mask: `_Prefix`) is kept once per
    prompt row (a *group*); the positions after it (an appended answer, generated tokens) are
    kept per row in buffers ``(rows, heads, capacity, d)`` written in place, with their
    additive padding mask ``(rows, 1, 1, capacity)`` (0 beyond ``length``). ``group`` ``(n,)``
    says which prompt each row continues. A reorder (expanding into samples or beams, a beam
    step, rows leaving the batch, selecting sources) changes ``group`` and moves only the
    per-row part; the prompt is never copied per row. When some groups have no row left, the
    reorder keeps only the others (a view where they are consecutive, else a copy of those
    groups' prompts: at most the prompts once more). Attention: `_split_attention`.

    Everything is kept and attended to in fp32, also under bf16 autocast (the keys/values of
    a bf16 layer are exact in fp32): a bf16 matmul on CPU rounds the scores to bf16, which
    fused attention does not, and small fp32 matmuls are as fast here.

    ``owner`` is the token of the `UniLMState` that may change the per-row buffers in place;
    a state copied from another gets its own buffers at its first reorder.
    """

    GROW = 16  # spare per-row positions when (re)allocating

    def __init__(self, n: int, owner: object):
        self.n, self.owner = n, owner
        self.length = self.fixed = 0
        self.prefix: _Prefix | None = None
        self.group: torch.Tensor | None = None
        self.layout: _Layout | None = None
        self._prompt: list[list[torch.Tensor]] = [[], []]  # keys_t, values while reading it
        self._prompt_mask: torch.Tensor | None = None
        self.keys: list[torch.Tensor] = []  # per row, after the prompt
        self.values: list[torch.Tensor] = []
        self.mask: torch.Tensor | None = None  # (rows, 1, 1, capacity)

    @classmethod
    def empty(cls, n: int, device: torch.device, owner: object) -> SharedPrefixKVCache:
        return cls(n, owner)

    @property
    def capacity(self) -> int:
        """Per-row positions the buffers hold."""
        return 0 if self.mask is None else self.mask.shape[3]

    @property
    def rows(self) -> int:
        """Rows the per-row buffers hold (``>= n``)."""
        return 0 if self.mask is None else self.mask.shape[0]

    def reserve(self, end: int, dtype: torch.dtype, device: torch.device) -> None:
        """Room for positions up to ``end`` (``dtype``, the scores' dtype, is not needed:
        everything here is fp32)."""
        if self.prefix is None:
            return
        need = end - self.fixed
        if self.mask is None:
            self.mask = torch.zeros((self.n, 1, 1, need + self.GROW), device=device)
        elif need > self.capacity:
            capacity = max(2 * self.capacity, need + self.GROW)
            self.keys = [self._moved(k, None, capacity) for k in self.keys]
            self.values = [self._moved(v, None, capacity) for v in self.values]
            self.mask = self._moved(self.mask, None, capacity, mask=True)

    def mark_padding(self, attention_mask: torch.Tensor) -> None:
        """Mask the padding of the next ``q`` positions (``attention_mask`` ``(n, q)``)."""
        lowest = torch.finfo(torch.float32).min
        if self.prefix is None:  # the prompt
            mask = torch.zeros(attention_mask.shape, device=attention_mask.device)
            self._prompt_mask = mask.masked_fill_(attention_mask == 0, lowest)
            return
        start = self.length - self.fixed
        window = self.mask[: self.n, 0, 0, start : start + attention_mask.shape[1]]
        window.masked_fill_(attention_mask == 0, lowest)

    def attend(
        self,
        layer: int,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        """Store ``key``/``value`` ``(n, heads, q, d)`` of the next ``q`` positions and return
        the context ``(n, q, heads * d)`` of ``query``. ``mask``: the prompt's UniLM mask while
        reading it; after, ``(n, 1, q, length + q)`` for several new positions (only its
        columns after the prompt are read: a new position sees every real prompt position),
        or None for one new token (it sees every real position)."""
        n, heads, q, d = query.shape
        if self.prefix is None:  # the prompt: every row its own group, plain attention
            self._prompt[0].append(key.transpose(-1, -2).float().contiguous())
            self._prompt[1].append(value.float().contiguous())
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
            return context.transpose(1, 2).reshape(n, q, heads * d)
        start, end = self.length - self.fixed, self.length - self.fixed + q
        if layer == len(self.keys):
            shape = (self.rows, heads, self.capacity, d)
            self.keys.append(key.new_empty(shape, dtype=torch.float32))
            self.values.append(value.new_empty(shape, dtype=torch.float32))
        keys, values = self.keys[layer][: self.n], self.values[layer][: self.n]
        keys[:, :, start:end] = key
        values[:, :, start:end] = value
        own = self.mask[: self.n, :, :, :end] if mask is None else mask[..., self.fixed :]
        with torch.autocast(query.device.type, enabled=False):  # fp32 throughout
            return _split_attention(
                query.float() * scale,
                self.prefix,
                layer,
                self.layout,
                keys[:, :, :end],
                values[:, :, :end],
                own.float(),
            )

    def advance(self, q: int) -> None:
        self.length += q
        if self.prefix is None:  # the prompt is read: it becomes the groups' prefix
            self.prefix = _Prefix(*self._prompt, self._prompt_mask[:, None, None])
            self._prompt, self._prompt_mask = [[], []], None
            self.fixed = self.length
            self.group = torch.arange(self.n, device=self.prefix.mask.device)
            self.layout = _Layout(self.n, 1, None)

    def reorder(self, index: torch.Tensor, owner: object) -> SharedPrefixKVCache:
        """Rows ``index``: the per-row part moved (in place when ``owner`` owns the buffers and
        they have the rows), each row's group selected; returns the cache."""
        index = index.to(self.group.device)
        cache = self
        if self.owner is not owner or index.shape[0] > self.rows:
            cache = SharedPrefixKVCache(index.shape[0], owner)
            cache.length, cache.fixed = self.length, self.fixed
            if self.mask is not None:
                capacity = max(self.capacity, self.length - self.fixed + self.GROW)
                cache.keys = [self._moved(k, index, capacity) for k in self.keys]
                cache.values = [self._moved(v, index, capacity) for v in self.values]
                cache.mask = self._moved(self.mask, index, capacity, mask=True)
        elif self.length > self.fixed:
            filled = self.length - self.fixed
            for buffer in (*self.keys, *self.values):
                part = buffer[: self.n, :, :filled]
                buffer[: index.shape[0], :, :filled] = part.index_select(0, index)
            part = self.mask[: self.n, :, :, :filled]
            self.mask[: index.shape[0], :, :, :filled] = part.index_select(0, index)
        cache.n = index.shape[0]
        cache.prefix, group = self.prefix, self.group.index_select(0, index)
        groups = torch.unique(group)  # sorted
        if groups.shape[0] < self.prefix.groups:  # groups without rows: leave them out
            cache.prefix = self.prefix.select(groups)
            group = torch.searchsorted(groups, group)
        cache.group, cache.layout = group, _Layout.of(group, groups.shape[0])
        return cache

    def _moved(
        self, old: torch.Tensor, index: torch.Tensor | None, capacity: int, mask: bool = False
    ) -> torch.Tensor:
        """A buffer of ``capacity`` positions with rows ``index`` (None: the live rows) of
        ``old``'s filled part; a ``mask`` buffer (``(rows, 1, 1, capacity)``) 0 beyond it."""
        rows = self.n if index is None else index.shape[0]
        filled = self.length - self.fixed
        if mask:
            new = old.new_zeros((rows, 1, 1, capacity))
            src, dst = old[: self.n, :, :, :filled], new[:, :, :, :filled]
        else:
            new = old.new_empty((rows, old.shape[1], capacity, old.shape[3]))
            src, dst = old[: self.n, :, :filled], new[:, :, :filled]
        if index is None:
            dst.copy_(src)
        elif torch.is_grad_enabled():  # out= does not record autograd
            dst.copy_(src.index_select(0, index))
        else:  # straight into the new buffer, no temporary
            torch.index_select(src, 0, index, out=dst)
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


AnyCache = KVCache | InPlaceKVCache | SharedPrefixKVCache
LeanCache = (InPlaceKVCache, SharedPrefixKVCache)  # the caches with reserve / mark_padding


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

    cache: AnyCache | None
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


def _cached_layer(
    layer, index: int, hidden: torch.Tensor, mask: torch.Tensor | None, cache: AnyCache
):
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
    if isinstance(cache, SharedPrefixKVCache):
        context = cache.attend(index, query, key, value, mask, att.scaling)  # (N, q, H)
    else:
        key, value = cache.write(index, key, value)  # (N, heads, seen + q, d)
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=att.scaling
        )
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
        lean: with the cache, the lean step (the module docstring): the padding mask as the
            step's attention mask, `FastLMHead`, and the cache of ``shared_prefix``. False is
            the earlier step (`KVCache`), kept as the tests' bitwise reference.
        shared_prefix: with ``lean``, `SharedPrefixKVCache` (the prompt's keys/values once per
            prompt, attention split into prompt and own part; the same logits up to summation
            order). False: `InPlaceKVCache` (every row its own copy of its prompt; bit for bit
            the earlier step's logits), kept as the benchmark's "before".
    """

    def __init__(
        self,
        model: UniLMForQAGeneration,
        use_cache: bool = True,
        full_head: bool = False,
        lean: bool = True,
        shared_prefix: bool = True,
    ):
        if use_cache and full_head:
            raise ValueError("full_head=True applies to the naive decoder only (use_cache=False)")
        self.model = model
        self.use_cache = use_cache
        self.full_head = full_head
        self.lean = lean and use_cache
        self.shared_prefix = self.lean and shared_prefix
        self.head = (FastLMHead.for_model(model) if self.lean else None) or model.lm_head

    # ------------------------------------------------------------------ internals
    def _run(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        position_ids: torch.Tensor,
        mask: torch.Tensor,
        cache: AnyCache | None,
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
        if isinstance(state.cache, LeanCache):
            state.cache.reserve(state.cache.length + new, dtype, device)
        return dtype

    def _encode_all(self, state: UniLMState, input_ids: torch.Tensor) -> torch.Tensor:
        """Encode the whole sequence under the UniLM mask; logits ``(N, V)`` of its next token."""
        attention_mask, token_type_ids = state.history()
        dtype = self._reserve(state, input_ids.shape[1], input_ids.device)
        mask = unilm_attention_mask(token_type_ids, attention_mask, dtype=dtype)
        if isinstance(state.cache, LeanCache):
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
        so its attention mask is the cache's padding mask (`SharedPrefixKVCache` reads its
        own)."""
        cache = state.cache
        self._reserve(state, 1, input_ids.device)
        positions = state.next_position[:, None]  # (N, 1)
        state.next_position = state.next_position + 1
        state.pending += 1
        state.seen += 1
        last = input_ids[:, -1:]
        mask = None if isinstance(cache, SharedPrefixKVCache) else cache.padding_mask(1)
        hidden = self._run(last, torch.ones_like(last), positions, mask, cache)
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
            kind = SharedPrefixKVCache if self.shared_prefix else InPlaceKVCache
            state.cache = kind.empty(input_ids.shape[0], input_ids.device, state.token)
        elif self.use_cache:
            state.cache = KVCache()
        state.logits = self._encode_all(state, input_ids)
        if isinstance(state.cache, LeanCache):
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
        if isinstance(state.cache, LeanCache):
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
        cache; the lean caches reorder in place where they can (a state's own cache only)."""
        if isinstance(state.cache, LeanCache):
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
