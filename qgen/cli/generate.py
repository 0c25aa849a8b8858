"""``qgen generate``: question-answer pairs for a file of passages, as SQuAD-schema JSON lines
(``--output``) or printed for reading; the shipped model and its saved settings by default."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter

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
from qgen.generation.dataset import (
    CHECKED_CANDIDATES,
    CHECKED_F1,
    CHECKED_ROUNDS,
    BlockResult,
    CorpusFilter,
    checked_candidates,
    iter_blocks,
    passage_of,
)
from qgen.io.corpus import Passage, count_passages
from qgen.io.journal import JournaledOutput, journal_path, read_journal
from qgen.modeling.pretrained import DEFAULT_READER, is_shipped_english

__all__ = ["add_arguments", "report", "run"]


def add_arguments(gen: argparse.ArgumentParser) -> None:
    """Arguments of ``qgen generate``."""
    gen.add_argument(
        "--model", default=None,
        help="a trained qgen model directory or a language code (en, zh: that language's shipped "
        "model); default: each passage goes to the shipped model of its language",
    )  # fmt: skip
    gen.add_argument(
        "--input", required=True,
        help="passages: .txt (one per line), .jsonl, .json (SQuAD), .parquet or .csv",
    )  # fmt: skip
    gen.add_argument(
        "--output", default=None,
        help="JSON-lines output (SQuAD schema); without it the pairs are printed for reading",
    )  # fmt: skip
    gen.add_argument(
        "--num_pairs", type=int, default=None, help="pairs per passage (default: saved, 3)"
    )
    gen.add_argument(
        "--batch_size", type=int, default=16, help="passage windows per decoding call (default 16)"
    )
    gen.add_argument(
        "--block_size", type=int, default=None,
        help="passages generated, written and journaled together; their windows are batched by "
        "length (default: 8 x --batch_size)",
    )  # fmt: skip
    gen.add_argument(
        "--max_source_length", type=int, default=None,
        help="source tokens per window (default: saved, 320)",
    )  # fmt: skip
    gen.add_argument(
        "--free_answers", action="store_true",
        help="sample answers without the passage-span constraint (Su's original decoding)",
    )  # fmt: skip
    add_answer_candidates_argument(gen)
    gen.add_argument(
        "--keep_non_span_answers", action="store_true",
        help="with --free_answers: keep answers that are not in the passage",
    )  # fmt: skip
    gen.add_argument(
        "--keep_duplicates", action="store_true",
        help="keep duplicate answers, duplicate and near-duplicate questions of a passage, and "
        "pairs repeated across the corpus (dropped by default, counted in the summary)",
    )  # fmt: skip
    gen.add_argument(
        "--near_duplicate_jaccard", type=float, default=0.8,
        help="word-set overlap from which two questions of a passage count as one (default 0.8)",
    )  # fmt: skip
    gen.add_argument(
        "--round_trip", action="store_const", const=True, default=None,
        help="keep a pair only when a reader, asked its question, finds its answer (Alberti et "
        "al. 2019; one extra forward pass per pair; see --round_trip_reader); questions are "
        "asked again where a passage is short of checked pairs (--candidates, --rounds). "
        "Default: on with the shipped English model (its reader checks), off with other models",
    )  # fmt: skip
    gen.add_argument(
        "--no_round_trip", dest="round_trip", action="store_const", const=False,
        help="no check: the generator's first --num_pairs pairs, as they come (faster; about "
        "half are wrong by the shipped reader, docs/results.md)",
    )  # fmt: skip
    gen.add_argument(
        "--round_trip_reader", default=None,
        help="with --round_trip: who reads the questions: an extractive QA model directory "
        "(AutoModelForQuestionAnswering, e.g. from scripts/train_reader.py), a shipped reader's "
        "name, or 'qag' (the generating model picks among the passage's answers, qgen.generation.round_trip; "
        f"default: the shipped reader {DEFAULT_READER} with the shipped model, else 'qag')",
    )  # fmt: skip
    gen.add_argument(
        "--candidates", type=int, default=None,
        help="over-generate: questions asked per passage window in the first round; the best "
        "--num_pairs that pass the filters and the round trip are kept (by the round trip's "
        "measure, then the score), and the summary counts passages that had fewer (default: "
        f"{CHECKED_CANDIDATES} x --num_pairs with the round trip, else --num_pairs)",
    )  # fmt: skip
    gen.add_argument(
        "--rounds",
        type=int,
        default=CHECKED_ROUNDS,
        help="with --round_trip: question rounds at most; each asks again for the passage "
        "windows still short of checked pairs, drawing new answers when a window's run out "
        f"(default {CHECKED_ROUNDS}; a round costs only where a passage is still short)",
    )
    gen.add_argument(
        "--max_decode_rows",
        type=int,
        default=None,
        help="the most rows one decoding call sees (passage windows times sampled answers or "
        "beams): bounds memory; larger batches are split (default 48)",
    )
    gen.add_argument(
        "--rank_answers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="order each window's sampled answers by their shape (SQuAD answer lengths, no "
        "clause or dangling function word) and their own score before asking questions "
        "(default: the model's saved setting)",
    )
    gen.add_argument(
        "--round_trip_f1", type=float, default=CHECKED_F1,
        help="with --round_trip: token F1 the reader's answer needs against the pair's "
        f"(default {CHECKED_F1}; 1: the same answer)",
    )  # fmt: skip
    add_precision_arguments(gen)
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    gen.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing output")
    gen.add_argument("--append", action="store_true", help="append to an existing output")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    add_decoding_arguments(gen)


QAG_READER = "qag"  # --round_trip_reader qag: the generating model reads its own questions


def _print_pairs(passage: Passage, records: list[dict], number: int) -> None:
    head = passage.context if len(passage.context) <= 100 else passage.context[:97] + "..."
    print(f"[{number}] {head}")
    for record in records:
        print(f"    Q: {record['question']}")
        print(f"    A: {record['answers']['text'][0]}")
    if not records:
        print("    (no pair)")
    print()


def _block(args: argparse.Namespace) -> int:
    """Passages per block: one `QAGenerator.generate` call, one journal entry."""
    return args.block_size if args.block_size is not None else 8 * args.batch_size


def _process_group() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` as torchrun and accelerate launch set them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world, int(os.environ.get("LOCAL_RANK", str(rank)))


def _fingerprint(args: argparse.Namespace, model_dir: str, settings: dict, world: int) -> dict:
    """What makes a rerun the same command (so that it may resume the output)."""
    from qgen.generation.config import QAGenerationConfig

    stat = os.stat(args.input)
    try:
        config = QAGenerationConfig(
            answer=settings["answer_config"], question=settings["question_config"],
            **{k: v for k, v in settings.items()
               if k not in ("answer_config", "question_config", "max_decode_rows")},
        )  # fmt: skip
    except ValueError as err:
        raise CLIError(f"bad generation setting: {err}") from None
    # the model's files as well as its path: a model retrained in place is another command
    model_files = {}
    for name in sorted(os.listdir(model_dir)):
        if name in ("config.json", "model.safetensors", "model.safetensors.index.json",
                    "pytorch_model.bin"):  # fmt: skip
            info = os.stat(os.path.join(model_dir, name))
            model_files[name] = [info.st_size, info.st_mtime_ns]
    return {
        "input": os.path.abspath(args.input), "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns, "model": os.path.abspath(model_dir),
        "model_files": model_files,
        "seed": args.seed, "batch_size": args.batch_size, "block_size": _block(args),
        "processes": world,
        "keep_non_span_answers": args.keep_non_span_answers, "settings": config.to_dict(),
        "filters": None if args.keep_duplicates else {"jaccard": args.near_duplicate_jaccard},
        "round_trip_f1": args.round_trip_f1 if args.round_trip else None,
        "precision": args.precision, "int8": args.int8,
        "round_trip_reader": args.round_trip_reader if args.round_trip else None,
        **({"candidates": args.candidates} if args.candidates is not None else {}),
        **({"rounds": args.rounds} if args.round_trip else {}),
        **({"max_decode_rows": settings["max_decode_rows"]} if "max_decode_rows" in settings
           else {}),
    }  # fmt: skip


def _shard(output: str, rank: int, world: int) -> str:
    return f"{output}.rank{rank}-of-{world}"


def _merge_shards(output: str, world: int, fingerprint: dict, n_blocks: int) -> None:
    """Rank 0, after its own shard: wait for the other processes' shards, then write the
    output in corpus order (block ``b`` is in shard ``b % world``) and remove the shards."""
    shards = [_shard(output, r, world) for r in range(world)]
    waited = False
    while True:
        journals = [read_journal(s) for s in shards]
        for r, journal in enumerate(journals):
            if journal is not None and journal.fingerprint != {**fingerprint, "rank": r}:
                raise CLIError(f"{shards[r]}: a shard of a different command; pass --overwrite")
        if all(j is not None and j.complete for j in journals):
            break
        if not waited:
            print("qgen generate: waiting for the other processes' shards", file=sys.stderr)
            waited = True
        time.sleep(1.0)
    missing = [b for b in range(n_blocks) if b not in journals[b % world].blocks]
    if missing:
        raise CLIError(f"{shards[missing[0] % world]}: block {missing[0]} is missing")
    merged = JournaledOutput(output, fingerprint, overwrite=True, append=False)
    corpus = None if fingerprint["filters"] is None else CorpusFilter()
    for b in range(n_blocks):
        entry = journals[b % world].blocks[b]
        with open(shards[b % world], "rb") as f:
            f.seek(entry["start"])
            lines = f.read(entry["end"] - entry["start"]).decode("utf-8").splitlines()
        block = BlockResult(
            [json.loads(line) for line in lines], entry["passages"], entry["empty"],
            Counter(entry.get("filtered", {})),
        )  # fmt: skip
        if corpus is not None:  # across the whole corpus, in corpus order, as one process does
            block = corpus(block)
        merged.write_block(
            b, block.records, block.passages, block.empty, dict(block.filtered),
            entry.get("languages"),
        )  # fmt: skip
    merged.finish()
    for s in shards:
        for path in (s, journal_path(s)):
            os.remove(path)


def run(args: argparse.Namespace) -> dict:
    """Run ``qgen generate``; returns the summary. The input (read once, as a stream), the
    output and the options are checked before the model loads.

    Under ``torchrun --nproc_per_node N -m qgen generate ...`` or ``accelerate launch -m qgen
    generate ...`` each process takes every N-th block of the corpus and writes its own shard
    (``qa.jsonl.rank<r>-of-<N>``); the first process then merges them in corpus order. Every
    block is sampled from ``seed + block index``, so the records do not depend on how many
    processes made them. A run killed at any moment resumes when run again (`output`).
    """
    if args.overwrite and args.append:
        raise CLIError("--overwrite and --append exclude each other")
    total = count_passages(args.input)  # every passage checked, ids unique
    rank, world, local_rank = _process_group()
    if world > 1 and args.output is None:
        raise CLIError("several processes need --output (each writes a shard of it)")
    if world > 1 and args.append:
        raise CLIError("--append works with one process only")
    if args.output is not None:
        parent = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(parent):
            raise CLIError(f"{args.output}: output directory {parent} does not exist")
    model_dir = resolve_model_dir(args.model)
    check_positive(
        args,
        "num_pairs",
        "batch_size",
        "block_size",
        "max_source_length",
        "candidates",
        "rounds",
        "max_decode_rows",
    )
    if args.round_trip_reader is not None and args.round_trip is False:
        raise CLIError("--round_trip_reader needs the round trip, not --no_round_trip")
    if args.round_trip is None:  # on by default with the shipped English model
        args.round_trip = args.round_trip_reader is not None or is_shipped_english(args.model)
    if args.round_trip:
        args.round_trip_reader = resolve_round_trip_reader(args.round_trip_reader, args.model)
    check_precision(args)
    check_answer_candidates(args)
    if not 0.0 <= args.round_trip_f1 <= 1.0:
        raise CLIError(f"--round_trip_f1 must be in [0, 1], got {args.round_trip_f1}")
    if not 0.0 < args.near_duplicate_jaccard <= 1.0:
        raise CLIError(
            f"--near_duplicate_jaccard must be in (0, 1], got {args.near_duplicate_jaccard}"
        )
    settings = generator_settings(args, model_dir)
    wanted = settings.get("num_pairs", 3)
    if args.round_trip and args.candidates is None:
        args.candidates = checked_candidates(wanted)
    if args.candidates is not None and args.candidates < wanted:
        raise CLIError(f"--candidates must be >= --num_pairs ({wanted}), got {args.candidates}")
    fingerprint = _fingerprint(args, model_dir, settings, world)

    n_blocks = -(-total // _block(args))
    mine = [b for b in range(n_blocks) if b % world == rank]
    out = None
    if args.output is not None:
        final = read_journal(args.output)
        ours = final is not None and final.fingerprint == fingerprint
        if world > 1 and ours and final.complete and not args.overwrite:
            out = JournaledOutput(args.output, fingerprint, overwrite=False, append=False)
        elif world > 1:
            # an output of this command that is not complete: a merge was cut short, redo it
            if rank == 0 and os.path.exists(args.output) and not (args.overwrite or ours):
                raise CLIError(f"{args.output}: output exists; pass --overwrite to replace it")
            out = JournaledOutput(
                _shard(args.output, rank, world), {**fingerprint, "rank": rank},
                overwrite=args.overwrite, append=False,
            )  # fmt: skip
        else:
            out = JournaledOutput(args.output, fingerprint, args.overwrite, args.append)
    start = time.perf_counter()
    this_run = {"passages": 0, "pairs": 0, "passages_without_pairs": 0, "filtered": {},
                "languages": {}}  # fmt: skip
    if out is None or not out.complete:
        this_run = _generate(args, model_dir, settings, out, total, mine, local_rank, world)
    if out is not None and world > 1 and rank == 0 and out.path != args.output:
        _merge_shards(args.output, world, fingerprint, n_blocks)
        out = JournaledOutput(args.output, fingerprint, overwrite=False, append=False)
    seconds = time.perf_counter() - start
    totals = out.totals() if out is not None else this_run
    rate = this_run["passages"] / seconds if seconds > 0 and this_run["passages"] else None
    return {
        **totals,
        "generated_this_run": this_run["passages"],
        "seconds": round(seconds, 2),
        "passages_per_second": round(rate, 3) if rate else None,
        "processes": world,
        "rank": rank,
        "model": model_dir,
        "round_trip_reader": args.round_trip_reader if args.round_trip else None,
        "output": args.output,
    }


def _generate(args, model_dir, settings, out, total, mine, local_rank, world) -> dict:
    """Generate the blocks ``mine`` that ``out`` does not hold yet, through the dataset chain
    (`qgen.generation.dataset`); returns this run's counts (passages, pairs kept, passages
    without a pair, filtered)."""
    import torch
    from tqdm.auto import tqdm

    from qgen.generation.dataset import DatasetChain, language_round_trip, shipped_router
    from qgen.generation.generator import QAGenerator
    from qgen.generation.round_trip import ReaderRoundTrip, SelfRoundTrip
    from qgen.modeling.pretrained import load_model

    device = args.device
    if device is None and torch.cuda.is_available() and not args.int8:
        device = f"cuda:{local_rank % torch.cuda.device_count()}"

    def build(directory: str, options: dict):
        model, tokenizer = load_model(directory, device or "cpu", int8=args.int8)
        try:
            return QAGenerator(
                model, tokenizer, seed=args.seed,
                autocast_dtype=args.precision, **options,
            )  # fmt: skip
        except ValueError as err:
            raise CLIError(str(err)) from None

    def check_of(generator):
        if not args.round_trip:
            return None
        if args.round_trip_reader == QAG_READER:
            return SelfRoundTrip.of(generator, args.round_trip_f1)
        # on the generator's device, one reader per process
        return ReaderRoundTrip(args.round_trip_reader, args.round_trip_f1, str(generator.device))

    if args.model is None:  # each passage to the shipped model of its language, loaded lazily
        generator = shipped_router(
            build=lambda directory: build(directory, generator_settings(args, directory)),
            on_missing=lambda message: print(f"qgen generate: warning: {message}", file=sys.stderr),
        )  # fmt: skip
        round_trip = None
        if args.round_trip:  # the English reader reads English; other languages check themselves
            round_trip = language_round_trip(generator, check_of, args.round_trip_f1)
    else:
        generator = build(model_dir, settings)
        round_trip = check_of(generator)
    chain = DatasetChain(
        generator, filters=not args.keep_duplicates,
        near_duplicate_jaccard=args.near_duplicate_jaccard, round_trip=round_trip,
        keep_non_span_answers=args.keep_non_span_answers, batch_size=args.batch_size,
        candidates=args.candidates, num_pairs=settings.get("num_pairs"), rounds=args.rounds,
    )  # fmt: skip
    done = out.done if out is not None else {}
    todo = set(mine) - set(done)
    size = _block(args)
    passages_of = {b: min(size, total - b * size) for b in mine}
    counts = {"passages": 0, "pairs": 0, "passages_without_pairs": 0, "filtered": Counter(),
              "languages": Counter()}  # fmt: skip
    # one process drops corpus-wide duplicates as it goes; several leave it to the merge
    corpus = None
    if not args.keep_duplicates and world == 1:
        corpus = CorpusFilter(out.records() if out is not None and done else ())
    with tqdm(
        total=sum(passages_of.values()), initial=sum(passages_of[b] for b in done if b in passages_of),
        unit="passage", disable=args.quiet or out is None, dynamic_ncols=True,
    ) as bar:  # fmt: skip
        for b, chunk in iter_blocks(args.input, size):
            if b not in todo:
                continue
            # each block its own stream: shard-independent
            result = chain.block(chunk, None if args.seed is None else args.seed + b)
            if corpus is not None:  # after numbering, exactly as the merge of several processes
                result = corpus(result)
            if out is None:
                shown: dict[str, list[dict]] = {}
                for record in result.records:
                    shown.setdefault(passage_of(record), []).append(record)
                for k, passage in enumerate(chunk):
                    _print_pairs(passage, shown.get(passage.id, []), b * size + k + 1)
            else:
                out.write_block(
                    b, result.records, len(chunk), result.empty, result.filtered, result.languages
                )
            counts["filtered"].update(result.filtered)
            counts["languages"].update(result.languages)
            counts["passages"] += len(chunk)
            counts["pairs"] += len(result.records)
            counts["passages_without_pairs"] += result.empty
            bar.update(len(chunk))
    if out is not None:
        out.finish()
    counts["filtered"] = dict(counts["filtered"])
    counts["languages"] = dict(counts["languages"])
    if args.model is not None:
        _warn_other_languages(generator, counts["languages"], args.model)
    return counts


def _warn_other_languages(generator, languages: dict[str, int], model: str) -> None:
    """One warning, with the count, when passages are in a language the model was not trained
    for (as its config says; a model that does not say gets none)."""
    from qgen.generation.language import model_language
    from qgen.modeling.pretrained import LANGUAGE_NAMES

    trained = model_language(generator.model)
    if trained is None:
        return
    other = {lang: n for lang, n in languages.items() if lang != trained}
    if other:
        total = sum(languages.values())
        said = ", ".join(
            f"{n} {LANGUAGE_NAMES.get(lang, lang)}" for lang, n in sorted(other.items())
        )
        print(
            f"qgen generate: warning: {sum(other.values())} of {total} passages ({said}) are not "
            f"in the language {model} was trained for ({LANGUAGE_NAMES.get(trained, trained)}); "
            "without --model each passage goes to the shipped model of its language",
            file=sys.stderr,
        )


def resolve_round_trip_reader(name: str | None, model: str | None) -> str:
    """Who reads the questions of ``--round_trip``: a checked reader directory, or ``"qag"``.

    Args:
        name: ``--round_trip_reader``: a directory, a shipped reader's name, ``"qag"`` or None
            (the shipped reader with the shipped English model: no ``--model``, ``--model en``
            or its directory; else ``"qag"``: a reader of another language or domain would not
            fit).
        model: ``--model``.

    Raises:
        CLIError: not a complete extractive QA model directory, naming the file.
    """
    from qgen.modeling.pretrained import (
        QGenModelError,
        check_model_dir,
        default_reader_path,
        shipped_or_path,
    )

    try:
        if name is None:
            return default_reader_path() if is_shipped_english(model) else QAG_READER
        if name == QAG_READER:
            return name
        path = shipped_or_path(name)
        check_model_dir(path, reader=True)
    except QGenModelError as err:
        raise CLIError(f"--round_trip_reader: {err}") from None
    return path


def report(summary: dict) -> None:
    """The closing line on stderr; with ``--output``, the summary as JSON on stdout. Only the
    first process of several reports (the others' counts are parts of it)."""
    if summary.get("rank", 0) != 0:
        return
    where = f"-> {summary['output']}" if summary["output"] else f"({summary['model']})"
    filtered = summary.get("filtered", {})
    short = filtered.get("passages_with_fewer_pairs")
    fewer = f", {short} with fewer than asked" if short else ""
    checked = ""
    reader = summary.get("round_trip_reader")
    if reader:
        name = os.path.basename(os.path.normpath(reader)) if reader != QAG_READER else "the model"
        checked = f"; checked by {name}, {filtered.get('round_trip', 0)} pairs dropped"
    print(
        f"qgen generate: {summary['pairs']} pairs for {summary['passages']} passages "
        f"({summary['passages_without_pairs']} without a pair{fewer}{checked}) in "
        f"{summary['seconds']} s {where}",
        file=sys.stderr,
    )
    if summary["output"]:
        print(json.dumps(summary))
