"""Step-model adapters for HF models: they drive the model's own KV cache.

`HFCausalLMAdapter` wraps a decoder-only model (GPT-2 ...), `HFEncoderDecoderAdapter` an
encoder-decoder (BART ...). Both implement `decoding.StepModel`; `as_step_model` picks one.
The inputs are built exactly as HF ``generate`` builds them (position ids from the attention
mask cumsum, the all-ones mask dropped, ``logits_to_keep=1``) so that the logits match.

`HFCausalLMAdapter` has three optional shortcuts (all on in `decoding.decode` by default), each
giving the model's logits bit for bit:

* ``max_new_tokens``: a `decoding.cache.preallocated_cache` written in place, and an attention
  mask buffer, both sized for the prompt plus that many tokens, instead of a ``torch.cat`` of
  the cache and the mask every step;
* ``fast_lm_head``: the logits come from `decoding.lm_head.ExactLMHead` applied to the base
  model's last hidden state: per row count, the fastest layout of the output embedding that
  gives the model's own head's logits bit for bit;
* ``fast_body``: the base model's decoding step runs as a `decoding.bodies` function of its
  weights (the same tensor operations without HF's module Python), for model types that have
  one; it is compared with the model's own base model on the first step of every call
  (hidden states and cached keys / values, bitwise) and dropped for the call on any difference.

Both ``fast_lm_head`` and ``fast_body`` compute the logits as ``head(base_model(...))``. That
split is checked once per call on the prompt: the model's own logits must equal its output
embedding applied to its base model's hidden state, bit for bit (a model that scales or caps
its logits in ``forward`` keeps its full forward).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .bodies import FastBody, fast_body_for
from .cache import preallocated_cache
from .lm_head import ExactLMHead
from .protocol import StepModel, select_rows

__all__ = [
    "CausalLMState",
    "EncoderDecoderState",
    "HFCausalLMAdapter",
    "HFEncoderDecoderAdapter",
    "as_step_model",
]


@dataclass
class CausalLMState:
    """State of `HFCausalLMAdapter`.

    Attributes:
        cache: the model's KV cache (``None`` without caching); reordered in place.
        attention_mask: ``(N, seen)`` mask of the tokens read so far, ``None`` when no row
            is padded (HF drops an all-ones mask too); a view of ``mask_buffer`` when there
            is one.
        next_position: ``(N,)`` position id of the next token to read.
        seen: number of tokens of the sequence the model has read.
        logits: ``(N, V)`` logits of the next token computed by the prefill, not yet returned.
        mask_buffer: ``(N, T0 + max_new_tokens)`` preallocated mask (ones after the prompt),
            or ``None``.
        head: ``(N, H) -> (N, V)`` logits from the base model's hidden state (the split
            checked on the prompt), or ``None``: the model's own forward.
        body: the fast body for this call, or ``None`` (the model's own base model).
        body_checked: whether ``body`` was compared with the base model yet.
    """

    cache: Any
    attention_mask: torch.Tensor | None
    next_position: torch.Tensor
    seen: int
    logits: torch.Tensor | None = None
    mask_buffer: torch.Tensor | None = None
    head: Callable[[torch.Tensor], torch.Tensor] | None = None
    body: FastBody | None = None
    body_checked: bool = False


class HFCausalLMAdapter:
    """Drive an HF causal LM token by token with its KV cache.

    ``start`` runs the prefill on the unexpanded batch (so beams share one prefill), ``step``
    feeds only the tokens the cache has not seen. With ``use_cache=False`` every step
    recomputes the whole sequence.

    Args:
        model: an HF ``PreTrainedModel`` with a causal LM head, in eval mode.
        use_cache: keep the KV cache between steps.
        max_new_tokens: most tokens generated after the prompt: preallocate the KV cache and
            the attention mask for the prompt plus that many (``None``: HF's `DynamicCache`,
            grown by concatenation).
        fast_lm_head: compute the logits with `decoding.lm_head.ExactLMHead` (see the module
            docstring).
        fast_body: run the decoding steps with the model type's `decoding.bodies` body, when
            there is one (checked on the first step of every call).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        use_cache: bool = True,
        max_new_tokens: int | None = None,
        fast_lm_head: bool = False,
        fast_body: bool = False,
    ):
        self.model = model
        self.use_cache = use_cache
        self.max_new_tokens = max_new_tokens if use_cache else None
        params = set(inspect.signature(model.forward).parameters)
        self._takes_positions = "position_ids" in params
        self._takes_logits_to_keep = "logits_to_keep" in params
        splittable = (
            use_cache
            and model.base_model is not model
            and isinstance(model.get_output_embeddings(), nn.Module)
        )
        self._head = ExactLMHead.for_model(model) if splittable and fast_lm_head else None
        self._body = fast_body_for(model) if splittable and fast_body else None
        self._split = self._head is not None or self._body is not None

    def _inputs(self, state: CausalLMState, positions: torch.Tensor) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"use_cache": self.use_cache}
        if self.use_cache:
            kwargs["cache"] = state.cache
        if state.attention_mask is not None:
            kwargs["attention_mask"] = state.attention_mask
        if self._takes_positions:
            kwargs["position_ids"] = positions
        return kwargs

    def _forward(
        self, ids: torch.Tensor, state: CausalLMState, positions: torch.Tensor
    ) -> torch.Tensor:
        if state.head is None:
            kwargs = self._inputs(state, positions)
            if self._takes_logits_to_keep:
                kwargs["logits_to_keep"] = 1
            out = self.model(input_ids=ids, return_dict=True, **kwargs)
            if self.use_cache:
                state.cache = out.cache
            return out.logits[:, -1].float()
        if state.body is None or ids.shape[1] != 1:
            hidden = self._base_model(ids, state, positions)
        elif state.body_checked:
            hidden = state.body(ids, positions, state.attention_mask, state.cache)
        else:
            hidden = self._check_body(ids, state, positions)
        return state.head(hidden).float()

    def _base_model(
        self, ids: torch.Tensor, state: CausalLMState, positions: torch.Tensor
    ) -> torch.Tensor:
        """``(N, H)`` the model's own last hidden state (it writes the cache in place)."""
        kwargs = self._inputs(state, positions)
        out = self.model.base_model(input_ids=ids, return_dict=True, **kwargs)
        return _last_hidden(out)[:, -1]

    def _check_body(
        self, ids: torch.Tensor, state: CausalLMState, positions: torch.Tensor
    ) -> torch.Tensor:
        """Run the fast body, then the base model on the same step (the cache rewound); keep
        the body for the call only if both give the same hidden state and cache, bitwise."""
        cache, seen = state.cache, state.cache.get_seq_length()
        ours = state.body(ids, positions, state.attention_mask, cache)
        written = [(layer.keys[:, :, seen:].clone(), layer.values[:, :, seen:].clone())
                   for layer in cache.layers]  # fmt: skip
        cache.crop(-ids.shape[1])
        hidden = self._base_model(ids, state, positions)
        same = torch.equal(ours, hidden) and all(
            torch.equal(k, layer.keys[:, :, seen:]) and torch.equal(v, layer.values[:, :, seen:])
            for (k, v), layer in zip(written, cache.layers)
        )
        state.body = state.body if same else None
        state.body_checked = True
        return hidden

    def _prefill(self, ids: torch.Tensor, state: CausalLMState, positions: torch.Tensor) -> None:
        """Read the prompt with the model's full forward; keep the split into base model and
        head if its logits are the output embedding of the base model's hidden state."""
        if not self._split:
            state.logits = self._forward(ids, state, positions)
            return
        captured: list[torch.Tensor] = []
        hook = self.model.base_model.register_forward_hook(
            lambda module, args, output: captured.append(_last_hidden(output)[:, -1])
        )
        try:
            state.logits = self._forward(ids, state, positions)
        finally:
            hook.remove()
        own_head = self.model.get_output_embeddings()
        if len(captured) == 1 and torch.equal(own_head(captured[0]).float(), state.logits):
            state.head = self._head or own_head
            state.body = self._body

    def start(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        **model_kwargs: Any,
    ) -> CausalLMState:
        """Read the prompt. ``attention_mask`` marks left padding with 0."""
        if model_kwargs:
            raise TypeError(f"unsupported model kwargs for a causal LM: {sorted(model_kwargs)}")
        n, length = input_ids.shape
        mask_buffer = None
        if attention_mask is None or bool(attention_mask.all()):
            positions = torch.arange(length, device=input_ids.device).expand(n, length)
            mask = None
        else:
            mask = attention_mask.long()
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
            if self.max_new_tokens is not None:
                mask_buffer = mask.new_ones(n, length + self.max_new_tokens)
                mask_buffer[:, :length] = mask
                mask = mask_buffer[:, :length]
        if not self.use_cache:
            cache = None
        elif self.max_new_tokens is not None:
            cache = preallocated_cache(self.model.config, length + self.max_new_tokens)
        else:
            cache = DynamicCache(config=self.model.config)
        state = CausalLMState(cache, mask, positions[:, -1] + 1, length, mask_buffer=mask_buffer)
        if self.use_cache:
            self._prefill(input_ids, state, positions)
        return state

    def step(
        self, input_ids: torch.LongTensor, state: CausalLMState
    ) -> tuple[torch.Tensor, CausalLMState]:
        """Logits ``(N, V)`` of the token after ``input_ids``; reads only unseen tokens."""
        new = input_ids.shape[1] - state.seen
        if new == 0 and state.logits is not None:
            logits, state.logits = state.logits, None
            return logits, state
        n = input_ids.shape[0]
        if state.mask_buffer is not None:
            state.attention_mask = state.mask_buffer[:, : input_ids.shape[1]]
        elif state.attention_mask is not None:
            ones = state.attention_mask.new_ones(n, new)
            state.attention_mask = torch.cat([state.attention_mask, ones], dim=-1)
        offsets = torch.arange(new, device=input_ids.device)
        new_positions = state.next_position[:, None] + offsets  # (N, new)
        state.next_position = state.next_position + new
        state.seen = input_ids.shape[1]
        if self.use_cache:
            return self._forward(input_ids[:, -new:], state, new_positions), state
        if state.attention_mask is None:
            positions = torch.arange(state.seen, device=input_ids.device).expand(n, -1)
        else:
            positions = (state.attention_mask.cumsum(-1) - 1).masked_fill(
                state.attention_mask == 0, 0
            )
        return self._forward(input_ids, state, positions), state

    def reorder(self, state: CausalLMState, index: torch.LongTensor) -> CausalLMState:
        """Select rows (expand the batch or follow beams); the KV cache is reordered in place."""
        if state.cache is not None:
            state.cache.reorder_cache(index)
        if state.mask_buffer is not None:
            state.mask_buffer = select_rows(state.mask_buffer, index)
            state.attention_mask = state.mask_buffer[:, : state.seen]
        else:
            state.attention_mask = select_rows(state.attention_mask, index)
        state.next_position = select_rows(state.next_position, index)
        state.logits = select_rows(state.logits, index)
        return state


