"""`qgen generate`: inputs, SQuAD-schema output, and every error case named by file/line/field."""

import json
import shutil
from collections import Counter

import datasets
import pytest
from qgen_fixtures import (
    save_tiny_qag_model,
    save_tiny_reader,
)
from transformers import BertConfig, BertModel

import qgen.modeling.pretrained
from qgen.cli import build_parser, main
from qgen.cli.options import CLIError
from qgen.generation.generator import QAGenerator
from qgen.io.corpus import iter_passages

PASSAGES = [
    "the cat sat on the mat.",
    "paris is the capital of france.",
    "a b c d e f g.",
    "the dog sat.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qag_model(tmp_path_factory.mktemp("qag-model"))  # targets end early


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _spy_on_generator(monkeypatch) -> dict:
    """The keyword arguments every `QAGenerator` is built with, from now on."""
    seen = {}
    real = QAGenerator.__init__

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(QAGenerator, "__init__", spy)
    return seen


def _generate(model_dir, inp, out, *extra):
    return ["generate", "--model", model_dir, "--input", inp, "--output", out, "--quiet", *extra]


def test_generate_happy_path(model_dir, tmp_path, capsys):
    inp = tmp_path / "passages.txt"
    inp.write_text("\n".join(PASSAGES[:2]) + "\n\n" + "\n".join(PASSAGES[2:]) + "\n")
    out = tmp_path / "qa.jsonl"
    code, stdout, stderr = _run(
        capsys,
        *_generate(
            model_dir, inp, out, "--num_pairs", 2, "--batch_size", 3, "--keep_non_span_answers"
        ),
    )
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["passages"] == 4
    assert "pairs for 4 passages" in stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == summary["pairs"] > 0
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert {"id", "title", "context", "question", "answers"} <= set(ds.column_names)
    for row in ds:
        assert row["context"] in PASSAGES
        assert len(row["answers"]["text"]) == len(row["answers"]["answer_start"]) == 1
        start = row["answers"]["answer_start"][0]
        if start >= 0:
            assert row["context"][start:].startswith(row["answers"]["text"][0])
    assert len(set(ds["id"])) == len(ds)


@pytest.mark.parametrize("kind", ["jsonl", "json-squad", "json-list"])
def test_read_passages_formats(tmp_path, kind):
    if kind == "jsonl":
        path = tmp_path / "p.jsonl"
        path.write_text(
            json.dumps({"id": "a", "title": "T", "context": PASSAGES[0]})
            + "\n\n"
            + json.dumps({"passage": PASSAGES[1]})
            + "\n"
        )
        expected_ids = ["a", "p-3"]
    elif kind == "json-squad":
        path = tmp_path / "p.json"
        obj = {
            "data": [
                {
                    "title": "T",
                    "paragraphs": [{"context": PASSAGES[0], "qas": []}, {"context": PASSAGES[1]}],
                }
            ]
        }
        path.write_text(json.dumps(obj))
        expected_ids = ["p-0-0", "p-0-1"]
    else:
        path = tmp_path / "p.json"
        path.write_text(json.dumps([PASSAGES[0], {"text": PASSAGES[1], "id": 7}]))
        expected_ids = ["p-0", "7"]
    passages = list(iter_passages(str(path)))
    assert [p.id for p in passages] == expected_ids
    assert [p.context for p in passages] == PASSAGES[:2]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.jsonl", '{"context": "ok."}\n{oops\n', "bad.jsonl: line 2: malformed JSON"),
        (
            "bad.jsonl",
            '{"context": "ok."}\n{"title": "x"}\n',
            "bad.jsonl: line 2: missing field 'context'",
        ),
        (
            "bad.jsonl",
            '{"context": "ok."}\n{"context": "   "}\n',
            "bad.jsonl: line 2: field 'context' is an empty passage",
        ),
        ("bad.jsonl", '{"context": 3}\n', "bad.jsonl: line 1: field 'context' must be a string"),
        (
            "bad.json",
            '{"data": [{"paragraphs": [{"context": ""}]}]}',
            "data[0].paragraphs[0]: field 'context' is an empty",
        ),
        ("bad.json", '{"data": [{"title": "x"}]}', "bad.json: data[0]: missing field 'paragraphs'"),
        ("bad.json", "[1, 2", "bad.json: line 1: malformed JSON"),
        ("bad.xml", "<a/>", "unknown input type '.xml'"),
        ("bad.csv", "context,id\nok.,1\n,2\n", "bad.csv: line 3: missing field 'context'"),
        ("empty.txt", "\n\n", "empty.txt: no passages found"),
    ],
)
def test_bad_input_is_named(model_dir, tmp_path, capsys, name, content, message):
    inp = tmp_path / name
    inp.write_text(content)
    out = tmp_path / "qa.jsonl"
    code, _, stderr = _run(capsys, *_generate(model_dir, inp, out))
    assert code == 2
    assert message in stderr
    assert not out.exists()  # nothing is created for bad input


