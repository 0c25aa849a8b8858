"""Answer text after decoding: locate a generated answer in the original passage, drop the
spaces a BERT tokenizer puts around CJK characters, merge pairs with the same answer, and a
prior on what an answer looks like (`answer_prior`).

A decoded answer rarely has the passage's exact spelling (WordPiece lower-cases and puts spaces
around punctuation; character vocabularies put spaces between characters), so matching runs on
folded text (no case, accents or whitespace) and maps back to the passage. Used by
`qgen.generation.generator.QAGenerator`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

__all__ = ["answer_prior", "join_cjk", "locate_answer", "locate_tokens", "merge_pairs"]

_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"


def _fold(text: str) -> tuple[str, list[int]]:
    """Lower-cased, accent-free text without whitespace, and the index of each kept character
    in ``text`` (so a match maps back to the original spelling and spacing)."""
    chars, index = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        norm = unicodedata.normalize("NFKD", ch.lower())
        for c in norm:
            if not unicodedata.combining(c):
                chars.append(c)
                index.append(i)
    return "".join(chars), index


def locate_answer(
    passage: str, answer: str, window: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """Find ``answer`` in ``passage`` ignoring case, accents and whitespace.

    A decoded answer rarely has the passage's exact spelling (WordPiece lower-cases and puts
    spaces around punctuation; character vocabularies put spaces between characters), so the
    match runs on folded text and maps back to the passage.

    Args:
        passage: the original passage.
        answer: the generated answer text.
        window: character span of the window the answer came from; a match inside it wins,
            otherwise the first match in the passage.

    Returns:
        ``(start, end)`` character offsets in ``passage`` (``passage[start:end]`` is the answer
        as written there), or None when it is not a span of the passage. A match must not cut
        a word in two.
    """
    needle, _ = _fold(answer)
    if not needle:
        return None
    hay, index = _fold(passage)
    hits, k = [], hay.find(needle)
    while k != -1:
        hits.append(k)
        k = hay.find(needle, k + 1)
    spans = [(index[h], index[h + len(needle) - 1] + 1) for h in hits]
    spans = [sp for sp in spans if _whole_words(passage, *sp)]
    if not spans:
        return None
    if window is not None:
        inside = [sp for sp in spans if window[0] <= sp[0] < window[1]]
        return inside[0] if inside else spans[0]
    return spans[0]


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and not re.match(f"[{_CJK}]", ch)


def _whole_words(text: str, start: int, end: int) -> bool:
    """The span does not cut a word in two (``"o"`` inside ``"Tower"``); CJK characters are
    words of their own, so Chinese spans always pass."""
    if start > 0 and _is_word_char(text[start - 1]) and _is_word_char(text[start]):
        return False
    if end < len(text) and _is_word_char(text[end]) and _is_word_char(text[end - 1]):
        return False
    return True


def locate_tokens(
    answer_ids: list[int], window_ids: list[int], offsets: list[tuple[int, int]], passage: str
) -> tuple[int, int] | None:
    """Find the answer's token ids inside the window's ids; their offsets give the span (this
    also places answers whose decoded text lost characters, e.g. ``[UNK]``)."""
    n = len(answer_ids)
    for k in range(len(window_ids) - n + 1):
        if window_ids[k : k + n] == answer_ids:
            start, end = offsets[k][0], offsets[k + n - 1][1]
            while start < end and passage[start].isspace():
                start += 1
            if start < end and _whole_words(passage, start, end):
                return start, end
    return None


# A space next to a CJK character goes, unless the other side is a Latin letter ("在 Paris").
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+(?![A-Za-z])|(?<![A-Za-z])\s+(?=[{_CJK}])")


def join_cjk(text: str) -> str:
    """Drop the spaces a BERT tokenizer puts around CJK characters when decoding
    (``"世 界 第 二"`` -> ``"世界第二"``); other spacing is kept."""
    return _CJK_SPACE.sub("", text).strip()


def merge_pairs(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge pairs with the same answer (folded text, and the same start when located): keep
    the best-scoring one. Returns pairs sorted by score, best first."""
    best: dict[tuple, dict[str, Any]] = {}
    for pair in pairs:
        key = (_fold(pair["answer"])[0], pair["answer_start"])
        if key not in best or pair["score"] > best[key]["score"]:
            best[key] = pair
    return sorted(best.values(), key=lambda p: p["score"], reverse=True)


# SQuAD v1.1 training answers (Du et al.'s train split, 75,722 questions): the share of answers
# of 1, 2, ..., 20 words; 0.67% are longer.
_SQUAD_ANSWER_WORDS = (
    0.3428, 0.2483, 0.1500, 0.0738, 0.0468, 0.0300, 0.0220, 0.0169, 0.0119, 0.0097,
    0.0077, 0.0067, 0.0053, 0.0048, 0.0042, 0.0029, 0.0029, 0.0028, 0.0020, 0.0018,
)  # fmt: skip
_LONGER_PER_LENGTH = 0.0067 / 20  # the tail, spread over 21-40 words

# words a SQuAD answer rarely starts (a verb or a connective: "is in Paris", "and the Tahoe")
# or ends with ("the fourth grade of", "Paris and")
_BAD_FIRST = frozenset(
    "is are was were be been being has have had do does did can could will would should may "
    "might must shall and or but nor so because although though while whereas if unless that "
    "which who whom whose where when why how than then also not".split()
)
_BAD_LAST = frozenset(
    "the a an of to and or but nor in on at by for with from as into onto than that which who "
    "whom whose is are was were be been has have had its their his her our your my this these "
    "those".split()
)
_CLAUSE_END = (".", ",", ";", ":", "!", "?")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)*|\S")


def _is_symbol(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZ"


def answer_prior(text: str, boundary_penalty: float = 2.0) -> float | None:
    """A log-prior on what a person would ask about, from the answer's shape alone.

    * length: log of SQuAD's share of answers with that many words, relative to one word
      (0 for one word, -0.32 for two, -0.83 for three, -2.0 for five, -3.6 for ten); CJK
      answers, whose words are not spaced, get no length term;
    * ``-boundary_penalty`` each when the answer starts with a verb or a connective (``"is in
      Paris"``), ends with a function word (``"the fourth grade of"``), or ends a clause
      (a multi-word answer ending in ``.``, ``,``, ``;`` ...);
    * None (not an answer) when it is only punctuation or symbols (``"。"``, ``"《"``).
    """
    text = text.strip()
    if not text or all(_is_symbol(ch) for ch in text):
        return None
    if re.search(f"[{_CJK}]", text):  # no spaces between words: no length or word rules
        return 0.0
    words = _WORD.findall(text)
    n = max(1, sum(not _is_symbol(w[0]) for w in words))
    share = _SQUAD_ANSWER_WORDS[n - 1] if n <= 20 else _LONGER_PER_LENGTH
    prior = math.log(share / _SQUAD_ANSWER_WORDS[0])
    lowered = [w.lower() for w in words if not _is_symbol(w[0])]
    if n > 1 and lowered and lowered[0] in _BAD_FIRST:
        prior -= boundary_penalty
    if n > 1 and lowered and lowered[-1] in _BAD_LAST:
        prior -= boundary_penalty
    if n > 1 and text.endswith(_CLAUSE_END):
        prior -= boundary_penalty
    return prior