@dataclass
class EncoderDecoderState:
    """State of `HFEncoderDecoderAdapter`: encoder output and mask, decoder cache, tokens read."""

    encoder_hidden_states: torch.Tensor
    encoder_attention_mask: torch.Tensor | None
    cache: Any
    seen: int = 0


class HFEncoderDecoderAdapter:
    """Drive an HF encoder-decoder: encode once in ``start``, then decode with the
    self- and cross-attention cache (`EncoderDecoderCache`).

    The decoded sequence starts with the decoder start token (`initial_sequence`). With
    ``max_new_tokens`` the self-attention cache is a `decoding.cache.preallocated_cache` for
    the start token plus that many.
    """

    def __init__(
        self, model: PreTrainedModel, use_cache: bool = True, max_new_tokens: int | None = None
    ):
        self.model = model
        self.use_cache = use_cache
        self.max_new_tokens = max_new_tokens

    def initial_sequence(self, input_ids: torch.LongTensor) -> torch.LongTensor:
        """``(B, 1)`` decoder prompt: the decoder start token, as HF ``generate`` uses."""
        start = self.model.generation_config.decoder_start_token_id
        if start is None:
            start = getattr(self.model.config, "decoder_start_token_id", None)
        if start is None:
            start = self.model.config.bos_token_id
        if start is None:
            raise ValueError("decoder_start_token_id=None: set it on the model's generation_config")
        return torch.full(
            (input_ids.shape[0], 1), int(start), dtype=torch.long, device=input_ids.device
        )

    def start(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        **model_kwargs: Any,
    ) -> EncoderDecoderState:
        """Encode the source ``input_ids`` (``attention_mask`` marks padding with 0)."""
        enc = self.model.get_encoder()(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **model_kwargs
        )
        cache = None
        if self.use_cache:
            config = self.model.config
            if self.max_new_tokens is not None:
                self_attention = preallocated_cache(config, 1 + self.max_new_tokens)
            else:
                self_attention = DynamicCache(config=config)
            cache = EncoderDecoderCache(self_attention, DynamicCache(config=config))
        return EncoderDecoderState(enc.last_hidden_state, attention_mask, cache)

    def step(
        self, input_ids: torch.LongTensor, state: EncoderDecoderState
    ) -> tuple[torch.Tensor, EncoderDecoderState]:
        """Logits ``(N, V)`` of the decoder token after ``input_ids``."""
        ids = input_ids[:, state.seen :] if self.use_cache else input_ids
        out = self.model(
            attention_mask=state.encoder_attention_mask,
            decoder_input_ids=ids,
            encoder_outputs=BaseModelOutput(last_hidden_state=state.encoder_hidden_states),
            cache=state.cache,
            use_cache=self.use_cache,
            return_dict=True,
        )
        if self.use_cache:
            state.cache = out.cache
        state.seen = input_ids.shape[1]
        return out.logits[:, -1].float(), state

    def reorder(self, state: EncoderDecoderState, index: torch.LongTensor) -> EncoderDecoderState:
        """Select rows of the encoder output, its mask and the cache (in place)."""
        if state.cache is not None:
            state.cache.reorder_cache(index)
        state.encoder_hidden_states = select_rows(state.encoder_hidden_states, index)
        state.encoder_attention_mask = select_rows(state.encoder_attention_mask, index)
        return state


