"""The self-terminating (ST) output layer of Welleck et al. 2020 ("Consistency of a recurrent
language model with respect to incomplete decoding", result 3; official code
``uralik/consistency-lm``, ``RNNLanguageModelST``).

The end token gets a probability that can only grow with time::

    beta_t  = clamp((1 - eps) * sigmoid(logit_t[eos]), min=1e-10)       in (0, 1 - eps]
    p_t(eos) = 1 - prod_{i<=t} beta_i                                     >= 1 - (1 - eps)^(t+1)
    alpha_t  = beta_t * (1 - p_{t-1}(eos)) = prod_{i<=t} beta_i = 1 - p_t(eos)
    p_t(v)   = alpha_t * softmax_{V \\ eos}(logit_t)_v                     for every v != eos

so greedy decoding must emit the end token within ``ceil(ln 0.5 / ln(1 - eps))`` steps,
whatever the weights. The running product is kept as a sum of logs (``cumsum`` of
``log beta``), as in the reference code, so it does not underflow; the reference's
"clamp at 1e-10, renormalise, log" is done in log space (clamp ``alpha`` and ``p(eos)`` at
1e-10, renormalise with ``logsumexp``). The end token may sit at any vocabulary index.

Context steps (the prompt) get ``beta = 1`` (reference ``mask_context_k``): the product, and
so ``p(eos)``, only starts counting once the continuation starts.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "SelfTerminatingHead",
    "SelfTerminatingStepModel",
    "self_terminating_log_probs",
    "greedy_stop_bound",
    "context_mask_for",
]

_MIN_PROB = 1e-10


def context_mask_for(
    length: int, context_length: int, batch: int, device: torch.device, start: int = 0
) -> torch.Tensor:
    """``(batch, length)`` bool ``context_mask`` for `self_terminating_log_probs`: True at
    absolute positions ``start + i < context_length`` (steps whose prediction is still a
    context token, so ST forces ``beta = 1`` there)."""
    pos = torch.arange(start, start + length, device=device)
    return (pos < context_length).unsqueeze(0).expand(batch, length)


def greedy_stop_bound(epsilon: float) -> int:
    """Most tokens (end token included) that greedy decoding of an ST model can produce:
    ``ceil(ln 0.5 / ln(1 - eps))``; after that many steps p(eos) > 0.5."""
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got epsilon={epsilon}")
    return math.ceil(math.log(0.5) / math.log1p(-epsilon))


def self_terminating_log_probs(
    logits: torch.Tensor,
    eos_token_id: int,
    epsilon: float,
    past_log_beta: torch.Tensor | None = None,
    context_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn ordinary LM logits into self-terminating log-probabilities.

    Args:
        logits: ``(B, T, V)`` logits of the wrapped head; ``logits[..., eos_token_id]`` is the
            end-token logit that parametrises ``beta``.
        eos_token_id: index of the end token, anywhere in ``[0, V)``.
        epsilon: the bound, ``beta <= 1 - epsilon``.
        past_log_beta: ``(B,)`` ``sum log beta`` over the steps already decoded
            (incremental decoding); ``None`` means zero (nothing decoded yet).
        context_mask: ``(B, T)`` bool, True at context steps, where ``beta`` is forced to 1.

    Returns:
        ``(log_probs, log_beta_sum)``: ``(B, T, V)`` normalised log-probabilities and ``(B,)``
        the running ``sum log beta`` after the last step, to pass as ``past_log_beta`` next.
    """
    vocab = logits.size(-1)
    if not 0 <= eos_token_id < vocab:
        raise ValueError(f"eos_token_id={eos_token_id} is outside the vocabulary of size {vocab}")
    logits = logits.float()
    eos_logit = logits[..., eos_token_id]  # (B, T)
    beta = ((1.0 - epsilon) * torch.sigmoid(eos_logit)).clamp(min=_MIN_PROB)
    log_beta = torch.log(beta)
    if context_mask is not None:
        log_beta = log_beta.masked_fill(context_mask, 0.0)
    log_prod = torch.cumsum(log_beta, dim=-1)  # (B, T): log(1 - p_t(eos)) = log alpha_t
    if past_log_beta is not None:
        log_prod = log_prod + past_log_beta.unsqueeze(-1).to(log_prod.dtype)
    log_alpha = log_prod.clamp(min=math.log(_MIN_PROB))
    log_p_eos = torch.log((-torch.expm1(log_prod)).clamp(min=_MIN_PROB))  # log(1 - prod beta)
    # softmax over V \ eos: mask the eos column out of the normaliser.
    v_logits = logits.clone()
    v_logits[..., eos_token_id] = float("-inf")
    log_probs = log_alpha.unsqueeze(-1) + torch.log_softmax(v_logits, dim=-1)
    log_probs[..., eos_token_id] = log_p_eos
    log_probs = log_probs - torch.logsumexp(log_probs, dim=-1, keepdim=True)
    return log_probs, log_prod[..., -1]


