"""Passages routed by language: the script a passage is written in decides which shipped model
reads it, so that an English model never quietly turns a Chinese passage into English nonsense.

* `detect_language`: ``"zh"`` for a passage mostly in CJK characters, else ``"en"``.
* `LanguageRouter`: one `QAGenerator` per language, each loaded the first time a passage of its
  language comes (an English-only corpus never loads the Chinese model); ``generate`` has
  `QAGenerator.generate`'s signature, so the dataset chain takes either.
* `model_language`: the language a model was trained for (its config's ``qgen_language``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["LanguageRouter", "detect_language", "model_language"]


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK Unified Ideographs
        or 0x3400 <= o <= 0x4DBF  # Extension A
        or 0xF900 <= o <= 0xFAFF  # Compatibility Ideographs
        or 0x20000 <= o <= 0x2FA1F  # Extensions B-F, compatibility supplement
    )


def detect_language(text: str) -> str:
    """``"zh"`` when CJK characters make up at least half of the passage's letters (CJK
    ideographs and alphabetic characters; digits, spaces and punctuation do not count), else
    ``"en"``."""
    cjk = letters = 0
    for ch in text:
        if _is_cjk(ch):
            cjk += 1
            letters += 1
        elif ch.isalpha():
            letters += 1
    return "zh" if letters and cjk * 2 >= letters else "en"


def model_language(model) -> str | None:
    """The language a qgen model was trained for, from its config (``qgen_language``; the shipped
    models and ``qgen train --language`` set it), or None when it does not say."""
    return getattr(model.config, "qgen_language", None)


class LanguageRouter:
    """Generate with the shipped model of each passage's language.

    Args:
        load: ``load(language) -> QAGenerator``, called once per language, the first time a
            passage of that language comes.
        languages: the languages it may route to; a passage of another one goes to
            ``fallback``.
        fallback: the language of passages no model is given for.
    """

    def __init__(
        self,
        load: Callable[[str], Any],
        languages: Sequence[str] = ("en", "zh"),
        fallback: str = "en",
    ):
        self._load = load
        self.languages = tuple(languages)
        self.fallback = fallback
        self.generators: dict[str, Any] = {}
        self.seed: int | None = None

    def language(self, passage: str) -> str:
        language = detect_language(passage)
        return language if language in self.languages else self.fallback

    def generator(self, language: str):
        """The generator of ``language``, loaded on first use."""
        if language not in self.generators:
            self.generators[language] = self._load(language)
        return self.generators[language]

    @property
    def num_pairs(self) -> int:
        return self.generator(self.fallback).num_pairs

    def generate(self, passages: Sequence[str], **kwargs) -> list[list[dict[str, Any]]]:
        """`QAGenerator.generate` per language group, results back in input order; every pair
        carries the ``language`` that generated it."""
        groups: dict[str, list[int]] = {}
        for i, passage in enumerate(passages):
            groups.setdefault(self.language(passage), []).append(i)
        results: list[list[dict[str, Any]]] = [[] for _ in passages]
        for language, members in groups.items():
            generator = self.generator(language)
            if self.seed is not None:
                generator.seed = self.seed
            out = generator.generate([passages[i] for i in members], **kwargs)
            for i, pairs in zip(members, out):
                results[i] = [{**p, "language": language} for p in pairs]
        return results