def test_unreadable_input_and_bad_model_dirs(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text(PASSAGES[0] + "\n")
    out = tmp_path / "qa.jsonl"
    code, _, err = _run(capsys, *_generate(model_dir, tmp_path / "missing.txt", out))
    assert code == 2 and "missing.txt: cannot read input file" in err
    code, _, err = _run(capsys, *_generate(str(tmp_path / "nomodel"), inp, out))
    assert code == 2 and "nomodel: no such model directory" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, *_generate(str(tmp_path / "empty"), inp, out))
    assert code == 2 and "empty: not a model directory (no config.json)" in err
    bert_dir = tmp_path / "bert"
    BertModel(
        BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=37,
        )
    ).save_pretrained(bert_dir)
    code, _, err = _run(capsys, *_generate(str(bert_dir), inp, out))
    assert code == 2 and "field 'model_type' is 'bert'" in err and "config.json" in err


def test_existing_output_is_never_truncated(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    out = tmp_path / "qa.jsonl"
    out.write_text('{"keep": "me"}\n')
    code, _, err = _run(capsys, *_generate(model_dir, inp, out))
    assert code == 2 and "output exists" in err
    assert out.read_text() == '{"keep": "me"}\n'
    code, _, err = _run(
        capsys, *_generate(model_dir, inp, out, "--append", "--keep_non_span_answers")
    )
    assert code == 0, err
    assert out.read_text().startswith('{"keep": "me"}\n') and len(out.read_text().splitlines()) > 1
    code, _, _ = _run(
        capsys, *_generate(model_dir, inp, out, "--overwrite", "--keep_non_span_answers")
    )
    assert code == 0 and "keep" not in out.read_text().splitlines()[0]


def test_blocks_already_written_survive_a_crash(model_dir, tmp_path, monkeypatch, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    out = tmp_path / "qa.jsonl"
    calls = []

    def flaky(self, passages, **kwargs):
        calls.append(len(passages))
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return [
            [{"question": "q?", "answer": p[:3], "answer_start": 0, "score": -1.0}]
            for p in passages
        ]

    monkeypatch.setattr(QAGenerator, "generate", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(_generate(model_dir, str(inp), str(out), "--batch_size", "2", "--block_size", "2"))
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["context"] == PASSAGES[0]


def test_evaluate_subcommand_is_delegated(monkeypatch, capsys):
    from qgen.cli import evaluate

    seen = {}
    monkeypatch.setattr(evaluate, "run", lambda args: seen.update(vars(args)))
    assert main(["evaluate", "--model", "m", "--input", "i.json", "--task", "qg"]) == 0
    assert seen["model"] == "m" and seen["task"] == "qg"


def test_decoding_options_override_the_preset():
    from qgen.cli.options import configs_from_arguments
    from qgen.generation.presets import PRESETS

    def configs(*extra):
        args = build_parser().parse_args(
            ["generate", "--model", "m", "--input", "i", "--output", "o", *extra]
        )
        return configs_from_arguments(args)

    default = configs()
    assert default["answer_config"] == PRESETS["default"][0]
    assert default["question_config"] == PRESETS["default"][1]
    c = configs("--preset", "su-2020-07", "--num_beams", "1", "--no_repeat_ngram_size", "3",
                "--repetition_penalty", "1.2", "--max_question_tokens", "20", "--answer_top_k", "3")  # fmt: skip
    q, a = c["question_config"], c["answer_config"]
    assert (q.strategy, q.num_beams, q.no_repeat_ngram_size) == ("greedy", 1, 3)
    assert (q.repetition_penalty, q.max_new_tokens, q.length_penalty) == (1.2, 20, 0.0)
    assert (a.top_k, a.consistent) == (3, False)  # the rest of su-2020-07's answer stage stays
    assert configs("--num_beams", "3")["question_config"].strategy == "beam"
    # questions may copy their passage: the trigram ban counts the question's own tokens only
    q = default["question_config"]
    assert (q.no_repeat_ngram_size, q.repetition_scope) == (3, "generated")
    assert (
        configs("--repetition_scope", "sequence")["question_config"].repetition_scope == "sequence"
    )
    assert configs("--preset", "su-2020-11")["question_config"].no_repeat_ngram_size == 0
    with pytest.raises(ValueError, match="num_beams"):
        configs("--num_beams", "0")


def test_generate_applies_decoding_options(model_dir, tmp_path, capsys, monkeypatch):
    """The decoding options reach the generator `qgen generate` builds; bad values are named."""
    import qgen.generation.generator

    seen = {}

    class Spy(QAGenerator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["question"], seen["answer"] = self.question_config, self.answer_config

    monkeypatch.setattr(qgen.generation.generator, "QAGenerator", Spy)
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    argv = _generate(model_dir, inp, tmp_path / "qa.jsonl", "--no_repeat_ngram_size", 3,
                     "--num_beams", 2, "--answer_top_p", 0.5)  # fmt: skip
    code, _, stderr = _run(capsys, *argv)
    assert code == 0, stderr
    assert (seen["question"].no_repeat_ngram_size, seen["question"].num_beams) == (3, 2)
    assert seen["answer"].top_p == 0.5

    argv = _generate(model_dir, inp, tmp_path / "x.jsonl", "--num_beams", 0)
    code, _, stderr = _run(capsys, *argv)
    assert code == 2 and "num_beams" in stderr


def test_without_output_the_pairs_are_printed(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES[:2]) + "\n")
    code, stdout, stderr = _run(capsys, "generate", "--model", model_dir, "--input", inp)
    assert code == 0, stderr
    assert stdout.startswith("[1] the cat sat on the mat.") and "[2] paris" in stdout
    assert "    Q: " in stdout and "    A: " in stdout
    assert "pairs for 2 passages" in stderr and not list(tmp_path.glob("*.jsonl"))


def test_output_and_options_are_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import qgen.modeling.pretrained

    monkeypatch.setattr(
        qgen.modeling.pretrained, "load_model", lambda *a, **k: pytest.fail("model loaded")
    )
    inp = tmp_path / "p.txt"
    inp.write_text(PASSAGES[0] + "\n")
    code, _, err = _run(
        capsys, *_generate(str(tmp_path / "nomodel"), inp, tmp_path / "no/qa.jsonl")
    )
    assert code == 2 and "output directory" in err  # the output, before the (missing) model


def test_saved_settings_are_used_and_flags_override_them(model_dir, tmp_path, capsys, monkeypatch):
    from qgen.generation.config import QAGenerationConfig
    from qgen.generation.presets import default_question_config

    saved = tmp_path / "saved-model"
    import shutil

    shutil.copytree(model_dir, saved)
    QAGenerationConfig(
        question=default_question_config(strategy="greedy", num_beams=1), num_pairs=1
    ).save_pretrained(saved)
    seen = _spy_on_generator(monkeypatch)
    inp = tmp_path / "p.txt"
    inp.write_text(PASSAGES[0] + "\n")
    assert main(["generate", "--model", str(saved), "--input", str(inp), "--quiet"]) == 0
    assert seen["num_pairs"] == 1 and seen["question_config"].strategy == "greedy"
    assert seen["constrain_answers"] is True
    argv = ["--num_pairs", "2", "--num_beams", "3", "--free_answers"]
    assert main(["generate", "--model", str(saved), "--input", str(inp), *argv]) == 0
    assert seen["num_pairs"] == 2 and seen["question_config"].num_beams == 3
    assert seen["constrain_answers"] is False


def test_default_model_is_the_shipped_one(model_dir, tmp_path, capsys, monkeypatch):
    import shutil

    import qgen.modeling.pretrained

    shipped = tmp_path / "models"
    shutil.copytree(model_dir, shipped / qgen.modeling.pretrained.DEFAULT_MODEL)
    save_tiny_reader(shipped / qgen.modeling.pretrained.DEFAULT_READER)
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", shipped)
    inp = tmp_path / "p.txt"
    inp.write_text(PASSAGES[0] + "\n")
    code, stdout, err = _run(capsys, "generate", "--input", inp, "--no_round_trip")
    assert code == 0, err
    assert "Q: " in stdout
    assert str(shipped / qgen.modeling.pretrained.DEFAULT_MODEL) in err
    # by default the shipped reader checks the shipped model's pairs (a random tiny reader
    # passes few or none), and the closing line says so
    code, stdout, err = _run(capsys, "generate", "--input", inp)
    assert code == 0, err
    assert "checked by" in err and qgen.modeling.pretrained.DEFAULT_READER in err
    (shipped / qgen.modeling.pretrained.DEFAULT_MODEL / "model.safetensors").unlink()
    code, _, err = _run(capsys, "generate", "--input", inp)
    assert code == 2 and "no weights file" in err and "reinstall" in err


def test_duplicates_are_dropped_and_counted(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join([PASSAGES[1], PASSAGES[0], PASSAGES[1]]) + "\n")
    greedy = ("--answer_top_k", "1", "--answer_top_p", "1.0")  # the same passage, the same pair
    out = tmp_path / "qa.jsonl"
    code, stdout, err = _run(capsys, *_generate(model_dir, inp, out, *greedy))
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["filtered"]["corpus_duplicate_question"] >= 1
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert not any(i.startswith("p-3-") for i in ids)  # the repeat of passage 1 adds nothing
    assert summary["passages_without_pairs"] >= 1 and summary["pairs"] == len(ids)
    kept = tmp_path / "all.jsonl"
    code, stdout, _ = _run(capsys, *_generate(model_dir, inp, kept, *greedy, "--keep_duplicates"))
    assert any(json.loads(x)["id"].startswith("p-3-") for x in kept.read_text().splitlines())
    assert json.loads(stdout.strip().splitlines()[-1])["filtered"] == {}


def test_round_trip_drops_and_counts(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    summaries = []
    for extra in ((), ("--round_trip",)):
        out = tmp_path / f"qa{len(extra)}.jsonl"
        code, stdout, err = _run(
            capsys, *_generate(model_dir, inp, out, "--keep_duplicates", *extra)
        )
        assert code == 0, err
        summaries.append(json.loads(stdout.strip().splitlines()[-1]))
    plain, checked = summaries
    # a model of the user's own: no check unless asked; with it, drops are counted
    assert "round_trip" not in plain["filtered"] and checked["filtered"]["round_trip"] >= 0
    # the kept records carry their round-trip margin (None: no other answer to tell it from)
    records = [json.loads(x) for x in (tmp_path / "qa1.jsonl").read_text().splitlines()]
    assert records and all(
        r["round_trip_margin"] is None or r["round_trip_margin"] >= 0 for r in records
    )
    assert "round_trip_margin" not in json.loads((tmp_path / "qa0.jsonl").open().readline())
    per = Counter(r["id"].rsplit("-", 1)[0] for r in records)
    assert max(per.values()) <= 3
    code, _, err = _run(
        capsys, *_generate(model_dir, inp, tmp_path / "x.jsonl", "--round_trip_f1", "2")
    )
    assert code == 2 and "--round_trip_f1 must be in [0, 1]" in err


def test_round_trip_with_an_extractive_reader(model_dir, tmp_path, capsys):

    reader = save_tiny_reader(tmp_path / "reader")
    inp = tmp_path / "p.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    out = tmp_path / "qa.jsonl"
    argv = (
        "--keep_duplicates",
        "--round_trip",
        "--round_trip_reader",
        reader,
        "--round_trip_f1",
        "0.5",
    )
    code, stdout, err = _run(capsys, *_generate(model_dir, inp, out, *argv))
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert "round_trip" in summary["filtered"]
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert records and all(0.5 <= r["round_trip_f1"] <= 1 for r in records)
    # naming a reader turns the check on; switching it off at the same time is an error
    code, stdout, err = _run(
        capsys, *_generate(model_dir, inp, tmp_path / "y.jsonl", "--round_trip_reader", reader)
    )
    assert code == 0, err
    assert "round_trip" in json.loads(stdout.strip().splitlines()[-1])["filtered"]
    code, _, err = _run(
        capsys, *_generate(model_dir, inp, tmp_path / "x.jsonl", "--round_trip_reader", reader,
                           "--no_round_trip"),
    )  # fmt: skip
    assert code == 2 and "--round_trip_reader needs the round trip" in err


def test_a_short_window_gets_a_shorter_overlap(model_dir, tmp_path, capsys):
    inp = tmp_path / "p.txt"
    inp.write_text("the cat sat on the mat. " * 20 + "\n")
    code, _, err = _run(
        capsys, *_generate(model_dir, inp, tmp_path / "qa.jsonl", "--max_source_length", "40")
    )
    assert code == 0, err  # the saved overlap (64) would not fit a 40-token window


def test_int8_generates_span_pairs_and_conflicting_precisions_are_refused(
    model_dir, tmp_path, capsys
):
    inp = tmp_path / "passages.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    out = tmp_path / "int8.jsonl"
    code, stdout, stderr = _run(capsys, *_generate(model_dir, inp, out, "--int8", "--seed", 1))
    assert code == 0, stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    for row in rows:  # still spans of their passage
        start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
        assert row["context"][start : start + len(text)] == text
    for extra, message in (
        (("--int8", "--bf16"), "--bf16 and --int8 are alternatives"),
        (("--int8", "--device", "cuda"), "--int8 runs on CPUs only"),
    ):
        code, _, stderr = _run(capsys, *_generate(model_dir, inp, tmp_path / "x.jsonl", *extra))
        assert code == 2 and message in stderr
        assert not (tmp_path / "x.jsonl").exists()
    code, _, stderr = _run(
        capsys, "evaluate", "--model", model_dir, "--input", inp, "--int8", "--bf16"
    )
    assert code == 2 and "alternatives" in stderr


def test_answer_candidates_option(model_dir, tmp_path, capsys, monkeypatch):
    seen = _spy_on_generator(monkeypatch)
    inp = tmp_path / "passages.txt"
    inp.write_text("\n".join(PASSAGES) + "\n")
    out = tmp_path / "fewer.jsonl"
    code, _, stderr = _run(capsys, *_generate(model_dir, inp, out, "--answer_candidates", 1.34))
    assert code == 0, stderr
    assert seen["answer_candidates"] == 1.34
    code, _, stderr = _run(
        capsys, *_generate(model_dir, inp, tmp_path / "bad.jsonl", "--answer_candidates", 0.5)
    )
    assert code == 2 and "--answer_candidates must be >= 1" in stderr
    code, _, stderr = _run(
        capsys, "evaluate", "--model", model_dir, "--input", inp, "--answer_candidates", 0.5
    )
    assert code == 2 and "--answer_candidates must be >= 1" in stderr


@pytest.mark.parametrize("command", ["generate", "evaluate"])
def test_both_commands_build_settings_the_same_way(model_dir, command):
    from qgen.cli.options import generator_settings

    args = build_parser().parse_args(
        [command, "--model", model_dir, "--input", "x", "--free_answers", "--num_beams", "1",
         "--answer_candidates", "1.5", "--num_pairs", "2", "--max_source_length", "100"]
    )  # fmt: skip
    settings = generator_settings(args, model_dir)
    assert settings["constrain_answers"] is False and settings["answer_candidates"] == 1.5
    assert settings["num_pairs"] == 2 and settings["question_config"].num_beams == 1
    assert settings["max_source_length"] == 100 and settings["window_stride"] == 25


def test_round_trip_reader_resolution(model_dir, tmp_path, monkeypatch):
    from qgen.cli.generate import QAG_READER, resolve_round_trip_reader
    from qgen.modeling.pretrained import DEFAULT_READER

    shipped = tmp_path / "models"
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", shipped)
    reader = shipped / DEFAULT_READER
    save_tiny_reader(reader)
    # the shipped model reads with the shipped reader; another model checks its own pairs
    assert resolve_round_trip_reader(None, None) == str(reader)
    assert resolve_round_trip_reader(None, str(model_dir)) == QAG_READER
    # --model en (or the shipped English model's directory) is the shipped model too
    english = shipped / qgen.modeling.pretrained.LANGUAGE_MODELS["en"]
    shutil.copytree(model_dir, english)
    assert resolve_round_trip_reader(None, "en") == str(reader)
    assert resolve_round_trip_reader(None, str(english)) == str(reader)
    assert resolve_round_trip_reader(None, "zh") == QAG_READER  # not shipped here
    assert resolve_round_trip_reader("qag", None) == QAG_READER
    assert resolve_round_trip_reader(DEFAULT_READER, str(model_dir)) == str(reader)  # by name
    assert resolve_round_trip_reader(str(reader), None) == str(reader)
    with pytest.raises(CLIError, match="--round_trip_reader: .*nope: no such model directory"):
        resolve_round_trip_reader(str(tmp_path / "nope"), None)
    with pytest.raises(CLIError, match="not an extractive QA model"):
        resolve_round_trip_reader(str(model_dir), None)


@pytest.mark.slow
def test_round_trip_of_the_shipped_model_asks_the_shipped_reader(tmp_path, capsys):
    """No --model, no --round_trip_reader: the real shipped model's pairs, each kept only where
    the real shipped reader finds its answer (token F1 >= 0.5 by default)."""
    from qgen.modeling.pretrained import DEFAULT_READER

    inp = tmp_path / "p.txt"
    inp.write_text(
        "The Eiffel Tower is in Paris. It was built in 1889 by Gustave Eiffel for the World "
        "Fair.\nApollo 11 landed on the Moon on 20 July 1969. Neil Armstrong stepped out first.\n"
    )
    out = tmp_path / "qa.jsonl"
    # the default: checked by the shipped reader, token F1 >= 0.5
    code, stdout, err = _run(capsys, "generate", "--input", inp, "--output", out, "--quiet")
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["round_trip_reader"].endswith(DEFAULT_READER)
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert records and all(r["round_trip_f1"] >= 0.5 for r in records)
    assert summary["pairs"] == len(records)
    assert "checked by " + DEFAULT_READER in err
    # --round_trip_f1 1: the reader's answer is the pair's
    code, stdout, err = _run(capsys, "generate", "--input", inp, "--output", out, "--quiet",
                             "--overwrite", "--round_trip_f1", "1")  # fmt: skip
    assert code == 0, err
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["round_trip_f1"] == 1.0 for r in records)
