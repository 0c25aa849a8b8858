"""What the ``qgen`` subcommands share: the user-error type, the model directory check, number
checks, and the decoding options (a preset, and overrides of its answer and question settings)."""

from __future__ import annotations

import argparse
import dataclasses

from decoding import DecodingConfig
from qgen.generation.presets import MAX_TARGET_TOKENS, PRESETS

__all__ = [
    "CLIError",
    "add_answer_candidates_argument",
    "add_decoding_arguments",
    "add_precision_arguments",
    "check_answer_candidates",
    "check_positive",
    "check_precision",
    "configs_from_arguments",
    "generator_settings",
    "resolve_model_dir",
]


class CLIError(Exception):
    """A user error: printed as ``qgen: error: <message>`` with exit status 2."""


def check_positive(args: argparse.Namespace, *names: str) -> None:
    """Each option given among ``names`` must be >= 1."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise CLIError(f"--{name} must be >= 1, got {value}")


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision`` (``--bf16`` / ``--fp32``) and ``--int8``: the arithmetic of inference."""
    parser.add_argument(
        "--precision", choices=("auto", "bf16", "fp32"), default="auto",
        help="auto (default): bf16 autocast where the hardware computes bf16 natively (GPUs, "
        "CPUs with AVX512-BF16 or AMX), else fp32; bf16: always; fp32: never",
    )  # fmt: skip
    parser.add_argument(
        "--bf16", dest="precision", action="store_const", const="bf16",
        help="the same as --precision bf16",
    )  # fmt: skip
    parser.add_argument(
        "--fp32", dest="precision", action="store_const", const="fp32",
        help="the same as --precision fp32 (the model's own float32 arithmetic)",
    )  # fmt: skip
    parser.add_argument(
        "--int8", action="store_true",
        help="CPU: int8 linear layers (dynamic quantization; faster; quality in docs/results.md)",
    )  # fmt: skip


def add_answer_candidates_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--answer_candidates", type=float, default=None,
        help="answers sampled per window, as a multiple of --num_pairs (default: saved, 2.0; "
        "fewer is faster)",
    )  # fmt: skip


def check_answer_candidates(args: argparse.Namespace) -> None:
    value = args.answer_candidates
    if value is not None and value < 1:
        raise CLIError(f"--answer_candidates must be >= 1 (a multiple of --num_pairs), got {value}")


def check_precision(args: argparse.Namespace) -> None:
    """``--bf16`` and ``--int8`` are alternatives; ``--int8`` runs on CPUs only."""
    if args.precision == "bf16" and args.int8:
        raise CLIError("--bf16 and --int8 are alternatives: pick one")
    if args.int8 and (getattr(args, "device", None) or "cpu").startswith("cuda"):
        raise CLIError("--int8 runs on CPUs only (on a GPU use --bf16)")


def resolve_model_dir(path: str | None) -> str:
    """The model directory to load (the shipped model when ``path`` is None), checked.

    Raises:
        CLIError: a missing, damaged or non-qgen model directory, naming the file.
    """
    from qgen.modeling.pretrained import (
        QGenModelError,
        check_model_dir,
        default_model_path,
        shipped_or_path,
    )

    try:
        if path is None:
            return default_model_path()
        path = shipped_or_path(path)  # a directory, or a language code: en, zh
        check_model_dir(path)
    except QGenModelError as err:
        raise CLIError(str(err)) from None
    return path


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
        "--repetition_scope", default=None, choices=("sequence", "generated"),
        help="question: what the two options above look at: 'generated' (the question only: it "
        "may copy its passage, not repeat itself; the default of the shipped model) or "
        "'sequence' (the passage too, as HF generate does)",
    )  # fmt: skip
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
        "repetition_scope": args.repetition_scope,
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


def generator_settings(args: argparse.Namespace, model_dir: str) -> dict:
    """`QAGenerator` settings for a command: the model's saved ones, then each option given
    (the decoding options, ``--free_answers``, ``--answer_candidates``, ``--num_pairs``,
    ``--max_source_length``)."""
    from qgen.generation.config import generator_kwargs

    try:
        settings = generator_kwargs(model_dir)
        base = (settings["answer_config"], settings["question_config"])
        settings.update(configs_from_arguments(args, base))
    except ValueError as err:
        raise CLIError(f"bad decoding option: {err}") from None
    if args.free_answers:
        settings["constrain_answers"] = False
    if args.answer_candidates is not None:
        settings["answer_candidates"] = args.answer_candidates
    if getattr(args, "rank_answers", None) is not None:
        settings["rank_answers"] = args.rank_answers
    if getattr(args, "max_decode_rows", None) is not None:
        settings["max_decode_rows"] = args.max_decode_rows
    if args.num_pairs is not None:
        settings["num_pairs"] = args.num_pairs
    if args.max_source_length is not None:
        settings["max_source_length"] = args.max_source_length
        # a short window needs a shorter overlap than the saved one
        settings["window_stride"] = min(settings["window_stride"], args.max_source_length // 4)
    return settings
