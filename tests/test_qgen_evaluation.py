"""Scoring of generated questions and QA pairs with hand-made predictions."""

import json
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


# ----------------------------------------------------------------------------- Chinese scoring
@pytest.mark.parametrize(
    "text, expected",
    [
        # CJK characters one by one; Latin words, numbers and decimals whole; punctuation alone
        ("BERT模型于2018年发布，", "bert 模 型 于 2018 年 发 布 ，"),
        ("iPhone 12售价5,999元、约3.5折", "iphone 12 售 价 5,999 元 、 约 3.5 折"),
        ("《战国无双3》由光荣和ω-force开发", "《 战 国 无 双 3 》 由 光 荣 和 ω - force 开 发"),
        ("〇与𠀀都是汉字", "〇 与 𠀀 都 是 汉 字"),  # 〇 and an extension-B character
    ],
)
def test_char_tokenize_splits_cjk_and_keeps_latin_words(text, expected):
    assert tokenize_for_eval(text, "char") == expected


def test_cjk_share_and_choose_tokenize():
    assert evaluation.cjk_share(["泼水节ab"]) == pytest.approx(3 / 5)  # 3 CJK of 5 letters
    assert evaluation.cjk_share(["123 ?!"]) == 0.0
    zh = ["泼水节有多少年历史了？", "GPT-2是哪年发布的？"]
    en = ["What is the capital of France?", "这是什么?"]
    assert evaluation.choose_tokenize(zh)[0] == "char"
    # 16 CJK characters and 3 Latin letters (GPT); 4 CJK and 24 Latin; digits, punctuation: none
    assert evaluation.choose_tokenize(zh)[1] == "auto: Chinese data (84% of the letters are CJK)"
    assert evaluation.choose_tokenize(en) == (
        "word",
        "auto: non-CJK data (14% of the letters are CJK)",
    )
    assert evaluation.choose_tokenize(zh, "word") == ("word", "given")
    with pytest.raises(ValueError, match="tokenize='bpe'"):
        evaluation.choose_tokenize(zh, "bpe")


def test_char_level_bleu_rewards_shared_characters():
    refs = [["泼水节有多少年历史了？"]]
    same = compute_qg_metrics(["泼水节有多少年历史了？"], refs, tokenize="char", meteor=False)
    close = compute_qg_metrics(["泼水节有几年历史？"], refs, tokenize="char", meteor=False)
    word = compute_qg_metrics(["泼水节有几年历史？"], refs, tokenize="word", meteor=False)
    assert same["bleu_4"] == pytest.approx(100.0, abs=1e-3)
    assert close["rouge_l"] > 70  # 8 of 9 characters in order
    assert word["rouge_l"] == pytest.approx(50.0)  # whole-clause "words": only "？" in common


def test_answer_tokens_by_mode():
    assert evaluation.answer_tokens("The Eiffel Tower!") == ["eiffel", "tower"]
    assert evaluation.answer_tokens("光荣和ω-force。", "char") == ["光", "荣", "和", "ω", "force"]


def test_character_level_gold_answer_match_by_hand():
    answers = [["傣族的新年", "七百年", "光荣 和ω-force"], ["泼水节"]]
    gold = [["傣族新年", "七百年。", "光荣和ω-force"], ["傣族"]]
    scores = gold_answer_match(answers, gold, tokenize="char")
    # exact (spacing and punctuation do not count): no, yes, yes; no
    assert scores["answer_exact_match"] == pytest.approx(2 / 4)
    # 傣族的新年 vs 傣族新年: 4 common characters, P = 4/5, R = 4/4 -> F1 = 8/9; 泼水节 vs 傣族: 0
    assert scores["answer_f1"] == pytest.approx((8 / 9 + 1 + 1 + 0) / 4)
    assert scores["gold_answers_covered"] == pytest.approx(2 / 4)
    # SQuAD's normalisation makes each Chinese answer one whitespace word and keeps "。" (not
    # ASCII): no credit at all
    assert gold_answer_match(answers, gold)["answer_f1"] == 0.0


def test_word_mode_gold_answer_f1_is_squads_token_f1():
    from qgen.generation.filters import token_f1

    for pred, ref in (("the Gustave", "Gustave Eiffel"), ("a b b", "b c"), ("The", "a")):
        assert gold_answer_match([[pred]], [[ref]])["answer_f1"] == pytest.approx(
            token_f1(pred, ref)
        )


@pytest.mark.parametrize(
    "context, answer, start, language, expected",
    [
        ("泼水节是傣族的新年，有七百年历史。", "傣族", 4, "zh", "泼水节是的新年是什么？"),
        ("泼水节是傣族的新年，有七百年历史。", "七百年", 11, "zh", "有历史是什么？"),
        # a wrong offset: the nearest occurrence; clauses end at ；：、 and newlines too
        ("甲：乙、丙在北京\n丁", "北京", 0, "zh", "丙在是什么？"),
        ("没有答案。", "答案", -1, "zh", "没有是什么？"),
        ("没有。", "答案", 0, "zh", "是什么？"),
        (
            "Bees dance. The Fresnel lens was invented in 1822. It is used in lighthouses.",
            "1822",
            45,
            "en",
            "The Fresnel lens was invented in?",
        ),
        ("Paris is the capital of France.", "Paris", 0, "en", "is the capital of France?"),
    ],
)
def test_copy_baseline_question_by_hand(context, answer, start, language, expected):
    assert evaluation.copy_baseline_question(context, answer, start, language) == expected


