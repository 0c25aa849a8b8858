"""Scoring generated questions and QA pairs the way the question-generation literature does.

* :func:`compute_qg_metrics` -- BLEU-1..4, METEOR and ROUGE-L with the coco-caption scorers
  (``pycocoevalcap``), on lower-cased, tokenised text (Du et al. 2017 / ``nqg`` conventions:
  one prediction per source, all gold questions of that source as references). Chinese is
  scored on characters (``tokenize="char"``: each CJK character a token, Latin words and
  numbers whole); :func:`choose_tokenize` picks the mode from the data.
* :class:`QGMetric` -- the same, as an ``evaluate.Metric`` (``.compute(predictions=...,
  references=...)``).
* :func:`answer_validity`, :func:`gold_answer_match` and :func:`diversity` -- for ``qag`` output,
  where there is no single reference: the share of answers that are passage spans, how often a
  generated answer is a gold answer of its paragraph (exact match and token F1 after SQuAD's
  answer normalisation, or over characters for Chinese as CMRC 2018 does), and how many
  distinct pairs and n-grams the generator produces per passage.
* :func:`copy_baseline` -- the scores of questions copied from the text around the answer
  (character n-grams reward copying: read a model's scores against this floor);
  :func:`score_copy_baseline` computes it for a file (``scripts/copy_baseline.py``).
* :func:`evaluate_model` -- generate for a SQuAD-format file with a trained model and score it;
  the ``qgen evaluate`` command (`qgen.cli.evaluate`) runs it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import datasets
import evaluate

from decoding import metrics as decoding_metrics
from decoding.registry import Registry
from qgen.generation.filters import normalize_answer

__all__ = [
    "TOKENIZE_MODES",
    "tokenize_for_eval",
    "cjk_share",
    "choose_tokenize",
    "CJK_SHARE_FOR_CHAR",
    "compute_qg_metrics",
    "QGMetric",
    "answer_validity",
    "gold_answer_match",
    "diversity",
    "answer_tokens",
    "text_distinct_n",
    "COPY_BASELINES",
    "copy_baseline_question",
    "copy_baseline",
    "score_copy_baseline",
    "evaluate_model",
]

# CJK ideographs: the unified block and its extensions A-G, the compatibility blocks, and 〇
_CJK = (
    "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002ebef\U0002f800-\U0002fa1f\U00030000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
# tokenize mode -> the pattern of its tokens, found in the lower-cased text
TOKENIZE_MODES: Registry[re.Pattern[str]] = Registry(
    "tokenize mode",
    {
        # PTB-like word tokens: "don't" -> "do n't", "Paris's" -> "paris 's", punctuation split off.
        "word": re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]"),
        # character level for CJK (each CJK character is a token); Latin words and numbers whole
        # ("3.5", "1,000" too); each punctuation mark a token.
        "char": re.compile(rf"\d+(?:[.,]\d+)+|[{_CJK}]|[^\W{_CJK}]+|[^\w\s]"),
    },
)
_PUNCT_TOKEN = re.compile(r"[^\w\s]")
# the share of CJK characters among the letters above which "auto" scores on characters
CJK_SHARE_FOR_CHAR = 0.5


def tokenize_for_eval(text: str, tokenize: str = "word") -> str:
    """Lower-case and tokenise ``text``; returns the tokens joined by single spaces.

    Args:
        text: a question (or any string).
        tokenize: ``"word"`` (PTB-like, English) or ``"char"`` (CJK characters one by one,
            Latin words and numbers whole, each punctuation mark a token: ``"GPT-2于2019年"``
            -> ``"gpt - 2 于 2019 年"``).
    """
    if tokenize not in TOKENIZE_MODES:
        raise ValueError(f"tokenize={tokenize!r} is not one of {tuple(TOKENIZE_MODES)}")
    return " ".join(TOKENIZE_MODES[tokenize].findall(text.lower()))


def cjk_share(texts: Iterable[str]) -> float:
    """Share of CJK characters among the letters (CJK or not) of ``texts``; 0 without letters."""
    letters = cjk = 0
    for text in texts:
        n = len(_CJK_CHAR.findall(text))
        cjk += n
        letters += n + sum(ch.isalpha() for ch in _CJK_CHAR.sub("", text))
    return cjk / letters if letters else 0.0


def choose_tokenize(texts: Iterable[str], tokenize: str = "auto") -> tuple[str, str]:
    """The tokenize mode for scoring ``texts`` (references and passages), and why.

    Args:
        texts: the evaluation text; read only when ``tokenize="auto"``.
        tokenize: ``"auto"`` (``"char"`` when more than `CJK_SHARE_FOR_CHAR` of the letters
            are CJK, else ``"word"``) or a mode of `TOKENIZE_MODES`, used as given.

    Returns:
        ``(mode, choice)``, e.g. ``("char", "auto: Chinese data (97% of the letters are CJK)")``.
    """
    if tokenize != "auto":
        if tokenize not in TOKENIZE_MODES:
            raise ValueError(f"tokenize={tokenize!r} is not one of {('auto', *TOKENIZE_MODES)}")
        return tokenize, "given"
    share = cjk_share(texts)
    mode = "char" if share > CJK_SHARE_FOR_CHAR else "word"
    data = "Chinese" if mode == "char" else "non-CJK"
    return mode, f"auto: {data} data ({share:.0%} of the letters are CJK)"


def _require_coco():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "qgen.evaluation.metrics needs the coco-caption scorers: pip install 'qgen-toolkit[eval]' "
            "(pycocoevalcap)"
        ) from err
    return Bleu, Rouge


def _meteor_scorer():
    if shutil.which("java") is None:
        raise RuntimeError(
            "METEOR (pycocoevalcap) runs a Java program, but no `java` was found on PATH. "
            "Install a Java runtime (e.g. `apt-get install default-jre`) or score without METEOR "
            "(meteor=False / `qgen evaluate --no_meteor`)."
        )
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def compute_qg_metrics(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    tokenize: str = "word",
    meteor: bool = True,
) -> dict[str, float]:
    """BLEU-1..4, METEOR and ROUGE-L (coco-caption scorers, corpus level, in percent).

    Args:
        predictions: ``N`` generated questions, one per source.
        references: ``N`` gold questions, or ``N`` lists of gold questions (all questions asked
            about the same source, as in Du et al.'s evaluation).
        tokenize: ``"word"`` or ``"char"`` (see :func:`tokenize_for_eval`); text is lower-cased.
        meteor: also compute METEOR (needs Java).

    Returns:
        ``{"bleu_1", ..., "bleu_4", "meteor", "rouge_l", "num_examples"}`` (METEOR only when
        asked); scores in [0, 100].
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references differ in length: {len(predictions)} != {len(references)}"
        )
    if not predictions:
        raise ValueError("predictions is empty: nothing to score")
    Bleu, Rouge = _require_coco()
    res, gts = {}, {}
    for i, (pred, refs) in enumerate(zip(predictions, references)):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(f"references[{i}] is empty")
        res[i] = [tokenize_for_eval(pred, tokenize)]
        gts[i] = [tokenize_for_eval(r, tokenize) for r in refs]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    scores = {f"bleu_{n + 1}": 100.0 * float(b) for n, b in enumerate(bleu)}
    if meteor:
        scorer = _meteor_scorer()
        # the METEOR jar reads lines: keep predictions one line, never empty
        res_m = {k: [v[0].replace("\n", " ") or "."] for k, v in res.items()}
        scores["meteor"] = 100.0 * float(scorer.compute_score(gts, res_m)[0])
        del scorer
    scores["rouge_l"] = 100.0 * float(rouge)
    scores["num_examples"] = len(predictions)
    return scores


