"""Fast bodies: a causal LM's cached decoding step as a plain function of its weights.

A decoding step of the benchmark model (GPT-2 shape, 6 layers) calls about 170 small tensor
operations; HF's modules wrap them in about 2 ms of Python per step (module calls, decorators,
output records, mask and config look-ups), as long as the matrix products themselves at batch
1. A body here calls the *same* tensor operations, in the same order and with the same
arguments, on the model's own weights, cache and attention mask (built by HF's own
``create_causal_mask``), so its hidden states are HF's bit for bit; it only skips the Python
around them.

That is checked, not assumed: `decoding.adapters.HFCausalLMAdapter` runs the body and the
model's own base model on the first decoding step of every call, compares the hidden states
and the keys and values written into the cache bitwise, and keeps the model's code for the
rest of the call when anything differs (another transformers version, a changed forward).
A body is built only for the exact module classes it reproduces, in eval mode, with SDPA
attention and no hooks anywhere in the model (a hook would be bypassed).

`BODIES` maps an HF ``config.model_type`` to a builder ``build(model) -> body | None``; a
body reads one new token per row: it is called as ``body(input_ids, position_ids,
attention_mask, cache)`` with ``(N, 1)`` ids and positions and returns the final hidden state
``(N, H)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.masking_utils import create_causal_mask

from .registry import Registry

__all__ = ["BODIES", "FastBody", "GPT2Body", "fast_body_for"]


class FastBody(Protocol):
    def __call__(
        self,
        input_ids: torch.LongTensor,
        position_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        cache: Any,
    ) -> torch.Tensor:
        """``(N, H)`` final hidden state of the ``(N, 1)`` new tokens; the cache receives
        their keys and values. ``attention_mask``: ``(N, seen + 1)`` or None (no padding)."""
        ...


# config.model_type -> builder(model) -> FastBody | None (None: this model is not supported)
BODIES: Registry[Callable[[PreTrainedModel], FastBody | None]] = Registry("fast body")


def _has_hooks(model: nn.Module) -> bool:
    hooks = nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def fast_body_for(model: PreTrainedModel) -> FastBody | None:
    """The fast body of ``model``, or None: no body for its type, training mode, hooks, or
    modules other than the ones the body reproduces."""
    build = BODIES.get(getattr(model.config, "model_type", None))
    if build is None or model.training or _has_hooks(model):
        return None
    return build(model)


class GPT2Body:
    """`GPT2Model.forward` (transformers 5.x) for cached decoding, eval mode, SDPA attention.

    The weights are looked up once per call of `decode` (``nn.Module`` attribute look-ups are
    a fifth of the Python left per step otherwise).
    """

    def __init__(self, model: PreTrainedModel):
        self.config = model.config
        tr = model.transformer
        self.wte, self.wpe, self.ln_f = tr.wte, tr.wpe, _norm(tr.ln_f)
        self.embed_dim = model.config.hidden_size
        self.head_dim = self.embed_dim // model.config.num_attention_heads
        self.layers = [
            (
                _norm(block.ln_1),
                _conv(block.attn.c_attn),
                block.attn.scaling,
                _conv(block.attn.c_proj),
                _norm(block.ln_2),
                _conv(block.mlp.c_fc),
                block.mlp.act,
                _conv(block.mlp.c_proj),
            )
            for block in tr.h
        ]

    @classmethod
    def build(cls, model: PreTrainedModel) -> GPT2Body | None:
        from transformers.models.gpt2 import modeling_gpt2 as gpt2
        from transformers.pytorch_utils import Conv1D

        body = getattr(model, "transformer", None)
        config = model.config
        if (
            type(body) is not gpt2.GPT2Model
            or config._attn_implementation != "sdpa"
            or config.add_cross_attention
        ):
            return None
        for block in body.h:
            parts = (block, block.attn, block.mlp, block.ln_1, block.ln_2)
            kinds = (gpt2.GPT2Block, gpt2.GPT2Attention, gpt2.GPT2MLP, nn.LayerNorm, nn.LayerNorm)
            convs = (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj)
            if any(type(p) is not k for p, k in zip(parts, kinds)) or any(
                type(c) is not Conv1D for c in convs
            ):
                return None
        return cls(model)

    def __call__(
        self,
        input_ids: torch.LongTensor,
        position_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        cache: Any,
    ) -> torch.Tensor:
        n, t = input_ids.shape
        width, head_dim = self.embed_dim, self.head_dim
        inputs_embeds = self.wte(input_ids)
        hidden = inputs_embeds + self.wpe(position_ids)  # (N, t, H); dropout: eval
        mask = None  # what create_causal_mask gives one new token without padding
        if attention_mask is not None:  # HF's own mask, built as GPT2Model builds it
            mask = create_causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask.view(n, -1),
                cache=cache,
                position_ids=position_ids,
            )
        update = cache.update
        for i, (ln_1, c_attn, scaling, c_proj, ln_2, c_fc, act, mlp_proj) in enumerate(self.layers):
            x = _conv1d(c_attn, F.layer_norm(hidden, *ln_1))
            query, key, value = x.split(width, dim=2)
            query = query.view(n, t, -1, head_dim).transpose(1, 2)  # (N, heads, t, d)
            key = key.view(n, t, -1, head_dim).transpose(1, 2)
            value = value.view(n, t, -1, head_dim).transpose(1, 2)
            key, value = update(key, value, i)
            out = F.scaled_dot_product_attention(
                query, key, value, attn_mask=mask, dropout_p=0.0, scale=scaling, is_causal=False
            )  # is_causal: as HF's sdpa_attention_forward for one query
            out = out.transpose(1, 2).contiguous().reshape(n, t, width)
            hidden = _conv1d(c_proj, out) + hidden
            x = act(_conv1d(c_fc, F.layer_norm(hidden, *ln_2)))
            hidden = hidden + _conv1d(mlp_proj, x)
        return F.layer_norm(hidden, *self.ln_f)[:, -1]


BODIES.register("gpt2", GPT2Body.build)


def _norm(ln: nn.LayerNorm) -> tuple:
    """``F.layer_norm``'s arguments after the input, as ``nn.LayerNorm.forward`` passes them."""
    return ln.normalized_shape, ln.weight, ln.bias, ln.eps


def _conv(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor, int]:
    return conv.bias, conv.weight, conv.nf


def _conv1d(conv: tuple[torch.Tensor, torch.Tensor, int], x: torch.Tensor) -> torch.Tensor:
    """HF's `Conv1D.forward`: ``addmm(bias, x, weight)`` over the flattened rows."""
    bias, weight, width = conv
    return torch.addmm(bias, x.view(-1, x.shape[-1]), weight).view(*x.shape[:-1], width)
