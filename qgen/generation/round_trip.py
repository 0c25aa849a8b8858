"""A round-trip check of generated pairs with the qag model itself (no second model).

Alberti et al. (2019) keep a generated pair when a reader, asked the question, finds the same
answer. A ``qag`` model is no extractive reader, but it scores every (answer, question) pair of
a passage: ``log p(answer, question | passage)``, the sum over the target
``answer [SEP] question [SEP]``, is ``log p(answer | passage) + log p(question | passage,
answer)``, so by Bayes ``argmax_a log p(a, q | P)`` is the answer the model reads the question
as asking for. `round_trip_answers` picks it among the passage's generated answers (the
candidates), and `round_trip_filter` keeps a pair when that answer agrees with its own (token F1
>= ``min_f1``; 1.0 = the same answer). `round_trip_margins` says by how much (in nats), so
that pairs can be ranked, not only kept or dropped.

The ``k x k`` (answer, question) targets of a passage are scored in as few forward passes as
keep rows short (one for k <= 4): they share one copy of the passage as packed rows
(`qgen.training.features.pack_features`'s layout), each target seeing only the passage and itself.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from qgen.generation.filters import token_f1
from qgen.modeling.inputs import UniLMCollator, encode_source, special_token_ids

__all__ = [
    "LanguageRoundTrip", "ReaderRoundTrip", "RoundTrip", "SelfRoundTrip", "round_trip_answers", "round_trip_filter",
    "round_trip_margins", "round_trip_scores", "score_targets",
]  # fmt: skip

# (answer, question) targets packed after one copy of the passage: about 24 x 20 tokens, so a row
# stays near the length of a training row whatever num_pairs is
_TARGETS_PER_ROW = 24


def score_targets(
    model, tokenizer, passage: str, targets: list[tuple[str, str]], max_source_length: int = 320,
    answer_span: tuple[int, int] | None = None,
) -> list[float]:  # fmt: skip
    """``log p(answer [SEP] question [SEP] | [CLS] passage [SEP])`` for each (answer, question).

    Args:
        model: a `UniLMForQAGeneration` trained for ``qag``.
        tokenizer: its tokenizer.
        passage: the passage (cut to a window of ``max_source_length`` tokens around
            ``answer_span`` when longer).
        targets: ``(answer, question)`` texts.
        answer_span: the character span the window must hold.

    Returns:
        One summed log-probability per target (both ``[SEP]``s included).
    """
    source, _ = encode_source(
        tokenizer, passage, None, max_length=max_source_length, answer_span=answer_span
    )
    return _score(model, tokenizer, source, targets)


@torch.no_grad()
def _score(model, tokenizer, source: list[int], targets: list[tuple[str, str]]) -> list[float]:
    """`score_targets` for an encoded source: all targets packed after one copy of it."""
    if not targets:
        return []
    _, sep = special_token_ids(tokenizer)
    ids, segments = list(source), [0] * len(source)
    for k, (answer, question) in enumerate(targets, start=1):
        a = tokenizer(answer, add_special_tokens=False)["input_ids"]
        q = tokenizer(question, add_special_tokens=False)["input_ids"]
        target = [*a, sep, *q, sep]
        ids += target
        segments += [k] * len(target)
    feature = {
        "input_ids": ids,
        "token_type_ids": [int(s > 0) for s in segments],
        "target_segment_ids": segments,
    }
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in UniLMCollator(tokenizer)([feature]).items()}
    labels = batch.pop("labels")
    was_training = model.training
    model.eval()
    try:
        logits = model(**batch).logits.float()  # (M, V), target tokens in row order
    finally:
        model.train(was_training)
    is_target = labels != -100
    tokens = labels[is_target]
    which = batch["target_segment_ids"][is_target]  # (M,) the target of each token
    logp = logits.log_softmax(-1).gather(1, tokens[:, None]).squeeze(1)
    sums = torch.zeros(len(targets) + 1, device=device).index_add_(0, which, logp)
    return sums[1:].tolist()


def round_trip_scores(
    model, tokenizer, passage: str, pairs: list[dict[str, Any]], max_source_length: int = 320
) -> list[list[float]]:
    """The ``k x k`` table ``scores[i][j] = log p(answer_j, question_i | passage)`` over a
    passage's pairs: row ``i`` says which answer the model reads question ``i`` as asking for.
    Pairs whose answers share a passage window (all of them, for a passage that fits) are scored
    in one forward pass."""
    answers = [p["answer"] for p in pairs]
    k = len(pairs)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, pair in enumerate(pairs):
        start = pair.get("answer_start", -1)
        span = (start, start + len(pair["answer"])) if start >= 0 else None
        source, _ = encode_source(
            tokenizer, passage, None, max_length=max_source_length, answer_span=span
        )
        groups.setdefault(tuple(source), []).append(i)
    table: list[list[float]] = [[] for _ in range(k)]
    per_row = max(1, _TARGETS_PER_ROW // k)  # questions per forward pass: rows stay short
    for source, members in groups.items():
        for lo in range(0, len(members), per_row):
            part = members[lo : lo + per_row]
            targets = [(a, pairs[i]["question"]) for i in part for a in answers]
            scores = _score(model, tokenizer, list(source), targets)
            for n, i in enumerate(part):
                table[i] = scores[n * k : (n + 1) * k]
    return table


def round_trip_answers(
    model, tokenizer, passage: str, pairs: list[dict[str, Any]], max_source_length: int = 320
) -> list[int]:
    """For each pair, the index of the pair whose answer the model reads its question as asking
    for: ``argmax_j log p(answer_j, question_i | passage)`` over the passage's answers."""
    table = round_trip_scores(model, tokenizer, passage, pairs, max_source_length)
    return [max(range(len(row)), key=row.__getitem__) for row in table]


