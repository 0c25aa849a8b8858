"""Answer-then-question generation with a trained `UniLMForQAGeneration` (Su 2020, https://kexue.fm/archives/7630).

Stage 1 samples an answer from ``[CLS] passage [SEP]`` until ``[SEP]`` (default: consistent
nucleus sampling, top-p 0.95), constrained by default to spans of the passage that start and end
at word boundaries (`decoding.SpanConstraintProcessor`); stage 2 appends the answer *with its*
``[SEP]`` and decodes the question deterministically (default: beam search, 5 beams, no length
normalisation) until the next ``[SEP]``. More answers than ``num_pairs`` are sampled per passage
in one batched call (rows expanded by the decoder); they are located in the original passage
text, duplicates merged, and the first ``num_pairs`` distinct ones go on to the question stage;
where a question does not end or repeats one already asked about the passage, the next distinct
answer gets a turn (one more round).
Passages longer than the source budget are split into overlapping windows. Both stages run
through `decoding.decode` with the cached `UniLMStepModel`.

Su's two published settings are in `qgen.generation.presets.PRESETS`: ``"su-2020-07"`` (the post's
examples: top-k 5 sampling, beam 5) and ``"su-2020-11"`` (the script from Nov 2020 on: top-p
0.95, greedy). The default is top-p 0.95 (consistent) + beam 5.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from decoding import (
    DecodingConfig,
    FirstTokensWithoutReplacement,
    SpanConstraintProcessor,
    decode,
    word_boundaries,
)
from qgen.generation.answers import (
    answer_prior,
    join_cjk,
    locate_answer,
    locate_tokens,
    merge_pairs,
)
from qgen.generation.config import QAGenerationConfig, generator_kwargs
from qgen.generation.filters import normalize_question
from qgen.generation.presets import PRESETS, default_answer_config, default_question_config
from qgen.io.corpus import check_passages
from qgen.modeling.inputs import encode_source, passage_windows, special_token_ids
from qgen.modeling.precision import resolve_autocast_dtype
from qgen.modeling.pretrained import load_model
from qgen.modeling.step import PrefilledStepModel, UniLMState, UniLMStepModel

__all__ = ["PairCheck", "QAGenerator"]

# ``check(passage, kept, new) -> passing``: which of a window's new pairs to keep, given the
# pairs its passage kept before (see `QAGenerator.generate`)
PairCheck = Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], list[dict[str, Any]]]


# ----------------------------------------------------------------- decoding plumbing


@dataclasses.dataclass
class _Window:
    """One source row: a window of passage ``passage`` with its ids and char offsets."""

    passage: int
    span: tuple[int, int]
    source: list[int]  # [CLS] window [SEP] (+ answer [SEP] for qg)
    window_ids: list[int] = dataclasses.field(default_factory=list)
    offsets: list[tuple[int, int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Answer:
    """A stage-1 answer of window ``window`` (an index into the decoded chunk)."""

    window: int
    ids: list[int]
    text: str  # decoded (lower-cased by uncased tokenizers)
    span: tuple[int, int] | None  # character span in the passage; None: not a span
    score: float  # summed log-probability, [SEP] included
    length: int  # generated tokens, [SEP] included

    def pair(self, question: str, score: float, passage: str) -> dict[str, Any]:
        """The output pair: the answer as written in the passage, and its offset (-1: none);
        ``answer_score`` is the answer stage's own mean log-probability per token."""
        answer_score = self.score / max(self.length, 1)
        if self.span is None:
            return {
                "question": question, "answer": self.text, "answer_start": -1, "score": score,
                "answer_score": answer_score,
            }  # fmt: skip
        start, end = self.span
        return {
            "question": question,
            "answer": passage[start:end],
            "answer_start": start,
            "score": score,
            "answer_score": answer_score,
        }


@dataclasses.dataclass
class _Batch:
    """Padded sources and, with the cache, their encoded state."""

    step_model: UniLMStepModel
    ids: torch.Tensor
    mask: torch.Tensor
    tt: torch.Tensor
    state: UniLMState | None


@dataclasses.dataclass
class _Drawn:
    """What the answer draws of one window took: answers (spans, or token ids when not a span)
    and the tokens they started with."""

    answers: set = dataclasses.field(default_factory=set)
    first_tokens: set[int] = dataclasses.field(default_factory=set)