class QGMetric(evaluate.Metric):
    """:func:`compute_qg_metrics` as an ``evaluate`` metric.

    Example::

        metric = QGMetric()
        metric.compute(predictions=["what is x ?"], references=[["what is x ?"]], meteor=False)
    """

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="BLEU-1..4, METEOR, ROUGE-L for question generation (coco-caption).",
            citation="Du, Shao and Cardie (2017); Chen et al. (2015) coco-caption.",
            inputs_description="predictions: list of str; references: list of list of str.",
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, tokenize: str = "word", meteor: bool = True):
        return compute_qg_metrics(predictions, references, tokenize=tokenize, meteor=meteor)


def _norm_space(text: str) -> str:
    return " ".join(text.lower().split())


def answer_validity(passages: Sequence[str], answers: Sequence[str]) -> float:
    """Share of answers that are spans of their passage (case- and spacing-insensitive).

    Args:
        passages: one passage per answer.
        answers: the generated answers; an empty answer is never valid.
    """
    if len(passages) != len(answers):
        raise ValueError(
            f"passages and answers differ in length: {len(passages)} != {len(answers)}"
        )
    if not answers:
        return 0.0
    hits = sum(
        bool(a.strip()) and _norm_space(a) in _norm_space(p) for p, a in zip(passages, answers)
    )
    return hits / len(answers)


