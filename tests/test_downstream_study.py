"""The downstream study of issue 22 (studies/generated_data/downstream.py): COVID-QA windows by
hand, variant parsing, and a smoke run of every step on tiny models."""

import json
import shutil
from pathlib import Path

import pytest
from qgen_fixtures import save_tiny_qag_model, save_tiny_reader

from studies.generated_data.downstream import (
    DownstreamConfig,
    covid_windows,
    parse_variants,
    run_downstream,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"


def test_parse_variants():
    assert parse_variants("a=--x 1; b=") == {"a": "--x 1", "b": ""}
    for bad in ("", "noequals", "a b=--x"):
        with pytest.raises(ValueError, match="--variants"):
            parse_variants(bad)
    with pytest.raises(ValueError, match="--domain"):
        DownstreamConfig(domain="nope")


def test_covid_windows_split_papers_and_keep_answers_inside_their_window(tmp_path):
    sentence = "Word " * 9 + "end."
    context = " ".join([sentence] * 6)  # 60 words, a sentence every 10
    answer_at = context.index("end.", 30)  # the fourth sentence's end

    def paper(i):
        qas = [{"id": f"{i}-0", "question": "q?", "answers": [{"text": "end", "answer_start": answer_at}]},
               {"id": f"{i}-1", "question": "bad?", "answers": [{"text": "zzz", "answer_start": 3}]}]  # fmt: skip
        return {"title": f"paper {i}", "paragraphs": [{"context": context, "qas": qas}]}

    path = tmp_path / "covid.json"
    path.write_text(json.dumps({"data": [paper(i) for i in range(4)]}))
    train, test = covid_windows(str(path), words=20, heldout=0.25, seed=0)
    assert len(test) == 1 and len(train) == 3  # one of four papers held out; wrong answers dropped
    assert {r["title"] for r in test}.isdisjoint({r["title"] for r in train})
    for row in train + test:
        start, text = row["answers"]["answer_start"][0], row["answers"]["text"][0]
        assert row["context"][start : start + len(text)] == text
        assert len(row["context"].split()) <= 30  # a window, not the paper


@pytest.mark.slow
def test_quick_run_of_every_step(tmp_path):
    data = tmp_path / "data" / "tydiqa_en"
    data.mkdir(parents=True)
    for split in ("train", "dev"):
        shutil.copy(SAMPLE, data / f"english_tydiqa_{split}.json")
    qag = save_tiny_qag_model(tmp_path / "qag")
    reader = save_tiny_reader(tmp_path / "reader")
    cfg = DownstreamConfig(
        domain="tydi", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out"),
        model=str(qag), reader_base=str(reader), quick=True, reader_seeds="0",
        variants="unchecked=--no_round_trip;candidates=--no_round_trip --candidates 4",
    )  # fmt: skip
    results = run_downstream(cfg)
    n = results["pairs_per_set"]
    assert n > 0 and set(results["readers"]) == {"human", "unchecked", "candidates"}
    for name in ("unchecked", "candidates"):
        assert results["variants"][name]["pairs"] >= n
        rows = [json.loads(line) for line in open(tmp_path / "out" / f"train-{name}.jsonl")]
        assert len(rows) == n and set(rows[0]) == {"id", "title", "context", "question", "answers"}
    human = results["readers"]["human"]
    assert human["seeds"] == 1 and 0 <= human["f1"] <= 100 and human["f1_vs_human"] in (1.0, 0.0)

    # resumed: nothing is generated or trained again
    def stamps():
        return {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()
                if p.name != "results.json"}  # fmt: skip

    before = stamps()
    assert run_downstream(cfg)["readers"] == results["readers"]
    assert stamps() == before


def test_answer_prior_measures_by_hand():
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from answer_priors import auc, keep_top

    rows = [{"passage": 0, "s": 3.0, "right": True}, {"passage": 0, "s": 1.0, "right": False},
            {"passage": 0, "s": 2.0, "right": True}, {"passage": 1, "s": 0.5, "right": False},
            {"passage": 1, "s": None, "right": True}]  # fmt: skip
    assert auc(rows, "s") == 1.0  # every right pair above every wrong one (None left out)
    top = keep_top(rows, "s", keep=2)
    assert top == {"right_share": 0.75, "passages_all_right": 1}
