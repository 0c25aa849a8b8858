"""Decoding settings of the two generation stages and Su's published presets (Su 2020,
https://kexue.fm/archives/7630).

Stage 1 (the answer) defaults to consistent nucleus sampling, top-p 0.95; stage 2 (the question)
to beam search with 5 beams and no length normalisation. ``PRESETS`` names these defaults and
Su's two published settings: ``"su-2020-07"`` (the post's examples: top-k 5 sampling, beam 5) and
``"su-2020-11"`` (the script from Nov 2020 on: top-p 0.95, greedy). Used by `qgen.generation.generator`.
"""

from __future__ import annotations

from typing import Any

from decoding import DecodingConfig

__all__ = [
    "MAX_TARGET_TOKENS",
    "PRESETS",
    "default_answer_config",
    "default_question_config",
]

MAX_TARGET_TOKENS = 64  # Su's maxlen for both stages


def default_answer_config(**overrides: Any) -> DecodingConfig:
    """Stage 1: consistent nucleus sampling, top-p 0.95, at least one token, at most 64."""
    kwargs = dict(
        strategy="sample",
        top_p=0.95,
        consistent=True,
        min_new_tokens=1,
        max_new_tokens=MAX_TARGET_TOKENS,
    )
    return DecodingConfig(**{**kwargs, **overrides})


def default_question_config(**overrides: Any) -> DecodingConfig:
    """Stage 2: beam search with 5 beams and no length normalisation (``length_penalty=0``);
    no word-piece trigram twice in a question (``no_repeat_ngram_size=3``), counted in the
    question only (``repetition_scope='generated'``: it may copy its passage)."""
    kwargs = dict(
        strategy="beam",
        num_beams=5,
        length_penalty=0.0,
        no_repeat_ngram_size=3,
        repetition_scope="generated",
        min_new_tokens=1,
        max_new_tokens=MAX_TARGET_TOKENS,
    )
    return DecodingConfig(**{**kwargs, **overrides})


PRESETS: dict[str, tuple[DecodingConfig, DecodingConfig]] = {
    "default": (default_answer_config(), default_question_config()),
    # The version the post shipped with (its examples): random_sample(topk=5), beam_search(topk=5).
    "su-2020-07": (
        default_answer_config(top_p=1.0, top_k=5, consistent=False),
        default_question_config(no_repeat_ngram_size=0),
    ),
    # bert4keras HEAD from 2020-11-20: random_sample(topp=0.95), beam_search(topk=1) = greedy.
    "su-2020-11": (
        default_answer_config(consistent=False),
        default_question_config(strategy="greedy", num_beams=1, no_repeat_ngram_size=0),
    ),
}
