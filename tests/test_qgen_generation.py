"""QAGenerator: answer location, merging, the two-stage call's schema, windows, presets."""

import dataclasses

import pytest
import torch
from qgen_fixtures import (
    tiny_chinese_tokenizer,
    tiny_sentencepiece_tokenizer,
    tiny_unilm_model,
    tiny_wordpiece_tokenizer,
)

from decoding import DecodingConfig
from qgen.generation.answers import (
    _whole_words,
    join_cjk,
    locate_answer,
    locate_tokens,
    merge_pairs,
)
from qgen.generation.filters import normalize_question
from qgen.generation.generator import QAGenerator
from qgen.generation.presets import PRESETS, default_answer_config, default_question_config

PASSAGE = "The Eiffel Tower is in  Paris, France. Café de Flore is in Paris too."


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("eiffel tower", "Eiffel Tower"),  # case
        (
            "in paris , france",
            "in  Paris, France",
        ),  # WordPiece spacing; the passage's double space kept
        ("cafe de flore", "Café de Flore"),  # accents stripped by the tokenizer
        ("paris", "Paris"),  # first occurrence without a window
    ],
)
def test_locate_answer_keeps_the_passage_spelling(answer, expected):
    span = locate_answer(PASSAGE, answer)
    assert span is not None and PASSAGE[span[0] : span[1]] == expected


def test_locate_answer_prefers_the_window_and_rejects_non_spans():
    second = PASSAGE.rindex("Paris")
    assert locate_answer(PASSAGE, "Paris", window=(40, len(PASSAGE)))[0] == second
    assert locate_answer(PASSAGE, "London") is None
    assert locate_answer(PASSAGE, "o") is None  # inside "Tower", "Flore": not a span
    assert locate_answer(PASSAGE, "tower is") == (11, 19)
    assert locate_answer(PASSAGE, "   ") is None
    zh = "世界第二高山峰是乔戈里峰，位于中国境内。"
    start, end = locate_answer(zh, "乔 戈 里 峰")
    assert zh[start:end] == "乔戈里峰"


def test_merge_pairs_keeps_best_and_sorts():
    pairs = [
        {"question": "q1", "answer": "Paris", "answer_start": 5, "score": -2.0},
        {"question": "q2", "answer": "paris", "answer_start": 5, "score": -1.0},
        {"question": "q3", "answer": "France", "answer_start": 20, "score": -1.5},
        {"question": "q4", "answer": "Paris", "answer_start": 60, "score": -3.0},  # another place
    ]
    merged = merge_pairs(pairs)
    assert [p["question"] for p in merged] == ["q2", "q3", "q4"]


def test_join_cjk():
    assert join_cjk("泰 国 的 十 世 王 是 谁 ？ 68 岁") == "泰国的十世王是谁？68岁"
    assert join_cjk("who is in 巴 黎 ?") == "who is in 巴黎?"


def test_presets_follow_su():
    a, q = PRESETS["su-2020-07"]
    assert (a.strategy, a.top_k, q.strategy, q.num_beams) == ("sample", 5, "beam", 5)
    a, q = PRESETS["su-2020-11"]
    assert (a.strategy, a.top_p, q.strategy) == ("sample", 0.95, "greedy")
    a, q = default_answer_config(), default_question_config()
    assert a.consistent and a.top_p == 0.95 and q.num_beams == 5 and q.length_penalty == 0.0
    assert a.max_new_tokens == q.max_new_tokens == 64


def _generator(tok, **kw):
    """A random tiny model whose head favours [SEP] a little, so targets end within a few tokens."""
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 4.0
    return QAGenerator(model, tok, seed=0, **kw)


@pytest.mark.parametrize(
    "make_tok", [tiny_wordpiece_tokenizer, tiny_sentencepiece_tokenizer, tiny_chinese_tokenizer]
)
def test_generate_schema(make_tok):
    tok = make_tok()
    gen = _generator(tok, max_source_length=48, window_stride=8)
    passages = [PASSAGE, "世界第二高山峰是乔戈里峰，位于中国境内。", "a b c d e f g h " * 12]
    kept = gen.generate(passages, num_pairs=3, batch_size=2, keep_non_span_answers=True)
    spans = gen.generate(passages, num_pairs=3, batch_size=2)
    assert len(kept) == len(spans) == 3
    for out, keep in ((kept, True), (spans, False)):
        for passage, pairs in zip(passages, out):
            assert len(pairs) <= 3
            scores = [p["score"] for p in pairs]
            assert scores == sorted(scores, reverse=True)
            for p in pairs:
                assert set(p) == {"question", "answer", "answer_start", "score", "answer_score"}
                assert isinstance(p["question"], str) and p["question"]
                assert p["score"] <= 0.0
                if p["answer_start"] >= 0:
                    assert passage[p["answer_start"] :].startswith(p["answer"])
                else:
                    assert keep
    assert any(kept)  # a random tiny model still produces (non-span) pairs


