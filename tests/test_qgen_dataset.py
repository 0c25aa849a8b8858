"""The dataset chain (qgen.generation.dataset): one chain for the CLI, the Python API and the
studies; the round trip's one interface with its two readers."""

import json
from collections import Counter

import pytest
import torch
from qgen_fixtures import (
    save_tiny_qag_model,
    save_tiny_reader,
)

import qgen
from qgen.cli.main import main
from qgen.generation.dataset import (
    BlockResult,
    CorpusFilter,
    DatasetChain,
    generate_dataset,
    iter_dataset,
    resolve_round_trip,
    to_records,
)
from qgen.generation.generator import QAGenerator
from qgen.generation.round_trip import (
    ReaderRoundTrip,
    RoundTrip,
    SelfRoundTrip,
    round_trip_filter,
)
from qgen.io.corpus import Passage
from qgen.modeling.pretrained import QGenModelError

PASSAGES = [
    "the cat sat on the mat. the dog sat in paris.",
    "paris is the capital of france. the river is in the city.",
    "a b c d e f g.",
    "the dog sat.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qag_model(tmp_path_factory.mktemp("qag-model"))  # targets end early


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save_tiny_reader(tmp_path_factory.mktemp("reader"))


def _corpus(tmp_path, passages=PASSAGES):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "context": p}) + "\n"
                            for i, p in enumerate(passages)))  # fmt: skip
    return path


def _cli_records(model_dir, inp, out, *extra):
    assert main(["generate", "--model", model_dir, "--input", str(inp), "--output", str(out),
                 "--quiet", "--block_size", "2", *extra]) == 0  # fmt: skip
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("round_trip", [None, "qag", "reader"])
def test_the_python_chain_writes_what_the_cli_writes(model_dir, reader_dir, tmp_path, round_trip):
    inp = _corpus(tmp_path)
    extra = []
    if round_trip == "qag":
        extra = ["--round_trip", "--round_trip_reader", "qag"]
    elif round_trip == "reader":
        extra = ["--round_trip", "--round_trip_reader", reader_dir, "--round_trip_f1", "0"]
    cli = _cli_records(model_dir, inp, tmp_path / "cli.jsonl", *extra)
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    option = {None: None, "qag": "qag", "reader": reader_dir}[round_trip]
    summary = generate_dataset(
        str(inp), generator, round_trip=option, round_trip_f1=0.0 if round_trip == "reader" else 1.0,
        block_size=2, sink=tmp_path / "py.jsonl",
    )  # fmt: skip
    ours = [json.loads(line) for line in (tmp_path / "py.jsonl").read_text().splitlines()]
    assert ours == cli and ours
    assert summary["pairs"] == len(cli) and summary["passages"] == len(PASSAGES)
    cli_summary = json.loads((tmp_path / "cli.jsonl.progress").read_text().splitlines()[-1])
    assert cli_summary.get("complete") is True
    if round_trip == "qag":
        assert all("round_trip_margin" in r for r in ours)
    if round_trip == "reader":
        assert all(0 <= r["round_trip_f1"] <= 1 for r in ours)


def test_sinks_and_streaming(model_dir, tmp_path):
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    kept = []
    counts = generate_dataset(PASSAGES, generator, sink=kept)
    seen = []
    generate_dataset(PASSAGES, generator, sink=seen.append)
    whole = generate_dataset(PASSAGES, generator)
    assert kept == seen == whole["records"] and kept
    assert counts["pairs"] == len(kept) and counts["passages"] == len(PASSAGES)
    # strings get ids by position, the schema is SQuAD's
    assert {r["id"].rsplit("-", 1)[0] for r in kept} <= {"0", "1", "2", "3"}
    assert set(kept[0]) >= {"id", "title", "context", "question", "answers", "score"}
    # streaming: the counts fill in as records come
    counts = {}
    stream = iter_dataset(PASSAGES, generator, counts=counts, block_size=1)
    next(stream)
    assert counts["passages"] == 1
    with pytest.raises(TypeError, match="sink must be"):
        generate_dataset(PASSAGES, generator, sink=3)