def _last_hidden(output: Any) -> torch.Tensor:
    """``last_hidden_state`` of a base model's output (a ModelOutput or a tuple)."""
    hidden = getattr(output, "last_hidden_state", None)
    return output[0] if hidden is None else hidden


def as_step_model(
    model: Any,
    use_cache: bool = True,
    max_new_tokens: int | None = None,
    fast_lm_head: bool = False,
    fast_body: bool = False,
) -> StepModel:
    """Wrap an HF model in its adapter; return a `StepModel` unchanged.

    ``max_new_tokens`` (preallocate the cache), ``fast_lm_head`` and ``fast_body`` are the
    `HFCausalLMAdapter` shortcuts; an encoder-decoder preallocates its decoder self-attention
    cache.

    Raises:
        TypeError: when ``model`` is neither an HF model nor a `StepModel`.
    """
    if isinstance(model, PreTrainedModel):
        if model.config.is_encoder_decoder:
            return HFEncoderDecoderAdapter(model, use_cache, max_new_tokens)
        return HFCausalLMAdapter(model, use_cache, max_new_tokens, fast_lm_head, fast_body)
    if isinstance(model, StepModel):
        return model
    raise TypeError(
        f"decode needs an HF PreTrainedModel or a StepModel (start/step/reorder), got {type(model).__name__}"
    )
