"""A key/value cache written in place: `PreallocatedLayer` and `preallocated_cache`.

HF's `DynamicLayer` grows by ``torch.cat`` every step, i.e. it copies the whole cache once per
token (``O(T^2)`` copies over a decode). `PreallocatedLayer` allocates room for ``capacity``
tokens once and writes each step's keys/values into the next slots; ``update`` returns views
of the filled part, so attention sees exactly the tensors ``DynamicLayer`` would give it (same
values, same shape, only larger strides) and the logits are bitwise the same (tested).

HF's own `StaticCache` is not used: it returns the whole ``max_cache_len`` buffer and relies on
an attention mask over the empty slots, which changes the attention computation (and so the
last bits of the logits) and costs a mask per step.

Beam search reorders the rows every step, i.e. copies every beam's whole history (28 MB a
step for batch 8 x 4 beams of the benchmark model at 48 tokens). The rows that one row was
expanded into (the beams of one input) hold the same prompt, so a reorder that keeps every
row within its expansion group copies only the slots after the prompt, and a reorder of the
same row count allocates nothing (see `PreallocatedLayer.reorder_cache`).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PretrainedConfig
from transformers.cache_utils import DynamicLayer

__all__ = ["MOVE_IN_PLACE", "PreallocatedLayer", "preallocated_cache"]

# A beam reorder copies the moved rows in place up to 1 / MOVE_IN_PLACE of the rows (a moved
# row costs two copies there, a gather of all rows one copy of each).
MOVE_IN_PLACE = 3


class PreallocatedLayer(DynamicLayer):
    """One layer's cache: ``(N, heads, capacity, head_dim)`` buffers filled in place.

    Args:
        capacity: most tokens the layer will hold (prompt + new tokens).
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0
        # see reorder_cache: spare buffers, each row's expansion group and their shared prefix
        self._spare: tuple[torch.Tensor, torch.Tensor] | None = None
        self._groups: torch.Tensor | None = None
        self._shared = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        n, heads, _, _ = key_states.shape
        self.device = key_states.device
        self._key_buffer = key_states.new_empty((n, heads, self.capacity, key_states.shape[-1]))
        self._value_buffer = value_states.new_empty(
            (n, heads, self.capacity, value_states.shape[-1])
        )
        self.is_initialized = True

    def _expose(self) -> None:
        # Views of the filled slots: what DynamicLayer.keys / .values would hold.
        self.keys = self._key_buffer[:, :, : self.length]
        self.values = self._value_buffer[:, :, : self.length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``(N, heads, t, head_dim)`` new states after the filled slots; return all."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise ValueError(f"PreallocatedLayer holds capacity={self.capacity} tokens, got {end}")
        self._key_buffer[:, :, self.length : end] = key_states
        self._value_buffer[:, :, self.length : end] = value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return self.capacity

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select rows (expand, follow beams, drop finished rows); copies the filled part only.

        The first reorder (the expansion into beams or return sequences) makes each row's
        source its group: rows of a group hold the same slots so far (``_shared``). Later
        reorders that keep every row in its group copy only the slots after those. A reorder
        that keeps the row count (beam search) allocates nothing: when few rows follow another
        row's history, those are copied in place; otherwise every row is gathered into a
        second pair of buffers, which then swap with the first.
        """
        if not self.is_initialized:
            return
        index = beam_idx.to(self.device)
        n = self._key_buffer.shape[0]
        groups = None if self._groups is None else self._groups.index_select(0, index)
        same = groups is not None and groups.shape[0] == n and torch.equal(groups, self._groups)
        start = self._shared if same else 0
        if index.shape[0] != n:
            self._spare = None  # another row count
            self._key_buffer, self._value_buffer = (
                self._gather(b, index, b.new_empty((index.shape[0], *b.shape[1:])), 0)
                for b in (self._key_buffer, self._value_buffer)
            )
        else:
            moved = (index != torch.arange(n, device=self.device)).nonzero().squeeze(1)
            if 0 < moved.shape[0] <= n // MOVE_IN_PLACE:
                source = index.index_select(0, moved)
                for buffer in (self._key_buffer, self._value_buffer):
                    rows = buffer[:, :, start : self.length]
                    rows.index_copy_(0, moved, rows.index_select(0, source))
            elif moved.shape[0]:
                spare = self._spare
                if spare is None:
                    spare = (
                        torch.empty_like(self._key_buffer),
                        torch.empty_like(self._value_buffer),
                    )
                spare_start = start if self._spare is not None else 0
                self._spare = (self._key_buffer, self._value_buffer)
                self._key_buffer = self._gather(self._key_buffer, index, spare[0], spare_start)
                self._value_buffer = self._gather(self._value_buffer, index, spare[1], spare_start)
        if self._groups is None:
            self._groups, self._shared = index.clone(), self.length
        elif not same:
            self._groups, self._spare = groups, None  # the spare rows' prefixes are stale now
        self._expose()

    def _gather(
        self, buffer: torch.Tensor, index: torch.Tensor, out: torch.Tensor, start: int
    ) -> torch.Tensor:
        """``out`` with its slots ``start:length`` set to those of ``buffer``'s rows ``index``."""
        torch.index_select(
            buffer[:, :, start : self.length], 0, index, out=out[:, :, start : self.length]
        )
        return out

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.reorder_cache(torch.as_tensor(indices, device=self.device).flatten())

    def batch_repeat_interleave(self, repeats: int) -> None:
        n = self._key_buffer.shape[0] if self.is_initialized else 0
        self.reorder_cache(torch.arange(n, device=self.device).repeat_interleave(repeats))

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(
                f"crop takes a negative count, got tokens_to_remove={tokens_to_remove}"
            )
        self.length = max(0, self.length + tokens_to_remove)
        self._shared = min(self._shared, self.length)
        if self.is_initialized:
            self._expose()

    def reset(self) -> None:
        self.length = 0
        self._spare, self._groups, self._shared = None, None, 0
        super().reset()


def preallocated_cache(config: PretrainedConfig, capacity: int) -> DynamicCache:
    """HF's `DynamicCache` for ``config`` with every full-attention layer preallocated.

    Layers of other kinds (sliding window, linear attention ...) keep HF's implementation.
    Without per-layer types in the config, every layer is preallocated.
    """
    cache = DynamicCache(config=config)
    if not cache.layers:
        n_layers = config.get_text_config(decoder=True).num_hidden_layers
        cache.layers = [PreallocatedLayer(capacity) for _ in range(n_layers)]
        cache.layer_class_to_replicate = None
        return cache
    cache.layers = [
        PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer
        for layer in cache.layers
    ]
    return cache