def answer_tokens(text: str, tokenize: str = "word") -> list[str]:
    """The tokens that gold-answer exact match and F1 compare.

    Args:
        text: an answer.
        tokenize: ``"word"``: SQuAD v1.1's normalisation (`normalize_answer`), split on
            whitespace; ``"char"``: the tokens of :func:`tokenize_for_eval` without punctuation,
            so each CJK character counts alone (CMRC 2018's official script also counts
            characters and drops punctuation: ``"光荣和ω-force。"`` -> ``光 荣 和 ω force``).
    """
    if tokenize == "word":
        return normalize_answer(text).split()
    return [t for t in tokenize_for_eval(text, tokenize).split() if not _PUNCT_TOKEN.fullmatch(t)]


def _overlap_f1(pred: list[str], ref: list[str]) -> float:
    """SQuAD's F1 of two token lists: their multiset overlap (as `token_f1` on words)."""
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def gold_answer_match(
    answers: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], tokenize: str = "word"
) -> dict[str, float]:
    """How often a generated answer is one of the gold answers of its paragraph.

    Args:
        answers: per paragraph, the generated answers.
        gold: per paragraph, every gold answer of its questions.
        tokenize: how answers are compared (:func:`answer_tokens`): ``"word"`` (SQuAD) or
            ``"char"`` (Chinese: characters, as CMRC 2018 does; whitespace-split words would
            make a whole Chinese answer one token).

    Returns:
        ``answer_exact_match``: share of generated answers whose tokens equal those of some
        gold answer of their paragraph; ``answer_f1``: mean over generated answers of the best
        token F1 against those gold answers (both in [0, 1]); ``gold_answers_covered``: share
        of paragraphs' distinct normalised gold answers that some generated answer equals.
    """
    if len(answers) != len(gold):
        raise ValueError(f"answers and gold differ in length: {len(answers)} != {len(gold)}")
    if tokenize not in TOKENIZE_MODES:
        raise ValueError(f"tokenize={tokenize!r} is not one of {tuple(TOKENIZE_MODES)}")
    exact, f1, n, covered, n_gold = 0, 0.0, 0, 0, 0
    for generated, refs in zip(answers, gold):
        ref_tokens = [answer_tokens(g, tokenize) for g in refs]
        refs_norm = {tuple(t) for t in ref_tokens}
        gen_tokens = [answer_tokens(a, tokenize) for a in generated]
        covered += len(refs_norm & {tuple(t) for t in gen_tokens})
        n_gold += len(refs_norm)
        for tokens in gen_tokens:
            n += 1
            exact += tuple(tokens) in refs_norm
            f1 += max((_overlap_f1(tokens, r) for r in ref_tokens), default=0.0)
    return {
        "answer_exact_match": exact / n if n else 0.0,
        "answer_f1": f1 / n if n else 0.0,
        "gold_answers_covered": covered / n_gold if n_gold else 0.0,
    }