def test_generate_is_reproducible_with_a_seed():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok, question_config=default_question_config(strategy="greedy", num_beams=1))
    passages = [PASSAGE, "the cat sat on the mat."]
    a = gen.generate(passages, num_pairs=2, keep_non_span_answers=True)
    b = gen.generate(passages, num_pairs=2, keep_non_span_answers=True)
    assert a == b


def test_span_answers_are_found_through_tokens():
    """An answer copied from the passage is located even when its text decodes differently."""
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok)
    window = gen._windows(PASSAGE, 0)[0]
    ids = tok("Paris", add_special_tokens=False)["input_ids"]
    start, end = locate_tokens(ids, window.window_ids, window.offsets, PASSAGE)
    assert PASSAGE[start:end] == "Paris" and start == PASSAGE.index("Paris")


ANSWER_STRATEGIES = {
    "default": default_answer_config(),
    "greedy": default_answer_config(strategy="greedy", top_p=1.0, consistent=False),
    "top_k": default_answer_config(top_p=1.0, top_k=5, consistent=False),
    "plain_top_p": default_answer_config(consistent=False),
    "beam": default_answer_config(strategy="beam", num_beams=4, top_p=1.0),
}


@pytest.mark.parametrize("strategy", list(ANSWER_STRATEGIES))
@pytest.mark.parametrize(
    "make_tok", [tiny_wordpiece_tokenizer, tiny_sentencepiece_tokenizer, tiny_chinese_tokenizer]
)
def test_random_model_answers_are_all_whole_word_spans(make_tok, strategy):
    """Constrained by default: a random-weights model writes only spans of its passage, under
    every answer strategy, and they neither start nor end inside a word."""
    tok = make_tok()
    gen = _generator(tok, answer_config=ANSWER_STRATEGIES[strategy], max_source_length=48,
                     window_stride=8)  # fmt: skip
    passages = [PASSAGE, "世界第二高山峰是乔戈里峰，位于中国境内。", "the cat sat on the mat. " * 8]
    out = gen.generate(passages, num_pairs=3, batch_size=2, keep_non_span_answers=True)
    assert sum(len(p) for p in out) >= 3  # punctuation-only spans are not answers
    for passage, pairs in zip(passages, out):
        for p in pairs:
            start = p["answer_start"]
            assert start >= 0 and passage[start : start + len(p["answer"])] == p["answer"], p
            assert _whole_words(passage, start, start + len(p["answer"])), p


def test_free_answers_switch_keeps_su_unconstrained_sampling():
    tok = tiny_wordpiece_tokenizer()
    free = _generator(tok, constrain_answers=False)
    out = free.generate([PASSAGE, "the cat sat."], num_pairs=3, keep_non_span_answers=True)
    assert any(p["answer_start"] == -1 for pairs in out for p in pairs)  # a random model invents
    dropped = free.generate([PASSAGE, "the cat sat."], num_pairs=3)
    assert all(p["answer_start"] >= 0 for pairs in dropped for p in pairs)


def test_num_pairs_are_distinct_when_samples_agree(monkeypatch):
    """Samples A A B A C D: oversampling and merging give three distinct answers A B C, not
    the two that the first three samples hold."""
    tok = tiny_wordpiece_tokenizer()
    passage = "the cat sat on the mat in paris."
    words = {
        w: tok(w, add_special_tokens=False)["input_ids"] for w in ("cat", "mat", "paris", "the")
    }
    order = ["cat", "cat", "mat", "cat", "paris", "the"]
    for candidates, expected in ((2.0, {"cat", "mat", "paris"}), (1.0, {"cat", "mat"})):
        gen = _generator(tok, answer_candidates=candidates)
        real = gen._decode

        def fake_stage_one(batch, config, rows=None, prefixes=None, real=real, **kw):
            if prefixes is not None:  # stage 2: a distinct question per answer
                return [
                    (p[:-1] + [tok.convert_tokens_to_ids("?")], -1.0, 2, True) for p in prefixes
                ]
            samples = config.num_return_sequences
            return [(words[order[i % 6]], -1.0, 2, True) for i in range(samples)]

        monkeypatch.setattr(gen, "_decode", fake_stage_one)
        pairs = gen.generate([passage], num_pairs=3)[0]
        assert {p["answer"] for p in pairs} == expected


