"""`decode`: one entry point for greedy search, sampling and beam search.

The strategy is looked up by name in `decoding.STRATEGIES` (`decoding.config`; a new loop is
added with ``STRATEGIES.register(name, loop)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from .adapters import as_step_model
from .beam import beam_search
from .config import STRATEGIES, DecodingConfig, DecodingOutput
from .processors import (
    ConsistentTopK,
    ConsistentTopP,
    TemperatureProcessor,
    build_processors,
)
from .rows import LiveRows
from .search import greedy_search, sample_search

__all__ = ["decode", "generate_kwargs"]

STRATEGIES.register("greedy", greedy_search)
STRATEGIES.register("sample", sample_search)
STRATEGIES.register("beam", beam_search)


def decode(
    model: Any,
    input_ids: torch.LongTensor,
    config: DecodingConfig | None = None,
    *,
    logits_processor: Sequence[LogitsProcessor] = (),
    **model_kwargs: Any,
) -> DecodingOutput:
    """Decode continuations of ``input_ids`` with ``model``.

    Args:
        model: an HF causal LM (``GPT2LMHeadModel`` ...), an HF encoder-decoder
            (``BartForConditionalGeneration`` ...) or any `decoding.StepModel`.
        input_ids: ``(B, T0)`` prompt ids, left-padded (for encoder-decoders: the source ids).
        config: how to decode (default: greedy, 20 new tokens).
        logits_processor: extra `LogitsProcessor`s (e.g. a legal-move mask); they run after
            the built-in constraints and before temperature / top-k / top-p, as in HF.
        **model_kwargs: passed to the model's ``start`` (e.g. ``attention_mask`` with 0 on
            the left padding).

    Returns:
        A `DecodingOutput` with ``B * num_return_sequences`` rows grouped by input row.
    """
    config = config or DecodingConfig()
    _check_inputs(input_ids, model_kwargs.get("attention_mask"))
    if not config.inference_mode:
        with torch.no_grad():
            return _decode(model, input_ids, config, logits_processor, model_kwargs)
    with torch.inference_mode():
        out = _decode(model, input_ids, config, logits_processor, model_kwargs)
    # Outside inference mode a clone is a normal tensor, usable with autograd later.
    return DecodingOutput(**{f.name: getattr(out, f.name).clone() for f in fields(out)})


def _decode(
    model: Any,
    input_ids: torch.LongTensor,
    config: DecodingConfig,
    logits_processor: Sequence[LogitsProcessor],
    model_kwargs: dict[str, Any],
) -> DecodingOutput:
    strategy = STRATEGIES[config.strategy]  # an unknown name raises, naming the known ones
    step_model = as_step_model(
        model,
        use_cache=config.use_cache,
        max_new_tokens=config.max_new_tokens if config.preallocate_cache else None,
        fast_lm_head=config.fast_lm_head,
        fast_body=config.fast_body,
    )
    initial = getattr(step_model, "initial_sequence", None)
    if config.drop_finished:
        step_model = LiveRows(step_model)
    sequences = initial(input_ids) if initial is not None else input_ids
    state = step_model.start(input_ids, **model_kwargs)

    expand = config.num_beams if config.strategy == "beam" else config.num_return_sequences
    if expand > 1:
        index = torch.arange(sequences.shape[0], device=sequences.device).repeat_interleave(expand)
        state = step_model.reorder(state, index)
        sequences = sequences.index_select(0, index)
    else:
        index = None

    pad_lengths = _left_pad_lengths(model_kwargs.get("attention_mask"), initial is None, index)
    prompt_len = sequences.shape[1]

    def make_processors(vocab_size: int) -> LogitsProcessorList:
        return build_processors(config, vocab_size, prompt_len, pad_lengths, logits_processor)

    return strategy(step_model, sequences, state, config, make_processors)


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ValueError(
            f"input_ids must have shape (B, T) with T >= 1, got input_ids.shape={tuple(input_ids.shape)}"
        )
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask.shape={tuple(attention_mask.shape)} differs from "
            f"input_ids.shape={tuple(input_ids.shape)}"
        )


def _left_pad_lengths(
    attention_mask: torch.Tensor | None, mask_is_on_sequence: bool, index: torch.Tensor | None
) -> torch.Tensor | None:
    """Left-padding length per (expanded) row, so the repetition penalty skips pad tokens."""
    if attention_mask is None or not mask_is_on_sequence or bool(attention_mask.all()):
        return None
    lengths = (attention_mask != 0).int().argmax(dim=1)
    return lengths if index is None else lengths.index_select(0, index)


def generate_kwargs(config: DecodingConfig) -> dict[str, Any]:
    """Keyword arguments that make HF ``model.generate`` decode like ``decode(config)``.

    HF's own default warpers are switched off (``top_k=0``, ``top_p=1.0``,
    ``temperature=1.0``), as are forced bos/eos tokens a model's ``generation_config`` may
    set; for ``consistent=True`` the temperature and consistent top-k/top-p
    go in ``logits_processor`` in our order, so they are the only filters.

    Raises:
        ValueError: ``repetition_scope='generated'`` with a repetition control on: HF
            ``generate`` has no such scope (its controls see the whole sequence).
    """
    if config.repetition_scope == "generated" and (
        config.repetition_penalty != 1.0 or config.no_repeat_ngram_size > 0
    ):
        raise ValueError(
            "repetition_scope='generated' has no HF generate equivalent (its repetition_penalty "
            "and no_repeat_ngram_size see the prompt too): decode with decoding.decode, or use "
            "repetition_scope='sequence'"
        )
    sample = config.strategy == "sample"
    kwargs: dict[str, Any] = {
        "do_sample": sample,
        "num_beams": config.num_beams if config.strategy == "beam" else 1,
        "max_new_tokens": config.max_new_tokens,
        "min_new_tokens": config.min_new_tokens,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_id,
        "length_penalty": config.length_penalty,
        "early_stopping": config.early_stopping,
        "repetition_penalty": config.repetition_penalty,
        "no_repeat_ngram_size": config.no_repeat_ngram_size,
        "num_return_sequences": config.num_return_sequences,
        "use_cache": config.use_cache,
        # Neutralise processors a model's generation_config may switch on (BART: forced eos).
        "min_length": 0,
        "forced_bos_token_id": None,
        "forced_eos_token_id": None,
    }
    if not sample:
        return kwargs
    kwargs.update(top_k=0, top_p=1.0, temperature=1.0)
    eos = config.eos_token_ids
    if config.consistent and eos:
        processors = LogitsProcessorList()
        if config.temperature != 1.0:
            processors.append(TemperatureProcessor(config.temperature))
        if config.top_k > 0:
            processors.append(ConsistentTopK(config.top_k, eos_token_id=eos))
        if config.top_p < 1.0:
            processors.append(ConsistentTopP(config.top_p, eos_token_id=eos))
        kwargs["logits_processor"] = processors
    else:
        kwargs.update(top_k=config.top_k, top_p=config.top_p, temperature=config.temperature)
    return kwargs
