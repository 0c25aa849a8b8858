"""The dataset job: passages in, a filtered QA dataset (SQuAD schema) out.

One chain over one record type, the same for the CLI (``qgen generate``), the Python API and the
studies::

    passages -> QAGenerator.generate -> per-passage duplicates -> round trip -> SQuAD records
             -> corpus duplicates -> sink

* per-passage duplicates (`filter_passage_pairs`): the same answer twice, the same or nearly the
  same question (word-set Jaccard >= ``near_duplicate_jaccard``), best score kept;
* the round trip (`qgen.generation.round_trip.RoundTrip`): a reader answers each question and
  the pairs whose answer it finds are kept, each with its measure (``round_trip_f1`` or
  ``round_trip_margin``), so users can rank;
* corpus duplicates (`CorpusDedup`): a question + answer kept before anywhere in the corpus.

In three lines::

    import qgen
    summary = qgen.generate_dataset("passages.txt", sink="qa.jsonl", round_trip="shipped")
    print(summary)  # {'passages': ..., 'pairs': ..., 'passages_without_pairs': ..., 'filtered': {...}}

`DatasetChain.block` runs the per-block part (generation to records) and `CorpusFilter` the
corpus-wide part, so that the CLI can shard blocks over processes, journal them and resume, and
still drop corpus duplicates in corpus order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qgen.generation.filters import CorpusDedup, filter_passage_pairs
from qgen.generation.language import LanguageRouter, detect_language
from qgen.generation.round_trip import ReaderRoundTrip, RoundTrip, SelfRoundTrip
from qgen.io.corpus import Passage, iter_passages

__all__ = [
    "CHECKED_CANDIDATES",
    "CHECKED_F1",
    "CHECKED_ROUNDS",
    "BlockResult",
    "auto_round_trip",
    "checked_candidates",
    "checked_chain",
    "CorpusFilter",
    "DatasetChain",
    "generate_dataset",
    "iter_blocks",
    "iter_dataset",
    "passage_of",
    "resolve_round_trip",
    "language_round_trip",
    "shipped_router",
    "to_records",
]

# the measures a round trip writes with each record, rounded for the output
_ROUND_TRIP_FIELDS = ("round_trip_margin", "round_trip_f1")


def to_records(passage: Passage, pairs: list[dict], language: str | None = None) -> list[dict]:
    """SQuAD-schema records (``id, title, context, question, answers{text, answer_start}``)
    for one passage's pairs, numbered ``<passage id>-<k>``, with each pair's ``score``, its
    round-trip measure when it has one, and the passage's ``language`` when given."""
    records = []
    for k, pair in enumerate(pairs):
        record = {
            "id": f"{passage.id}-{k}",
            "title": passage.title,
            "context": passage.context,
            "question": pair["question"],
            "answers": {"text": [pair["answer"]], "answer_start": [pair["answer_start"]]},
            "score": pair["score"],
        }
        for key in _ROUND_TRIP_FIELDS:
            if key in pair:
                value = pair[key]
                # four decimals are plenty in the output
                record[key] = (
                    round(value, 4) if key == "round_trip_margin" and value is not None else value
                )
        if language is not None:
            record["language"] = language
        records.append(record)
    return records


def passage_of(record: dict) -> str:
    """The passage id of a record (record ids are ``<passage id>-<k>``)."""
    return str(record["id"]).rsplit("-", 1)[0]


@dataclass
class BlockResult:
    """One block of passages through the chain: its records and what happened to it."""

    records: list[dict]
    passages: int
    empty: int  # passages without a record
    filtered: Counter = field(default_factory=Counter)
    pairs: list[list[dict]] = field(default_factory=list)  # per passage, before numbering
    languages: Counter = field(default_factory=Counter)  # passages per language