def text_distinct_n(texts: Sequence[str], n: int, tokenize: str = "word") -> float:
    """Distinct-n of texts: `decoding.metrics.distinct_n` (which counts token ids: unique
    n-grams / all n-grams, over all texts; 0 when there are none) on the texts' tokens
    (:func:`tokenize_for_eval`), each distinct token mapped to one id."""
    ids: dict[str, int] = {}
    rows = [
        [ids.setdefault(tok, len(ids)) for tok in tokenize_for_eval(text, tokenize).split()]
        for text in texts
    ]
    return decoding_metrics.distinct_n(rows, n)


def diversity(
    pairs_per_passage: Sequence[Sequence[dict]], tokenize: str = "word"
) -> dict[str, float]:
    """Diversity of generated QA pairs.

    Args:
        pairs_per_passage: for each passage, the generated ``{"question", "answer", ...}`` dicts.
        tokenize: for distinct-n (see :func:`tokenize_for_eval`).

    Returns:
        ``pairs_per_passage`` (mean count), ``distinct_questions_per_passage`` and
        ``distinct_answers_per_passage`` (mean number of different lower-cased strings),
        ``distinct_1`` / ``distinct_2`` over all questions.
    """
    n = max(len(pairs_per_passage), 1)
    questions = [p["question"] for pairs in pairs_per_passage for p in pairs]
    return {
        "pairs_per_passage": sum(len(p) for p in pairs_per_passage) / n,
        "distinct_questions_per_passage": sum(
            len({_norm_space(p["question"]) for p in pairs}) for pairs in pairs_per_passage
        )
        / n,
        "distinct_answers_per_passage": sum(
            len({_norm_space(p["answer"]) for p in pairs}) for pairs in pairs_per_passage
        )
        / n,
        "distinct_1": text_distinct_n(questions, 1, tokenize),
        "distinct_2": text_distinct_n(questions, 2, tokenize),
    }


# ----------------------------------------------------------------------------- copy baseline
# Character n-grams reward copying the passage: a question made of the words around the answer
# scores well without asking anything. Each baseline maps (context, answer start, answer end)
# to such a question; its scores are the floor a model's scores should be read against.
_CLAUSE_PUNCT = re.compile(r"[，。！？；：、\n]")
COPY_BASELINES: Registry[Callable[[str, int, int], str]] = Registry("copy baseline language")
_COPY_RECIPES = {
    "zh": "the clause around the answer, answer removed, + 是什么？",
    "en": "the sentence around the answer, answer removed, + ?",
}


@COPY_BASELINES.register("zh")
def _clause_copy(context: str, start: int, end: int) -> str:
    """The clause around the answer (between the nearest ，。！？；：、 or newline on each side),
    the answer removed, + 是什么？"""
    lo = max((m.end() for m in _CLAUSE_PUNCT.finditer(context, 0, start)), default=0)
    after = _CLAUSE_PUNCT.search(context, end)
    hi = after.start() if after else len(context)
    return (context[lo:start] + context[end:hi]).strip() + "是什么？"


@COPY_BASELINES.register("en")
def _sentence_copy(context: str, start: int, end: int) -> str:
    """The sentence around the answer, the answer removed, its end punctuation replaced by ?"""
    from qgen.modeling.inputs import answer_sentence_span

    lo, hi = answer_sentence_span(context, start, end)
    text = " ".join((context[lo:start] + " " + context[end:hi]).split())
    return text.rstrip(" .!?;:") + "?"


def _baseline_language(contexts: Sequence[str]) -> str:
    """``"zh"`` for mostly-CJK passages (as ``tokenize="auto"`` decides), else ``"en"``."""
    return "zh" if cjk_share(dict.fromkeys(contexts)) > CJK_SHARE_FOR_CHAR else "en"


