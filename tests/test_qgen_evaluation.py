"""Scoring of generated questions and QA pairs with hand-made predictions."""

import shutil

import pytest

from decoding import metrics
from qgen.evaluation import metrics as evaluation
from qgen.evaluation.metrics import (
    QGMetric,
    answer_validity,
    compute_qg_metrics,
    diversity,
    gold_answer_match,
    text_distinct_n,
    tokenize_for_eval,
)
from qgen.generation.filters import normalize_answer


@pytest.mark.parametrize(
    "text, mode, expected",
    [
        ("What's the capital of France?", "word", "what 's the capital of france ?"),
        ("Why don't bees sleep?", "word", "why do n't bees sleep ?"),
        ("泼水节有多少年历史了？", "char", "泼 水 节 有 多 少 年 历 史 了 ？"),
        ("GPT-2是哪年发布的?", "char", "gpt - 2 是 哪 年 发 布 的 ?"),
    ],
)
def test_tokenize_for_eval(text, mode, expected):
    assert tokenize_for_eval(text, mode) == expected


def test_tokenize_rejects_unknown_mode():
    with pytest.raises(ValueError, match="tokenize='bpe'"):
        tokenize_for_eval("x", "bpe")


def test_perfect_predictions_score_100_without_meteor():
    preds = ["What is the capital of France?", "Who wrote Hamlet?"]
    scores = compute_qg_metrics(preds, [[p.lower()] for p in preds], meteor=False)
    assert scores["bleu_4"] == pytest.approx(100.0, abs=1e-3)
    assert scores["rouge_l"] == pytest.approx(100.0)
    assert scores["num_examples"] == 2
    assert "meteor" not in scores


def test_scores_order_and_multiple_references():
    refs = [["what is the capital of france ?", "which city is france 's capital ?"]]
    good = compute_qg_metrics(["which city is France's capital?"], refs, meteor=False)
    bad = compute_qg_metrics(["how many legs does a spider have ?"], refs, meteor=False)
    assert good["bleu_4"] > 90 and good["rouge_l"] > 90
    assert bad["bleu_1"] < good["bleu_1"] and bad["rouge_l"] < 20
    # a single reference string is accepted too
    single = compute_qg_metrics(["who wrote hamlet ?"], ["Who wrote Hamlet?"], meteor=False)
    assert single["rouge_l"] == pytest.approx(100.0)


def test_length_mismatch_and_empty_inputs_raise():
    with pytest.raises(ValueError, match="differ in length"):
        compute_qg_metrics(["a"], [], meteor=False)
    with pytest.raises(ValueError, match="empty"):
        compute_qg_metrics([], [], meteor=False)
    with pytest.raises(ValueError, match=r"references\[0\]"):
        compute_qg_metrics(["a"], [[]], meteor=False)


def test_meteor_without_java_names_the_fix(monkeypatch):
    monkeypatch.setattr(evaluation.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Java.*meteor=False"):
        compute_qg_metrics(["who wrote hamlet ?"], ["who wrote hamlet ?"], meteor=True)


def test_evaluate_metric_interface():
    scores = QGMetric().compute(
        predictions=["who wrote hamlet ?", "what is the capital of france ?"],
        references=[["who wrote hamlet ?"], ["which river flows through paris ?"]],
        meteor=False,
    )
    assert 0 < scores["bleu_4"] < 100 and scores["num_examples"] == 2


@pytest.mark.slow  # the METEOR jar takes 10-40 s to start (JVM + paraphrase tables)
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")
def test_meteor_with_java():
    scores = compute_qg_metrics(
        ["who wrote hamlet ?", "what is the capital of france ?"],
        [["who wrote hamlet ?"], ["which river flows through paris ?"]],
    )
    assert 0 < scores["meteor"] < 100


def test_answer_validity():
    passages = ["The Fresnel lens was invented in 1822.", "Bees dance.", "Bees dance."]
    assert answer_validity(passages, ["fresnel  LENS", "bees", "wasps"]) == pytest.approx(2 / 3)
    assert answer_validity(passages[:1], [" "]) == 0.0
    assert answer_validity([], []) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        answer_validity(passages, [])


def test_normalize_answer_and_gold_answer_match():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    scores = gold_answer_match(
        [["the Eiffel Tower", "Paris", "1889"], ["bees"]],
        [["Eiffel Tower", "1889", "Gustave Eiffel"], ["wasps"]],
    )
    assert scores["answer_exact_match"] == pytest.approx(2 / 4)
    # best token F1 per answer: 1, 0, 1, 0
    assert scores["answer_f1"] == pytest.approx(2 / 4)
    assert scores["gold_answers_covered"] == pytest.approx(2 / 4)
    partial = gold_answer_match([["Gustave"]], [["Gustave Eiffel"]])
    assert partial["answer_exact_match"] == 0 and partial["answer_f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differ in length"):
        gold_answer_match([[]], [])


def test_text_distinct_n_and_diversity():
    assert text_distinct_n(["a b a b"], 1) == pytest.approx(0.5)
    assert text_distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert text_distinct_n([""], 2) == 0.0
    # the text version is decoding's distinct-n on the tokens, one id per distinct token
    texts = ["A b a b!", "b a c", "Who?"]
    for n in (1, 2, 3):
        ids = [[0, 1, 0, 1, 2], [1, 0, 3], [4, 5]]  # a=0 b=1 !=2 c=3 who=4 ?=5
        assert text_distinct_n(texts, n) == metrics.distinct_n(ids, n)
    pairs = [
        [{"question": "Who?", "answer": "Ann"}, {"question": "who?", "answer": "Bob"}],
        [{"question": "When?", "answer": "1822"}],
    ]
    div = diversity(pairs)
    assert div["pairs_per_passage"] == 1.5
    assert div["distinct_questions_per_passage"] == 1.0
    assert div["distinct_answers_per_passage"] == 1.5
    assert 0 < div["distinct_1"] <= 1
