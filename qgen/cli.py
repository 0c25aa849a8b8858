"""The ``qgen`` command.

``qgen generate --input passages.{txt,jsonl,json} --output qa.jsonl`` writes one SQuAD-schema
JSON line per generated pair (``id, title, context, question, answers: {text, answer_start}``
plus ``score``), loadable with ``datasets.load_dataset("json", data_files=...)``. Without
``--output`` the pairs are printed for reading. Without ``--model`` the English model that ships
with qgen is used, with the decoding settings saved beside it; options override them.

Inputs:

* ``.txt``: one passage per non-empty line;
* ``.jsonl``: one object per line with ``context`` (or ``passage`` / ``text``) and optional ``id``
  and ``title``;
* ``.json``: SQuAD format (``{"data": [{"title", "paragraphs": [{"context"}]}]}``, questions are
  ignored) or a list of such objects or strings.

The whole input is checked before the model is loaded; errors name the file, line and field.
The output is written and flushed batch by batch; an existing output is never truncated
(``--overwrite`` replaces it, ``--append`` adds to it).

``qgen evaluate ...`` scores a trained model (see `qgen.evaluation`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CLIError", "Passage", "main", "read_passages", "resolve_model_dir"]

PASSAGE_FIELDS = ("context", "passage", "text")


class CLIError(Exception):
    """A user error: printed as ``qgen: error: <message>`` with exit status 2."""


@dataclass
class Passage:
    id: str
    title: str
    context: str


def _passage(raw, where: str, default_id: str) -> Passage:
    if isinstance(raw, str):
        raw = {"context": raw}
    if not isinstance(raw, dict):
        raise CLIError(f"{where}: expected a JSON object or string, got {type(raw).__name__}")
    field = next((f for f in PASSAGE_FIELDS if f in raw), None)
    if field is None:
        raise CLIError(f"{where}: missing field 'context' (or 'passage' / 'text')")
    text = raw[field]
    if not isinstance(text, str):
        raise CLIError(f"{where}: field {field!r} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise CLIError(f"{where}: field {field!r} is an empty passage")
    title = raw.get("title", "")
    return Passage(str(raw.get("id", default_id)), "" if title is None else str(title), text)


def read_passages(path: str) -> list[Passage]:
    """Read and validate passages from a ``.txt``, ``.jsonl`` or ``.json`` file.

    Raises:
        CLIError: naming the file, line (or JSON path) and field of the first problem.
    """
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{path}: cannot read input file (no such file)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"{path}: cannot read input file ({err})") from None
    stem = p.stem
    suffix = p.suffix.lower()
    passages: list[Passage] = []
    if suffix == ".txt":
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                passages.append(Passage(f"{stem}-{n}", "", line.strip()))
    elif suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise CLIError(f"{path}: line {n}: malformed JSON ({err.msg})") from None
            passages.append(_passage(raw, f"{path}: line {n}", f"{stem}-{n}"))
    elif suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise CLIError(f"{path}: line {err.lineno}: malformed JSON ({err.msg})") from None
        passages = _json_passages(obj, path, stem)
    else:
        raise CLIError(f"{path}: unknown input type {suffix!r} (use .txt, .jsonl or .json)")
    if not passages:
        raise CLIError(f"{path}: no passages found")
    return passages


def _json_passages(obj, path: str, stem: str) -> list[Passage]:
    if isinstance(obj, list):
        return [_passage(raw, f"{path}: [{i}]", f"{stem}-{i}") for i, raw in enumerate(obj)]
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise CLIError(f"{path}: expected SQuAD format (field 'data') or a list of passages")
    passages = []
    for a, article in enumerate(obj["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise CLIError(f"{path}: data[{a}]: missing field 'paragraphs'")
        for k, para in enumerate(paragraphs):
            raw = {"title": article.get("title", ""), **para} if isinstance(para, dict) else para
            passages.append(_passage(raw, f"{path}: data[{a}].paragraphs[{k}]", f"{stem}-{a}-{k}"))
    return passages


def resolve_model_dir(path: str | None) -> str:
    """The model directory to load (the shipped model when ``path`` is None), checked.

    Raises:
        CLIError: a missing, damaged or non-qgen model directory, naming the file.
    """
    from .pretrained import QGenModelError, check_model_dir, default_model_path

    try:
        if path is None:
            return default_model_path()
        check_model_dir(path)
    except QGenModelError as err:
        raise CLIError(str(err)) from None
    return path


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


def generate_command(args: argparse.Namespace) -> dict:
    """Run ``qgen generate``; returns the summary. Every input is checked before the model
    loads."""
    passages = read_passages(args.input)
    _check_output(args.output, args.overwrite, args.append)
    model_dir = resolve_model_dir(args.model)
    for name in ("num_pairs", "batch_size", "max_source_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name} must be >= 1, got {value}")
    from .generation_config import generator_kwargs
    from .presets import configs_from_arguments

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

    from .generation import QAGenerator
    from .pretrained import load_model

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


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qgen", description="Question-answer pair generation.")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate question-answer pairs for passages")
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
    from .presets import add_decoding_arguments

    add_decoding_arguments(gen)

    ev = sub.add_parser(
        "evaluate", help="score a trained model on SQuAD-format data (see qgen.evaluation)"
    )
    if list(argv[:1]) == ["evaluate"]:  # import the scorers only when they are used
        from . import evaluation

        evaluation.add_cli_arguments(ev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qgen`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    from .data import QGenDataError
    from .pretrained import QGenModelError

    try:
        if args.command == "generate":
            summary = generate_command(args)
            where = f"-> {summary['output']}" if summary["output"] else f"({summary['model']})"
            print(
                f"qgen generate: {summary['pairs']} pairs for {summary['passages']} passages "
                f"({summary['passages_without_pairs']} without a pair) in {summary['seconds']} s "
                f"{where}",
                file=sys.stderr,
            )
            if summary["output"]:
                print(json.dumps(summary))
        else:
            from . import evaluation

            evaluation.cli_main(args)
    except (CLIError, QGenDataError, QGenModelError, FileNotFoundError) as err:
        print(f"qgen: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
