"""The generated-data study (studies/generated_data): QA-aligned F1 by hand, and a smoke run of
every step on tiny models and the bundled sample."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from qgen.testing import tiny_unilm_model, tiny_wordpiece_tokenizer
from studies.generated_data.study import GeneratedDataConfig, qa_aligned_f1, run_study

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"


def test_qa_aligned_f1_by_hand():
    gen = {
        "p": [{"question": "who built it", "answer": "eiffel"}, {"question": "x", "answer": "y"}]
    }
    human = {
        "p": [{"question": "who built it", "answer": "eiffel"}],
        "q": [{"question": "a", "answer": "b"}],
    }
    scores = qa_aligned_f1(gen, human)
    assert scores["passages"] == 1  # "q" has no generated pair
    assert scores["precision"] == pytest.approx(50.0) and scores["recall"] == pytest.approx(100.0)
    assert scores["f1"] == pytest.approx(100 * 2 * 0.5 / 1.5)


@pytest.mark.slow
def test_quick_run_of_every_step(tmp_path):
    data = tmp_path / "tydiqa"
    data.mkdir()
    for split in ("train", "dev"):
        shutil.copy(SAMPLE, data / f"english_tydiqa_{split}.json")
    tok = tiny_wordpiece_tokenizer()
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 3.0
    model.config.qgen_task = "qag"
    model.save_pretrained(tmp_path / "qag")
    tok.save_pretrained(tmp_path / "qag")
    reader = BertForQuestionAnswering(BertConfig(vocab_size=len(tok), hidden_size=32,
                                                 num_hidden_layers=1, num_attention_heads=4,
                                                 intermediate_size=37))  # fmt: skip
    reader.save_pretrained(tmp_path / "reader-base")
    tok.save_pretrained(tmp_path / "reader-base")
    cfg = GeneratedDataConfig(
        data_dir=str(data), output_dir=str(tmp_path / "out"), model=str(tmp_path / "qag"),
        reader_base=str(tmp_path / "reader-base"), quick=True,
    )  # fmt: skip
    results = run_study(cfg)
    assert {"a_human", "b_generated", "c_filtered"} <= set(results)
    assert results["a_human"]["train_pairs"] == results["pairs_per_set"] > 0
    assert 0 <= results["a_human"]["f1"] <= 100
    assert json.loads((tmp_path / "out" / "results.json").read_text())["pairs_per_set"] > 0
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        GeneratedDataConfig(data_dir=str(tmp_path / "nope")).files()