def test_a_repeated_question_gives_the_next_answer_a_turn(monkeypatch):
    """Answers cat, mat, paris, the; the question about "mat" repeats the one about "cat", so
    "the" is asked about too: three pairs with distinct questions."""
    tok = tiny_wordpiece_tokenizer()
    passage = "the cat sat on the mat in paris."
    ids = {w: tok(w, add_special_tokens=False)["input_ids"] for w in ("cat", "mat", "paris", "the")}
    questions = {"cat": "what sat?", "mat": "what sat ?", "paris": "where?", "the": "which?"}
    word_of = {tuple(v): k for k, v in ids.items()}
    gen = _generator(tok)

    def fake(batch, config, rows=None, prefixes=None, **kw):
        if prefixes is None:  # stage 1: four distinct samples
            order = ["cat", "mat", "paris", "the", "cat", "cat"]
            return [(ids[order[i % 6]], -1.0, 2, True) for i in range(config.num_return_sequences)]
        asked = [word_of[tuple(p[:-1])] for p in prefixes]
        return [(tok(questions[w], add_special_tokens=False)["input_ids"], -1.0, 3, True)
                for w in asked]  # fmt: skip

    monkeypatch.setattr(gen, "_decode", fake)
    pairs = gen.generate([passage], num_pairs=3)[0]
    assert sorted(p["answer"] for p in pairs) == ["cat", "paris", "the"]
    assert len({p["question"] for p in pairs}) == 3


def test_distinct_answers_and_questions_from_a_random_model():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok)
    passages = ["the cat sat on the mat in paris, france.", PASSAGE, "a dog is in the city."]
    out = gen.generate(passages, num_pairs=3)
    assert sum(len(pairs) for pairs in out) >= 4
    for pairs in out:
        assert len(pairs) <= 3
        assert len({(p["answer_start"], p["answer"]) for p in pairs}) == len(pairs)
        assert len({normalize_question(p["question"]) for p in pairs}) == len(pairs)


def test_long_passage_uses_windows():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok, max_source_length=24, window_stride=4)
    long = "the cat sat on the mat. " * 20
    windows = gen._windows(long, 0)
    assert len(windows) > 3
    assert all(len(w.source) <= 24 for w in windows)
    assert windows[-1].span[1] >= len(long.rstrip())
    out = gen.generate([long], num_pairs=2, keep_non_span_answers=True)
    assert len(out) == 1 and len(out[0]) <= 2


def test_generate_questions_with_and_without_answers():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok, question_config=default_question_config(max_new_tokens=8))
    qg = gen.generate_questions(
        [PASSAGE, PASSAGE], ["Paris", {"text": "France", "answer_start": 31}]
    )
    assert [q["answer_start"] for q in qg] == [PASSAGE.index("Paris"), 31]
    assert all(isinstance(q["question"], str) and q["score"] <= 0 for q in qg)
    plain = gen.generate_questions(["the cat sat.", PASSAGE], batch_size=1)
    assert [set(q) for q in plain] == [{"question", "score"}] * 2
    with pytest.raises(ValueError, match="2 passages but 1 answers"):
        gen.generate_questions([PASSAGE, PASSAGE], ["Paris"])


def test_argument_errors():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok)
    with pytest.raises(ValueError, match=r"passages\[1\] is an empty passage"):
        gen.generate([PASSAGE, "  "])
    with pytest.raises(ValueError, match="num_pairs"):
        gen.generate([PASSAGE], num_pairs=0)
    with pytest.raises(ValueError, match="answer_candidates"):
        _generator(tok, answer_candidates=0.5)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        _generator(tok, max_source_length=500)
    with pytest.raises(ValueError, match="preset"):
        _generator(tok, preset="nope")
    with pytest.raises(ValueError, match="num_return_sequences"):
        _generator(
            tok,
            question_config=DecodingConfig(strategy="beam", num_beams=2, num_return_sequences=2),
        )


def test_end_token_defaults_to_the_tokenizer_sep():
    tok = tiny_sentencepiece_tokenizer()
    gen = _generator(tok, preset="su-2020-11")
    assert gen.answer_config.eos_token_id == tok.sep_token_id == 2
    assert gen.question_config.strategy == "greedy"
    custom = dataclasses.replace(default_answer_config(), eos_token_id=7)
    assert _generator(tok, answer_config=custom).answer_config.eos_token_id == 7
    assert torch.is_grad_enabled()


