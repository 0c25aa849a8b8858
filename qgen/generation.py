"""Answer-then-question generation with a trained `UniLMForQAGeneration` (Su 2020, post 7630).

Stage 1 samples an answer from ``[CLS] passage [SEP]`` until ``[SEP]`` (default: consistent
nucleus sampling, top-p 0.95); stage 2 appends the answer *with its* ``[SEP]`` and decodes the
question deterministically (default: beam search, 5 beams, no length normalisation) until the next
``[SEP]``. ``num_pairs`` answers per passage come from one batched call (rows expanded by the
decoder), identical answers are merged before the question stage, and every answer is located in
the original passage text. Passages longer than the source budget are split into overlapping
windows. Both stages run through `decoding.decode` with the cached `UniLMStepModel`.

Su's two published settings are in ``PRESETS``: ``"su-2020-07"`` (the post's examples: top-k 5
sampling, beam 5) and ``"su-2020-11"`` (the script from Nov 2020 on: top-p 0.95, greedy). The
default is top-p 0.95 (consistent) + beam 5.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import torch

from decoding import DecodingConfig, decode

from .data import _tokenize, encode_source, special_token_ids, split_passage
from .fast_decoding import UniLMState, UniLMStepModel

__all__ = [
    "PRESETS",
    "QAGenerator",
    "default_answer_config",
    "default_question_config",
    "join_cjk",
    "locate_answer",
    "merge_pairs",
]

MAX_TARGET_TOKENS = 64  # Su's maxlen for both stages


def default_answer_config(**overrides: Any) -> DecodingConfig:
    """Stage 1: consistent nucleus sampling, top-p 0.95, at least one token, at most 64."""
    kwargs = dict(
        strategy="sample",
        top_p=0.95,
        consistent=True,
        min_new_tokens=1,
        max_new_tokens=MAX_TARGET_TOKENS,
    )
    return DecodingConfig(**{**kwargs, **overrides})


def default_question_config(**overrides: Any) -> DecodingConfig:
    """Stage 2: beam search with 5 beams and no length normalisation (``length_penalty=0``)."""
    kwargs = dict(
        strategy="beam",
        num_beams=5,
        length_penalty=0.0,
        min_new_tokens=1,
        max_new_tokens=MAX_TARGET_TOKENS,
    )
    return DecodingConfig(**{**kwargs, **overrides})


PRESETS: dict[str, tuple[DecodingConfig, DecodingConfig]] = {
    "default": (default_answer_config(), default_question_config()),
    # The version the post shipped with (its examples): random_sample(topk=5), beam_search(topk=5).
    "su-2020-07": (
        default_answer_config(top_p=1.0, top_k=5, consistent=False),
        default_question_config(),
    ),
    # bert4keras HEAD from 2020-11-20: random_sample(topp=0.95), beam_search(topk=1) = greedy.
    "su-2020-11": (
        default_answer_config(consistent=False),
        default_question_config(strategy="greedy", num_beams=1),
    ),
}


# --------------------------------------------------------------------------- answer location

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


def _locate_tokens(
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


# --------------------------------------------------------------------------- generator


@dataclasses.dataclass
class _Window:
    """One source row: a window of passage ``passage`` with its ids and char offsets."""

    passage: int
    span: tuple[int, int]
    source: list[int]  # [CLS] window [SEP] (+ answer [SEP] for qg)
    window_ids: list[int] = dataclasses.field(default_factory=list)
    offsets: list[tuple[int, int]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Batch:
    """Padded sources and, with the cache, their encoded state."""

    step_model: UniLMStepModel
    ids: torch.Tensor
    mask: torch.Tensor
    tt: torch.Tensor
    state: UniLMState | None


class _Prefilled:
    """A step model whose ``start`` hands `decoding.decode` a state that was read already
    (the sources encoded once, answers appended with `UniLMStepModel.extend`)."""

    def __init__(self, step_model: UniLMStepModel, state: UniLMState):
        self.step_model, self.state = step_model, state

    def start(self, input_ids: torch.Tensor, **_: Any) -> UniLMState:
        return self.state

    def step(self, input_ids: torch.Tensor, state: UniLMState):
        return self.step_model.step(input_ids, state)

    def reorder(self, state: UniLMState, index: torch.Tensor) -> UniLMState:
        return self.step_model.reorder(state, index)


def _in_eval_mode(method):
    """Run a generation method without dropout; a model that was training is put back."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was_training = self.model.training
        self.model.eval()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.model.train(was_training)

    return wrapper


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
    ):
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

    def _with_sep(self, config: DecodingConfig) -> DecodingConfig:
        if config.eos_token_id is None:
            config = dataclasses.replace(config, eos_token_id=self.sep_id)
        return config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

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
    ) -> list[tuple[list[int], float, int, bool]]:
        """Decode one target per (expanded) row: ``[CLS] src [SEP] <pad> prefix`` -> tokens.

        Args:
            batch: the encoded sources.
            config: decoding settings.
            rows: which sources to continue (default: all, in order); may repeat.
            prefixes: per row, target tokens to read first (the answer + [SEP] in stage 2).
            generator: random generator for sampling.

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
        model = batch.step_model if state is None else _Prefilled(batch.step_model, state)
        with torch.no_grad():
            out = decode(model, ids, config, attention_mask=mask, token_type_ids=tt)
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
        budget = self.max_source_length - 2
        windows = []
        for start, end in split_passage(passage, self.tokenizer, budget, stride=self.window_stride):
            ids, offsets = _tokenize(self.tokenizer, passage[start:end])
            ids, offsets = ids[:budget], [(s + start, e + start) for s, e in offsets[:budget]]
            windows.append(
                _Window(index, (start, end), [self.cls_id, *ids, self.sep_id], ids, offsets)
            )
        return windows

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
        num_pairs: int = 3,
        batch_size: int = 8,
        keep_non_span_answers: bool = False,
    ) -> list[list[dict[str, Any]]]:
        """Generate question-answer pairs for each passage.

        Args:
            passages: the passages (non-empty strings).
            num_pairs: answers sampled per passage window; after merging identical answers,
                dropping non-span ones and unfinished ones, at most ``num_pairs`` pairs per
                passage are returned (the best-scoring).
            batch_size: passage windows per decoding call (each expands to ``num_pairs`` rows
                in stage 1 and ``num_beams`` rows per distinct answer in stage 2).
            keep_non_span_answers: keep answers that are not a span of the passage (with
                ``answer_start=-1``; Su's model does not constrain answers to spans).

        Returns:
            Per passage, a list of ``{"question", "answer", "answer_start", "score"}`` sorted by
            score: ``answer`` as written in the passage, ``answer_start`` its character offset,
            ``score`` the mean log-probability per generated token over both stages ([SEP]s
            included; higher is better, at most 0).
        """
        if num_pairs < 1:
            raise ValueError(f"num_pairs must be >= 1, got num_pairs={num_pairs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size}")
        passages = list(passages)
        for i, p in enumerate(passages):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"passages[{i}] is empty or not a string: {p!r}")
        windows = [w for i, p in enumerate(passages) for w in self._windows(p, i)]
        config = dataclasses.replace(self.answer_config, num_return_sequences=num_pairs)
        if config.strategy == "beam" and config.num_beams < num_pairs:
            config = dataclasses.replace(config, num_beams=num_pairs)
        generator = self._generator()
        pairs: list[list[dict[str, Any]]] = [[] for _ in passages]
        for b in range(0, len(windows), batch_size):
            chunk = windows[b : b + batch_size]
            batch = self._encode([w.source for w in chunk])
            answers = self._decode(batch, config, generator=generator)
            # Distinct finished answers per window (identical samples decode the same question).
            todo: dict[tuple[int, tuple[int, ...]], tuple[float, int]] = {}
            for r, (ids, score, length, finished) in enumerate(answers):
                key = (r // num_pairs, tuple(ids))
                if finished and ids and key not in todo:
                    todo[key] = (score, length)
            if not todo:
                continue
            keys = list(todo)
            questions = self._decode(
                batch,
                self.question_config,
                rows=[w for w, _ in keys],
                prefixes=[[*ids, self.sep_id] for _, ids in keys],
            )
            for (w, ids), (q_ids, q_score, q_len, q_done) in zip(keys, questions):
                if not q_done or not q_ids:
                    continue
                a_score, a_len = todo[(w, ids)]
                pair = self._pair(
                    chunk[w], list(ids), q_ids, (a_score + q_score) / (a_len + q_len), passages
                )
                if pair is not None and (pair["answer_start"] >= 0 or keep_non_span_answers):
                    pairs[chunk[w].passage].append(pair)
        return [merge_pairs(p)[:num_pairs] for p in pairs]

    def _pair(
        self, window: _Window, answer_ids, question_ids, score, passages
    ) -> dict[str, Any] | None:
        passage = passages[window.passage]
        text = self._decode_text(answer_ids)
        span = _locate_tokens(answer_ids, window.window_ids, window.offsets, passage)
        if span is None:
            span = locate_answer(passage, text, window.span)
        question = self._decode_text(question_ids)
        if not question or not (text or span):
            return None
        if span is None:
            return {"question": question, "answer": text, "answer_start": -1, "score": score}
        return {
            "question": question,
            "answer": passage[span[0] : span[1]],
            "answer_start": span[0],
            "score": score,
        }

    @_in_eval_mode
    def generate_questions(
        self,
        passages: Sequence[str],
        answers: Sequence[str | dict[str, Any] | None] | None = None,
        batch_size: int = 16,
    ) -> list[dict[str, Any]]:
        """One question per source with the question-stage decoding (stage 2 settings).

        With ``answers`` (task ``qg``) the source is ``[CLS] passage [SEP] answer [SEP]``, the
        passage window chosen to hold the answer; without (task ``sentence-qg``, or any
        passage -> question model) it is ``[CLS] passage [SEP]``.

        Args:
            passages: passages (or sentences).
            answers: per passage an answer string, a ``{"text", "answer_start"}`` dict, or
                None for all.
            batch_size: sources per decoding call.

        Returns:
            Per source ``{"question", "score"}`` (``score``: mean log-probability per token),
            plus ``"answer"`` and ``"answer_start"`` (-1 when not found) when answers are given.
        """
        passages = list(passages)
        if answers is not None and len(answers) != len(passages):
            raise ValueError(f"got {len(passages)} passages but {len(answers)} answers")
        sources, metas = [], []
        for i, passage in enumerate(passages):
            if not isinstance(passage, str) or not passage.strip():
                raise ValueError(f"passages[{i}] is empty or not a string: {passage!r}")
            answer = None if answers is None else answers[i]
            if answer is None:
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
                self.tokenizer, passage, text, max_length=self.max_source_length, answer_span=span
            )
            sources.append(ids)
            metas.append({"answer": text, "answer_start": span[0] if span else -1})
        results = []
        for b in range(0, len(sources), batch_size):
            batch = self._encode(sources[b : b + batch_size])
            for ids, score, length, _ in self._decode(batch, self.question_config):
                results.append(
                    {"question": self._decode_text(ids), "score": score / max(length, 1)}
                )
        return [{**r, **m} for r, m in zip(results, metas)]
