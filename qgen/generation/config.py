"""`QAGenerationConfig`: the decoding settings of a qgen model, saved beside its weights.

Like HF's ``generation_config.json``, a model directory may hold ``qa_generation_config.json``:
the two stages' `decoding.DecodingConfig`s and the generator's settings. `QAGenerator.from_pretrained`
and the ``qgen`` command use it by default; arguments and CLI flags override single fields.

    {"answer": {"strategy": "sample", "top_p": 0.95, ...},
     "question": {"strategy": "beam", "num_beams": 5, ...},
     "constrain_answers": true, "answer_candidates": 2.0, "num_pairs": 3,
     "max_source_length": 320, "window_stride": 64}
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from decoding import DecodingConfig
from qgen.generation.presets import default_answer_config, default_question_config

__all__ = ["CONFIG_NAME", "QAGenerationConfig", "generator_kwargs"]

CONFIG_NAME = "qa_generation_config.json"
# Runtime-only fields of DecodingConfig that do not belong in a saved file.
_UNSAVED = ("generator", "seed")


def _decoding_to_dict(config: DecodingConfig) -> dict[str, Any]:
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _UNSAVED
    }


def _decoding_from_dict(raw: Any, where: str) -> DecodingConfig:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(DecodingConfig)} - set(_UNSAVED)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    try:
        return DecodingConfig(**raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


@dataclass
class QAGenerationConfig:
    """How `QAGenerator` decodes: stage 1 (answer), stage 2 (question) and the generator's own
    settings (see `QAGenerator` for their meaning)."""

    answer: DecodingConfig = field(default_factory=default_answer_config)
    question: DecodingConfig = field(default_factory=default_question_config)
    constrain_answers: bool = True
    answer_candidates: float = 2.0
    num_pairs: int = 3
    max_source_length: int = 320
    window_stride: int = 64
    rank_answers: bool = False

    def __post_init__(self) -> None:
        if self.answer_candidates < 1:
            raise ValueError(f"answer_candidates must be >= 1, got {self.answer_candidates}")
        if self.num_pairs < 1:
            raise ValueError(f"num_pairs must be >= 1, got {self.num_pairs}")
        if self.max_source_length < 3:
            raise ValueError(f"max_source_length must be >= 3, got {self.max_source_length}")
        if not 0 <= self.window_stride < self.max_source_length - 2:
            raise ValueError(
                f"window_stride must be in [0, max_source_length - 2), got {self.window_stride}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["answer"] = _decoding_to_dict(self.answer)
        out["question"] = _decoding_to_dict(self.question)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = CONFIG_NAME) -> QAGenerationConfig:
        """Build from a dict; errors name ``where`` and the field."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
        kwargs = dict(raw)
        for stage in ("answer", "question"):
            if stage in kwargs:
                kwargs[stage] = _decoding_from_dict(kwargs[stage], f"{where}: field {stage!r}")
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None

    def save_pretrained(self, directory: str | os.PathLike) -> str:
        """Write ``qa_generation_config.json`` into ``directory``; returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> QAGenerationConfig:
        """Read ``directory/qa_generation_config.json``; the defaults when there is none."""
        path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(path):
            return cls()
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {err.lineno}: malformed JSON ({err.msg})") from None
        return cls.from_dict(raw, where=path)


def generator_kwargs(directory: str | os.PathLike | None, **overrides: Any) -> dict[str, Any]:
    """`QAGenerator` keyword arguments: the settings saved in ``directory`` (the defaults when
    it has none), each override not None replacing one (a ``preset`` replaces both stage
    configs). The one place where saved settings and arguments meet, for the API, the pipeline
    and the CLI."""
    config = QAGenerationConfig()
    if directory is not None and os.path.isdir(directory):
        config = QAGenerationConfig.from_pretrained(directory)
    settings = {
        "answer_config": config.answer,
        "question_config": config.question,
        "constrain_answers": config.constrain_answers,
        "answer_candidates": config.answer_candidates,
        "num_pairs": config.num_pairs,
        "max_source_length": config.max_source_length,
        "window_stride": config.window_stride,
        "rank_answers": config.rank_answers,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "preset" in overrides:
        settings.pop("answer_config"), settings.pop("question_config")
    return {**settings, **overrides}