class _AvoidFirstTokens:
    """At the first answer step, move the tokens a window's earlier draws started with below
    every other token it may start with (they keep their order among themselves), so that a
    new draw (without replacement, `FirstTokensWithoutReplacement`) starts new answers first.

    Args:
        prompt_length: width of the prompt (the first step is when ``input_ids`` has it).
        group_size: rows per window.
        avoid: per window, the token ids to move down.
    """

    PUSH = 1e4  # far below any likely token, finite: never turns a row into all -inf

    def __init__(self, prompt_length: int, group_size: int, avoid: list[set[int]]):
        self.prompt_length, self.group_size = prompt_length, group_size
        self.rows = [(i, sorted(ids)) for i, ids in enumerate(avoid) if ids]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] != self.prompt_length:
            return scores
        scores = scores.clone()
        for i, ids in self.rows:
            rows = slice(i * self.group_size, (i + 1) * self.group_size)
            index = torch.tensor(ids, device=scores.device)
            scores[rows, index] = scores[rows, index] - self.PUSH
        return scores


@dataclasses.dataclass(frozen=True)
class _Asking:
    """How many questions stage 2 asks per window, and which pairs count."""

    num_pairs: int  # pairs wanted per window
    first: int  # questions asked in the first round (>= num_pairs: over-generation)
    check: PairCheck | None
    rounds: int

    def again(self, short: int) -> int:
        """Questions to ask in the next round for a window ``short`` pairs short (scaled by
        the over-generation ratio)."""
        return 0 if short <= 0 else math.ceil(short * self.first / self.num_pairs)


def _answer_text(answer: _Answer, passages: Sequence[str], windows) -> str:
    """The answer as written in its passage (as decoded when it is not a span)."""
    if answer.span is None:
        return answer.text
    return passages[windows[answer.window].passage][answer.span[0] : answer.span[1]]


def _rank_answers(answers: list[_Answer], passages: Sequence[str], windows) -> list[_Answer]:
    """Each window's answers, best first by `answer_prior` (the answer's shape) plus the answer
    stage's own mean log-probability; answers the prior rules out (punctuation only) go."""
    ranked = []
    for answer in answers:
        prior = answer_prior(_answer_text(answer, passages, windows))
        if prior is None:
            continue
        ranked.append((answer.window, -(prior + answer.score / max(answer.length, 1)), answer))
    ranked.sort(key=lambda t: (t[0], t[1]))  # stable: ties keep sampling order
    return [a for _, _, a in ranked]