def test_copy_baseline_scores_and_rejects_unknown_language():
    contexts = ["泼水节是傣族的新年，有七百年历史。"] * 2
    refs = [["泼水节是哪个民族的新年？"], ["泼水节有多少年历史？"]]
    scores = evaluation.copy_baseline(contexts, ["傣族", "七百年"], [4, 11], refs, meteor=False)
    assert scores["question"].endswith("是什么？") and "num_examples" not in scores
    expected = compute_qg_metrics(
        ["泼水节是的新年是什么？", "有历史是什么？"], refs, tokenize="char", meteor=False
    )
    assert scores["bleu_4"] == expected["bleu_4"] and scores["rouge_l"] == expected["rouge_l"]
    with pytest.raises(ValueError, match="differ in length"):
        evaluation.copy_baseline(contexts, ["傣族"], [4, 11], refs, meteor=False)
    english = evaluation.copy_baseline(
        ["Paris is the capital of France."], ["Paris"], [0], [["What is the capital of France?"]],
        tokenize="word", meteor=False,
    )  # fmt: skip
    assert english["question"].endswith("+ ?") and english["rouge_l"] > 50
    with pytest.raises(ValueError, match="unknown copy baseline language 'fr'; known: en, zh"):
        evaluation.copy_baseline(contexts, ["傣族", "七百年"], [4, 11], refs, language="fr")


def _squad_file(path, context, qas):
    data = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _qa(i, question, answer, start):
    return {
        "id": f"q{i}",
        "question": question,
        "answers": [{"text": answer, "answer_start": start}],
    }


def _chinese_file(tmp_path):
    qas = [
        _qa(0, "泼水节是哪个民族的新年？", "傣族", 4),
        _qa(1, "泼水节有多少年历史？", "七百年", 11),
    ]
    return _squad_file(tmp_path / "zh.json", "泼水节是傣族的新年，有七百年历史。", qas)


def test_score_copy_baseline_names_the_mode(tmp_path):
    zh = _chinese_file(tmp_path)
    scores = evaluation.score_copy_baseline(zh, meteor=False)
    assert scores["tokenize"] == "char" and scores["num_sources"] == 2
    assert scores["tokenize_choice"].startswith("auto: Chinese data")
    given = evaluation.score_copy_baseline(zh, tokenize="word", meteor=False)
    assert given["tokenize"] == "word" and given["tokenize_choice"] == "given"
    en = _squad_file(
        tmp_path / "en.json",
        "Paris is the capital of France.",
        [_qa(0, "What is the capital of France?", "Paris", 0)],
    )
    english = evaluation.score_copy_baseline(en, meteor=False)
    assert english["tokenize"] == "word" and english["question"].endswith("+ ?")


def test_evaluate_model_reports_mode_and_copy_baseline(tmp_path, monkeypatch):
    """`evaluate_model` on a tiny Chinese file, with a stand-in generator (no model)."""
    from qgen_fixtures import tiny_chinese_tokenizer

    from qgen.generation import config, generator
    from qgen.modeling import pretrained

    class Net:
        name_or_path = "m"

    class OneQuestionGenerator:  # asks the same question about every source
        def __init__(self, *args, **kwargs):
            pass

        def generate_questions(self, passages, answers, batch_size):
            return [{"question": "泼水节是哪个民族的新年？"} for _ in passages]

    monkeypatch.setattr(pretrained, "load_model", lambda *a, **k: (Net(), tiny_chinese_tokenizer()))
    monkeypatch.setattr(generator, "QAGenerator", OneQuestionGenerator)
    monkeypatch.setattr(config, "generator_kwargs", lambda *a, **k: {})
    data = _chinese_file(tmp_path)
    out = tmp_path / "preds.jsonl"
    scores = evaluation.evaluate_model("m", data, meteor=False, output=str(out))
    assert scores["tokenize"] == "char" and scores["num_sources"] == 2
    assert scores["tokenize_choice"].startswith("auto: Chinese data")
    assert 0 < scores["copy_baseline"]["bleu_1"] < 100
    assert scores["copy_baseline"]["question"].endswith("是什么？")
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["copy_baseline"] for r in rows] == ["泼水节是的新年是什么？", "有历史是什么？"]
    given = evaluation.evaluate_model("m", data, meteor=False, tokenize="word")
    assert given["tokenize"] == "word" and given["tokenize_choice"] == "given"
    # the baseline's questions follow the data's language, whatever the tokens are
    assert given["copy_baseline"]["question"].endswith("是什么？")


def test_copy_baseline_script_smoke_run(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "copy_baseline.py"
    spec = importlib.util.spec_from_file_location("copy_baseline_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    scores = script.main(["--input", _chinese_file(tmp_path), "--max_samples", "8", "--no_meteor"])
    assert json.loads(capsys.readouterr().out) == scores and scores["num_sources"] == 2
    with pytest.raises(SystemExit):
        script.main(["--input", "x.json", "--max_samples", "0"])
    assert "--max_samples must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.shared_data
def test_chinese_copy_baseline_on_cmrc2018_dev(shared_data):
    """The issue measured BLEU-4 20.1 / ROUGE-L 35.8 (character level) for this baseline."""
    dev = shared_data / "cmrc2018" / "cmrc2018_dev.json"
    if not dev.is_file():
        pytest.skip(f"{dev} not found")
    scores = evaluation.score_copy_baseline(str(dev), meteor=False)
    assert scores["tokenize"] == "char" and scores["num_sources"] > 3000
    assert 15 < scores["bleu_4"] < 30 and 30 < scores["rouge_l"] < 50
