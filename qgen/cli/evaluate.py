"""``qgen evaluate``: score a qgen model on SQuAD-format data (`qgen.evaluation.metrics.evaluate_model`);
the shipped model and its saved settings by default."""

from __future__ import annotations

import argparse
import json
from typing import Any

from qgen.cli.options import (
    CLIError,
    add_answer_candidates_argument,
    add_decoding_arguments,
    add_precision_arguments,
    check_answer_candidates,
    check_positive,
    check_precision,
    generator_settings,
    resolve_model_dir,
)
from qgen.evaluation.metrics import TOKENIZE_MODES

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qgen evaluate``."""
    parser.add_argument(
        "--model",
        default=None,
        help="qgen model directory or language code (default: the shipped model of the data's "
        "language, by the script of most of its passages)",
    )
    parser.add_argument(
        "--input", required=True, help="SQuAD-format JSON/JSONL with gold questions"
    )
    parser.add_argument("--task", default="qg", choices=("qg", "sentence-qg", "qag"))
    parser.add_argument("--max_samples", type=int, default=None, help="score the first N sources")
    parser.add_argument("--output", default=None, help="write predictions as JSON lines")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--num_pairs", type=int, default=None, help="qag: pairs per passage (default: saved, 3)"
    )
    parser.add_argument(
        "--tokenize", default="auto", choices=("auto", *TOKENIZE_MODES),
        help="tokens for BLEU/METEOR/ROUGE-L and answer EM/F1: word (English), char (each CJK "
        "character a token, Latin words and numbers whole); auto: char when more than half of "
        "the letters of the gold questions and passages are CJK (the report says which)",
    )  # fmt: skip
    parser.add_argument("--no_meteor", action="store_true", help="skip METEOR (needs Java)")
    parser.add_argument(
        "--sample_seed", type=int, default=None, help="score a random subset (seeded) of sources"
    )
    parser.add_argument(
        "--max_source_length", type=int, default=None,
        help="source tokens per window (default: saved, 320)",
    )  # fmt: skip
    parser.add_argument(
        "--free_answers", action="store_true", help="qag: answers without the span constraint"
    )
    add_answer_candidates_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of answer sampling (qag)")
    add_precision_arguments(parser)
    add_decoding_arguments(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``qgen evaluate`` and print the metrics as one JSON object (for ``--task qg`` with
    the copy baseline's beside them, under ``copy_baseline``)."""
    from transformers import set_seed

    from qgen.evaluation.metrics import evaluate_model

    set_seed(args.seed)
    language = None
    if args.model is None:  # the shipped model of the data's language
        language = _data_language(args.input)
    model_dir = resolve_model_dir(args.model if language is None else language)
    check_positive(args, "num_pairs", "max_samples", "batch_size", "max_source_length")
    check_precision(args)
    check_answer_candidates(args)
    kwargs = generator_settings(args, model_dir)
    num_pairs = kwargs.pop("num_pairs")  # evaluate_model's own argument
    kwargs["autocast_dtype"] = args.precision
    try:
        results = evaluate_model(
            model_dir,
            args.input,
            task=args.task,
            max_samples=args.max_samples,
            batch_size=args.batch_size,
            num_pairs=num_pairs,
            tokenize=args.tokenize,
            meteor=not args.no_meteor,
            output=args.output,
            sample_seed=args.sample_seed,
            seed=args.seed,
            int8=args.int8,
            **kwargs,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    if language is not None:
        results = {"routed_language": language, **results}
    print(json.dumps(results, indent=1, ensure_ascii=False))
    return results


def _data_language(path: str) -> str:
    """The language of most of a SQuAD-format file's passages (`detect_language`; the first
    1,000 distinct ones), which picks the shipped model when ``--model`` is not given."""
    from collections import Counter

    from qgen.generation.language import detect_language
    from qgen.io.squad import load_squad

    contexts = dict.fromkeys(load_squad(path)["context"])
    votes = Counter(detect_language(c) for c in list(contexts)[:1000])
    return votes.most_common(1)[0][0] if votes else "en"
