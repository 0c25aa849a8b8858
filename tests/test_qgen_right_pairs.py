"""Right pairs at full count (issue 22): over-generation checked inside generation (rounds
that re-ask where a passage is short of checked pairs), the answer prior and answer ranking,
and the bound on the rows one decoding call sees."""

from collections import Counter

import pytest
import torch
from qgen_fixtures import save_tiny_qag_model

import qgen.generation.generator as generator_module
from qgen.generation.answers import answer_prior
from qgen.generation.dataset import DatasetChain
from qgen.generation.generator import QAGenerator, _Answer, _rank_answers, _Window
from qgen.generation.round_trip import RoundTrip
from qgen.io.corpus import Passage

PASSAGES = [
    "the cat sat on the mat. the dog sat in paris.",
    "paris is the capital of france. the river is in the city.",
    "a b c d e f g h i j k l m n o p.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qag_model(tmp_path_factory.mktemp("qag-model"))


def _generator(model_dir, **kwargs):
    return QAGenerator.from_pretrained(model_dir, device="cpu", seed=0, **kwargs)


# ----------------------------------------------------------------- the answer prior


def test_answer_prior_follows_squad_lengths_and_penalises_bad_boundaries():
    assert answer_prior("Paris") == 0.0
    # longer answers are less likely, in SQuAD's order
    lengths = [answer_prior(" ".join(["word"] * n)) for n in (1, 2, 3, 5, 10, 25)]
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < -4
    # a verb or connective first, a function word last, a clause end: each costs the penalty
    base = answer_prior("in Paris now")
    assert answer_prior("is in Paris") == pytest.approx(base - 2.0)
    assert answer_prior("the fourth grade of") == pytest.approx(
        answer_prior("the fourth grade x") - 2.0
    )
    assert answer_prior("the basin is regulated.") == pytest.approx(
        answer_prior("the basin is regulated") - 2.0
    )
    assert answer_prior("is in Paris", boundary_penalty=0.5) == pytest.approx(base - 0.5)
    # one word is never penalised for its boundaries ("Is" could be a name)
    assert answer_prior("and") == 0.0


@pytest.mark.parametrize("text", ["。", "《", " , ", "...", "—"])
def test_answer_prior_rules_out_punctuation(text):
    assert answer_prior(text) is None


def test_answer_prior_has_no_word_rules_for_cjk():
    assert answer_prior("长城") == 0.0 and answer_prior("中国古代的军事防御工程") == 0.0


def test_rank_answers_orders_each_window_and_drops_punctuation():
    passage = "Paris is in France. It is in Europe and the city of light."
    windows = [_Window(0, (0, len(passage)), []), _Window(0, (0, len(passage)), [])]

    def answer(window, text, score=-2.0, length=2):
        start = passage.index(text)
        return _Answer(window, [1], text, (start, start + len(text)), score, length)

    answers = [
        answer(0, "is in Europe and"),  # sampled first, bad shape
        answer(0, "Paris"),
        answer(0, "."),  # punctuation: goes
        answer(1, "the city of light", score=-0.2),
        answer(1, "France", score=-4.0),
    ]
    ranked = _rank_answers(answers, [passage], windows)
    assert [(a.window, a.text) for a in ranked] == [
        (0, "Paris"), (0, "is in Europe and"), (1, "the city of light"), (1, "France")
    ]  # fmt: skip


def test_rank_answers_is_a_saved_setting(model_dir, tmp_path):
    generator = _generator(model_dir, rank_answers=True)
    assert generator.generation_config.rank_answers is True
    generator.save_pretrained(tmp_path / "saved")
    assert QAGenerator.from_pretrained(tmp_path / "saved", device="cpu").rank_answers is True
    pairs = generator.generate(PASSAGES)
    assert all(len(p) <= 3 for p in pairs) and any(pairs)


# ----------------------------------------------------------------- checks inside generation


def test_a_check_that_passes_everything_changes_nothing(model_dir):
    plain = _generator(model_dir).generate(PASSAGES)
    checked = _generator(model_dir).generate(PASSAGES, check=lambda passage, kept, new: new)
    # with a check every passing pair comes back (the caller selects); the best ones agree
    assert [p[:3] for p in checked] == plain


def test_rejected_pairs_are_asked_again_for_up_to_rounds(model_dir):
    calls = []

    def reject_all(passage, kept, new):
        calls.append(len(new))
        return []

    generator = _generator(model_dir, answer_candidates=4.0)
    assert generator.generate(PASSAGES[:1], check=reject_all, rounds=3) == [[]]
    # round 1 asks 3 questions; rounds 2 and 3 ask again for the 3 still missing
    assert 2 <= len(calls) <= 3 and calls[0] <= 3
    calls.clear()
    generator.generate(PASSAGES[:1], check=reject_all, rounds=1)
    assert len(calls) == 1


def test_a_check_sees_what_the_passage_kept_before(model_dir):
    seen = []

    def keep_one(passage, kept, new):
        seen.append(len(kept))
        return new[:1]

    generator = _generator(model_dir, answer_candidates=4.0)
    [pairs] = generator.generate(PASSAGES[:1], check=keep_one, rounds=3)
    # each round keeps one pair, and the next round's check sees the pairs kept before
    assert seen == list(range(len(seen))) and len(pairs) == len(seen)


def test_candidates_ask_more_questions_in_the_first_round(model_dir, monkeypatch):
    generator = _generator(model_dir, answer_candidates=2.0)
    asked = []
    real = generator._ask
    monkeypatch.setattr(
        generator, "_ask", lambda batch, answers: asked.append(len(answers)) or real(batch, answers)
    )
    generator.generate(PASSAGES[:1], num_pairs=2, candidates=5, check=lambda p, k, n: n, rounds=1)
    assert asked == [5]  # 10 answers sampled, 5 asked about
    asked.clear()
    generator.generate(PASSAGES[:1], num_pairs=2, rounds=1)
    assert asked == [2]
    with pytest.raises(ValueError, match="candidates must be >= num_pairs"):
        generator.generate(PASSAGES, num_pairs=3, candidates=2)
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        generator.generate(PASSAGES, rounds=0)


class _PassFirstWord(RoundTrip):
    """A fake round trip: passes the pairs whose answer is one word."""

    key = "round_trip_f1"

    def score(self, passage, pairs):
        return [{**p, self.key: float(len(p["answer"].split()) == 1)} for p in pairs]

    def keeps(self, pair):
        return pair[self.key] == 1.0


def test_the_chain_checks_inside_generation_and_selects(model_dir):
    passages = [Passage(str(i), "", p) for i, p in enumerate(PASSAGES)]
    counts = {}
    for rounds in (1, 3):
        chain = DatasetChain(
            _generator(model_dir, answer_candidates=4.0), round_trip=_PassFirstWord(),
            num_pairs=2, candidates=3, rounds=rounds,
        )  # fmt: skip
        result = chain.block(passages, seed=0)
        per = Counter(r["id"].rsplit("-", 1)[0] for r in result.records)
        assert all(n <= 2 for n in per.values())
        assert all(len(r["answers"]["text"][0].split()) == 1 for r in result.records)
        assert all(r["round_trip_f1"] == 1.0 and "score" in r for r in result.records)
        assert result.filtered["passages_with_fewer_pairs"] == sum(
            per.get(str(i), 0) < 2 for i in range(len(PASSAGES))
        )
        counts[rounds] = len(result.records)
    # the same first round, and later rounds only add checked pairs
    assert counts[3] >= counts[1]


# ----------------------------------------------------------------- bounded decoding batches


def _rows_seen(monkeypatch):
    seen = []
    real = generator_module.decode

    def recording(model, ids, config, **kwargs):
        beams = config.num_beams if config.strategy == "beam" else 1
        seen.append(ids.shape[0] * beams * config.num_return_sequences)
        return real(model, ids, config, **kwargs)

    monkeypatch.setattr(generator_module, "decode", recording)
    return seen


def test_max_decode_rows_bounds_every_decoding_call(model_dir, monkeypatch):
    seen = _rows_seen(monkeypatch)
    generator = _generator(model_dir, max_decode_rows=12)  # 6 answers a window, 5 beams
    generator.generate(PASSAGES, batch_size=8)
    assert seen and max(seen) <= 12
    seen.clear()
    _generator(model_dir, max_decode_rows=1000).generate(PASSAGES, batch_size=8)
    assert max(seen) > 12  # unbounded, the same call is larger
    with pytest.raises(ValueError, match="max_decode_rows must be >= 1"):
        _generator(model_dir, max_decode_rows=0)


def test_splitting_the_question_stage_changes_no_output(model_dir):
    # one window a batch (stage 1 alike), the question beams split into calls of one answer
    small = _generator(model_dir, max_decode_rows=6).generate(PASSAGES, batch_size=1)
    large = _generator(model_dir, max_decode_rows=1000).generate(PASSAGES, batch_size=1)
    strip = lambda pairs: [[(p["question"], p["answer"]) for p in ps] for ps in pairs]  # noqa: E731
    assert strip(small) == strip(large)


def test_punctuation_is_never_an_answer(model_dir, monkeypatch):
    # a sampled answer that is only punctuation ("。", "《" from the Chinese model) is dropped
    # before the question stage, ranked or not
    generator = _generator(model_dir)
    real = generator._sample_answers

    def with_punctuation(batch, windows, passages, num_pairs, rng, *rest):
        answers = real(batch, windows, passages, num_pairs, rng, *rest)
        passage = passages[windows[0].passage]
        dot = passage.index(".")
        return [_Answer(0, [5], ".", (dot, dot + 1), -0.01, 1), *answers]

    monkeypatch.setattr(generator, "_sample_answers", with_punctuation)
    for rank in (False, True):
        generator.rank_answers = rank
        pairs = generator.generate(PASSAGES[:1])
        assert all(p["answer"].strip() != "." for p in pairs[0])


# ----------------------------------------------------------------- drawing more answers


def test_a_window_short_of_checked_pairs_draws_new_answers(model_dir, monkeypatch):
    # answer_candidates 1: the first draw holds only as many answers as questions asked, so
    # every later round must draw new ones; none is asked about twice
    generator = _generator(model_dir, answer_candidates=1.0)
    draws, asked = [], []
    real_sample, real_ask = generator._sample_answers, generator._ask

    def sample(batch, chunk, passages, num_pairs, rng, rows=None, drawn=None):
        answers = real_sample(batch, chunk, passages, num_pairs, rng, rows, drawn)
        draws.append(len(answers))
        return answers

    def ask(batch, answers):
        asked.extend(a.span for a in answers)
        return real_ask(batch, answers)

    monkeypatch.setattr(generator, "_sample_answers", sample)
    monkeypatch.setattr(generator, "_ask", ask)
    generator.generate(PASSAGES[:1], check=lambda passage, kept, new: [], rounds=4)
    assert len(draws) >= 2  # the first draw, then new draws in later rounds
    assert len(asked) == len(set(asked)) > 3  # more answers asked about than the first draw had
    # without a check nothing is drawn again (the unchecked output stays as it was)
    draws.clear()
    generator.generate(PASSAGES[:1], rounds=4)
    assert len(draws) == 1


def test_a_new_draw_starts_with_new_first_tokens():
    avoid = generator_module._AvoidFirstTokens(prompt_length=3, group_size=2, avoid=[{1}, set()])
    scores = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0], [0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    pushed = avoid(torch.zeros(4, 3, dtype=torch.long), scores)
    # window 0's rows: token 1 below every other token, still finite; window 1's rows untouched
    assert pushed[:2].argmax(-1).tolist() == [2, 2] and torch.isfinite(pushed).all()
    assert torch.equal(pushed[2:], scores[2:]) and scores[0, 1] == 5.0  # the input is not changed
    # later steps are not touched
    assert avoid(torch.zeros(4, 4, dtype=torch.long), scores) is scores
