"""Filters for generated question-answer pairs, each counted by reason.

Within a passage (`filter_passage_pairs`, pairs taken best score first):

* ``duplicate_answer``: the same answer at the same place as a kept pair;
* ``duplicate_question``: the same question as a kept pair, after `normalize_question`
  (case, punctuation and spacing ignored);
* ``near_duplicate_question``: a question whose word set overlaps a kept one's by at least
  ``near_duplicate_jaccard`` (Jaccard; default 0.8, e.g. "when was the tower built" and "when was
  the tower first built").

Across the corpus (`CorpusDedup`): ``corpus_duplicate_question``, the same normalised question and
answer text as a pair kept for an earlier passage (the corpus order decides which one stays).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = [
    "FILTER_REASONS",
    "CorpusDedup",
    "filter_passage_pairs",
    "normalize_answer",
    "normalize_question",
    "token_f1",
]

FILTER_REASONS = (
    "duplicate_answer",
    "duplicate_question",
    "near_duplicate_question",
    "corpus_duplicate_question",
)
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's answer normalisation: lower case, no punctuation, no articles, single
    spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 between two answers (after `normalize_answer`), in [0, 1]."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def normalize_question(question: str) -> str:
    """Lower case, punctuation removed, single spaces."""
    return " ".join(_PUNCT.sub(" ", question.lower()).split())


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def filter_passage_pairs(
    pairs: list[dict[str, Any]],
    near_duplicate_jaccard: float = 0.8,
    seen: Iterable[dict[str, Any]] = (),
) -> tuple[list[dict[str, Any]], Counter]:
    """Drop the duplicates among one passage's pairs, keeping the best-scoring of each group.

    Args:
        pairs: ``{"question", "answer", "answer_start", "score"}`` dicts.
        near_duplicate_jaccard: word-set overlap from which two questions count as one; above
            1 switches the near-duplicate filter off.
        seen: pairs of the passage kept before (never dropped): a pair that repeats one of
            them is a duplicate.

    Returns:
        The kept pairs (best score first) and the count of dropped pairs by reason.
    """
    kept: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    answers, questions, word_sets = set(), set(), []
    for pair in seen:
        answers.add((pair["answer_start"], pair["answer"].strip().lower()))
        questions.add(normalize_question(pair["question"]))
        word_sets.append(set(normalize_question(pair["question"]).split()))
    for pair in sorted(pairs, key=lambda p: p["score"], reverse=True):
        answer = (pair["answer_start"], pair["answer"].strip().lower())
        question = normalize_question(pair["question"])
        words = set(question.split())
        if answer in answers:
            dropped["duplicate_answer"] += 1
        elif question in questions:
            dropped["duplicate_question"] += 1
        elif any(_jaccard(words, w) >= near_duplicate_jaccard for w in word_sets):
            dropped["near_duplicate_question"] += 1
        else:
            kept.append(pair)
            answers.add(answer)
            questions.add(question)
            word_sets.append(words)
    return kept, dropped


class CorpusDedup:
    """Exact duplicates across the corpus: a pair whose normalised question and answer text
    were kept before is dropped. Holds one 8-byte hash per kept pair."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    @staticmethod
    def _key(question: str, answer: str) -> bytes:
        text = normalize_question(question) + "\x00" + answer.strip().lower()
        return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()

    def add(self, question: str, answer: str) -> bool:
        """Record the pair; False when it was seen before (a duplicate)."""
        key = self._key(question, answer)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def update(self, records: Iterable[dict[str, Any]]) -> None:
        """Record SQuAD-schema records already written (to resume a run)."""
        for record in records:
            self.add(record["question"], record["answers"]["text"][0])
