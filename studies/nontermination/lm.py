"""Small language models for the non-termination study, vanilla or self-terminating (ST),
built on the library's ST layer (`decoding.self_terminating`).

* `LSTMLanguageModel`: embedding -> multi-layer LSTM -> tied output layer (the reference
  ``RNNLanguageModel`` of ``uralik/consistency-lm``), plain ``nn.Module``.
* `GPT2LanguageModel`: an HF ``GPT2LMHeadModel`` whose output is passed through the ST layer
  when ``config.st_epsilon`` is set; a ``PreTrainedModel``, so HF ``Trainer`` trains it.

Both return *normalised log-probabilities* (train with NLL), and both expose
``incremental(input_ids, memory, past_log_beta, context_mask)`` and ``reorder_memory`` so
that `LMStepModel` drives either through `decoding.decode` as a `decoding.StepModel`, with
the ST running product ``sum log beta`` carried in the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import ModelOutput

from decoding.self_terminating import context_mask_for, self_terminating_log_probs

__all__ = [
    "LSTMLMConfig",
    "LSTMLanguageModel",
    "GPT2LanguageModel",
    "SelfTerminatingLMOutput",
    "LMStepModel",
    "lm_nll",
]


def _to_log_probs(logits, st_epsilon, eos_token_id, past_log_beta, context_mask):
    """Log-probabilities and the running ``sum log beta`` (zeros for a vanilla model)."""
    if st_epsilon is None:
        batch = logits.size(0)
        return torch.log_softmax(logits.float(), dim=-1), torch.zeros(batch, device=logits.device)
    return self_terminating_log_probs(logits, eos_token_id, st_epsilon, past_log_beta, context_mask)


def lm_nll(log_probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL and token count of next-token prediction: ``log_probs[:, t]`` scores
    ``labels[:, t + 1]``; labels equal to -100 are ignored. Returns ``(sum_nll, n_tokens)``."""
    target = labels[:, 1:]
    lp = log_probs[:, :-1].reshape(-1, log_probs.size(-1))
    nll = F.nll_loss(lp, target.reshape(-1), ignore_index=-100, reduction="sum")
    return nll, (target != -100).sum()


@dataclass
class LSTMLMConfig:
    """Sizes of the LSTM LM (reference: 2 layers, hidden 512, dropout 0.5, tied weights)."""

    vocab_size: int
    eos_token_id: int
    pad_token_id: int = 0
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.3
    st_epsilon: float | None = None
    context_length: int = 10
    st_eos_bias_init: float = 3.0

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got vocab_size={self.vocab_size}")
        if not 0 <= self.eos_token_id < self.vocab_size:
            raise ValueError(f"eos_token_id={self.eos_token_id} outside [0, {self.vocab_size})")
        if self.st_epsilon is not None and not 0.0 < self.st_epsilon < 1.0:
            raise ValueError(
                f"st_epsilon must be None or in (0, 1), got st_epsilon={self.st_epsilon}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout={self.dropout}")