def _in_eval_mode(method):
    """Run a generation method without dropout (and under autocast when the generator's
    ``autocast_dtype`` resolves to one on its device); a model that was training is put back."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        dtype = self.compute_dtype
        try:
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                return method(self, *args, **kwargs)
        finally:
            self.model.train(was_training)

    return wrapper


# ----------------------------------------------------------------- the generator


class QAGenerator:
    """Generate question-answer pairs (task ``qag``) or questions (``qg`` / ``sentence-qg``).

    Args:
        model: a trained `UniLMForQAGeneration`.
        tokenizer: its (fast) tokenizer.
        answer_config: stage-1 decoding (default `default_answer_config`); its end token is set
            to the tokenizer's sep when it has none.
        question_config: stage-2 decoding (default `default_question_config`).
        preset: instead of the two configs, a name in ``PRESETS``.
        max_source_length: tokens of ``[CLS] passage [SEP]`` (plus the answer for ``qg``);
            longer passages are split into windows. Source + both stages must fit in the
            model's ``max_position_embeddings``.
        window_stride: tokens shared by consecutive windows.
        use_cache: decode with the KV cache (False: re-encode every step; slow).
        seed: seed for stage-1 sampling (one generator for the whole call), or None.
        constrain_answers: stage 1 may only write spans of the passage window that start and
            end at word boundaries (default). False: Su's unconstrained sampling; answers that
            are not spans are then dropped unless ``keep_non_span_answers``.
        answer_candidates: answers sampled per passage window for ``num_pairs`` pairs, as a
            multiple of ``num_pairs`` (default 2): duplicates are merged and the first
            ``num_pairs`` distinct answers asked about, the rest kept in reserve for questions
            that repeat or do not end, so that agreeing samples do not leave a passage with
            fewer pairs than it holds answers.
        num_pairs: the default of `generate`'s ``num_pairs``.
        autocast_dtype: run generation under ``torch.autocast`` with this dtype:
            ``"auto"`` (the default) is bf16 where the model's device computes bf16 natively
            (CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX; about 1.5-2x faster, same
            quality within noise: docs/results.md) and fp32 elsewhere or for an int8 model;
            ``"bf16"`` / ``torch.bfloat16`` always; ``"fp32"`` / None: the model's own dtype.
        rank_answers: before the question stage, order each window's sampled answers by
            `answer_prior` (SQuAD's answer lengths, no clause or dangling function word) plus
            their own mean log-probability, instead of sampling order; punctuation-only
            answers go.
        max_decode_rows: the most rows one decoding call sees (sources times beams or
            samples): bounds the memory of both stages; larger batches are split.
        task: the task the model was trained for (default: ``model.config.qgen_task``). With
            ``"qag"``, `generate_questions` given answers puts each answer where the model
            wrote its own (``[CLS] passage [SEP] | answer [SEP]``) and decodes the question
            after it (stage 2 given the answer); otherwise the answer goes into the source
            (task ``qg``).

    `QAGenerator.from_pretrained(path)` loads a model directory with its saved decoding settings
    (``qa_generation_config.json``); without a path, the English model that ships with qgen.
    """

    def __init__(
        self,
        model,
        tokenizer,
        answer_config: DecodingConfig | None = None,
        question_config: DecodingConfig | None = None,
        preset: str | None = None,
        max_source_length: int = 320,
        window_stride: int = 64,
        use_cache: bool = True,
        seed: int | None = None,
        constrain_answers: bool = True,
        answer_candidates: float = 2.0,
        num_pairs: int = 3,
        task: str | None = None,
        autocast_dtype: torch.dtype | str | None = "auto",
        rank_answers: bool = False,
        max_decode_rows: int = 48,
    ):
        if answer_candidates < 1:
            raise ValueError(
                f"answer_candidates must be >= 1, got answer_candidates={answer_candidates}"
            )
        if num_pairs < 1:
            raise ValueError(f"num_pairs must be >= 1, got num_pairs={num_pairs}")
        if max_decode_rows < 1:
            raise ValueError(f"max_decode_rows must be >= 1, got max_decode_rows={max_decode_rows}")
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
            answer_config = answer_config or PRESETS[preset][0]
            question_config = question_config or PRESETS[preset][1]
        self.model = model
        self.tokenizer = tokenizer
        self.cls_id, self.sep_id = special_token_ids(tokenizer)
        if tokenizer.pad_token_id is None:
            raise ValueError(f"tokenizer {type(tokenizer).__name__} has no pad token")
        self.answer_config = self._with_sep(answer_config or default_answer_config())
        self.question_config = self._with_sep(question_config or default_question_config())
        if self.question_config.num_return_sequences != 1:
            raise ValueError(
                "question_config.num_return_sequences must be 1 (one question per answer)"
            )
        limit = model.config.max_position_embeddings
        need = (
            max_source_length
            + self.answer_config.max_new_tokens
            + self.question_config.max_new_tokens
        )
        if need > limit:
            raise ValueError(
                f"max_source_length={max_source_length} + answer/question max_new_tokens "
                f"({self.answer_config.max_new_tokens}+{self.question_config.max_new_tokens}) = {need} "
                f"exceeds the model's max_position_embeddings={limit}"
            )
        if not 0 <= window_stride < max_source_length - 2:
            raise ValueError(
                f"window_stride must be in [0, max_source_length - 2), got window_stride={window_stride}"
            )
        self.max_source_length = max_source_length
        self.window_stride = window_stride
        self.use_cache = use_cache
        self.seed = seed
        self.constrain_answers = constrain_answers
        self.answer_candidates = answer_candidates
        self.num_pairs = num_pairs
        resolve_autocast_dtype(autocast_dtype, "cpu")  # a bad value fails here, not at generation
        self.autocast_dtype = autocast_dtype
        self.task = task or getattr(model.config, "qgen_task", None)
        self.rank_answers = rank_answers
        self.max_decode_rows = max_decode_rows

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, device: str | None = None, **kwargs: Any
    ) -> QAGenerator:
        """Load a qgen model directory with its saved decoding settings.

        Args:
            path: a qgen model directory; None: the English model that ships with qgen.
            device: ``"cpu"`` / ``"cuda"`` (default: CUDA when available).
            **kwargs: `QAGenerator` arguments; each replaces the saved setting (a ``preset``
                replaces both saved stage configs).

        Raises:
            qgen.modeling.pretrained.QGenModelError: the directory is missing, damaged or not a qgen
                model.
        """
        model, tokenizer = load_model(path, device)
        return cls(model, tokenizer, **generator_kwargs(model.name_or_path, **kwargs))

    @property
    def generation_config(self) -> QAGenerationConfig:
        """The settings of this generator, as saved by `save_pretrained`."""
        return QAGenerationConfig(
            answer=self.answer_config,
            question=self.question_config,
            constrain_answers=self.constrain_answers,
            answer_candidates=self.answer_candidates,
            num_pairs=self.num_pairs,
            max_source_length=self.max_source_length,
            window_stride=self.window_stride,
            rank_answers=self.rank_answers,
        )

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Save the model, its tokenizer and these decoding settings into ``directory``."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        self.generation_config.save_pretrained(directory)

    def _with_sep(self, config: DecodingConfig) -> DecodingConfig:
        if config.eos_token_id is None:
            config = dataclasses.replace(config, eos_token_id=self.sep_id)
        return config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def compute_dtype(self) -> torch.dtype | None:
        """The autocast dtype generation runs under on the model's current device (None: the
        model's own dtype); see ``autocast_dtype``."""
        return resolve_autocast_dtype(self.autocast_dtype, self.device, self.model)

    # ------------------------------------------------------------------ batching helpers
    def _pad(self, rows: list[list[int]], types: list[list[int]]) -> tuple[torch.Tensor, ...]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        tt = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (r, t) in enumerate(zip(rows, types)):
            ids[i, : len(r)] = torch.tensor(r)
            tt[i, : len(t)] = torch.tensor(t)
            mask[i, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device), tt.to(self.device)

    def _encode(self, sources: list[list[int]]) -> _Batch:
        """Pad the sources; with the cache, also encode them once (the state every stage and
        every answer of a source starts from)."""
        ids, mask, tt = self._pad(sources, [[0] * len(s) for s in sources])
        step_model = UniLMStepModel(self.model, use_cache=self.use_cache)
        state = None
        if self.use_cache:
            with torch.no_grad():
                state = step_model.start(ids, attention_mask=mask, token_type_ids=tt)
        return _Batch(step_model, ids, mask, tt, state)

    def _decode(
        self,
        batch: _Batch,
        config: DecodingConfig,
        rows: list[int] | None = None,
        prefixes: list[list[int]] | None = None,
        generator: torch.Generator | None = None,
        logits_processor: list | None = None,
    ) -> list[tuple[list[int], float, int, bool]]:
        """Decode one target per (expanded) row: ``[CLS] src [SEP] <pad> prefix`` -> tokens.

        Args:
            batch: the encoded sources.
            config: decoding settings.
            rows: which sources to continue (default: all, in order); may repeat.
            prefixes: per row, target tokens to read first (the answer + [SEP] in stage 2).
            generator: random generator for sampling.
            logits_processor: extra processors (the answer-span constraint), called with the
                padded prompt of width ``batch.ids.shape[1]`` (+ the prefixes' width).

        Returns:
            Per output row (grouped by input row), ``(ids before the end token, sum logp,
            length, finished)``.
        """
        index = torch.arange(batch.ids.shape[0]) if rows is None else torch.tensor(rows)
        index = index.to(self.device)
        ids, mask, tt = (x.index_select(0, index) for x in (batch.ids, batch.mask, batch.tt))
        state = None
        if batch.state is not None:  # a private copy: decode updates its state in place
            state = dataclasses.replace(batch.state)  # reorder gives it its own cache
            state = batch.step_model.reorder(state, index)
        if prefixes is not None:
            pre_ids, pre_mask, pre_tt = self._pad(prefixes, [[1] * len(p) for p in prefixes])
            ids, mask, tt = (
                torch.cat(x, dim=1) for x in ((ids, pre_ids), (mask, pre_mask), (tt, pre_tt))
            )
            if state is not None:
                with torch.no_grad():
                    state = batch.step_model.extend(state, pre_ids, pre_mask, pre_tt)
        if generator is not None:
            config = dataclasses.replace(config, generator=generator)
        if config.inference_mode and torch.is_autocast_enabled(self.device.type):
            # autocast keeps its bf16 copies of the weights only outside inference mode; inside
            # it every linear layer casts its weights again at every step (about 1.3x slower)
            config = dataclasses.replace(config, inference_mode=False)
        model = batch.step_model if state is None else PrefilledStepModel(batch.step_model, state)
        with torch.no_grad():
            out = decode(
                model,
                ids,
                config,
                attention_mask=mask,
                token_type_ids=tt,
                logits_processor=logits_processor or (),
            )
        width = ids.shape[1]
        results = []
        for row, score, length, finished in zip(
            out.sequences[:, width:].tolist(),
            out.scores.tolist(),
            out.lengths.tolist(),
            out.finished.tolist(),
        ):
            tokens = row[:length]
            if finished and tokens and tokens[-1] in config.eos_token_ids:
                tokens = tokens[:-1]
            results.append((tokens, score, length, bool(finished)))
        return results

    def _windows(self, passage: str, index: int) -> list[_Window]:
        """The passage's source windows, from one tokenizer call (windows without a token,
        e.g. of characters the tokenizer drops, are skipped)."""
        budget = self.max_source_length - 2
        return [
            _Window(
                index,
                (offsets[0][0], offsets[-1][1]),
                [self.cls_id, *ids, self.sep_id],
                ids,
                offsets,
            )
            for ids, offsets in passage_windows(passage, self.tokenizer, budget, self.window_stride)
            if ids
        ]

    def _decode_text(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=True
        )
        return join_cjk(text)

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(self.seed)

    # ------------------------------------------------------------------ public API
    @_in_eval_mode
    def generate(
        self,
        passages: Sequence[str],
        num_pairs: int | None = None,
        batch_size: int = 8,
        keep_non_span_answers: bool = False,
        candidates: int | None = None,
        check: PairCheck | None = None,
        rounds: int = 2,
    ) -> list[list[dict[str, Any]]]:
        """Generate question-answer pairs for each passage.

        Args:
            passages: the passages (non-empty strings).
            num_pairs: pairs wanted per passage (default: the generator's ``num_pairs``, 3
                unless set or saved otherwise). ``answer_candidates * num_pairs`` answers are
                sampled per passage window; after merging identical answers and dropping
                unfinished (and, unconstrained, non-span) ones, the first ``num_pairs`` get a
                question, and at most ``num_pairs`` pairs per passage are returned (the
                best-scoring).
            batch_size: passage windows per decoding call (each expands to the sampled answers
                in stage 1 and ``num_beams`` rows per answer in stage 2). The windows of all
                ``passages`` are batched by length, so a longer list pads less.
            keep_non_span_answers: keep answers that are not a span of the passage (with
                ``answer_start=-1``); only unconstrained answers (``constrain_answers=False``)
                can be such.
            candidates: over-generate: the first round asks this many questions per window
                (>= ``num_pairs``; default ``num_pairs``), and ``answer_candidates *
                candidates`` answers are sampled.
            check: ``check(passage, kept, new) -> passing`` (e.g. a round trip): called after
                each round with a window's new pairs and the pairs its passage already kept;
                only passing pairs count towards ``num_pairs``, and a window short of them asks
                again (the shortfall times ``candidates / num_pairs``) in the next round.
                With a check, every passing pair is returned (the caller selects).
            rounds: question rounds at most (a round re-asks for windows whose questions did
                not end, repeated one, or failed the check).

        Returns:
            Per passage, a list of ``{"question", "answer", "answer_start", "score",
            "answer_score"}`` sorted by score: ``answer`` as written in the passage,
            ``answer_start`` its character offset, ``score`` the mean log-probability per
            generated token over both stages ([SEP]s included; higher is better, at most 0),
            ``answer_score`` that of the answer stage alone.
        """
        num_pairs = self.num_pairs if num_pairs is None else num_pairs
        if num_pairs < 1:
            raise ValueError(f"num_pairs must be >= 1, got num_pairs={num_pairs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size}")
        if candidates is not None and candidates < num_pairs:
            raise ValueError(
                f"candidates must be >= num_pairs, got candidates={candidates}, "
                f"num_pairs={num_pairs}"
            )
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got rounds={rounds}")
        passages = check_passages(passages)
        windows = [w for i, p in enumerate(passages) for w in self._windows(p, i)]
        # windows of similar length share a batch: less padding in both stages (a stable sort,
        # so the batches are a fixed function of the input)
        windows.sort(key=lambda w: len(w.source))
        generator = self._generator()
        pairs: list[list[dict[str, Any]]] = [[] for _ in passages]
        asked: dict[int, set[str]] = {}  # normalised questions per passage, over all its windows
        for b in range(0, len(windows), batch_size):
            chunk = windows[b : b + batch_size]
            found = self.generate_batch(
                chunk, passages, num_pairs, generator, keep_non_span_answers, asked,
                candidates, check, rounds, kept=pairs,
            )  # fmt: skip
            for passage, new in found.items():
                pairs[passage].extend(new)
        limit = num_pairs if check is None else None
        return [merge_pairs(p)[:limit] for p in pairs]

    # ------------------------------------------------------------------ hooks for the pipeline
    def prepare_windows(self, passage: str) -> list[_Window]:
        """The source windows of one passage, in the order `generate` decodes them (shortest
        first, a stable sort); each window's ``passage`` index is 0 (see `generate_batch`)."""
        return sorted(self._windows(passage, 0), key=lambda w: len(w.source))

    @_in_eval_mode
    def generate_batch(
        self,
        windows: list[_Window],
        passages: Sequence[str],
        num_pairs: int,
        generator: torch.Generator | None = None,
        keep_non_span_answers: bool = False,
        asked: dict[int, set[str]] | None = None,
        candidates: int | None = None,
        check: PairCheck | None = None,
        rounds: int = 2,
        kept: Sequence[list[dict[str, Any]]] | dict[int, list[dict[str, Any]]] | None = None,
    ) -> dict[int, list[dict[str, Any]]]:
        """Both stages for one decoding batch of windows: what `generate` does per batch.

        Args:
            windows: the batch, in decoding order (from `prepare_windows`, each window's
                ``passage`` set to its index in ``passages``).
            passages: the passages the windows index.
            num_pairs: pairs wanted per passage.
            generator: the random stream of stage-1 sampling (consumed), or None.
            keep_non_span_answers: as in `generate`.
            asked: per passage index, the normalised questions already asked about it in
                earlier batches (updated); a repeat gives the window's next answer a turn.
            candidates, check, rounds: over-generation and the check, as in `generate`.
            kept: per passage index, the pairs earlier batches found (what a check sees as
                already kept).

        Returns:
            Per passage index of the batch, its pairs in the order found, not merged
            (`merge_pairs` over all batches and cutting to ``num_pairs`` gives `generate`'s
            result).
        """
        ask = _Asking(num_pairs, candidates or num_pairs, check, rounds)
        found: dict[int, list[dict[str, Any]]] = {w.passage: [] for w in windows}
        asked = {} if asked is None else asked
        # stage 1 expands each window to its samples: bound the rows a decoding call sees
        step = max(1, self.max_decode_rows // self._answer_samples(ask.first))
        if len(windows) > step:
            for lo in range(0, len(windows), step):
                earlier = {
                    p: [*(kept[p] if kept is not None else ()), *new] for p, new in found.items()
                }
                part = self.generate_batch(
                    windows[lo : lo + step], passages, num_pairs, generator,
                    keep_non_span_answers, asked, candidates, check, rounds, kept=earlier,
                )  # fmt: skip
                for p, new in part.items():
                    found[p].extend(new)
            return found
        batch = self._encode([w.source for w in windows])
        drawn: dict[int, _Drawn] = {}  # per window: the answers drawn so far, over all draws

        def draw(counts: dict[int, int]) -> list[_Answer]:
            """New usable answers for windows ``counts`` (window -> questions to fill)."""
            answers = self._sample_answers(
                batch, windows, passages, max(counts.values()), generator, list(counts), drawn
            )
            answers = [
                a for a in answers
                if (a.span is not None or keep_non_span_answers)
                and answer_prior(_answer_text(a, passages, windows)) is not None  # not punctuation
            ]  # fmt: skip
            if self.rank_answers:
                answers = _rank_answers(answers, passages, windows)
            return answers

        answers = draw(dict.fromkeys(range(len(windows)), ask.first))
        refill = draw if check is not None else None
        self._ask_until_distinct(batch, windows, answers, passages, found, ask, asked, kept, refill)
        return found

    def _ask_until_distinct(
        self, batch, chunk, answers, passages, pairs, ask: _Asking, asked, kept=None, refill=None
    ) -> None:
        """Stage 2 for the first ``ask.first`` answers of each window; where a question does
        not end, repeats one already asked about the passage (``asked``: per passage, in any
        of its windows) or fails ``ask.check``, up to ``ask.rounds`` rounds with the window's
        next answers until it has ``ask.num_pairs`` pairs. Appends the pairs to ``pairs`` (per
        passage). ``refill(counts) -> answers``, when given, draws new answers for the windows
        whose reserve holds fewer answers than the next round asks about (``counts``: window ->
        questions to ask)."""
        pending: dict[int, list[_Answer]] = {w: [] for w in range(len(chunk))}
        for answer in answers:
            pending[answer.window].append(answer)
        wanted = dict.fromkeys(pending, ask.num_pairs)
        quota = dict.fromkeys(pending, ask.first)  # questions to ask this round
        for round_ in range(ask.rounds):
            short = {w: q for w, q in quota.items() if q > len(pending[w])}
            if refill is not None and round_ > 0 and short:
                for answer in refill(short):
                    pending[answer.window].append(answer)
            todo = [a for w, queue in pending.items() for a in queue[: quota[w]]]
            for w in pending:
                pending[w] = pending[w][quota[w] :]
            new: dict[int, list[dict[str, Any]]] = {}
            for answer, (q_ids, q_score, q_len, q_done) in zip(todo, self._ask(batch, todo)):
                passage = chunk[answer.window].passage
                text = self._decode_text(q_ids)
                key = normalize_question(text)
                if not q_done or not key or key in asked.setdefault(passage, set()):
                    continue
                asked[passage].add(key)
                score = (answer.score + q_score) / (answer.length + q_len)
                new.setdefault(answer.window, []).append(
                    answer.pair(text, score, passages[passage])
                )
            for w, found in new.items():
                passage = chunk[w].passage
                if ask.check is not None:
                    before = [*(kept[passage] if kept is not None else ()), *pairs[passage]]
                    found = ask.check(passages[passage], before, found)
                wanted[w] -= len(found)
                pairs[passage].extend(found)
            quota = {w: ask.again(wanted[w]) for w in pending}
            if not any(quota[w] > 0 and (pending[w] or refill) for w in pending):
                break

    def _sample_answers(
        self,
        batch: _Batch,
        chunk: list[_Window],
        passages: list[str],
        num_pairs: int,
        generator: torch.Generator | None,
        rows: list[int] | None = None,
        drawn: dict[int, _Drawn] | None = None,
    ) -> list[_Answer]:
        """Stage 1: sample ``answer_candidates * num_pairs`` answers for every window of
        ``chunk`` (or the windows ``rows``); the distinct usable ones (by their place in the
        passage when located), in sampling order. ``drawn`` holds, per window, what earlier
        draws took (updated): their answers are not returned again, and their first tokens are
        drawn only after every other likely one, so that a second draw finds new answers."""
        rows = list(range(len(chunk))) if rows is None else rows
        drawn = {} if drawn is None else drawn
        samples = self._answer_samples(num_pairs)
        config = self.answer_config
        beams = max(config.num_beams, samples) if config.strategy == "beam" else config.num_beams
        config = dataclasses.replace(config, num_return_sequences=samples, num_beams=beams)
        windows = [chunk[w] for w in rows]
        width = batch.ids.shape[1]
        processors = []
        if self.constrain_answers:
            bounds = [word_boundaries(passages[w.passage], w.offsets) for w in windows]
            processors.append(
                SpanConstraintProcessor(
                    [w.window_ids for w in windows],
                    prompt_length=width,
                    eos_token_id=config.eos_token_id,
                    starts=[s for s, _ in bounds],
                    ends=[e for _, e in bounds],
                )
            )
        firsts = [drawn[w].first_tokens if w in drawn else set() for w in rows]
        if any(firsts):
            processors.append(_AvoidFirstTokens(width, samples, firsts))
        if config.strategy == "sample" and samples > 1:
            # the samples of a window start with distinct tokens (drawn without replacement), so
            # a peaked answer distribution still yields distinct answers
            processors.append(
                FirstTokensWithoutReplacement(
                    width, samples, top_p=config.top_p, top_k=config.top_k, generator=generator
                )
            )
        decoded = self._decode(
            batch, config, rows=rows, generator=generator, logits_processor=processors or None
        )
        chosen: list[_Answer] = []
        for r, (ids, score, length, finished) in enumerate(decoded):
            w = rows[r // samples]
            if not ids or (not finished and not self.constrain_answers):
                continue  # a constrained answer cut at the length cap is still a span: kept
            window = chunk[w]
            passage = passages[window.passage]
            text = self._decode_text(ids)
            span = locate_tokens(ids, window.window_ids, window.offsets, passage)
            if span is None:
                span = locate_answer(passage, text, window.span)
            key = span if span is not None else tuple(ids)
            taken = drawn.setdefault(w, _Drawn())
            taken.first_tokens.add(ids[0])
            if key in taken.answers or not (text or span):
                continue
            taken.answers.add(key)
            chosen.append(_Answer(w, list(ids), text, span, score, length))
        return chosen

    def _ask(
        self, batch: _Batch, answers: list[_Answer]
    ) -> list[tuple[list[int], float, int, bool]]:
        """Stage 2: decode one question per answer, after ``[CLS] window [SEP] answer [SEP]``."""
        if not answers:
            return []
        # each answer expands to num_beams rows: bound the rows one decoding call sees
        step = max(1, self.max_decode_rows // self._rows_per_source(self.question_config))
        out: list[tuple[list[int], float, int, bool]] = []
        for lo in range(0, len(answers), step):
            chunk = answers[lo : lo + step]
            out += self._decode(
                batch,
                self.question_config,
                rows=[a.window for a in chunk],
                prefixes=[[*a.ids, self.sep_id] for a in chunk],
            )
        return out

    def _answer_samples(self, num_pairs: int) -> int:
        """Answers sampled per window for ``num_pairs`` questions (stage 1's expanded rows)."""
        return max(num_pairs, round(self.answer_candidates * num_pairs))

    @staticmethod
    def _rows_per_source(config: DecodingConfig) -> int:
        beams = config.num_beams if config.strategy == "beam" else 1
        return max(1, beams * config.num_return_sequences)

    @_in_eval_mode
    def generate_questions(
        self,
        passages: Sequence[str],
        answers: Sequence[str | dict[str, Any] | None] | None = None,
        batch_size: int = 16,
    ) -> list[dict[str, Any]]:
        """One question per source with the question-stage decoding (stage 2 settings).

        With ``answers``, a ``qg`` model reads ``[CLS] passage [SEP] answer [SEP]``; a ``qag``
        model (``task="qag"``) reads ``[CLS] passage [SEP]`` and the answer + ``[SEP]`` as the
        start of its target, as if it had written the answer itself (stage 2 given the
        answer); the passage window is chosen to hold the answer. Without answers (task
        ``sentence-qg``, or any passage -> question model) the source is ``[CLS] passage [SEP]``.

        Args:
            passages: passages (or sentences).
            answers: per passage an answer string, a ``{"text", "answer_start"}`` dict, or
                None for all.
            batch_size: sources per decoding call.

        Returns:
            Per source ``{"question", "score"}`` (``score``: mean log-probability per token),
            plus ``"answer"`` and ``"answer_start"`` (-1 when not found) when answers are given.
        """
        passages = check_passages(passages)
        if answers is not None and len(answers) != len(passages):
            raise ValueError(f"got {len(passages)} passages but {len(answers)} answers")
        in_target = answers is not None and self.task == "qag"
        if answers is not None and self.task is None:
            warnings.warn(
                "the model's config has no qgen_task (trained before it was recorded?): the "
                "answers go into the source, as for a 'qg' model; pass task='qag' for a qag "
                "model",
                stacklevel=2,
            )
        sources, prefixes, metas = [], [], []
        for i, passage in enumerate(passages):
            answer = None if answers is None else answers[i]
            if answer is None:
                if in_target:
                    raise ValueError(f"answers[{i}] is None: a qag model needs every answer")
                ids, _ = encode_source(
                    self.tokenizer, passage, None, max_length=self.max_source_length
                )
                sources.append(ids)
                metas.append({})
                continue
            text, start = (
                (answer["text"], answer.get("answer_start"))
                if isinstance(answer, dict)
                else (answer, None)
            )
            if start is None or passage[start : start + len(text)] != text:
                span = locate_answer(passage, text)
            else:
                span = (start, start + len(text))
            ids, _ = encode_source(
                self.tokenizer,
                passage,
                None if in_target else text,
                max_length=self.max_source_length,
                answer_span=span,
            )
            sources.append(ids)
            if in_target:
                answer_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                prefixes.append([*answer_ids[: self.answer_config.max_new_tokens], self.sep_id])
            metas.append({"answer": text, "answer_start": span[0] if span else -1})
        results = []
        for b in range(0, len(sources), batch_size):
            batch = self._encode(sources[b : b + batch_size])
            chunk_prefixes = prefixes[b : b + batch_size] if in_target else None
            for ids, score, length, _ in self._decode(
                batch, self.question_config, prefixes=chunk_prefixes
            ):
                results.append(
                    {"question": self._decode_text(ids), "score": score / max(length, 1)}
                )
        return [{**r, **m} for r, m in zip(results, metas)]
