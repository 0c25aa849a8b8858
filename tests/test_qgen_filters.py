"""Filters of generated pairs: duplicates within a passage (answers, questions, near-duplicate
questions) and across the corpus, each counted by reason."""

from qgen.generation.filters import CorpusDedup, filter_passage_pairs, normalize_question


def _pair(q, a, start, score):
    return {"question": q, "answer": a, "answer_start": start, "score": score}


def test_normalize_question():
    assert normalize_question("  When was it BUILT?? ") == "when was it built"


def test_passage_filter_keeps_the_best_of_each_group():
    pairs = [
        _pair("where is the tower?", "Paris", 10, -3.0),
        _pair("when was the tower first built?", "1887", 70, -1.5),  # near duplicate of C
        _pair("who built the tower", "Eiffel", 58, -1.0),  # the same question as A
        _pair("when was the tower built?", "1889", 40, -1.2),  # C
        _pair("what year was the tower built?", "1889", 40, -1.4),  # C's answer, worse score
        _pair("Who built the tower?", "Gustave Eiffel", 50, -0.5),  # A
    ]
    kept, dropped = filter_passage_pairs(pairs)
    assert [p["question"] for p in kept] == [
        "Who built the tower?", "when was the tower built?", "where is the tower?",
    ]  # fmt: skip
    assert dropped == {"duplicate_answer": 1, "duplicate_question": 1, "near_duplicate_question": 1}
    kept, dropped = filter_passage_pairs(pairs, near_duplicate_jaccard=1.01)
    assert "near_duplicate_question" not in dropped and len(kept) == 4


def test_corpus_dedup():
    dedup = CorpusDedup()
    assert dedup.add("Who built it?", "Eiffel")
    assert not dedup.add("who built it", "eiffel ")
    assert dedup.add("who built it", "Gustave Eiffel")
    dedup.update([{"question": "where?", "answers": {"text": ["Paris"]}}])
    assert not dedup.add("Where?", "paris")
