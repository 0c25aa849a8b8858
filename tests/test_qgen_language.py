"""Passages routed by language: detection by script, the lazy router, language codes for the
shipped models, and the CLI's routing, records and warning."""

import json
import shutil

import pytest
from qgen_fixtures import save_tiny_qag_model, save_tiny_reader, tiny_chinese_tokenizer

import qgen.modeling.pretrained
from qgen.cli.main import main
from qgen.generation.generator import QAGenerator
from qgen.generation.language import LanguageRouter, detect_language, model_language
from qgen.modeling.pretrained import QGenModelError, shipped_or_path

EN = "the cat sat on the mat. the dog sat in paris."
ZH = "世界第二高山峰是乔戈里峰，位于中国境内。"


@pytest.mark.parametrize(
    "text, language",
    [(EN, "en"), (ZH, "zh"), ("中国很大很大 is big", "zh"), ("中国 is big", "en"), ("the 中 city of paris", "en"),
     ("1889 , ! ?", "en"), ("乔戈里峰 K2 8611", "zh"), ("", "en")],
)  # fmt: skip
def test_detect_language_by_script(text, language):
    assert detect_language(text) == language


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A models folder with a tiny English and a tiny Chinese model and a tiny English reader
    under the shipped names."""
    models = tmp_path / "models"
    names = qgen.modeling.pretrained.LANGUAGE_MODELS
    save_tiny_reader(models / qgen.modeling.pretrained.DEFAULT_READER)
    en = save_tiny_qag_model(models / names["en"], qgen_task="qag", qgen_language="en")
    zh = save_tiny_qag_model(
        models / names["zh"], tiny_chinese_tokenizer(), qgen_task="qag", qgen_language="zh"
    )
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", models)
    return {"en": en, "zh": zh, "models": models}


def test_language_codes_name_the_shipped_models(shipped):
    assert shipped_or_path("zh") == shipped["zh"]
    generator = QAGenerator.from_pretrained("zh", device="cpu")
    assert model_language(generator.model) == "zh"
    shutil.rmtree(shipped["zh"])
    with pytest.raises(QGenModelError, match="the Chinese model is not in this install"):
        shipped_or_path("zh")


def test_router_loads_a_language_only_when_its_passage_comes():
    loaded = []

    class Fake:
        num_pairs, seed = 3, None

        def __init__(self, language):
            self.language = language

        def generate(self, passages, **kwargs):
            return [[{"question": f"{self.language}?", "answer": p[:2], "answer_start": 0,
                      "score": 0.0}] for p in passages]  # fmt: skip

    def load(language):
        loaded.append(language)
        return Fake(language)

    router = LanguageRouter(load)
    out = router.generate([EN, EN])
    assert loaded == ["en"]  # an English-only corpus never loads the Chinese model
    out = router.generate([ZH, EN, ZH])
    assert loaded == ["en", "zh"]
    assert [pairs[0]["question"] for pairs in out] == ["zh?", "en?", "zh?"]  # input order
    assert [pairs[0]["language"] for pairs in out] == ["zh", "en", "zh"]


def test_cli_routes_each_passage_to_its_language(shipped, tmp_path, monkeypatch, capsys):
    loads = []
    real = qgen.modeling.pretrained.load_model

    def spy(path=None, *args, **kwargs):
        loads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(qgen.modeling.pretrained, "load_model", spy)
    inp = tmp_path / "mixed.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "context": c}) + "\n"
                           for i, c in enumerate([EN, ZH, EN])))  # fmt: skip
    out = tmp_path / "qa.jsonl"
    assert main(["generate", "--input", str(inp), "--output", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["languages"] == {"en": 2, "zh": 1}
    assert sorted(loads) == sorted([shipped["en"], shipped["zh"]])
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = {"p0": "en", "p1": "zh", "p2": "en"}
    assert records and all(r["language"] == expected[r["id"].rsplit("-", 1)[0]] for r in records)
    for r in records:  # every answer is a span of its passage
        start = r["answers"]["answer_start"][0]
        assert r["context"][start : start + len(r["answers"]["text"][0])] == r["answers"]["text"][0]
    # an English-only corpus never loads the Chinese model
    loads.clear()
    en_only = tmp_path / "en.txt"
    en_only.write_text(EN + "\n")
    assert main(["generate", "--input", str(en_only), "--output", str(tmp_path / "en.jsonl"),
                 "--quiet"]) == 0  # fmt: skip
    assert loads == [shipped["en"]]


def test_cli_warns_once_about_passages_of_another_language(shipped, tmp_path, capsys):
    inp = tmp_path / "mixed.txt"
    inp.write_text("\n".join([EN, ZH, ZH]) + "\n")
    assert main(["generate", "--model", shipped["en"], "--input", str(inp), "--output",
                 str(tmp_path / "qa.jsonl"), "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "2 of 3 passages (2 Chinese)" in err and "(English)" in err
    # --model zh: the language code names the shipped Chinese model, no warning for Chinese
    zh_only = tmp_path / "zh.txt"
    zh_only.write_text(ZH + "\n")
    assert main(["generate", "--model", "zh", "--input", str(zh_only), "--output",
                 str(tmp_path / "zh.jsonl"), "--quiet"]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err


def test_without_a_chinese_model_chinese_passages_are_not_silent(shipped, tmp_path, capsys):
    shutil.rmtree(shipped["zh"])
    inp = tmp_path / "zh.txt"
    inp.write_text(ZH + "\n" + EN + "\n")
    assert main(["generate", "--input", str(inp), "--output", str(tmp_path / "qa.jsonl"),
                 "--quiet"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "the Chinese model is not in this install" in err


def test_pipeline_warns_once_about_a_passage_of_another_language(shipped, caplog):
    import logging

    import transformers

    qa = transformers.pipeline("qa-generation", model=shipped["en"])
    with caplog.at_level(logging.WARNING, logger="qgen.generation.pipeline"):
        qa([EN])
        assert not caplog.records
        qa([ZH, ZH])
    warned = [r for r in caplog.records if "looks Chinese" in r.getMessage()]
    assert len(warned) == 1 and "trained for English" in warned[0].getMessage()


def test_pipeline_without_a_model_routes_each_passage_by_language(shipped, caplog):
    import logging

    import transformers

    qa = transformers.pipeline("qa-generation", device="cpu", seed=0)
    assert qa.router is not None
    english = qa([EN, EN], batch_size=4)
    assert set(qa.router.generators) == {"en"}  # an English-only input never loads Chinese
    assert all(p["language"] == "en" for pairs in english for p in pairs)
    with caplog.at_level(logging.WARNING, logger="qgen.generation.pipeline"):
        mixed = qa([ZH, EN, ZH], batch_size=8)  # one batch holds windows of both languages
    assert not [r for r in caplog.records if "looks Chinese" in r.getMessage()]
    assert set(qa.router.generators) == {"en", "zh"}
    zh_model = qa.router.generators["zh"].model
    assert model_language(zh_model) == "zh" and zh_model is not qa.model
    assert mixed[0]  # the Chinese model wrote pairs (the English ones face the tiny reader)
    for passage, pairs in zip([ZH, EN, ZH], mixed):
        language = "zh" if passage == ZH else "en"
        assert all(p["language"] == language for p in pairs)
        assert all(passage[p["answer_start"] :].startswith(p["answer"]) for p in pairs)
    # a call's own settings reach the routed model too
    [one] = qa([ZH], num_pairs=1, preset="su-2020-11")
    assert len(one) <= 1 and all(p["language"] == "zh" for p in one)


def test_pipeline_with_a_model_given_does_not_route(shipped):
    import transformers

    explicit = transformers.pipeline("qa-generation", model=shipped["en"], device="cpu")
    assert explicit.router is None
    assert all("language" not in p for p in explicit([EN])[0])
    # the default again, then asked not to route
    off = transformers.pipeline("qa-generation", device="cpu", route_languages=False)
    assert off.router is None


def test_evaluate_without_a_model_scores_with_the_model_of_the_data_language(
    shipped, tmp_path, capsys
):
    data = tmp_path / "zh.jsonl"
    record = {"id": "z0", "title": "t", "context": ZH, "question": "世界第二高山峰是什么？",
              "answers": {"text": ["乔戈里峰"], "answer_start": [ZH.index("乔戈里峰")]}}  # fmt: skip
    data.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["evaluate", "--input", str(data), "--task", "qg", "--no_meteor"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["routed_language"] == "zh"
    assert "Chinese" in report["tokenize_choice"]
    english = tmp_path / "en.jsonl"
    record = {"id": "e0", "title": "t", "context": EN, "question": "where did the dog sit?",
              "answers": {"text": ["paris"], "answer_start": [EN.index("paris")]}}  # fmt: skip
    english.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["evaluate", "--input", str(english), "--task", "qg", "--no_meteor"]) == 0
    assert json.loads(capsys.readouterr().out)["routed_language"] == "en"