def copy_baseline_question(
    context: str, answer: str, answer_start: int = -1, language: str = "zh"
) -> str:
    """The question a copier asks: the text around the answer without the answer.

    Args:
        context: the passage.
        answer: the answer, a span of ``context``.
        answer_start: its character offset; when ``context`` does not hold ``answer`` there,
            the nearest occurrence is used (and none: the empty clause).
        language: ``"zh"``: the clause around the answer (``，。！？；：、`` and newlines end
            clauses) + 是什么？; ``"en"``: the sentence around the answer + ``?``.

    Example: ``copy_baseline_question("泼水节是傣族的新年，有七百年历史。", "傣族", 4)``
    -> ``"泼水节是的新年是什么？"``.
    """
    make = COPY_BASELINES[language]
    if answer_start < 0 or context[answer_start : answer_start + len(answer)] != answer:
        # as `qgen.io.squad.load_squad` does: the nearest occurrence of the answer
        hits = [m.start() for m in re.finditer(re.escape(answer), context)] if answer else []
        if not hits:
            return make("", 0, 0)
        answer_start = min(hits, key=lambda h: abs(h - answer_start))
    return make(context, answer_start, answer_start + len(answer))


def copy_baseline(
    contexts: Sequence[str],
    answers: Sequence[str],
    answer_starts: Sequence[int],
    references: Sequence[str | Sequence[str]],
    tokenize: str = "char",
    meteor: bool = True,
    language: str | None = None,
) -> dict[str, Any]:
    """Scores of :func:`copy_baseline_question` for answer-aware QG, to report beside a model's.

    Args:
        contexts, answers, answer_starts: the ``N`` sources (passage, answer, offset).
        references: as in :func:`compute_qg_metrics`.
        tokenize: the scoring mode (:func:`tokenize_for_eval`).
        meteor: also compute METEOR (needs Java).
        language: of the questions (`COPY_BASELINES`: ``"zh"``, ``"en"``); None: ``"zh"``
            when more than `CJK_SHARE_FOR_CHAR` of the passages' letters are CJK, else ``"en"``.

    Returns:
        :func:`compute_qg_metrics`'s scores without ``num_examples``, and ``"question"``: how
        the baseline's questions were made.
    """
    if not len(contexts) == len(answers) == len(answer_starts):
        raise ValueError(
            f"contexts, answers and answer_starts differ in length: "
            f"{len(contexts)}, {len(answers)}, {len(answer_starts)}"
        )
    language = language or _baseline_language(contexts)
    questions = [
        copy_baseline_question(c, a, s, language)
        for c, a, s in zip(contexts, answers, answer_starts)
    ]
    scores = compute_qg_metrics(questions, references, tokenize=tokenize, meteor=meteor)
    del scores["num_examples"]
    return {"question": _COPY_RECIPES[language], **scores}


def _group_sources(rows: Sequence[dict], task: str, max_samples: int | None) -> list[dict]:
    """Unique sources in file order, each with all its gold questions (Du et al.'s grouping).

    ``qg``: a source is (passage, answer); ``sentence-qg``: the sentence holding the answer;
    ``qag``: the passage (its gold questions are kept for reference only).
    """
    from qgen.modeling.inputs import answer_sentence_span

    groups: dict[tuple, dict] = {}
    for row in rows:
        answer = row["answers"]["text"][0] if row["answers"]["text"] else ""
        start = row["answers"]["answer_start"][0] if row["answers"]["answer_start"] else -1
        if task == "qg":
            key = (row["context"], answer.strip().lower())
            source = {"context": row["context"], "answer": answer, "answer_start": start}
        elif task == "sentence-qg":
            lo, hi = answer_sentence_span(row["context"], start, start + len(answer))
            sentence = row["context"][lo:hi]
            key = (sentence,)
            source = {"context": sentence}
        else:
            key = (row["context"],)
            source = {"context": row["context"]}
        if key not in groups:
            if max_samples is not None and len(groups) >= max_samples:
                continue
            groups[key] = {**source, "id": row["id"], "references": [], "gold_answers": []}
        groups[key]["references"].append(row["question"])
        groups[key]["gold_answers"].extend(row["answers"]["text"])
    return list(groups.values())