class DatasetChain:
    """Generate for a block of passages and post-process the pairs, per passage.

    Args:
        generator: a `QAGenerator`.
        filters: drop each passage's duplicate answers and (near-)duplicate questions.
        near_duplicate_jaccard: word-set overlap from which two questions count as one.
        round_trip: a `RoundTrip` (or None: no check).
        keep_non_span_answers: keep unconstrained answers that are not passage spans.
        batch_size: passage windows per decoding call.
        candidates: over-generate: the first question round asks this many per passage
            window (>= ``num_pairs``). With a round trip, the check runs inside generation
            (`QAGenerator.generate`'s ``check``): only pairs that pass the filters and the
            round trip count, a window short of ``num_pairs`` asks again (up to ``rounds``),
            and the best ``num_pairs`` that pass are kept (ranked by the round trip's
            measure, then the generator's score), so that a passage gets ``num_pairs``
            checked pairs whenever it holds them. Without a round trip, the filters run over
            the candidates and the best-scoring ``num_pairs`` are kept. None: ``num_pairs``.
        num_pairs: pairs wanted per passage (default: the generator's).
        rounds: question rounds at most with a round trip (each re-asks for the windows
            still short of checked pairs).
    """

    def __init__(
        self,
        generator,
        *,
        filters: bool = True,
        near_duplicate_jaccard: float = 0.8,
        round_trip: RoundTrip | None = None,
        keep_non_span_answers: bool = False,
        batch_size: int = 16,
        candidates: int | None = None,
        num_pairs: int | None = None,
        rounds: int = 3,
    ):
        if num_pairs is not None and num_pairs < 1:
            raise ValueError(f"num_pairs must be >= 1, got num_pairs={num_pairs}")
        wanted = num_pairs if num_pairs is not None else getattr(generator, "num_pairs", 1)
        if candidates is not None and candidates < wanted:
            raise ValueError(
                f"candidates must be >= num_pairs, got candidates={candidates}, "
                f"num_pairs={num_pairs}"
            )
        if not 0.0 < near_duplicate_jaccard <= 1.0:
            raise ValueError(
                f"near_duplicate_jaccard must be in (0, 1], got {near_duplicate_jaccard}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size}")
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got rounds={rounds}")
        self.rounds = rounds
        self.generator = generator
        self.filters = filters
        self.near_duplicate_jaccard = near_duplicate_jaccard
        self.round_trip = round_trip
        self.keep_non_span_answers = keep_non_span_answers
        self.batch_size = batch_size
        self.candidates = candidates
        self.num_pairs = num_pairs

    def postprocess(self, passage: str, pairs: list[dict], filtered: Counter) -> list[dict]:
        """One passage's pairs after its duplicate filter and the round trip (drops counted in
        ``filtered`` by reason), then the best ``num_pairs`` when over-generating."""
        pairs = self.check(passage, [], pairs, filtered)
        if self.candidates is not None:
            pairs = self.select(pairs, filtered)
        return pairs

    def check(self, passage: str, kept: list[dict], new: list[dict], filtered: Counter):
        """Which of ``new`` pairs pass the duplicate filter (against each other and the
        passage's ``kept`` pairs) and the round trip; drops counted in ``filtered``."""
        if self.filters:
            new, dropped = filter_passage_pairs(new, self.near_duplicate_jaccard, seen=kept)
            filtered.update(dropped)
        if self.round_trip is not None and new:
            passing = self.round_trip.check(passage, new)
            filtered["round_trip"] += len(new) - len(passing)
            new = passing
        return new

    def generation_check(self, filtered: Counter) -> dict:
        """The keyword arguments that run this chain's check inside generation
        (`QAGenerator.generate` / ``generate_batch``): ``candidates``, ``check`` (drops counted
        in ``filtered``) and ``rounds``."""
        return {
            "candidates": self.candidates,
            "check": lambda passage, kept, new: self.check(passage, kept, new, filtered),
            "rounds": self.rounds,
        }

    def _wanted(self) -> int:
        return self.num_pairs if self.num_pairs is not None else self.generator.num_pairs

    def select(
        self, pairs: list[dict], filtered: Counter | None = None, num_pairs: int | None = None
    ) -> list[dict]:
        """The best ``num_pairs`` of the checked candidates: by the round trip's measure (a
        margin of None, i.e. nothing to tell apart, ranks last), then the generator's score."""

        def rank(pair):
            measure = next((pair[k] for k in _ROUND_TRIP_FIELDS if pair.get(k) is not None), None)
            return (measure is not None, measure if measure is not None else 0.0, pair["score"])

        wanted = self._wanted() if num_pairs is None else num_pairs
        ranked = sorted(pairs, key=rank, reverse=True)
        if filtered is not None:
            filtered["not_selected"] += max(0, len(ranked) - wanted)
        return ranked[:wanted]

    def block(self, passages: list[Passage], seed: int | None = None) -> BlockResult:
        """Generate for ``passages`` (sampled from ``seed`` when given) and post-process."""
        if seed is not None:
            self.generator.seed = seed
        filtered: Counter = Counter()
        contexts = [p.context for p in passages]
        if self.round_trip is not None:  # checked inside generation: re-ask where short
            results = self.generator.generate(
                contexts,
                num_pairs=self.num_pairs,
                batch_size=self.batch_size,
                keep_non_span_answers=self.keep_non_span_answers,
                **self.generation_check(filtered),
            )
            results = [self.select(pairs, filtered) for pairs in results]
        else:
            results = self.generator.generate(
                contexts,
                num_pairs=self.candidates if self.candidates is not None else self.num_pairs,
                batch_size=self.batch_size,
                keep_non_span_answers=self.keep_non_span_answers,
            )
            results = [
                self.postprocess(p.context, pairs, filtered) for p, pairs in zip(passages, results)
            ]
        languages = [self.language(p.context) for p in passages]
        records = [
            r
            for p, pairs, language in zip(passages, results, languages)
            for r in to_records(p, pairs, language)
        ]
        empty = sum(not pairs for pairs in results)
        if self.candidates is not None or self.round_trip is not None:
            # passages that got fewer (checked) pairs than wanted
            filtered["passages_with_fewer_pairs"] += sum(len(p) < self._wanted() for p in results)
        return BlockResult(records, len(passages), empty, filtered, results, Counter(languages))

    def language(self, passage: str) -> str:
        """The passage's language: the router's choice, else its script (`detect_language`)."""
        if isinstance(self.generator, LanguageRouter):
            return self.generator.language(passage)
        return detect_language(passage)