class SelfTerminatingHead(nn.Module):
    """Wrap an LM head (``hidden -> V logits``) so that its output is self-terminating.

    Train with ``nn.NLLLoss`` on the returned log-probabilities (not cross-entropy on logits).
    For incremental decoding pass the returned ``log_beta_sum`` back as ``past_log_beta`` (a
    step model for `decoding.decode` carries it in its state, as `SelfTerminatingStepModel`
    does); `context_mask_for` builds the ``context_mask``.

    Args:
        lm_head: module mapping ``(..., H)`` hidden states to ``(..., V)`` logits.
        eos_token_id: vocabulary index of the end token (any index, not only the last).
        epsilon: ``beta <= 1 - epsilon``; default 1e-3 (the GPT-2 default of the reference).
    """

    def __init__(self, lm_head: nn.Module, eos_token_id: int, epsilon: float = 1e-3) -> None:
        super().__init__()
        if not 0.0 < epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got epsilon={epsilon}")
        if eos_token_id < 0:
            raise ValueError(f"eos_token_id must be >= 0, got eos_token_id={eos_token_id}")
        self.lm_head = lm_head
        self.eos_token_id = eos_token_id
        self.epsilon = epsilon

    def forward(
        self,
        hidden: torch.Tensor,
        past_log_beta: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: ``hidden`` ``(B, T, H)``; ``past_log_beta`` ``(B,)`` or None; ``context_mask``
        ``(B, T)`` bool or None. Returns ``(log_probs (B, T, V), log_beta_sum (B,))``."""
        return self_terminating_log_probs(
            self.lm_head(hidden), self.eos_token_id, self.epsilon, past_log_beta, context_mask
        )

    def extra_repr(self) -> str:
        return f"eos_token_id={self.eos_token_id}, epsilon={self.epsilon}"


class SelfTerminatingStepModel:
    """Make any `decoding.StepModel` self-terminating at decode time.

    ``base`` must return raw logits of a model trained with the ST layer on top (e.g.
    ``as_step_model(hf_causal_lm)``, which uses the HF KV cache); this wrapper applies the ST
    transform to each step's logits and carries the running ``sum log beta`` in the state. The
    product starts at the first generated token (the prompt is context, ``beta = 1``).

    Args:
        base: the step model that produces ``(N, V)`` logits.
        eos_token_id: vocabulary index of the end token.
        epsilon: the ST bound used in training.
    """

    def __init__(self, base, eos_token_id: int, epsilon: float = 1e-3) -> None:
        if not 0.0 < epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got epsilon={epsilon}")
        self.base = base
        self.eos_token_id = eos_token_id
        self.epsilon = epsilon

    def start(self, input_ids: torch.LongTensor, **model_kwargs):
        log_beta = torch.zeros(input_ids.size(0), device=input_ids.device)
        return self.base.start(input_ids, **model_kwargs), log_beta

    def step(self, input_ids: torch.LongTensor, state):
        inner, log_beta = state
        logits, inner = self.base.step(input_ids, inner)  # (N, V)
        log_probs, log_beta = self_terminating_log_probs(
            logits[:, None], self.eos_token_id, self.epsilon, log_beta
        )
        return log_probs[:, 0], (inner, log_beta)

    def reorder(self, state, index: torch.LongTensor):
        inner, log_beta = state
        return self.base.reorder(inner, index), log_beta.index_select(0, index)
