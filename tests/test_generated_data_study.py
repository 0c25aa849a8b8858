"""The generated-data study (studies/generated_data): QA-aligned F1 by hand, and a smoke run of
every step on tiny models and the bundled sample."""

import json
import shutil
from pathlib import Path

import pytest
from qgen_fixtures import (
    save_tiny_qag_model,
    save_tiny_reader,
)

from studies.generated_data.study import (
    GeneratedDataConfig,
    _by_margin,
    _reader_kept,
    qa_aligned_f1,
    round_robin,
    run_study,
)

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


def test_round_robin_takes_every_passage_once_before_any_twice():
    rows = [{"context": c, "q": i} for i, c in enumerate("aaabcc")]
    assert [r["q"] for r in round_robin(rows, 4)] == [0, 3, 4, 1]
    assert [r["q"] for r in round_robin(rows, 10)] == [0, 3, 4, 1, 5, 2]
    # ranked by round-trip margin within a passage; unchecked pairs (None) last
    rows = [{"context": "a", "q": 0, "round_trip_margin": None},
            {"context": "a", "q": 1, "round_trip_margin": 0.5},
            {"context": "a", "q": 2, "round_trip_margin": 3.0},
            {"context": "b", "q": 3, "round_trip_margin": 0.0}]  # fmt: skip
    assert [r["q"] for r in round_robin(rows, 4, key=_by_margin)] == [2, 3, 1, 0]


def test_reader_round_trip_keeps_agreeing_pairs_then_drops_corpus_duplicates():
    def row(i, q, a, f1):
        return {"id": i, "question": q, "answers": {"text": [a]}, "round_trip_f1": f1}

    checked = [row(0, "who?", "eiffel", 1.0), row(1, "when?", "1889", 0.4),
               row(2, "Who?", "Eiffel", 1.0),  # the same pair as 0 once normalised
               row(3, "where?", "paris", 0.6)]  # fmt: skip
    assert [r["id"] for r in _reader_kept(checked, 1.0)] == [0]
    assert [r["id"] for r in _reader_kept(checked, 0.5)] == [0, 3]
    # a pair the threshold drops does not block a later agreeing duplicate of it
    checked = [row(0, "when?", "1889", 0.0), row(1, "when?", "1889", 1.0)]
    assert [r["id"] for r in _reader_kept(checked, 1.0)] == [1]


def _tiny_models(tmp_path):
    """A tiny qag model (``tmp_path/qag``) and a tiny extractive reader (``tmp_path/reader``)."""
    qag = save_tiny_qag_model(tmp_path / "qag", sep_bias=3.0, qgen_task="qag")
    return qag, save_tiny_reader(tmp_path / "reader")


@pytest.mark.slow
def test_quick_run_of_every_step(tmp_path, monkeypatch):
    import qgen.modeling.pretrained

    data = tmp_path / "tydiqa"
    data.mkdir()
    for split in ("train", "dev"):
        shutil.copy(SAMPLE, data / f"english_tydiqa_{split}.json")
    qag, reader = _tiny_models(tmp_path)
    # the round-trip reader by a shipped reader's name (here the tiny one)
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", tmp_path)
    cfg = GeneratedDataConfig(
        data_dir=str(data), output_dir=str(tmp_path / "out"), model=qag, reader_base=reader,
        quick=True, round_trip_reader="reader", round_trip_f1=0.0,
    )  # fmt: skip
    results = run_study(cfg)
    sets = {"a_human", "b_generated", "c_filtered", "c_ranked", "b_random", "c_reader"}
    assert sets <= set(results)
    checked = [json.loads(line) for line in open(tmp_path / "out" / "reader_round_trip.jsonl")]
    assert checked and all(0 <= row["round_trip_f1"] <= 1 for row in checked)
    assert results["c_reader"]["train_pairs"] == results["pairs_per_set"]
    filtered = [json.loads(line) for line in open(tmp_path / "out" / "filtered.jsonl")]
    assert all("round_trip_margin" in row for row in filtered)
    train_c = [json.loads(line) for line in open(tmp_path / "out" / "train-c_filtered.jsonl")]
    assert set(train_c[0]) == {"id", "title", "context", "question", "answers"}
    assert results["a_human"]["train_pairs"] == results["pairs_per_set"] > 0
    assert 0 <= results["a_human"]["f1"] <= 100
    assert json.loads((tmp_path / "out" / "results.json").read_text())["pairs_per_set"] > 0
    assert results["c_filtered"]["seeds"] == 1 and len(results["c_filtered_by_seed"]) == 1
    # a second seed for two sets: the first seed's readers are reused, the others not trained
    cfg.reader_seeds, cfg.sets = "0,1", "b_generated,c_filtered"
    again = run_study(cfg)
    assert "a_human" not in again and again["b_generated"]["seeds"] == 2
    assert again["c_filtered_by_seed"][0] == results["c_filtered_by_seed"][0]
    cfg.sets = "b_generated,nope"
    with pytest.raises(ValueError, match="nope"):
        run_study(cfg)
    cfg.sets, cfg.round_trip_f1 = "b_generated", 1.01  # no answer agrees that well
    with pytest.raises(ValueError, match="lower --round_trip_f1"):
        run_study(cfg)
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        GeneratedDataConfig(data_dir=str(tmp_path / "nope")).files()


def test_round_trip_check_scores_by_hand():
    from studies.generated_data.round_trip import _scores

    passages = [{"context": "c", "pairs": [{"answer": "paris"}, {"answer": "1889"},
                                          {"answer": "gustave eiffel"}]}]  # fmt: skip
    # q0 read as paris (right), q1 read as gustave eiffel (its wrong pair's answer), q2 as eiffel
    reads = [["paris", "gustave eiffel", "eiffel"]]
    full = _scores(passages, reads, 1.0)
    assert (full["kept_right"], full["kept_wrong"]) == (1, 1)
    assert full["precision"] == pytest.approx(50.0) and full["recall"] == pytest.approx(100 / 3)
    half = _scores(passages, reads, 0.5)  # "eiffel" vs "gustave eiffel": F1 2/3
    assert (half["kept_right"], half["kept_wrong"]) == (2, 1)


@pytest.mark.slow
def test_round_trip_check_runs_both_readers(tmp_path):
    from studies.generated_data.round_trip import RoundTripCheckConfig, run_check

    qag, reader = _tiny_models(tmp_path)
    cfg = RoundTripCheckConfig(
        squad_file=str(SAMPLE), model=qag, reader=reader,
        passages=5, output=str(tmp_path / "check.json"),
    )  # fmt: skip
    results = run_check(cfg)
    assert results["passages"] > 0 and results["right_pairs"] == results["wrong_pairs"]
    for name in ("unilm", "extractive"):
        rows = results["readers"][name]["by_threshold"]
        assert [r["threshold"] for r in rows] == [0.5, 0.8, 1.0]
        # a lower threshold keeps at least as many pairs
        assert rows[0]["kept_right"] >= rows[-1]["kept_right"]
    assert json.loads((tmp_path / "check.json").read_text())["passages"] == results["passages"]
