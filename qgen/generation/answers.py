"""Answer text after decoding: locate a generated answer in the original passage, drop the
spaces a BERT tokenizer puts around CJK characters, and merge pairs with the same answer.

A decoded answer rarely has the passage's exact spelling (WordPiece lower-cases and puts spaces
around punctuation; character vocabularies put spaces between characters), so matching runs on
folded text (no case, accents or whitespace) and maps back to the passage. Used by
`qgen.generation.generator.QAGenerator`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["join_cjk", "locate_answer", "locate_tokens", "merge_pairs"]

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
