"""``qgen generate``: question-answer pairs for a file of passages, as SQuAD-schema JSON lines
(``--output``) or printed for reading; the shipped model and its saved settings by default."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..generation_config import generator_kwargs
from .inputs import Passage, read_passages
from .options import (
    CLIError,
    add_decoding_arguments,
    check_positive,
    configs_from_arguments,
    resolve_model_dir,
)

__all__ = ["add_arguments", "report", "run"]


def add_arguments(gen: argparse.ArgumentParser) -> None:
    """Arguments of ``qgen generate``."""
    gen.add_argument(
        "--model", default=None,
        help="a trained qgen model directory (default: the English model shipped with qgen)",
    )  # fmt: skip
    gen.add_argument(
        "--input", required=True, help="passages: .txt (one per line), .jsonl or .json"
    )
    gen.add_argument(
        "--output", default=None,
        help="JSON-lines output (SQuAD schema); without it the pairs are printed for reading",
    )  # fmt: skip
    gen.add_argument(
        "--num_pairs", type=int, default=None, help="pairs per passage (default: saved, 3)"
    )
    gen.add_argument("--batch_size", type=int, default=16, help="passages per batch (default 16)")
    gen.add_argument(
        "--max_source_length", type=int, default=None,
        help="source tokens per window (default: saved, 320)",
    )  # fmt: skip
    gen.add_argument(
        "--free_answers", action="store_true",
        help="sample answers without the passage-span constraint (Su's original decoding)",
    )  # fmt: skip
    gen.add_argument(
        "--keep_non_span_answers", action="store_true",
        help="with --free_answers: keep answers that are not in the passage",
    )  # fmt: skip
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    gen.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing output")
    gen.add_argument("--append", action="store_true", help="append to an existing output")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    add_decoding_arguments(gen)


def _records(passage: Passage, pairs: list[dict]) -> list[dict]:
    return [
        {
            "id": f"{passage.id}-{k}",
            "title": passage.title,
            "context": passage.context,
            "question": pair["question"],
            "answers": {"text": [pair["answer"]], "answer_start": [pair["answer_start"]]},
            "score": pair["score"],
        }
        for k, pair in enumerate(pairs)
    ]


def _check_output(path: str | None, overwrite: bool, append: bool) -> None:
    if overwrite and append:
        raise CLIError("--overwrite and --append exclude each other")
    if path is None:
        return
    if os.path.exists(path) and not (overwrite or append):
        raise CLIError(
            f"{path}: output exists; pass --overwrite to replace it or --append to add to it"
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CLIError(f"{path}: output directory {parent} does not exist")


def _print_pairs(passage: Passage, pairs: list[dict], number: int) -> None:
    head = passage.context if len(passage.context) <= 100 else passage.context[:97] + "..."
    print(f"[{number}] {head}")
    for pair in pairs:
        print(f"    Q: {pair['question']}")
        print(f"    A: {pair['answer']}")
    if not pairs:
        print("    (no pair)")
    print()


def run(args: argparse.Namespace) -> dict:
    """Run ``qgen generate``; returns the summary. Every input is checked before the model
    loads."""
    passages = read_passages(args.input)
    _check_output(args.output, args.overwrite, args.append)
    model_dir = resolve_model_dir(args.model)
    check_positive(args, "num_pairs", "batch_size", "max_source_length")

    try:
        settings = generator_kwargs(model_dir)
        base = (settings["answer_config"], settings["question_config"])
        settings.update(configs_from_arguments(args, base))
    except ValueError as err:
        raise CLIError(f"bad decoding option: {err}") from None
    if args.free_answers:
        settings["constrain_answers"] = False
    if args.num_pairs is not None:
        settings["num_pairs"] = args.num_pairs
    if args.max_source_length is not None:
        settings["max_source_length"] = args.max_source_length

    from tqdm.auto import tqdm

    from ..generation import QAGenerator
    from ..pretrained import load_model

    model, tokenizer = load_model(model_dir, args.device)
    try:
        generator = QAGenerator(model, tokenizer, seed=args.seed, **settings)
    except ValueError as err:
        raise CLIError(str(err)) from None
    out = open(args.output, "a" if args.append else "w", encoding="utf-8") if args.output else None
    written = empty = 0
    start = time.perf_counter()
    quiet = args.quiet or out is None
    try:
        with tqdm(total=len(passages), unit="passage", disable=quiet) as bar:
            for b in range(0, len(passages), args.batch_size):
                chunk = passages[b : b + args.batch_size]
                results = generator.generate(
                    [p.context for p in chunk],
                    batch_size=args.batch_size,
                    keep_non_span_answers=args.keep_non_span_answers,
                )
                for k, (passage, pairs) in enumerate(zip(chunk, results)):
                    if out is None:
                        _print_pairs(passage, pairs, b + k + 1)
                    for record in _records(passage, pairs):
                        if out is not None:
                            out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    written += len(pairs)
                    empty += not pairs
                if out is not None:
                    out.flush()
                bar.update(len(chunk))
    finally:
        if out is not None:
            out.close()
    seconds = time.perf_counter() - start
    return {
        "passages": len(passages),
        "pairs": written,
        "passages_without_pairs": empty,
        "seconds": round(seconds, 2),
        "passages_per_second": round(len(passages) / seconds, 3) if seconds > 0 else None,
        "model": model_dir,
        "output": args.output,
    }


def report(summary: dict) -> None:
    """The closing line on stderr; with ``--output``, the summary as JSON on stdout."""
    where = f"-> {summary['output']}" if summary["output"] else f"({summary['model']})"
    print(
        f"qgen generate: {summary['pairs']} pairs for {summary['passages']} passages "
        f"({summary['passages_without_pairs']} without a pair) in {summary['seconds']} s {where}",
        file=sys.stderr,
    )
    if summary["output"]:
        print(json.dumps(summary))
