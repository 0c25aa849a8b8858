"""The extractive reader: answer positions of the training features, a smoke fine-tune on the
bundled sample, reading, and SQuAD exact match / F1."""

import sys
from pathlib import Path

import datasets
import pytest
import torch
from qgen_fixtures import tiny_wordpiece_tokenizer
from transformers import BertConfig, BertForQuestionAnswering

from qgen.generation.reader import ExtractiveReader, evaluate_reader, squad_scores
from qgen.training.reader import ReaderArguments, prepare_train_features

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"


def test_answer_positions_point_at_the_answer():
    tok = tiny_wordpiece_tokenizer()
    context = (
        "the cat sat on the mat. paris is the capital of france! " * 3 + "a dog sat in the city."
    )
    rows = {
        "question": ["where is the dog?", "what is paris?"],
        "context": [context, context],
        "answers": [
            {"text": ["in the city"], "answer_start": [context.index("in the city")]},
            {"text": ["the capital"], "answer_start": [context.index("the capital")]},
        ],
    }
    enc = prepare_train_features(rows, tok, max_length=48, stride=16)
    assert len(enc["input_ids"]) > 2  # windows
    found = set()
    for ids, s, e in zip(enc["input_ids"], enc["start_positions"], enc["end_positions"]):
        if s == 0:
            assert e == 0  # a window without the answer points at [CLS]
            continue
        found.add(tok.decode(ids[s : e + 1]).replace(" ##", ""))
    assert found == {"in the city", "the capital"}


def test_squad_scores():
    scores = squad_scores(
        ["the Eiffel Tower", "Paris", "1887"], [["Eiffel Tower"], ["in Paris"], ["1889", "in 1889"]]
    )
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match="differ in length"):
        squad_scores(["x"], [])


def test_reader_arguments_validate():
    with pytest.raises(ValueError, match="stride"):
        ReaderArguments(model_name_or_path="m", train_file="f", max_length=64, stride=64)


@pytest.mark.slow
def test_train_then_read_and_evaluate(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    import train_reader

    tok = tiny_wordpiece_tokenizer()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=37)  # fmt: skip
    BertForQuestionAnswering(config).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    out = tmp_path / "reader"
    metrics = train_reader.main(
        ["--model_name_or_path", str(tmp_path / "base"), "--train_file", str(SAMPLE),
         "--output_dir", str(out), "--max_steps", "3", "--per_device_train_batch_size", "4",
         "--max_length", "96", "--stride", "32", "--use_cpu", "--report_to", "none",
         "--save_strategy", "no"]
    )  # fmt: skip
    assert metrics["train_questions"] == 62 and metrics["train_windows"] >= 62
    reader = ExtractiveReader(out, device="cpu")
    answers = reader.answer(["the cat sat on the mat."], ["where did the cat sit?"])
    assert len(answers) == 1 and "the cat sat on the mat."[answers[0]["start"] :].startswith(
        answers[0]["answer"]
    )
    scores = evaluate_reader(out, str(SAMPLE), max_samples=10)
    assert scores["questions"] == 10 and 0 <= scores["f1"] <= 100
    assert isinstance(datasets.__version__, str)


def test_best_span_by_hand():
    reader = ExtractiveReader.__new__(ExtractiveReader)
    reader.max_answer_len = 2
    start = torch.tensor([9.0, 1.0, 3.0, 0.0, 2.0])
    end = torch.tensor([9.0, 0.0, 1.0, 0.5, 4.0])
    in_passage = torch.tensor([False, True, True, True, True])  # token 0 is the question
    (i, j), score = reader._best_span(start, end, in_passage)
    assert (i, j) == (4, 4) and score == 6.0  # 2+4; (2, 4) scores 7 but is 3 tokens long
    reader.max_answer_len = 3
    assert reader._best_span(start, end, in_passage)[0] == (2, 4)
    assert reader._best_span(start, end, torch.zeros(5, dtype=torch.bool)) is None
