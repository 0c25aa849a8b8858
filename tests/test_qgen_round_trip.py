"""The round-trip check with the qag model itself: its packed scores equal the unpacked ones,
and a pair is kept when the model reads its question as asking for its own answer."""

import math

import pytest
import torch
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer

import qgen.generation.round_trip as rt
from qgen.modeling.inputs import UniLMCollator, encode_source

PASSAGE = "the cat sat on the mat in paris, the capital of france."


def _unpacked_score(model, tok, answer, question):
    source, _ = encode_source(tok, PASSAGE, None, max_length=320)
    sep = tok.sep_token_id
    target = [*tok(answer, add_special_tokens=False)["input_ids"], sep,
              *tok(question, add_special_tokens=False)["input_ids"], sep]  # fmt: skip
    feature = {
        "input_ids": source + target,
        "token_type_ids": [0] * len(source) + [1] * len(target),
    }
    batch = UniLMCollator(tok)([feature])
    with torch.no_grad():
        out = model(**batch, num_items_in_batch=1)  # the summed cross-entropy
    return -float(out.loss)


def test_packed_scores_equal_unpacked_ones():
    tok = tiny_wordpiece_tokenizer()
    model = tiny_unilm_model(vocab_size=len(tok))
    targets = [("paris", "where is the cat?"), ("the mat", "what is in paris?"), ("cat", "who?")]
    scores = rt.score_targets(model, tok, PASSAGE, targets)
    for (answer, question), score in zip(targets, scores):
        assert score == pytest.approx(_unpacked_score(model, tok, answer, question), abs=1e-4)


# rows: a question; columns: the candidate answers, in the order of the pairs. Question 3 reads as
# asking for the first answer.
TABLE = {"where?": [-1, -5, -6], "what sat?": [-7, -2, -9], "which city?": [-3, -8, -4]}


def _pairs(third_answer: str, third_start: int) -> list[dict]:
    return [
        {"question": "where?", "answer": "paris", "answer_start": 27},
        {"question": "what sat?", "answer": "the cat", "answer_start": 0},
        {"question": "which city?", "answer": third_answer, "answer_start": third_start},
    ]


def _score_by_table(monkeypatch, pairs: list[dict]) -> list[int]:
    """Make ``rt._score`` read TABLE; returns the list it fills with the targets of each call."""
    answers = [p["answer"] for p in pairs]
    calls = []

    def fake(model, tok, source, targets):
        calls.append(len(targets))
        return [TABLE[q][answers.index(a)] for a, q in targets]

    monkeypatch.setattr(rt, "_score", fake)
    return calls


def test_filter_keeps_pairs_whose_question_picks_their_answer(monkeypatch):
    pairs = _pairs("the capital of france", 37)
    calls = _score_by_table(monkeypatch, pairs)
    tok = tiny_wordpiece_tokenizer()
    assert rt.round_trip_answers(None, tok, PASSAGE, pairs) == [0, 1, 0]
    assert calls == [9]  # one window: every (answer, question) target in one forward pass
    kept, dropped = rt.round_trip_filter(None, tok, PASSAGE, pairs)
    assert [p["answer"] for p in kept] == ["paris", "the cat"] and dropped == 1
    # min_f1=0 accepts any chosen answer: every pair stays
    assert rt.round_trip_filter(None, tok, PASSAGE, pairs, min_f1=0.0)[1] == 0
    assert rt.round_trip_filter(None, tok, PASSAGE, pairs[:1]) == (pairs[:1], 0)


def test_a_pair_that_picks_its_own_answer_stays_even_with_an_empty_f1(monkeypatch):
    """Answers that normalise to nothing ("The", "%") have token F1 0 with everything; a pair
    whose question picks its own answer is kept all the same."""
    pairs = [
        {"question": "which article?", "answer": "The", "answer_start": 0},
        {"question": "what sat?", "answer": "the cat", "answer_start": 0},
    ]
    monkeypatch.setattr(rt, "_score", lambda m, t, s, targets: [-1, -5, -5, -1])
    kept, dropped = rt.round_trip_filter(None, tiny_wordpiece_tokenizer(), PASSAGE, pairs)
    assert kept == pairs and dropped == 0


def test_margins_rank_pairs_by_how_clearly_their_question_picks_their_answer(monkeypatch):
    pairs = _pairs("paris, the capital", 27)
    _score_by_table(monkeypatch, pairs)
    tok = tiny_wordpiece_tokenizer()
    assert rt.round_trip_scores(None, tok, PASSAGE, pairs) == list(TABLE.values())
    # own score minus the best other answer's: 4 over "the cat", 5 over "paris", -1 under "paris"
    assert rt.round_trip_margins(None, tok, PASSAGE, pairs) == [4, 5, -1]
    assert rt.round_trip_filter(None, tok, PASSAGE, pairs)[1] == 1
    # the kept pairs can carry their margin (copies: the caller's pairs stay as they were)
    kept, _ = rt.round_trip_filter(None, tok, PASSAGE, pairs, margin_key="m")
    assert [p["m"] for p in kept] == [4, 5] and not any("m" in p for p in pairs)
    assert rt.round_trip_filter(None, tok, PASSAGE, pairs[:1], margin_key="m")[0][0]["m"] is None
    # an answer that agrees with the pair's own (token F1 >= min_f1) counts as its own: "paris"
    # and "paris, the capital" have F1 0.67
    assert rt.round_trip_margins(None, tok, PASSAGE, pairs, min_f1=0.5) == [4, 5, 5]
    assert rt.round_trip_filter(None, tok, PASSAGE, pairs, min_f1=0.5)[1] == 0
    assert rt.round_trip_margins(None, tok, PASSAGE, pairs[:1]) == [math.inf]
    assert rt.round_trip_margins(None, tok, PASSAGE, pairs, min_f1=0.0) == [math.inf] * 3
