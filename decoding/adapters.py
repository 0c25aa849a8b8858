"""Step-model adapters for HF models: they drive the model's own KV cache.

`HFCausalLMAdapter` wraps a decoder-only model (GPT-2 ...), `HFEncoderDecoderAdapter` an
encoder-decoder (BART ...). Both implement `decoding.StepModel`; `as_step_model` picks one.
The inputs are built exactly as HF ``generate`` builds them (position ids from the attention
mask cumsum, the all-ones mask dropped, ``logits_to_keep=1``) so that the logits match.

`HFCausalLMAdapter` has two optional shortcuts (both on in `decoding.decode` by default):

* ``max_new_tokens``: a `decoding.cache.preallocated_cache` written in place, and an attention
  mask buffer, both sized for the prompt plus that many tokens, instead of a ``torch.cat`` of
  the cache and the mask every step;
* ``fast_lm_head``: the logits are computed as ``hidden @ W.T`` from a transposed copy of the
  output embedding made once per call. On CPU, ``F.linear`` with HF's ``(V, H)`` layout runs at
  half the memory bandwidth for one or a few rows (the LM head of the benchmark model: 10.6 ms
  against 4.4 ms at batch 1). With two or more rows the logits are bitwise those of the model
  (same GEMM kernel); with one row the kernel sums in another order (last-bit differences). The
  shortcut is checked once per call on the prompt (the model's own logits against the head on
  its hidden state) and dropped when they differ (a model that scales or caps its logits).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .cache import preallocated_cache
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
        head: the fast LM head for this call, or ``None`` (the model's own head).
    """

    cache: Any
    attention_mask: torch.Tensor | None
    next_position: torch.Tensor
    seen: int
    logits: torch.Tensor | None = None
    mask_buffer: torch.Tensor | None = None
    head: _TransposedHead | None = None


class _TransposedHead:
    """``hidden @ W.T (+ bias)`` from a ``(H, V)`` contiguous copy of the output embedding."""

    def __init__(self, linear: nn.Linear):
        self.weight_t = linear.weight.detach().t().contiguous()  # (H, V)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, V)
        logits = hidden @ self.weight_t
        return logits if self.bias is None else logits + self.bias


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
        fast_lm_head: compute the logits from a transposed copy of the output embedding
            (checked on the prompt; see the module docstring).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        use_cache: bool = True,
        max_new_tokens: int | None = None,
        fast_lm_head: bool = False,
    ):
        self.model = model
        self.use_cache = use_cache
        self.max_new_tokens = max_new_tokens if use_cache else None
        params = set(inspect.signature(model.forward).parameters)
        self._takes_positions = "position_ids" in params
        self._takes_logits_to_keep = "logits_to_keep" in params
        head = model.get_output_embeddings()
        self._fast_head = (
            fast_lm_head
            and use_cache
            and isinstance(head, nn.Linear)
            and model.base_model is not model
        )

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
        kwargs = self._inputs(state, positions)
        if state.head is not None:
            # The body only, then the transposed head on the last position.
            out = self.model.base_model(input_ids=ids, return_dict=True, **kwargs)
            return state.head(_last_hidden(out)[:, -1]).float()
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=ids, return_dict=True, **kwargs)
        if self.use_cache:
            state.cache = out.cache
        return out.logits[:, -1].float()

    def _prefill(self, ids: torch.Tensor, state: CausalLMState, positions: torch.Tensor) -> None:
        """Read the prompt with the model's own head; keep the fast head if it agrees."""
        if not self._fast_head:
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
        head = _TransposedHead(self.model.get_output_embeddings())
        if len(captured) == 1 and torch.allclose(
            head(captured[0]).float(), state.logits, rtol=1e-4, atol=1e-4
        ):
            state.head = head

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
) -> StepModel:
    """Wrap an HF model in its adapter; return a `StepModel` unchanged.

    ``max_new_tokens`` (preallocate the cache) and ``fast_lm_head`` are the `HFCausalLMAdapter`
    shortcuts; an encoder-decoder preallocates its decoder self-attention cache.

    Raises:
        TypeError: when ``model`` is neither an HF model nor a `StepModel`.
    """
    if isinstance(model, PreTrainedModel):
        if model.config.is_encoder_decoder:
            return HFEncoderDecoderAdapter(model, use_cache, max_new_tokens)
        return HFCausalLMAdapter(model, use_cache, max_new_tokens, fast_lm_head)
    if isinstance(model, StepModel):
        return model
    raise TypeError(
        f"decode needs an HF PreTrainedModel or a StepModel (start/step/reorder), got {type(model).__name__}"
    )
