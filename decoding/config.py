"""`DecodingConfig`: every knob of `decoding.decode`, validated once; `DecodingOutput`; and
`STRATEGIES`, the registry of the decoding loops that ``DecodingConfig.strategy`` names
(`decoding.decode` registers "greedy", "sample" and "beam")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from .registry import Registry

__all__ = ["DecodingConfig", "DecodingOutput", "SHORTCUTS", "STRATEGIES"]

# The DecodingConfig switches of the leaner decoding step (issue 21); each keeps the outputs.
SHORTCUTS = (
    "preallocate_cache",
    "fast_lm_head",
    "fast_body",
    "fast_top_p",
    "fast_sampling",
    "drop_finished",
)


@dataclass
class DecodingConfig:
    """How to decode.

    Greedy is a strategy, not temperature 0. Sampling applies its filters in a fixed order:
    temperature, then top-k, then top-p (the order of HF ``generate``). With
    ``consistent=True`` the top-k / top-p filters never remove an end token (Welleck et al.
    2020), so sampling from a model whose p(eos) has a positive lower bound terminates.
    """

    strategy: str = field(default="greedy", metadata={"help": "greedy | sample | beam"})
    num_beams: int = field(default=1, metadata={"help": "beams for strategy='beam'"})
    top_k: int = field(default=0, metadata={"help": "keep the k most likely tokens (0: off)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus mass in (0, 1] (1: off)"})
    temperature: float = field(default=1.0, metadata={"help": "> 0; divides the logits"})
    consistent: bool = field(
        default=False, metadata={"help": "top-k/top-p keep every end token (consistent sampling)"}
    )
    max_new_tokens: int = field(default=20, metadata={"help": "cap on generated tokens"})
    min_new_tokens: int = field(default=0, metadata={"help": "end tokens banned before this"})
    eos_token_id: int | list[int] | None = field(
        default=None, metadata={"help": "end token id(s); None: run to max_new_tokens"}
    )
    pad_token_id: int | None = field(
        default=None, metadata={"help": "filler after a row ends (default: first eos id)"}
    )
    length_penalty: float = field(
        default=1.0,
        metadata={"help": "beam: rank finished beams by sum_logp / len**length_penalty"},
    )
    early_stopping: bool | str = field(
        default=False, metadata={"help": "beam: True | False | 'never', as in HF generate"}
    )
    repetition_penalty: float = field(default=1.0, metadata={"help": "> 0; 1: off (CTRL)"})
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "ban repeated n-grams (0: off)"})
    repetition_scope: str = field(
        default="sequence",
        metadata={
            "help": "what repetition_penalty and no_repeat_ngram_size look at: 'sequence' (the "
            "prompt too, as HF generate does for decoder-only models) | 'generated' (the new "
            "tokens only: an output may copy its prompt but not repeat itself)"
        },
    )
    num_return_sequences: int = field(default=1, metadata={"help": "sequences per input row"})
    seed: int | None = field(default=None, metadata={"help": "seed for a private torch.Generator"})
    generator: torch.Generator | None = field(
        default=None, repr=False, metadata={"help": "explicit generator (overrides seed)"}
    )
    use_cache: bool = field(default=True, metadata={"help": "use the model's KV cache"})
    preallocate_cache: bool = field(
        default=True,
        metadata={
            "help": "HF models: a KV cache (and attention mask) allocated once and written in "
            "place (decoding.cache), not concatenated every step"
        },
    )
    fast_lm_head: bool = field(
        default=True,
        metadata={
            "help": "HF causal LMs: logits from the fastest layout of the output embedding "
            "(transposed copy, vocabulary slices) found bitwise equal to the model's head for "
            "the row count (decoding.lm_head; CPU float32)"
        },
    )
    fast_body: bool = field(
        default=True,
        metadata={
            "help": "HF causal LMs with a decoding.bodies entry (GPT-2): the decoding step as "
            "the same tensor operations without HF's module Python; compared bitwise with the "
            "model on the first step of every call"
        },
    )
    fast_top_p: bool = field(
        default=True,
        metadata={
            "help": "top-p cut without torch.sort (decoding.nucleus): HF's kept set, bitwise"
        },
    )
    fast_sampling: bool = field(
        default=True,
        metadata={
            "help": "draw torch.multinomial's tokens (same generator, same tokens) from a "
            "float64 uniform_ instead of its slower exponential_ (CPU)"
        },
    )
    drop_finished: bool = field(
        default=True,
        metadata={
            "help": "finished rows and beams of finished inputs leave the model's batch "
            "(their logits are not computed)"
        },
    )
    inference_mode: bool = field(
        default=True,
        metadata={
            "help": "run under torch.inference_mode (about 5% faster on CPU; outputs are cloned "
            "to normal tensors); False: torch.no_grad, for step models that cache tensors "
            "they later use with autograd. Under torch.autocast, inference_mode disables "
            "autocast's weight-cast cache, so every linear re-casts its float32 weight on "
            "every step (CPU bf16, a 48x384 @ 384x1536 linear: about 300 against 130 us): "
            "autocast users may want False"
        },
    )

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r} is not one of {STRATEGIES.names()}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got top_k={self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got top_p={self.top_p}")
        if self.temperature <= 0:
            raise ValueError(
                f"temperature must be > 0, got temperature={self.temperature} "
                "(for deterministic decoding use strategy='greedy')"
            )
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got num_beams={self.num_beams}")
        if self.max_new_tokens < 1:
            raise ValueError(
                f"max_new_tokens must be >= 1, got max_new_tokens={self.max_new_tokens}"
            )
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in [0, max_new_tokens={self.max_new_tokens}], "
                f"got min_new_tokens={self.min_new_tokens}"
            )
        if self.repetition_penalty <= 0:
            raise ValueError(
                f"repetition_penalty must be > 0, got repetition_penalty={self.repetition_penalty}"
            )
        if self.no_repeat_ngram_size < 0:
            raise ValueError(
                f"no_repeat_ngram_size must be >= 0, got no_repeat_ngram_size={self.no_repeat_ngram_size}"
            )
        if self.repetition_scope not in ("sequence", "generated"):
            raise ValueError(
                "repetition_scope must be 'sequence' or 'generated', "
                f"got repetition_scope={self.repetition_scope!r}"
            )
        if self.num_return_sequences < 1:
            raise ValueError(
                f"num_return_sequences must be >= 1, got num_return_sequences={self.num_return_sequences}"
            )
        if self.strategy == "beam" and self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"num_return_sequences={self.num_return_sequences} exceeds num_beams={self.num_beams}"
            )
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(
                f"early_stopping must be True, False or 'never', got early_stopping={self.early_stopping!r}"
            )

    @property
    def eos_token_ids(self) -> list[int]:
        """The end token ids as a list (empty when there is none)."""
        if self.eos_token_id is None:
            return []
        if isinstance(self.eos_token_id, int):
            return [self.eos_token_id]
        return list(self.eos_token_id)

    def without_shortcuts(self) -> DecodingConfig:
        """A copy with the speed shortcuts of issue 21 off (`SHORTCUTS`): the plain decoding
        step, as before them (the benchmark's "before" case)."""
        return replace(self, **dict.fromkeys(SHORTCUTS, False))

    @property
    def pad_id(self) -> int:
        """The filler after a row ends: ``pad_token_id``, else the first eos id, else 0."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        return self.eos_token_ids[0] if self.eos_token_ids else 0


@dataclass
class DecodingOutput:
    """What `decode` returns. Rows are grouped by input: row ``i * R + j`` is the ``j``-th of
    the ``R = num_return_sequences`` sequences for input row ``i``.

    Attributes:
        sequences: ``(N, T)`` prompt + generated tokens (for encoder-decoder models: the
            decoder ids, starting with the decoder start token), rows that ended early padded
            with ``pad_token_id``.
        scores: ``(N,)`` sum of the log-probabilities of the generated tokens (end token
            included), under the distribution the tokens were chosen from (after processors).
        normalized_scores: ``(N,)`` ``scores / lengths`` (per-token mean log-probability).
        lengths: ``(N,)`` number of generated tokens, the end token included.
        finished: ``(N,)`` bool, True where the row produced an end token.
    """

    sequences: torch.LongTensor
    scores: torch.Tensor
    normalized_scores: torch.Tensor
    lengths: torch.LongTensor
    finished: torch.BoolTensor


# name -> decoding loop, called as ``loop(step_model, sequences, state, config, make_processors)``
# and returning a `DecodingOutput` (see `decoding.search.greedy_search` for the signature)
STRATEGIES: Registry[Callable[..., DecodingOutput]] = Registry("decoding strategy")