class CorpusFilter:
    """Drop pairs repeated across the corpus, block by block in corpus order."""

    def __init__(self, seen: Iterable[dict] = ()):
        self.dedup = CorpusDedup()
        self.dedup.update(seen)  # resuming: what was kept before counts as seen

    def __call__(self, result: BlockResult) -> BlockResult:
        before = result.records
        kept = [r for r in before if self.dedup.add(r["question"], r["answers"]["text"][0])]
        result.filtered["corpus_duplicate_question"] += len(before) - len(kept)
        # passages that had records before the filter and none after it
        result.empty += len({passage_of(r) for r in before} - {passage_of(r) for r in kept})
        result.records = kept
        return result


def iter_blocks(passages, block_size: int) -> Iterator[tuple[int, list[Passage]]]:
    """``(index, passages)`` for consecutive blocks of a corpus (a path or an iterable of
    passages, strings or dicts; see `qgen.io.corpus.iter_passages`), read as a stream."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got block_size={block_size}")
    block: list[Passage] = []
    index = 0
    for passage in iter_passages(passages):
        block.append(passage)
        if len(block) == block_size:
            yield index, block
            block, index = [], index + 1
    if block:
        yield index, block


def shipped_router(build=None, on_missing=None, device: str | None = None, **settings):
    """A `LanguageRouter` over the shipped models, each built the first time a passage of its
    language comes. A language whose model this install lacks falls back to the English model,
    with one message naming the language.

    Args:
        build: ``build(directory) -> QAGenerator`` (default: `QAGenerator.from_pretrained` with
            ``device`` and ``settings``, which override the saved decoding settings).
        on_missing: called with that message (default: `warnings.warn`).
    """
    import warnings

    from qgen.modeling.pretrained import LANGUAGE_MODELS, QGenModelError, language_model_path

    if build is None:
        from qgen.generation.generator import QAGenerator

        def build(directory: str):
            return QAGenerator.from_pretrained(directory, device=device, **settings)

    router: LanguageRouter

    def load(language: str):
        try:
            directory = language_model_path(language)
        except QGenModelError as err:
            if language == router.fallback:
                raise
            (on_missing or warnings.warn)(f"{err}: its passages go to the English model")
            return router.generator(router.fallback)
        return build(directory)

    router = LanguageRouter(load, languages=tuple(LANGUAGE_MODELS))
    return router


def language_round_trip(router: LanguageRouter, english, min_f1: float = 1.0):
    """The round trip of routed passages: English passages get ``english(generator)`` (e.g. the
    shipped English reader); other languages, whose readers qgen does not ship, the model's own
    check (`SelfRoundTrip`)."""
    from qgen.generation.round_trip import LanguageRoundTrip

    def choose(language: str):
        generator = router.generator(language)
        return english(generator) if language == "en" else SelfRoundTrip.of(generator, min_f1)

    return LanguageRoundTrip(router.language, choose)


def resolve_round_trip(round_trip, generator, min_f1: float = 1.0, device: str | None = None):
    """A `RoundTrip` from what a user passes: None / False (no check), a `RoundTrip`,
    ``"qag"`` (the generator's own model), ``"shipped"`` / True (the shipped English reader), a
    shipped reader's name or a reader directory."""
    if round_trip is None or round_trip is False:
        return None
    if isinstance(round_trip, RoundTrip):
        return round_trip
    if isinstance(generator, LanguageRouter):  # the check for English, the model's own for others
        return language_round_trip(
            generator, lambda g: resolve_round_trip(round_trip, g, min_f1, device), min_f1
        )
    if round_trip == "qag":
        return SelfRoundTrip.of(generator, min_f1)
    from qgen.modeling.pretrained import check_model_dir, default_reader_path, shipped_or_path

    if round_trip is True or round_trip == "shipped":
        path = default_reader_path()
    else:
        path = shipped_or_path(str(round_trip))
    check_model_dir(path, reader=True)
    if device is None:
        device = str(next(generator.model.parameters()).device)  # the generator's
    return ReaderRoundTrip(path, min_f1, device)


# over-generation when the round trip is on, unless set (measured: docs/results.md, issue 22;
# on 60 TyDi passages with 3 pairs asked: 2 x num_pairs and 6 rounds gave 2.88 checked pairs a
# passage, where 4 and 3 rounds gave 2.58, 4 and 5 rounds 2.83, and no check 2.93 unchecked)
CHECKED_CANDIDATES = 2  # questions asked per window in the first round, per pair asked
CHECKED_ROUNDS = 6


def checked_candidates(num_pairs: int) -> int:
    """Questions asked per window in the first round when the round trip is on and
    ``candidates`` is not set: `CHECKED_CANDIDATES` per pair asked."""
    return CHECKED_CANDIDATES * num_pairs


# the agreement a reader's answer needs: token F1 >= 0.5, the "answered right" of issue 22
CHECKED_F1 = 0.5


def auto_round_trip(generator) -> str | None:
    """``round_trip="auto"``: the shipped reader for the shipped English model (or for the
    shipped models' router, whose English passages it reads), else no check."""
    from qgen.modeling.pretrained import is_shipped_english

    if isinstance(generator, LanguageRouter):
        return "shipped"
    path = getattr(getattr(generator, "model", None), "name_or_path", None)
    return "shipped" if path and is_shipped_english(path) else None


def checked_chain(
    generator,
    round_trip="auto",
    round_trip_f1: float = CHECKED_F1,
    candidates: int | None = None,
    rounds: int = CHECKED_ROUNDS,
) -> DatasetChain | None:
    """The chain whose check the pipeline runs inside generation, or None without a round trip.

    Args:
        generator: the pipeline's `QAGenerator`.
        round_trip: ``"auto"`` (`auto_round_trip`), or as `resolve_round_trip`.
        round_trip_f1: token F1 a reader's answer needs against the pair's.
        candidates: questions asked per window in the first round (default
            `CHECKED_CANDIDATES`, at least ``num_pairs``).
        rounds: question rounds at most.
    """
    if round_trip == "auto":
        round_trip = auto_round_trip(generator)
    checker = resolve_round_trip(round_trip, generator, round_trip_f1)
    if checker is None:
        return None
    if candidates is None:
        candidates = checked_candidates(generator.num_pairs)
    return DatasetChain(generator, round_trip=checker, candidates=candidates, rounds=rounds)


def iter_dataset(
    passages,
    generator=None,
    *,
    filters: bool = True,
    near_duplicate_jaccard: float = 0.8,
    round_trip="auto",
    round_trip_f1: float = CHECKED_F1,
    corpus_duplicates: bool | None = None,
    block_size: int = 128,
    batch_size: int = 16,
    seed: int | None = 0,
    keep_non_span_answers: bool = False,
    candidates: int | None = None,
    num_pairs: int | None = None,
    rounds: int = CHECKED_ROUNDS,
    counts: dict | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Iterator[dict]:
    """Stream SQuAD-schema records for ``passages``, through the whole chain.

    Args:
        passages: a corpus file (.txt, .jsonl, .json, .parquet, .csv), a `datasets.Dataset`, or
            an iterable of strings / ``{"id", "context", "title"}`` dicts / `Passage`.
        generator: a `QAGenerator`, or a `LanguageRouter`; default: each passage goes to the
            shipped model of its language (`shipped_router`), each model loaded on first use.
        filters: drop each passage's duplicate and near-duplicate pairs.
        near_duplicate_jaccard: word-set overlap from which two questions count as one.
        round_trip: ``"auto"`` (default: the shipped reader checks the shipped English
            model's pairs, other models are not checked; `auto_round_trip`), None (no check),
            ``"shipped"``, ``"qag"``, a reader directory or name, or a `RoundTrip` (see
            `resolve_round_trip`).
        round_trip_f1: token F1 a reader's answer needs against the pair's.
        corpus_duplicates: drop pairs repeated across the corpus (default: with ``filters``).
        block_size: passages generated together (their windows are batched by length).
        batch_size: passage windows per decoding call.
        seed: block ``b`` samples from ``seed + b`` (None: the generator's own seed, unseeded
            by default), so records do not depend on how a corpus is split into runs.
        keep_non_span_answers: with unconstrained answers, keep those not in the passage.
        candidates: over-generate: questions asked per window in the first round, the best
            checked ``num_pairs`` kept (see `DatasetChain`); None: `CHECKED_CANDIDATES` with
            a round trip, else ``num_pairs`` (no selection).
        num_pairs: pairs wanted per passage (default: the generator's).
        rounds: with a round trip, question rounds at most (each re-asks where a passage
            window is short of checked pairs).
        counts: a dict updated in place with the summary counts as records stream.
        progress: called with the number of passages of each finished block.
    """
    if generator is None:  # each passage to the shipped model of its language, loaded lazily
        generator = shipped_router()
    if round_trip == "auto":
        round_trip = auto_round_trip(generator)
    checker = resolve_round_trip(round_trip, generator, round_trip_f1)
    if checker is not None and candidates is None:
        candidates = checked_candidates(num_pairs or generator.num_pairs)
    chain = DatasetChain(
        generator,
        filters=filters,
        near_duplicate_jaccard=near_duplicate_jaccard,
        round_trip=checker,
        keep_non_span_answers=keep_non_span_answers,
        batch_size=batch_size,
        candidates=candidates,
        num_pairs=num_pairs,
        rounds=rounds,
    )
    corpus = (
        CorpusFilter() if (filters if corpus_duplicates is None else corpus_duplicates) else None
    )
    totals = counts if counts is not None else {}
    totals.update(
        {"passages": 0, "pairs": 0, "passages_without_pairs": 0, "filtered": {}, "languages": {}}
    )
    for b, chunk in iter_blocks(passages, block_size):
        result = chain.block(chunk, None if seed is None else seed + b)
        if corpus is not None:
            result = corpus(result)
        totals["passages"] += result.passages
        totals["pairs"] += len(result.records)
        totals["passages_without_pairs"] += result.empty
        filtered = Counter(totals["filtered"])
        filtered.update(result.filtered)
        totals["filtered"] = {k: v for k, v in filtered.items()}
        languages = Counter(totals.get("languages", {}))
        languages.update(result.languages)
        totals["languages"] = dict(languages)
        yield from result.records
        if progress is not None:
            progress(result.passages)


def generate_dataset(passages, generator=None, *, sink=None, **options) -> dict:
    """Run the dataset job and return its summary counts (``passages``, ``pairs``,
    ``passages_without_pairs``, ``filtered`` by reason): the same as ``qgen generate``'s
    summary JSON.

    Args:
        passages, generator, **options: as `iter_dataset`.
        sink: where the records go: a path (JSON lines, written to ``<path>.tmp`` and renamed
            when complete, so a failed run never leaves a partial file under the name), a
            callable taking each record, or a list to append to. None: ``summary["records"]``.
    """
    counts: dict = {}
    records = iter_dataset(passages, generator, counts=counts, **options)
    if sink is None:
        counts_records = list(records)
        return {**counts, "records": counts_records}
    if isinstance(sink, (str, os.PathLike)):
        path = os.fspath(sink)
        tmp = path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for record in records:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except BaseException:
            os.remove(tmp)
            raise
        os.replace(tmp, path)
    elif isinstance(sink, list):
        sink.extend(records)
    elif callable(sink):
        for record in records:
            sink(record)
    else:
        raise TypeError(f"sink must be a path, a list or a callable, got {type(sink).__name__}")
    return counts