def test_batched_equals_one_by_one():
    """Deterministic decoding: a passage gets the same pairs alone or in a padded batch."""
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(
        tok, answer_config=default_answer_config(strategy="greedy", top_p=1.0, consistent=False)
    )
    passages = [PASSAGE, "the cat sat.", "paris is the capital of france, on the river."]
    batched = gen.generate(passages, num_pairs=1, batch_size=3, keep_non_span_answers=True)
    alone = [gen.generate([p], num_pairs=1, keep_non_span_answers=True)[0] for p in passages]
    assert len(batched) == 3
    for x, y in zip(batched, alone):
        assert [(p["question"], p["answer"], p["answer_start"]) for p in x] == [
            (p["question"], p["answer"], p["answer_start"]) for p in y
        ]
        assert all(abs(p["score"] - q["score"]) < 1e-4 for p, q in zip(x, y))


@pytest.mark.parametrize("preset", ["default", "su-2020-11"])
def test_shared_prefill_equals_naive_decoding(preset):
    """The cached generator encodes each source once and appends answers with `extend`; the
    naive one re-encodes everything every step. Same pairs and scores."""
    tok = tiny_wordpiece_tokenizer()
    answer = default_answer_config(strategy="greedy", top_p=1.0, consistent=False)
    passages = [PASSAGE, "the cat sat.", "paris is the capital of france, on the river."]
    outs = []
    for use_cache in (True, False):
        gen = _generator(
            tok, answer_config=answer, question_config=PRESETS[preset][1], use_cache=use_cache
        )
        outs.append(gen.generate(passages, num_pairs=1, batch_size=3, keep_non_span_answers=True))
    cached, naive = outs
    assert any(cached)
    for x, y in zip(cached, naive):
        assert [(p["question"], p["answer"]) for p in x] == [
            (p["question"], p["answer"]) for p in y
        ]
        assert all(abs(p["score"] - q["score"]) < 1e-4 for p, q in zip(x, y))


def test_generation_runs_in_eval_mode_and_restores_training():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok)
    gen.model.train()
    seen = []
    gen.model.bert.embeddings.register_forward_pre_hook(
        lambda module, args: seen.append(module.training)
    )
    gen.generate_questions(["the cat sat."])
    assert seen and not any(seen)  # no dropout while generating
    assert gen.model.training
    assert gen.generate.__name__ == "generate" and "num_pairs" in gen.generate.__doc__


def test_qag_model_given_an_answer_asks_what_its_stage_two_asks(monkeypatch):
    """generate_questions with a qag model = the question generate() writes after that answer."""
    tok = tiny_wordpiece_tokenizer()
    passage = "the cat sat on the mat in paris."
    greedy = default_question_config(strategy="greedy", num_beams=1, max_new_tokens=8)
    gen = _generator(tok, question_config=greedy, task="qag")
    asked = gen.generate_questions([passage, passage], ["paris", "the mat"])
    qg = _generator(tok, question_config=greedy, task="qg").generate_questions([passage], ["paris"])
    real = gen._decode
    for answer, expected in zip(("paris", "the mat"), asked):
        ids = tok(answer, add_special_tokens=False)["input_ids"]

        def forced(batch, config, rows=None, prefixes=None, real=real, ids=ids, **kw):
            if prefixes is not None:
                return real(batch, config, rows=rows, prefixes=prefixes, **kw)
            return [(ids, -1.0, 2, True)] * config.num_return_sequences

        monkeypatch.setattr(gen, "_decode", forced)
        pairs = gen.generate([passage], num_pairs=1)[0]
        assert pairs[0]["question"] == expected["question"], answer
    assert asked[0]["answer_start"] == passage.index("paris")
    assert qg[0]["question"] != asked[0]["question"] or qg[0]["score"] != asked[0]["score"]


def test_bf16_autocast_generation_still_writes_spans():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok, autocast_dtype=torch.bfloat16)
    out = gen.generate([PASSAGE, "the cat sat on the mat."], num_pairs=2)
    assert any(out)
    for passage, pairs in zip([PASSAGE, "the cat sat on the mat."], out):
        for p in pairs:
            assert passage[p["answer_start"] :].startswith(p["answer"])
    assert gen.model.bert.embeddings.word_embeddings.weight.dtype == torch.float32


def test_answers_without_a_known_task_warn():
    tok = tiny_wordpiece_tokenizer()
    gen = _generator(tok)
    assert gen.task is None
    with pytest.warns(UserWarning, match="no qgen_task"):
        gen.generate_questions([PASSAGE], ["Paris"])
