"""`transformers.pipeline("qa-generation", model=DIR)`: passages in, question-answer pairs out.

``import qgen`` registers the task. `QAGenerationPipeline` is a transformers `ChunkPipeline`
around one `QAGenerator`, built with the model: `preprocess` checks a passage and cuts it into
source windows (one passage, one or more model inputs), `_forward` runs both decoding stages on a
batch of ``batch_size`` windows (from one passage or several), and `postprocess` merges the pairs
of a passage's windows. The base class does the rest, as for any pipeline: ``batch_size``,
``device``, ``dtype``, ``num_workers``, and lists, python generators, datasets and `KeyDataset`
as inputs (generators and datasets stream: the call returns an iterator).

    >>> import qgen, transformers
    >>> qa = transformers.pipeline("qa-generation")          # the English model shipped with qgen
    >>> qa("The Eiffel Tower is in Paris.", num_pairs=2)
    [{'question': 'where is the eiffel tower?', 'answer': 'Paris', 'answer_start': 23, 'score': -0.41}, ...]
    >>> qa = transformers.pipeline("qa-generation", model="runs/qag", device=0, batch_size=32)
    >>> for pairs in qa(KeyDataset(dataset, "context")): ...

The model directory's saved decoding settings (``qa_generation_config.json``) are the defaults;
arguments at construction or per call override them.

Seeds. With ``seed``, stage-1 sampling draws from a ``torch.Generator`` seeded with it, which
restarts at every batch that begins with a passage's first window and runs on into the next batch
when a batch ends inside a passage (as do the questions already asked about that passage). So
with ``batch_size=1`` a passage's pairs depend on the passage and the seed only, not on the other
inputs; a single passage, or a batch holding whole passages, gets what `QAGenerator.generate`
gives for them with the same ``batch_size``. A list spread over several batches differs from one
``generate`` call, which sorts all windows by length and draws from one stream for the whole call.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline

from qgen.generation.answers import merge_pairs
from qgen.generation.config import generator_kwargs
from qgen.generation.dataset import checked_chain, shipped_router
from qgen.generation.generator import QAGenerator
from qgen.generation.language import detect_language, model_language
from qgen.io.corpus import check_passage
from qgen.modeling.pretrained import LANGUAGE_NAMES, default_model_path, is_shipped_english
from qgen.modeling.unilm import UniLMForQAGeneration

logger = logging.getLogger(__name__)
__all__ = ["DEFAULT_BATCH_SIZE", "QAGenerationPipeline", "ShippedModelDefault", "TASK"]

TASK = "qa-generation"
DEFAULT_BATCH_SIZE = 8  # windows per decoding call, as `QAGenerator.generate`

# `QAGenerator` settings: given at construction they shape the pipeline's generator; given to a
# call, that call gets a generator of its own (no model or file is loaded for it).
_GENERATOR_ARGS = (
    "answer_config",
    "question_config",
    "preset",
    "max_source_length",
    "window_stride",
    "use_cache",
    "constrain_answers",
    "answer_candidates",
    "rank_answers",
    "autocast_dtype",
)
_CALL_ARGS = ("num_pairs", "seed", "keep_non_span_answers")
# the check of the dataset chain (`qgen.generation.dataset.DatasetChain`), at construction only
_CHECK_ARGS = ("round_trip", "round_trip_f1", "candidates", "rounds")


class ShippedModelDefault:
    """The task's default model for ``transformers.pipeline("qa-generation")``.

    transformers unpacks a task's default as ``(model, revision)`` only when no model is given;
    unpacking this checks the shipped checkpoint then, so a missing or damaged one gets qgen's
    clear error instead of a failed Hub lookup of a path.
    """

    def __iter__(self):
        _DEFAULT_MODEL_CHOSEN.set(True)  # the pipeline built next routes by language
        return iter((default_model_path(), None))


# set when transformers takes the task's default model (no model given): the pipeline it builds
# then routes each passage to the shipped model of its language; one per thread or task
_DEFAULT_MODEL_CHOSEN: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "qgen_default_model_chosen", default=False
)


@dataclasses.dataclass
class _InputCounter:
    """Numbers one call's inputs for error messages (`preprocess` sees one input at a time)."""

    seen: int = 0