def _load_sources(
    input_path: str,
    task: str,
    max_samples: int | None,
    sample_seed: int | None,
    tokenizer: Any = None,
) -> list[dict]:
    """The sources of :func:`evaluate_model` (see :func:`_group_sources`); with the model's
    ``tokenizer``, ``qg`` answers over 64 of its tokens are left out (they would not fit)."""
    from qgen.io.squad import drop_long_answers, load_squad

    rows = load_squad(input_path)
    if task == "qg" and tokenizer is not None:
        rows = drop_long_answers(rows, tokenizer, 64)
    if sample_seed is not None:  # a random subset of sources instead of the first N (one topic)
        rows = rows.shuffle(seed=sample_seed)
    sources = _group_sources(rows, task, max_samples)
    if not sources:
        raise ValueError(f"{input_path}: no question found")
    return sources


def _choose_for_sources(sources: Sequence[dict], tokenize: str) -> tuple[str, str]:
    """:func:`choose_tokenize` on the gold questions and the (distinct) passages."""
    texts = [r for s in sources for r in s["references"]]
    texts += list(dict.fromkeys(s["context"] for s in sources))
    return choose_tokenize(texts, tokenize)


def _copy_baseline_of(
    sources: Sequence[dict], tokenize: str, meteor: bool, language: str
) -> dict[str, Any]:
    return copy_baseline(
        [s["context"] for s in sources],
        [s["answer"] for s in sources],
        [s["answer_start"] for s in sources],
        [s["references"] for s in sources],
        tokenize=tokenize,
        meteor=meteor,
        language=language,
    )


def score_copy_baseline(
    input_path: str,
    max_samples: int | None = None,
    sample_seed: int | None = None,
    tokenize: str = "auto",
    meteor: bool = True,
) -> dict[str, Any]:
    """:func:`copy_baseline` on a SQuAD-format file, with the sources of ``evaluate_model(...,
    task="qg")`` (each question's first answer; the questions about the same passage and answer
    are the references of one source), but no answer left out for length (there is no model).

    Args:
        input_path: SQuAD-format JSON / JSONL.
        max_samples, sample_seed: as in :func:`evaluate_model`.
        tokenize: ``"auto"``, ``"word"`` or ``"char"``.
        meteor: also compute METEOR (needs Java).

    Returns:
        The baseline's scores, ``num_sources``, ``tokenize`` and ``tokenize_choice``.
    """
    sources = _load_sources(input_path, "qg", max_samples, sample_seed)
    mode, choice = _choose_for_sources(sources, tokenize)
    language = _baseline_language([s["context"] for s in sources])
    scores = _copy_baseline_of(sources, mode, meteor, language)
    return {**scores, "num_sources": len(sources), "tokenize": mode, "tokenize_choice": choice}