def test_a_failed_run_leaves_no_partial_file(model_dir, tmp_path):
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    out = tmp_path / "qa.jsonl"
    with pytest.raises(qgen.QGenDataError):
        generate_dataset(["a good passage.", ""], generator, sink=out, block_size=1)
    assert not out.exists() and not (tmp_path / "qa.jsonl.tmp").exists()


def test_top_level_entry_point():
    assert qgen.generate_dataset is generate_dataset


class _Answers:
    """A fake extractive reader: answers each question from a table."""

    def __init__(self, table):
        self.table = table

    def answer(self, passages, questions, batch_size=16):
        return [{"answer": self.table[q], "start": 0, "score": 0.0} for q in questions]


PAIRS = [
    {"question": "who built it?", "answer": "Gustave Eiffel", "answer_start": 0, "score": -0.1},
    {"question": "when?", "answer": "1889", "answer_start": 20, "score": -0.2},
    {"question": "where?", "answer": "in Paris", "answer_start": 30, "score": -0.3},
]


def test_reader_round_trip_scores_every_pair_and_keeps_by_f1():
    reader = ReaderRoundTrip(_Answers({"who built it?": "Gustave Eiffel", "when?": "1900",
                                       "where?": "Paris"}), min_f1=1.0)  # fmt: skip
    scored = reader.score("passage", PAIRS)
    assert [p["round_trip_f1"] for p in scored] == [1.0, 0.0, pytest.approx(2 / 3)]
    assert [p["answer"] for p in reader.check("passage", PAIRS)] == ["Gustave Eiffel"]
    half = ReaderRoundTrip(_Answers(reader.reader.table), min_f1=0.5)
    assert [p["answer"] for p in half.check("passage", PAIRS)] == ["Gustave Eiffel", "in Paris"]
    assert "round_trip_f1" not in PAIRS[0]  # copies, the input is untouched
    assert reader.check("passage", []) == []
    rule = ReaderRoundTrip(None, min_f1=0.5)  # the keep rule alone, for scores cached before
    assert rule.keeps({"round_trip_f1": 0.5}) and not rule.keeps({"round_trip_f1": 0.4})
    with pytest.raises(ValueError, match="no reader"):
        rule.score("passage", PAIRS)
    with pytest.raises(ValueError, match="min_f1"):
        ReaderRoundTrip(None, min_f1=-1)


def test_self_round_trip_is_round_trip_filter(model_dir):
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    passage = PASSAGES[1]
    pairs = [
        {"question": "what is paris?", "answer": "the capital", "answer_start": 9, "score": -1.0},
        {"question": "where is the river?", "answer": "in the city", "answer_start": 45,
         "score": -1.0},
        {"question": "what is the city?", "answer": "france", "answer_start": 24, "score": -1.0},
    ]  # fmt: skip
    check = SelfRoundTrip.of(generator)
    expected, _ = round_trip_filter(generator.model, generator.tokenizer, passage, pairs,
                                    margin_key="round_trip_margin")  # fmt: skip
    assert check.check(passage, pairs) == expected
    assert len(check.score(passage, pairs)) == 3
    assert check.check(passage, pairs[:1])[0]["round_trip_margin"] is None  # a lone pair


def test_chain_runs_filters_then_round_trip_and_counts():
    class DropLast(RoundTrip):
        key = "kept"

        def score(self, passage, pairs):
            return [{**p, "kept": i < len(pairs) - 1} for i, p in enumerate(pairs)]

        def keeps(self, pair):
            return pair["kept"]

    dup = {**PAIRS[0], "score": -0.5}  # the same answer again, worse score
    chain = DatasetChain(None, round_trip=DropLast())
    filtered = Counter()
    kept = chain.postprocess("passage", [*PAIRS, dup], filtered)
    assert [p["answer"] for p in kept] == ["Gustave Eiffel", "1889"]
    assert filtered == {"duplicate_answer": 1, "round_trip": 1}
    with pytest.raises(ValueError, match="near_duplicate_jaccard"):
        DatasetChain(None, near_duplicate_jaccard=0)