@dataclasses.dataclass
class _Carry:
    """What a batch hands on to the next batch of the same call when it ends inside a passage:
    the random stream and the questions already asked about that passage."""

    generator: torch.Generator | None = None
    asked: set[str] = dataclasses.field(default_factory=set)


class QAGenerationPipeline(ChunkPipeline):
    """Generate ``{"question", "answer", "answer_start", "score"}`` pairs for passages.

    Arguments, at construction (``transformers.pipeline(...)``) or per call:
        num_pairs: pairs per passage (default: the model's saved setting, 3).
        seed: seed of stage-1 sampling (see the module's docstring for what it fixes), or None.
        keep_non_span_answers: with ``constrain_answers=False``, keep answers that are not a
            span of the passage (default False).
        answer_config, question_config, preset, max_source_length, window_stride, use_cache,
        constrain_answers, answer_candidates, rank_answers, autocast_dtype (default
        ``"auto"``: bf16 where the hardware computes it natively; ``"fp32"`` turns it off): as in
            `qgen.generation.generator.QAGenerator`. At construction they set up the
            pipeline's generator (`qa_generator`); a call that gives one decodes with a
            generator built for that call.
        route_languages (construction only): give each passage to the shipped model of its
            language (`qgen.generation.language.detect_language`; each loaded on first use,
            each pair tagged with ``language``). Default: on when no model is given
            (``transformers.pipeline("qa-generation")``), off for a model given explicitly,
            which then warns once when a passage is not in the language it was trained for.
        round_trip, round_trip_f1, candidates, rounds (construction only): the check of the
            dataset chain (`qgen.generation.dataset.checked_chain`): over-generate, keep the
            pairs a reader answers right, the best ``num_pairs`` of them. Default
            ``round_trip="auto"``: on with the shipped English model and its reader, off for
            other models; None switches it off.

    Base-class arguments: ``batch_size`` (passage windows per decoding call; default 8, not the
    base class's 1), ``num_workers``, and at construction ``device`` and ``dtype``.

    Returns:
        For one passage (a string) a list of pairs, best first; for a list of passages one list
        per passage; for a generator or a dataset (e.g. `KeyDataset`) an iterator of such lists.

    Raises:
        qgen.QGenDataError: an input is not a string or is empty (``inputs[3] is an empty
            passage``; inputs are counted from 0 in each call).
        TypeError: an unknown argument.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _pipeline_calls_generate = False

    def __init__(self, *args, route_languages: bool | None = None, **kwargs):
        settings = {k: kwargs.pop(k) for k in _GENERATOR_ARGS if k in kwargs}
        check = {k: kwargs.pop(k) for k in _CHECK_ARGS if k in kwargs}
        super().__init__(*args, **kwargs)
        if not isinstance(self.model, UniLMForQAGeneration):
            raise TypeError(
                f"the qa-generation pipeline needs a UniLMForQAGeneration model, got {type(self.model).__name__}"
            )
        self.model.eval()
        if self._batch_size is None:
            self._batch_size = DEFAULT_BATCH_SIZE
        self._user_settings = settings
        self._settings = generator_kwargs(self.model.name_or_path, **settings)
        self.qa_generator = QAGenerator(self.model, self.tokenizer, **self._settings)
        self._check = check
        self.chain = checked_chain(self.qa_generator, **check)
        chosen_by_default = _DEFAULT_MODEL_CHOSEN.get()
        _DEFAULT_MODEL_CHOSEN.set(False)
        if route_languages is None:  # no model given: route, as qgen generate does
            route_languages = chosen_by_default and is_shipped_english(self.model.name_or_path)
        self.router = None
        if route_languages:
            self.router = shipped_router(
                device=str(self.device), on_missing=logger.warning, **settings
            )
            self.router.generators[model_language(self.model) or "en"] = self.qa_generator
        self._chains = {}  # per routed language: its check, built with its generator

    def _generator_for_call(
        self, overrides: dict[str, Any], base: QAGenerator | None = None
    ) -> QAGenerator:
        """A generator with the settings of ``base`` (default: this pipeline's) and a call's
        ``overrides``."""
        if base is None or base is self.qa_generator:
            base, settings = self.qa_generator, dict(self._settings)
        else:
            settings = generator_kwargs(base.model.name_or_path, **self._user_settings)
        if "preset" in overrides:  # a preset replaces both stage configs, as in generator_kwargs
            settings.pop("answer_config", None)
            settings.pop("question_config", None)
        return QAGenerator(base.model, base.tokenizer, **{**settings, **overrides})

    def _language_of(self, passage: str) -> str | None:
        """The language a passage is routed to (None without routing)."""
        return None if self.router is None else self.router.language(passage)

    def _routed(self, language: str | None, overrides: dict[str, Any] | None) -> QAGenerator:
        """The generator of a routed language (this pipeline's without routing), built for a
        call's ``overrides`` when it gives some."""
        base = self.qa_generator if language is None else self.router.generator(language)
        return self._generator_for_call(overrides, base) if overrides else base

    def _chain_of(self, language: str | None):
        """The check of a routed language's passages (this pipeline's without routing)."""
        generator = self._routed(language, None)
        if generator is self.qa_generator:
            return self.chain
        if language not in self._chains:
            self._chains[language] = checked_chain(generator, **self._check)
        return self._chains[language]

    def _sanitize_parameters(self, **kwargs):
        late = sorted(set(kwargs) & set(_CHECK_ARGS))
        if late:
            raise TypeError(
                f"{late} are set at construction: transformers.pipeline('qa-generation', "
                f"model, {late[0]}=...)"
            )
        unknown = sorted(set(kwargs) - set(_GENERATOR_ARGS) - set(_CALL_ARGS))
        if unknown:
            raise TypeError(
                f"unknown qa-generation argument(s) {unknown}; known: "
                f"{sorted(_GENERATOR_ARGS + _CALL_ARGS)}"
            )
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        # fresh per call: the base class calls this in __init__ and at every __call__
        preprocess: dict[str, Any] = {"counter": _InputCounter()}
        forward: dict[str, Any] = {"carry": _Carry()}
        postprocess: dict[str, Any] = {}
        overrides = {k: kwargs[k] for k in _GENERATOR_ARGS if k in kwargs}
        if overrides:  # only at call time: __init__ takes these before the base class sees them
            generators = _CallGenerators(self, overrides)
            preprocess["qa_generator"] = forward["qa_generator"] = generators
        if "num_pairs" in kwargs:
            if kwargs["num_pairs"] < 1:
                raise ValueError(f"num_pairs must be >= 1, got num_pairs={kwargs['num_pairs']}")
            forward["num_pairs"] = postprocess["num_pairs"] = kwargs["num_pairs"]
        for name in ("seed", "keep_non_span_answers"):
            if name in kwargs:
                forward[name] = kwargs[name]
        return preprocess, forward, postprocess

    def _generator(self, language: str | None, call: _CallGenerators | None) -> QAGenerator:
        return call.of(language) if call is not None else self._routed(language, None)

    def preprocess(
        self,
        passage: str,
        counter: _InputCounter | None = None,
        qa_generator: _CallGenerators | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Check one passage and yield its windows, one model input each, shortest first.

        Each input is ``{"window", "passage", "language", "is_first", "is_last"}``
        (``language``: the language the passage is routed to, None without routing). A
        passage of which the tokenizer keeps nothing yields one input with ``window=None`` (no
        pairs), so every passage still gets its output.
        """
        index = 0
        if counter is not None:
            index, counter.seen = counter.seen, counter.seen + 1
        passage = check_passage(passage, f"inputs[{index}]")
        language = self._language_of(passage)
        generator = self._generator(language, qa_generator)
        if language is None:
            self._warn_language(passage, generator, index)
        windows = generator.prepare_windows(passage) or [None]
        for i, window in enumerate(windows):
            yield {
                "window": window,
                "passage": passage,
                "language": language,
                "is_first": i == 0,
                "is_last": i == len(windows) - 1,
            }

    def _warn_language(self, passage: str, generator: QAGenerator, index: int) -> None:
        """One warning per pipeline when a passage is not in the language its model was
        trained for (the model's config says; ``qgen_language``), instead of silence."""
        trained = model_language(generator.model)
        if trained is None or getattr(self, "_warned_language", False):
            return
        language = detect_language(passage)
        if language != trained:
            self._warned_language = True
            logger.warning(
                "inputs[%d] looks %s, but this model was trained for %s: its pairs will not "
                "be in the passage's language; use that language's model (e.g. "
                "QAGenerator.from_pretrained(%r)), or qgen.generate_dataset / qgen generate "
                "without a model, which route each passage by language (warned once)",
                index, LANGUAGE_NAMES.get(language, language),
                LANGUAGE_NAMES.get(trained, trained), language,
            )  # fmt: skip

    def _forward(
        self,
        model_inputs: dict[str, Any],
        carry: _Carry,
        num_pairs: int | None = None,
        seed: int | None = None,
        keep_non_span_answers: bool = False,
        qa_generator: _CallGenerators | None = None,
    ) -> dict[str, Any]:
        """Both stages for a batch of windows (`QAGenerator.generate_batch`; with routing, one
        call per language in the batch, each with its language's generator and check).

        With ``batch_size`` 1 the base class gives one input's fields as they are, otherwise
        one list per field. Returns per window ``{"pairs", "language", "is_last"}`` in the
        same layout; the pairs the batch found for a passage go with its last window in the
        batch (so that `postprocess`, reading a passage's windows in order, sees them in the
        order found).
        """
        batched = isinstance(model_inputs["is_last"], list)
        rows = model_inputs if batched else {k: [v] for k, v in model_inputs.items()}
        first = self._generator(rows["language"][0], qa_generator)
        if rows["is_first"][0]:  # the batch starts with a passage: a fresh stream
            carry.generator = None
            if seed is not None:
                carry.generator = torch.Generator(device=first.device).manual_seed(seed)
            carry.asked = set()
        owner: list[int] = []  # per row, the index of its passage in `passages`
        passages: list[str] = []
        for is_first, passage in zip(rows["is_first"], rows["passage"]):
            if is_first or not passages:
                passages.append(passage)
            owner.append(len(passages) - 1)
        by_language: dict[str | None, list] = {}
        for w, p, language in zip(rows["window"], owner, rows["language"]):
            if w is not None:
                by_language.setdefault(language, []).append(dataclasses.replace(w, passage=p))
        asked = {0: carry.asked}  # the first passage may have begun in the previous batch
        found = {}
        for language, windows in by_language.items():
            generator = self._generator(language, qa_generator)
            wanted = generator.num_pairs if num_pairs is None else num_pairs
            windows.sort(key=lambda w: len(w.source))  # as generate: same draws for the same batch
            check = {}
            chain = self._chain_of(language)
            if chain is not None:  # the chain's check, inside generation
                check = chain.generation_check(Counter())
                check["candidates"] = max(check["candidates"] or 0, wanted)
            found.update(
                generator.generate_batch(
                    windows, passages, wanted, carry.generator, keep_non_span_answers, asked,
                    **check,
                )
            )  # fmt: skip
        carry.asked = asked.setdefault(len(passages) - 1, set())  # may go on in the next batch
        last_row = {p: r for r, p in enumerate(owner)}
        pairs = [found.get(p, []) if last_row[p] == r else [] for r, p in enumerate(owner)]
        outputs = {"pairs": pairs, "language": rows["language"], "is_last": rows["is_last"]}
        return outputs if batched else {k: v[0] for k, v in outputs.items()}

    def postprocess(
        self, model_outputs: list[dict[str, Any]], num_pairs: int | None = None
    ) -> list[dict[str, Any]]:
        """One passage: its windows' pairs merged by answer (the best-scoring kept), sorted by
        score and cut to ``num_pairs``; with the check, the best ``num_pairs`` that passed it
        (`DatasetChain.select`). With routing, each pair carries the passage's ``language``."""
        language = model_outputs[0]["language"]
        generator = self._routed(language, None)
        num_pairs = generator.num_pairs if num_pairs is None else num_pairs
        pairs = merge_pairs([pair for row in model_outputs for pair in row["pairs"]])
        chain = self._chain_of(language)
        pairs = chain.select(pairs, num_pairs=num_pairs) if chain is not None else pairs[:num_pairs]
        if language is not None:
            pairs = [{**p, "language": language} for p in pairs]
        return pairs


class _CallGenerators:
    """The generators of one call that overrides settings: this pipeline's, and each routed
    language's, built with the call's overrides on first use."""

    def __init__(self, pipeline: QAGenerationPipeline, overrides: dict[str, Any]):
        self.pipeline, self.overrides = pipeline, overrides
        self.built: dict[str | None, QAGenerator] = {}

    def of(self, language: str | None) -> QAGenerator:
        if language not in self.built:
            self.built[language] = self.pipeline._routed(language, self.overrides)
        return self.built[language]
