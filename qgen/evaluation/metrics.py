"""Scoring generated questions and QA pairs the way the question-generation literature does.

* :func:`compute_qg_metrics` -- BLEU-1..4, METEOR and ROUGE-L with the coco-caption scorers
  (``pycocoevalcap``), on lower-cased, tokenised text (Du et al. 2017 / ``nqg`` conventions:
  one prediction per source, all gold questions of that source as references). Chinese is
  scored on characters (``tokenize="char"``).
* :class:`QGMetric` -- the same, as an ``evaluate.Metric`` (``.compute(predictions=...,
  references=...)``).
* :func:`answer_validity`, :func:`gold_answer_match` and :func:`diversity` -- for ``qag`` output,
  where there is no single reference: the share of answers that are passage spans, how often a
  generated answer is a gold answer of its paragraph (SQuAD's answer normalisation, exact match
  and token F1), and how many distinct pairs and n-grams the generator produces per passage.
* :func:`evaluate_model` -- generate for a SQuAD-format file with a trained model and score it;
  the ``qgen evaluate`` command (`qgen.cli.evaluate`) runs it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from typing import Any

import datasets
import evaluate

from decoding import metrics as decoding_metrics
from decoding.registry import Registry
from qgen.generation.filters import normalize_answer, token_f1

__all__ = [
    "tokenize_for_eval",
    "compute_qg_metrics",
    "QGMetric",
    "answer_validity",
    "gold_answer_match",
    "diversity",
    "text_distinct_n",
    "evaluate_model",
]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# tokenize mode -> the pattern of its tokens, found in the lower-cased text
TOKENIZE_MODES: Registry[re.Pattern[str]] = Registry(
    "tokenize mode",
    {
        # PTB-like word tokens: "don't" -> "do n't", "Paris's" -> "paris 's", punctuation split off.
        "word": re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]"),
        # character level for CJK (each CJK character is a token); Latin words and numbers whole.
        "char": re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]"),
    },
)


def tokenize_for_eval(text: str, tokenize: str = "word") -> str:
    """Lower-case and tokenise ``text``; returns the tokens joined by single spaces.

    Args:
        text: a question (or any string).
        tokenize: ``"word"`` (PTB-like, English) or ``"char"`` (CJK characters one by one).
    """
    if tokenize not in TOKENIZE_MODES:
        raise ValueError(f"tokenize={tokenize!r} is not one of {tuple(TOKENIZE_MODES)}")
    return " ".join(TOKENIZE_MODES[tokenize].findall(text.lower()))


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


def gold_answer_match(
    answers: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]
) -> dict[str, float]:
    """How often a generated answer is one of the gold answers of its paragraph.

    Args:
        answers: per paragraph, the generated answers.
        gold: per paragraph, every gold answer of its questions.

    Returns:
        ``answer_exact_match``: share of generated answers equal to some gold answer of their
        paragraph after SQuAD normalisation; ``answer_f1``: mean over generated answers of the
        best token F1 against those gold answers (both in [0, 1]); ``gold_answers_covered``:
        share of paragraphs' distinct normalised gold answers that some generated answer equals.
    """
    if len(answers) != len(gold):
        raise ValueError(f"answers and gold differ in length: {len(answers)} != {len(gold)}")
    exact, f1, n, covered, n_gold = 0, 0.0, 0, 0, 0
    for generated, refs in zip(answers, gold):
        refs_norm = {normalize_answer(g) for g in refs}
        gen_norm = {normalize_answer(a) for a in generated}
        covered += len(refs_norm & gen_norm)
        n_gold += len(refs_norm)
        for a in generated:
            n += 1
            exact += normalize_answer(a) in refs_norm
            f1 += max((token_f1(a, g) for g in refs), default=0.0)
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
) -> dict[str, float]:
    """Generate with a trained qgen model for a SQuAD-format file and score the output.

    Args:
        model: a qgen model directory (``scripts/train_qag.py`` output); None: the English
            model that ships with qgen. Its saved decoding settings are the defaults.
        input_path: SQuAD-format JSON / JSONL with gold questions.
        task: ``"qg"`` / ``"sentence-qg"`` (BLEU/METEOR/ROUGE-L against all gold questions of
            the same source) or ``"qag"`` (answer validity, gold-answer match and diversity of
            up to ``num_pairs`` pairs per passage; non-span answers are kept for this, so
            validity is the share of the model's answers that are passage spans). A model
            trained for ``qag`` is scored on ``qg`` with the gold answer as the start of its
            target (stage 2 given the answer).
        max_samples: score only the first N sources (unique (passage, answer) / sentence /
            passage), in file order.
        tokenize: ``"word"``, ``"char"`` or ``"auto"`` (``"char"`` when the gold questions
            are mostly CJK).
        sample_seed: shuffle the questions with this seed before taking ``max_samples``
            sources (SQuAD files are sorted by article).
        output: optional JSON-lines file with one line per source: the source, the
            prediction(s) and the references.
        int8: run on the CPU with int8 linear layers (`qgen.modeling.pretrained.quantize_int8`).
        **settings: :class:`qgen.generation.generator.QAGenerator` arguments; each replaces the model's
            saved setting.

    Returns:
        The metrics, plus ``num_sources`` and ``seconds``.
    """
    import time

    from qgen.generation.config import generator_kwargs
    from qgen.generation.generator import QAGenerator
    from qgen.io.squad import load_squad
    from qgen.modeling.inputs import TASKS
    from qgen.modeling.pretrained import load_model

    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {TASKS}")
    if tokenize not in (*TOKENIZE_MODES, "auto"):
        raise ValueError(f"tokenize={tokenize!r} is not one of {(*TOKENIZE_MODES, 'auto')}")
    net, tok = load_model(model, "cpu" if int8 else None, int8=int8)
    rows = load_squad(input_path)
    if task == "qg":  # the answer goes into the source; answers over 64 tokens are not scored
        from qgen.io.squad import drop_long_answers

        rows = drop_long_answers(rows, tok, 64)
    if sample_seed is not None:  # a random subset of sources instead of the first N (one topic)
        rows = rows.shuffle(seed=sample_seed)
    sources = _group_sources(rows, task, max_samples)
    if not sources:
        raise ValueError(f"{input_path}: no question found")
    if tokenize == "auto":
        text = "".join(s["references"][0] for s in sources[:50])
        cjk = len(re.findall(rf"[{_CJK}]", text))
        tokenize = "char" if cjk > 0.3 * max(len(text), 1) else "word"

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
                [[x["answer"] for x in ps] for ps in pairs], [s["gold_answers"] for s in sources]
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
    results["num_sources"] = len(sources)
    results["seconds"] = time.perf_counter() - t0
    results["tokenize"] = tokenize
    if output:
        with open(output, "w", encoding="utf-8") as f:
            for source, pred in zip(sources, predictions):
                key = "pairs" if task == "qag" else "prediction"
                f.write(json.dumps({**source, key: pred}, ensure_ascii=False) + "\n")
    return results