class LSTMLanguageModel(nn.Module):
    """Word-level LSTM LM with tied input/output embeddings (embedding dim = hidden size)."""

    def __init__(self, config: LSTMLMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.rnn = nn.LSTM(
            config.hidden_size,
            config.hidden_size,
            config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.hidden_size, config.vocab_size)
        self.proj.weight = self.embed.weight
        if config.st_epsilon is not None:
            with torch.no_grad():  # see GPT2LanguageModel: start near the data's stop rate
                self.proj.bias[config.eos_token_id] = config.st_eos_bias_init

    def incremental(self, input_ids, memory=None, past_log_beta=None, context_mask=None):
        """``input_ids (B, T)`` -> ``(log_probs (B, T, V), memory, log_beta_sum (B,))``."""
        out, memory = self.rnn(self.drop(self.embed(input_ids)), memory)  # (B, T, H)
        logits = self.proj(self.drop(out))
        log_probs, log_beta = _to_log_probs(
            logits, self.config.st_epsilon, self.config.eos_token_id, past_log_beta, context_mask
        )
        return log_probs, memory, log_beta

    def forward(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """Full-sequence log-probabilities ``(B, T, V)`` with the training context mask."""
        b, t = input_ids.shape
        mask = context_mask_for(t, self.config.context_length, b, input_ids.device)
        return self.incremental(input_ids, None, None, mask)[0]

    @staticmethod
    def reorder_memory(memory, index: torch.LongTensor):
        if memory is None:
            return None
        return tuple(m.index_select(1, index) for m in memory)  # (layers, B, H)


@dataclass
class SelfTerminatingLMOutput(ModelOutput):
    """``logits`` holds normalised log-probabilities; ``log_beta_sum`` the ST running sum."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: Any = None
    log_beta_sum: torch.Tensor | None = None


class GPT2LanguageModel(GPT2LMHeadModel):
    """GPT-2 LM whose output is self-terminating when ``config.st_epsilon`` is set.

    Extra config fields: ``st_epsilon`` (None: vanilla softmax), ``st_context_length``
    (positions ``< st_context_length`` get ``beta = 1`` in training, reference
    ``mask_context_k``), ``st_eos_bias_init``.

    An ST model gets one extra parameter, a bias on the end-token logit, initialised to
    ``st_eos_bias_init`` (default 3: beta ~ 0.95, about the per-word stop rate of a sentence
    of ~20 continuation words). Trained from scratch without it, beta starts at ~0.5, every
    late token gets a log-probability near ``t * ln 0.5``, and the first hundreds of steps
    only push the end-token logit up (the reference fine-tunes a pre-trained GPT-2 instead). ``forward(input_ids, labels=...)`` returns the mean NLL as ``loss``
    so HF ``Trainer`` trains it unchanged. The HF ``generate`` path does not carry the ST
    running product: decode ST models through `LMStepModel` and `decoding.decode`.
    """

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        cache: Any = None,
        use_cache: bool | None = None,
        past_log_beta: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SelfTerminatingLMOutput:
        out = self.transformer(
            input_ids, cache=cache, attention_mask=attention_mask, use_cache=use_cache
        )
        logits = self.lm_head(out.last_hidden_state)  # (B, T, V)
        if hasattr(self, "eos_bias"):
            eos = self.config.eos_token_id
            logits = torch.cat(
                [
                    logits[..., :eos],
                    logits[..., eos : eos + 1] + self.eos_bias,
                    logits[..., eos + 1 :],
                ],
                -1,
            )
        if context_mask is None:
            b, t = input_ids.shape
            k = getattr(self.config, "st_context_length", 0)
            context_mask = context_mask_for(t, k, b, input_ids.device)
        log_probs, log_beta = _to_log_probs(
            logits,
            getattr(self.config, "st_epsilon", None),
            self.config.eos_token_id,
            past_log_beta,
            context_mask,
        )
        loss = None
        if labels is not None:
            nll, n = lm_nll(log_probs, labels)
            loss = nll / n.clamp(min=1)
        return SelfTerminatingLMOutput(
            loss=loss, logits=log_probs, cache=out.cache, log_beta_sum=log_beta
        )

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        if getattr(config, "st_epsilon", None) is not None:
            self.eos_bias = nn.Parameter(
                torch.tensor(float(getattr(config, "st_eos_bias_init", 3.0)))
            )

    def incremental(self, input_ids, memory=None, past_log_beta=None, context_mask=None):
        """``input_ids (B, T)`` (tokens not in the cache) -> ``(log_probs, cache, log_beta_sum)``."""
        out = self.forward(
            input_ids,
            cache=memory,
            use_cache=True,
            past_log_beta=past_log_beta,
            context_mask=context_mask,
        )
        return out.logits, out.cache, out.log_beta_sum

    @staticmethod
    def reorder_memory(memory, index: torch.LongTensor):
        if memory is not None:
            memory.reorder_cache(index)  # HF caches reorder in place
        return memory

    @classmethod
    def from_sizes(
        cls, vocab_size: int, eos_token_id: int, st_epsilon: float | None = None, **sizes: Any
    ):
        """Build from sizes, e.g. ``n_layer=2, n_embd=128, n_head=4, n_positions=256``."""
        config = GPT2Config(
            vocab_size=vocab_size,
            eos_token_id=eos_token_id,
            bos_token_id=eos_token_id,
            st_epsilon=st_epsilon,
            st_context_length=sizes.pop("st_context_length", 10),
            st_eos_bias_init=sizes.pop("st_eos_bias_init", 3.0),
            **sizes,
        )
        return cls(config)


@dataclass
class _StepState:
    memory: Any
    log_beta: torch.Tensor  # (N,) running sum log beta of the ST layer
    seen: int  # tokens of input_ids already read into memory
    context_length: int  # positions < context_length are context (beta = 1)


class LMStepModel:
    """`decoding.StepModel` adapter for `LSTMLanguageModel` / `GPT2LanguageModel`.

    The prompt is the context: every prompt position but the last gets ``beta = 1``, so the
    ST bound ``p_t(eos) >= 1 - (1 - eps)^(t+1)`` counts ``t`` from the first generated token.
    Prompts must all have the same length (no left padding). Puts ``model`` in eval mode.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()

    def start(self, input_ids: torch.LongTensor, **model_kwargs: Any) -> _StepState:
        b, t = input_ids.shape
        return _StepState(None, torch.zeros(b, device=input_ids.device), 0, t - 1)

    @torch.no_grad()
    def step(self, input_ids: torch.LongTensor, state: _StepState):
        new = input_ids[:, state.seen :]
        b, t = new.shape
        mask = context_mask_for(t, state.context_length, b, new.device, start=state.seen)
        log_probs, memory, log_beta = self.model.incremental(
            new, state.memory, state.log_beta, mask
        )
        return log_probs[:, -1], _StepState(
            memory, log_beta, input_ids.size(1), state.context_length
        )

    def reorder(self, state: _StepState, index: torch.LongTensor) -> _StepState:
        memory = self.model.reorder_memory(state.memory, index)
        return _StepState(
            memory, state.log_beta.index_select(0, index), state.seen, state.context_length
        )