def evaluate_model(
    model: str | None,
    input_path: str,
    task: str = "qg",
    max_samples: int | None = None,
    batch_size: int = 16,
    num_pairs: int | None = None,
    tokenize: str = "auto",
    meteor: bool = True,
    output: str | None = None,
    sample_seed: int | None = None,
    int8: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Generate with a trained qgen model for a SQuAD-format file and score the output.

    Args:
        model: a qgen model directory (``scripts/train_qag.py`` output); None: the English
            model that ships with qgen. Its saved decoding settings are the defaults.
        input_path: SQuAD-format JSON / JSONL with gold questions.
        task: ``"qg"`` / ``"sentence-qg"`` (BLEU/METEOR/ROUGE-L against all gold questions of
            the same source; for ``qg`` also the :func:`copy_baseline`'s, under
            ``copy_baseline``) or ``"qag"`` (answer validity, gold-answer match and diversity of
            up to ``num_pairs`` pairs per passage; non-span answers are kept for this, so
            validity is the share of the model's answers that are passage spans). A model
            trained for ``qag`` is scored on ``qg`` with the gold answer as the start of its
            target (stage 2 given the answer).
        max_samples: score only the first N sources (unique (passage, answer) / sentence /
            passage), in file order.
        tokenize: ``"word"``, ``"char"`` or ``"auto"`` (``"char"`` when more than half of the
            letters of the gold questions and passages are CJK; :func:`choose_tokenize`). It
            applies to BLEU/METEOR/ROUGE-L, gold-answer EM/F1 and distinct-n.
        sample_seed: shuffle the questions with this seed before taking ``max_samples``
            sources (SQuAD files are sorted by article).
        output: optional JSON-lines file with one line per source: the source, the
            prediction(s), the references (and for ``qg`` the copy baseline's question).
        int8: run on the CPU with int8 linear layers (`qgen.modeling.pretrained.quantize_int8`).
        **settings: :class:`qgen.generation.generator.QAGenerator` arguments; each replaces the model's
            saved setting.

    Returns:
        The metrics, plus ``num_sources``, ``seconds``, ``tokenize`` (the mode used) and
        ``tokenize_choice`` (``"given"`` or why ``"auto"`` chose it).
    """
    import time

    from qgen.generation.config import generator_kwargs
    from qgen.generation.generator import QAGenerator
    from qgen.modeling.inputs import TASKS
    from qgen.modeling.pretrained import load_model

    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {TASKS}")
    if tokenize not in (*TOKENIZE_MODES, "auto"):
        raise ValueError(f"tokenize={tokenize!r} is not one of {(*TOKENIZE_MODES, 'auto')}")
    net, tok = load_model(model, "cpu" if int8 else None, int8=int8)
    sources = _load_sources(input_path, task, max_samples, sample_seed, tok)
    tokenize, choice = _choose_for_sources(sources, tokenize)

    generator = QAGenerator(net, tok, **generator_kwargs(net.name_or_path, **settings))
    passages = [s["context"] for s in sources]
    t0 = time.perf_counter()
    if task == "qag":
        # keep non-span answers so that validity measures the model, not the generator's filter
        pairs = generator.generate(
            passages, num_pairs=num_pairs, batch_size=batch_size, keep_non_span_answers=True
        )
        results = {
            "answer_validity": answer_validity(
                [p for p, ps in zip(passages, pairs) for _ in ps],
                [x["answer"] for ps in pairs for x in ps],
            ),
            **gold_answer_match(
                [[x["answer"] for x in ps] for ps in pairs],
                [s["gold_answers"] for s in sources],
                tokenize,
            ),
            **diversity(pairs, tokenize),
        }
        predictions = pairs
    else:
        answers = None
        if task == "qg":
            answers = [{"text": s["answer"], "answer_start": s["answer_start"]} for s in sources]
        outputs = generator.generate_questions(passages, answers, batch_size=batch_size)
        predictions = [o["question"] for o in outputs]
        results = compute_qg_metrics(
            predictions, [s["references"] for s in sources], tokenize=tokenize, meteor=meteor
        )
    results["seconds"] = time.perf_counter() - t0
    language = None
    if task == "qg":  # answer-aware: the copy baseline, beside the model
        language = _baseline_language(passages)
        results["copy_baseline"] = _copy_baseline_of(sources, tokenize, meteor, language)
    results.update(num_sources=len(sources), tokenize=tokenize, tokenize_choice=choice)
    if output:
        _write_predictions(output, sources, predictions, task, language)
    return results


def _write_predictions(
    output: str, sources: Sequence[dict], predictions: Sequence, task: str, copy: str | None
) -> None:
    """One JSON line per source; with ``copy`` (a `COPY_BASELINES` language), the copy
    baseline's question too."""
    with open(output, "w", encoding="utf-8") as f:
        for source, pred in zip(sources, predictions):
            row = {**source, ("pairs" if task == "qag" else "prediction"): pred}
            if copy is not None:
                row["copy_baseline"] = copy_baseline_question(
                    source["context"], source["answer"], source["answer_start"], copy
                )
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