def test_corpus_filter_drops_repeats_in_order_and_counts_emptied_passages():
    a, b = Passage("a", "", "ctx a"), Passage("b", "", "ctx b")
    first = BlockResult(to_records(a, PAIRS[:2]), 1, 0)
    second = BlockResult(to_records(b, [{**PAIRS[0], "question": "Who built it?"}]), 1, 0)
    corpus = CorpusFilter()
    assert len(corpus(first).records) == 2
    out = corpus(second)
    assert out.records == [] and out.empty == 1
    assert out.filtered["corpus_duplicate_question"] == 1
    # resuming: records written before count as seen
    again = CorpusFilter(first.records)(BlockResult(to_records(b, PAIRS[:1]), 1, 0))
    assert again.records == []


def test_records_carry_the_round_trip_measure_rounded():
    passage = Passage("p", "title", "ctx")
    [record] = to_records(passage, [{**PAIRS[0], "round_trip_margin": 1.234567}])
    assert record["round_trip_margin"] == 1.2346 and record["id"] == "p-0"
    assert record["answers"] == {"text": ["Gustave Eiffel"], "answer_start": [0]}
    [record] = to_records(passage, [{**PAIRS[0], "round_trip_margin": None}])
    assert record["round_trip_margin"] is None


def test_resolve_round_trip(model_dir, reader_dir, tmp_path):
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    assert resolve_round_trip(None, generator) is None
    assert isinstance(resolve_round_trip("qag", generator), SelfRoundTrip)
    mine = ReaderRoundTrip(None)
    assert resolve_round_trip(mine, generator) is mine
    assert isinstance(resolve_round_trip(reader_dir, generator, 0.5), ReaderRoundTrip)
    with pytest.raises(QGenModelError, match="no such model directory"):
        resolve_round_trip(str(tmp_path / "nope"), generator)
    with pytest.raises(QGenModelError, match="not an extractive QA model"):
        resolve_round_trip(model_dir, generator)


class _PassEvery(RoundTrip):
    """A fake check: scores pairs by position and passes those at even positions."""

    key = "round_trip_f1"

    def score(self, passage, pairs):
        return [{**p, self.key: 1.0 - 0.1 * i} for i, p in enumerate(pairs)]

    def keeps(self, pair):
        return round((1.0 - pair[self.key]) * 10) % 2 == 0


def test_over_generation_keeps_the_best_checked_pairs_up_to_num_pairs():
    six = [{**PAIRS[0], "question": f"q{i}?", "answer": f"a{i}", "answer_start": i,
            "score": -0.1 * i} for i in range(6)]  # fmt: skip
    chain = DatasetChain(None, round_trip=_PassEvery(), candidates=6, num_pairs=2)
    filtered = Counter()
    kept = chain.postprocess("passage", six, filtered)
    # positions 0, 2, 4 pass; the best two by the check's measure are 0 and 2
    assert [p["answer"] for p in kept] == ["a0", "a2"]
    assert filtered == {"round_trip": 3, "not_selected": 1}
    with pytest.raises(ValueError, match="candidates must be >= num_pairs"):
        DatasetChain(None, candidates=2, num_pairs=3)


def test_over_generation_fills_num_pairs_and_counts_short_passages(model_dir, tmp_path):
    generator = QAGenerator.from_pretrained(model_dir, device="cpu", num_pairs=2)
    plain = generate_dataset(PASSAGES, generator, round_trip="qag", num_pairs=2)
    over = generate_dataset(PASSAGES, generator, round_trip="qag", num_pairs=2, candidates=4)
    per_passage = Counter(r["id"].rsplit("-", 1)[0] for r in over["records"])
    assert max(per_passage.values()) <= 2
    assert plain["pairs"] and over["pairs"]
    short = sum(per_passage.get(str(i), 0) < 2 for i in range(len(PASSAGES)))
    assert over["filtered"].get("passages_with_fewer_pairs", 0) >= short - over["filtered"].get(
        "corpus_duplicate_question", 0
    )
    # the CLI flag runs the same chain
    inp = _corpus(tmp_path)
    cli = _cli_records(model_dir, inp, tmp_path / "cli.jsonl", "--round_trip",
                       "--round_trip_reader", "qag", "--num_pairs", "2", "--candidates", "4")  # fmt: skip
    assert cli and all(n <= 2 for n in Counter(r["id"].rsplit("-", 1)[0] for r in cli).values())
    assert main(["generate", "--model", model_dir, "--input", str(inp), "--num_pairs", "3",
                 "--candidates", "2"]) == 2  # fmt: skip