def round_trip_margins(
    model, tokenizer, passage: str, pairs: list[dict[str, Any]], min_f1: float = 1.0,
    max_source_length: int = 320,
) -> list[float]:  # fmt: skip
    """How surely each question reads as asking for its own answer: the best score of the
    answers that agree with the pair's (itself, and those with token F1 >= ``min_f1``) minus the
    best score of the others, in nats (``round_trip_scores``'s rows). ``>= 0``: the round trip
    holds; larger: the question fits its answer more clearly than any other. ``inf`` where no
    other answer disagrees (nothing to tell apart, e.g. a passage with one pair)."""
    if len(pairs) < 2:
        return [math.inf] * len(pairs)
    table = round_trip_scores(model, tokenizer, passage, pairs, max_source_length)
    answers = [p["answer"] for p in pairs]
    margins = []
    for i, row in enumerate(table):
        agree = [j == i or token_f1(answers[j], answers[i]) >= min_f1 for j in range(len(row))]
        others = [s for s, a in zip(row, agree) if not a]
        own = max(s for s, a in zip(row, agree) if a)
        margins.append(own - max(others) if others else math.inf)
    return margins


def round_trip_filter(
    model, tokenizer, passage: str, pairs: list[dict[str, Any]], min_f1: float = 1.0,
    max_source_length: int = 320, margin_key: str | None = None,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """Keep the pairs whose question the model reads as asking for their own answer (the answer
    it picks has token F1 >= ``min_f1`` against the pair's: a ``round_trip_margins`` >= 0). A
    passage with a single pair has no alternative to choose from: it is kept.

    Args:
        margin_key: when given, each kept pair is a copy holding its margin under this key
            (``None`` where no other answer was there to tell it from), to rank pairs by.

    Returns:
        The kept pairs (in their order) and how many were dropped.
    """
    margins = round_trip_margins(model, tokenizer, passage, pairs, min_f1, max_source_length)
    kept = [
        p if margin_key is None else {**p, margin_key: None if math.isinf(m) else m}
        for p, m in zip(pairs, margins)
        if m >= 0
    ]
    return kept, len(pairs) - len(kept)


# ----------------------------------------------------------------- the round trip, one interface


class RoundTrip:
    """A reader that checks generated pairs (Alberti et al. 2019): asked each question, does it
    find the pair's answer? `score` gives every pair its measure under ``key``; `keeps` says
    whether that measure passes; `check` does both. Two readers implement it:
    `ReaderRoundTrip` (an extractive QA model) and `SelfRoundTrip` (the generating qag model
    reading its own questions).
    """

    key: str = "round_trip"
    name: str = "round trip"

    def score(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of ``pairs``, each with its measure under ``self.key``."""
        raise NotImplementedError

    def keeps(self, pair: dict[str, Any]) -> bool:
        """Whether a scored pair passes."""
        raise NotImplementedError

    def check(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The pairs that pass, in their order, each with its measure."""
        if not pairs:
            return []
        return [p for p in self.score(passage, pairs) if self.keeps(p)]


class ReaderRoundTrip(RoundTrip):
    """The round trip with an extractive reader: it answers each question, and a pair passes
    when that answer has token F1 >= ``min_f1`` with the pair's (``round_trip_f1``).

    Args:
        reader: a `qgen.generation.reader.ExtractiveReader`, a reader model directory, or None
            for the keep rule alone (pairs scored before, e.g. cached).
        min_f1: the agreement a pair needs (1.0: the same answer, normalised; above 1 nothing
            passes).
        device: where a reader loaded from a directory runs.
    """

    key = "round_trip_f1"

    def __init__(self, reader, min_f1: float = 1.0, device: str | None = None):
        if min_f1 < 0:
            raise ValueError(f"min_f1 must be >= 0, got min_f1={min_f1}")
        if isinstance(reader, (str, bytes)) or hasattr(reader, "__fspath__"):
            from qgen.generation.reader import ExtractiveReader

            self.name = str(reader)
            reader = ExtractiveReader(reader, device)
        else:
            self.name = getattr(reader, "name", type(reader).__name__)
        self.reader, self.min_f1 = reader, min_f1

    def score(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.reader is None:
            raise ValueError("this ReaderRoundTrip has no reader: it only applies its keep rule")
        answers = self.reader.answer([passage] * len(pairs), [p["question"] for p in pairs])
        return [{**p, self.key: token_f1(a["answer"], p["answer"])} for p, a in zip(pairs, answers)]

    def keeps(self, pair: dict[str, Any]) -> bool:
        return pair[self.key] >= self.min_f1


class SelfRoundTrip(RoundTrip):
    """The round trip with the qag model itself: a pair passes when the model reads its question
    as asking for its own answer among the passage's answers (`round_trip_margins` >= 0, in
    nats, under ``round_trip_margin``; None where no other answer was there to tell it from).

    Args:
        model, tokenizer: the generating qag model (e.g. ``generator.model``).
        min_f1: token F1 from which another answer counts as the pair's own.
        max_source_length: source tokens of the windows it reads.
    """

    key = "round_trip_margin"
    name = "qag"

    def __init__(self, model, tokenizer, min_f1: float = 1.0, max_source_length: int = 320):
        if not 0.0 <= min_f1 <= 1.0:
            raise ValueError(f"min_f1 must be in [0, 1], got min_f1={min_f1}")
        self.model, self.tokenizer = model, tokenizer
        self.min_f1, self.max_source_length = min_f1, max_source_length

    @classmethod
    def of(cls, generator, min_f1: float = 1.0) -> SelfRoundTrip:
        """The round trip of a `QAGenerator`'s own model, over its windows."""
        return cls(generator.model, generator.tokenizer, min_f1, generator.max_source_length)

    def score(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        margins = round_trip_margins(
            self.model, self.tokenizer, passage, pairs, self.min_f1, self.max_source_length
        )
        return [{**p, self.key: None if math.isinf(m) else m} for p, m in zip(pairs, margins)]

    def keeps(self, pair: dict[str, Any]) -> bool:
        margin = pair[self.key]
        return margin is None or margin >= 0


class LanguageRoundTrip(RoundTrip):
    """A round trip per language: ``choose(language)`` gives the check of a passage's language
    (built on first use; the shipped English reader for English, the generating model for a
    language with no shipped reader). Each pair carries its check's own measure."""

    name = "per language"

    def __init__(self, language_of, choose):
        self.language_of, self.choose = language_of, choose
        self.checks: dict[str, RoundTrip] = {}

    def _check(self, passage: str) -> RoundTrip:
        language = self.language_of(passage)
        if language not in self.checks:
            self.checks[language] = self.choose(language)
        return self.checks[language]

    def score(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._check(passage).score(passage, pairs)

    def check(self, passage: str, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._check(passage).check(passage, pairs) if pairs else []

    def keeps(self, pair: dict[str, Any]) -> bool:
        raise TypeError("LanguageRoundTrip keeps by passage: use check(passage, pairs)")
