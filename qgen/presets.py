"""Decoding settings of the two generation stages and Su's published presets (Su 2020, post 7630).

Stage 1 (the answer) defaults to consistent nucleus sampling, top-p 0.95; stage 2 (the question)
to beam search with 5 beams and no length normalisation. ``PRESETS`` names these defaults and
Su's two published settings: ``"su-2020-07"`` (the post's examples: top-k 5 sampling, beam 5) and
``"su-2020-11"`` (the script from Nov 2020 on: top-p 0.95, greedy). Used by `qgen.generation`.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from decoding import DecodingConfig

__all__ = [
    "MAX_TARGET_TOKENS",
    "PRESETS",
    "add_decoding_arguments",
    "configs_from_arguments",
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
    """Stage 2: beam search with 5 beams and no length normalisation (``length_penalty=0``)."""
    kwargs = dict(
        strategy="beam",
        num_beams=5,
        length_penalty=0.0,
        min_new_tokens=1,
        max_new_tokens=MAX_TARGET_TOKENS,
    )
    return DecodingConfig(**{**kwargs, **overrides})


PRESETS: dict[str, tuple[DecodingConfig, DecodingConfig]] = {
    "default": (default_answer_config(), default_question_config()),
    # The version the post shipped with (its examples): random_sample(topk=5), beam_search(topk=5).
    "su-2020-07": (
        default_answer_config(top_p=1.0, top_k=5, consistent=False),
        default_question_config(),
    ),
    # bert4keras HEAD from 2020-11-20: random_sample(topp=0.95), beam_search(topk=1) = greedy.
    "su-2020-11": (
        default_answer_config(consistent=False),
        default_question_config(strategy="greedy", num_beams=1),
    ),
}


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The decoding options shared by ``qgen generate`` and ``qgen evaluate``: a preset, and
    overrides of its answer (stage 1) and question (stage 2) settings."""
    group = parser.add_argument_group("decoding (stage 1 samples the answer, stage 2 the question)")
    group.add_argument(
        "--preset", default=None, choices=sorted(PRESETS),
        help="both stages' settings (default: the model's saved qa_generation_config.json, "
        "else 'default')",
    )  # fmt: skip
    group.add_argument("--answer_top_p", type=float, default=None, help="answer: nucleus mass")
    group.add_argument("--answer_top_k", type=int, default=None, help="answer: top-k (0: off)")
    group.add_argument(
        "--max_answer_tokens", type=int, default=None,
        help=f"cap on answer tokens (default {MAX_TARGET_TOKENS})",
    )  # fmt: skip
    group.add_argument(
        "--num_beams", type=int, default=None, help="question: beams, 1 = greedy (preset: 5)"
    )
    group.add_argument(
        "--no_repeat_ngram_size", type=int, default=None, help="question: ban repeated n-grams"
    )
    group.add_argument(
        "--repetition_penalty", type=float, default=None, help="question: CTRL penalty (1: off)"
    )
    group.add_argument(
        "--length_penalty", type=float, default=None,
        help="question: beam score / length**penalty (preset: 0, no normalisation)",
    )  # fmt: skip
    group.add_argument(
        "--max_question_tokens", type=int, default=None,
        help=f"cap on question tokens (default {MAX_TARGET_TOKENS})",
    )  # fmt: skip


def configs_from_arguments(
    args: argparse.Namespace, base: tuple[DecodingConfig, DecodingConfig] | None = None
) -> dict[str, DecodingConfig]:
    """``answer_config`` and ``question_config`` for `QAGenerator` from the options of
    `add_decoding_arguments`: the preset's (without ``--preset``: ``base``, the model's saved
    settings, else the default preset), with every option given replacing its field.

    Raises:
        ValueError: an option value the decoder rejects (naming the option's field).
    """
    if args.preset is not None:
        answer, question = PRESETS[args.preset]
    else:
        answer, question = base or PRESETS["default"]
    answer_fields = {
        "top_p": args.answer_top_p,
        "top_k": args.answer_top_k,
        "max_new_tokens": args.max_answer_tokens,
    }
    question_fields = {
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "repetition_penalty": args.repetition_penalty,
        "length_penalty": args.length_penalty,
        "max_new_tokens": args.max_question_tokens,
    }
    if args.num_beams is not None:
        question_fields["num_beams"] = args.num_beams
        question_fields["strategy"] = "beam" if args.num_beams > 1 else "greedy"
    answer_fields = {k: v for k, v in answer_fields.items() if v is not None}
    question_fields = {k: v for k, v in question_fields.items() if v is not None}
    return {
        "answer_config": dataclasses.replace(answer, **answer_fields),
        "question_config": dataclasses.replace(question, **question_fields),
    }
