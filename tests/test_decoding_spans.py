"""SpanConstraintProcessor: every generation is a contiguous span of its row's source, under
every strategy, batched, inside `model.generate`; word boundaries for three vocabulary kinds."""

import pytest
import torch
from qgen_fixtures import (
    tiny_chinese_tokenizer,
    tiny_sentencepiece_tokenizer,
    tiny_wordpiece_tokenizer,
)
from transformers import GPT2Config, GPT2LMHeadModel

from decoding import PROCESSORS, DecodingConfig, decode, generate_kwargs
from decoding.spans import SpanConstraintProcessor, word_boundaries

VOCAB, EOS, PAD = 60, 2, 1
SOURCES = [[5, 6, 7, 5, 8], [9, 10, 11, 12, 13, 14, 9, 15], [20, 21, 22]]


def test_hand_built_steps():
    proc = SpanConstraintProcessor([SOURCES[0]], prompt_length=2, eos_token_id=EOS)
    scores = torch.zeros(1, VOCAB)

    def allowed(generated):
        ids = torch.tensor([[30, 31, *generated]])
        return set(torch.isfinite(proc(ids, scores))[0].nonzero().flatten().tolist())

    assert allowed([]) == {5, 6, 7, 8}  # any source token, no end yet
    assert allowed([5]) == {6, 8, EOS}  # both occurrences of 5 continue
    assert allowed([5, 6]) == {7, EOS}
    assert allowed([5, 6, 7, 5, 8]) == {EOS}  # the whole source
    assert allowed([9]) == {EOS}  # not a span (e.g. a finished row's padding): only end


def test_boundaries_restrict_starts_and_ends():
    proc = SpanConstraintProcessor(
        [SOURCES[0]], 0, EOS,
        starts=[[True, False, True, False, True]], ends=[[False, True, True, False, True]],
    )  # fmt: skip
    scores = torch.zeros(1, VOCAB)

    def allowed(generated):
        out = proc(torch.tensor([generated], dtype=torch.long).view(1, -1), scores)
        return set(torch.isfinite(out)[0].nonzero().flatten().tolist())

    assert allowed([]) == {5, 7, 8}  # 6 and the second 5 cannot start a span
    assert allowed([5]) == {6}  # span 5 cannot end here (position 0 is no end)
    assert allowed([7]) == {5, EOS}
    assert allowed([7, 5]) == {8}  # position 3 is no end


def test_a_row_with_nothing_allowed_ends_instead_of_failing():
    """No token may start a span (a passage of separators), and min_new_tokens has banned the
    end token: the row ends rather than leaving sampling an all -inf row."""
    proc = SpanConstraintProcessor([[5, 6]], 0, EOS, starts=[[False, False]])
    scores = torch.zeros(1, VOCAB)
    scores[0, EOS] = -float("inf")  # banned by min_new_tokens
    out = proc(torch.zeros(1, 0, dtype=torch.long), scores)
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [EOS]
    cfg = DecodingConfig(strategy="sample", min_new_tokens=1, max_new_tokens=4, eos_token_id=EOS,
                         pad_token_id=PAD, seed=0)  # fmt: skip

    class Flat:
        def start(self, input_ids, **kw):
            return None

        def step(self, input_ids, state):
            return torch.zeros(input_ids.shape[0], VOCAB), state

        def reorder(self, state, index):
            return state

    out = decode(Flat(), torch.tensor([[3]]), cfg, logits_processor=[
        SpanConstraintProcessor([[5, 6]], 1, EOS, starts=[[False, False]])])  # fmt: skip
    assert out.sequences[0, 1:].tolist()[:1] == [EOS]


def test_longer_than_the_source_may_only_end():
    proc = SpanConstraintProcessor([[5, 6]], 0, EOS)
    out = proc(torch.tensor([[5, 6, 5, 6]]), torch.zeros(1, VOCAB))
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [EOS]


def test_pure_and_registered():
    proc = SpanConstraintProcessor(SOURCES, 1, [EOS, 3])
    ids = torch.tensor([[0, 5], [0, 9], [0, 21]])
    scores = torch.randn(3, VOCAB)
    before = scores.clone()
    out = proc(ids, scores)
    assert torch.equal(scores, before)
    assert torch.isfinite(out[:, [EOS, 3]]).all()  # every end token allowed
    assert PROCESSORS["span"] is SpanConstraintProcessor


def test_batched_rows_equal_one_by_one():
    proc = SpanConstraintProcessor(SOURCES, 1, EOS)
    ids = torch.tensor([[0, 5, 6], [0, 9, 10], [0, 21, 22]])
    scores = torch.randn(3, VOCAB)
    batched = proc(ids, scores)
    for i, src in enumerate(SOURCES):
        alone = SpanConstraintProcessor([src], 1, EOS)(ids[i : i + 1], scores[i : i + 1])
        assert torch.equal(alone, batched[i : i + 1])


def test_expanded_rows_map_to_their_source():
    proc = SpanConstraintProcessor(SOURCES[:2], 0, EOS)
    out = proc(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, VOCAB))  # 2 rows x 2
    assert torch.isfinite(out[1, 5]) and not torch.isfinite(out[2, 5])
    with pytest.raises(ValueError, match="3 rows for 2 sources"):
        proc(torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, VOCAB))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sources": []}, "sources is empty"),
        ({"sources": [[5], []]}, r"sources\[1\] is empty"),
        ({"eos_token_id": None}, "eos_token_id"),
        ({"starts": [[True, False]]}, r"starts\[0\] has 2 entries"),
        ({"ends": [[True], [True]]}, "ends has 2 rows"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, message):
    args = {"sources": [[5, 6, 7]], "prompt_length": 0, "eos_token_id": EOS, **kwargs}
    with pytest.raises(ValueError, match=message):
        SpanConstraintProcessor(**args)


# --------------------------------------------------------------------------- word boundaries


def _words(tokenizer, text):
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    starts, ends = word_boundaries(text, offsets)
    return enc["input_ids"], offsets, starts, ends


@pytest.mark.parametrize(
    "make, text",
    [
        (tiny_wordpiece_tokenizer, "the cat sat on the mat, in paris."),  # letters -> ##pieces
        (tiny_sentencepiece_tokenizer, "the dog sat in paris, the capital."),  # ▁-less pieces
    ],
    ids=["wordpiece", "sentencepiece"],
)
def test_boundaries_fall_between_words(make, text):
    _, offsets, starts, ends = _words(make(), text)
    word_starts = {0} | {i + 1 for i, c in enumerate(text) if c == " "}
    word_ends = {i for i, c in enumerate(text) if c.isalnum() and not text[i + 1 : i + 2].isalnum()}
    for (s, e), may_start, may_end in zip(offsets, starts, ends):
        if text[s:e].strip() and text[s].isalnum():
            assert may_start == (s in word_starts), (text[s:e], s)
        if text[s:e].strip() and text[e - 1].isalnum():
            assert may_end == (e - 1 in word_ends), (text[s:e], e)
    assert sum(starts) < len(starts)  # the tokenizer did split words into pieces


def test_a_window_cut_inside_a_word_does_not_end_a_span_there():
    tok = tiny_wordpiece_tokenizer()
    text = "in paris today"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]][:4]  # "in p ##a ##r": cut inside "paris"
    starts, ends = word_boundaries(text, offsets)
    assert starts == [True, True, False, False] and ends == [True, False, False, False]
    tail = [tuple(o) for o in enc["offset_mapping"]][3:]  # "##r ##i ##s today": starts mid-word
    assert word_boundaries(text, tail)[0][:3] == [False, False, False]


def test_separators_neither_start_nor_end_a_span():
    tok = tiny_wordpiece_tokenizer()
    text = "in paris, france; a city: the capital"
    _, offsets, starts, ends = _words(tok, text)
    for (s, e), st, en in zip(offsets, starts, ends):
        if text[s:e] in (",", ";", ":"):
            assert not st and not en
    zh = tiny_chinese_tokenizer()
    _, offsets, starts, ends = _words(zh, "乔戈里峰，位于中国")
    assert starts[4] is False and ends[4] is False and all(starts[:4] + starts[5:])


def test_combining_marks_and_unspaced_scripts():
    hindi = "भारत की राजधानी"  # vowel signs and virama are combining marks inside words
    offsets = [(0, 2), (2, 4), (5, 7), (8, 11), (11, 15)]  # भा रत | की | राज धानी
    starts, ends = word_boundaries(hindi, offsets)
    assert starts == [True, False, True, True, False]
    assert ends == [False, True, True, False, True]
    assert not word_boundaries(hindi, [(0, 1), (1, 2)])[0][1]  # "ा" (a mark) starts no span
    thai = "ประเทศไทย"  # no spaces between Thai words: any character boundary
    assert word_boundaries(thai, [(0, 3), (3, 6), (6, 9)]) == ([True] * 3, [True] * 3)


def test_byte_fallback_pieces_of_one_character_stay_together():
    text = "a 😀 b"
    offsets = [(0, 1), (2, 3), (2, 3), (2, 3), (2, 3), (4, 5)]  # the emoji as 4 byte pieces
    starts, ends = word_boundaries(text, offsets)
    assert starts == [True, True, False, False, False, True]
    assert ends == [True, False, False, False, True, True]


def test_chinese_any_character_boundary():
    _, offsets, starts, ends = _words(tiny_chinese_tokenizer(), "世界第二高山峰是乔戈里峰")
    assert len(offsets) == 12 and all(starts) and all(ends)


def test_sentencepiece_bare_marker_neither_starts_nor_ends():
    tok = tiny_sentencepiece_tokenizer()
    text = "built in 1889 ."  # digits and punctuation have no ▁-pieces: a bare ▁ precedes them
    ids, offsets, starts, ends = _words(tok, text)
    bare = [i for i, (s, e) in enumerate(offsets) if not text[s:e].strip()]
    assert bare and all(tok.convert_ids_to_tokens(ids[i]) == "\u2581" for i in bare)
    assert not any(starts[i] or ends[i] for i in bare)
    first_digit = next(i for i, (s, e) in enumerate(offsets) if text[s:e].strip() == "1")
    assert starts[first_digit] and not ends[first_digit]  # "1889" starts at 1, ends at 9


# --------------------------------------------------------------------------- with decoders


@pytest.fixture(scope="module")
def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0,
        eos_token_id=EOS,
    )  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


def _is_span(tokens: list[int], source: list[int]) -> bool:
    m = len(tokens)
    return m > 0 and any(source[i : i + m] == tokens for i in range(len(source) - m + 1))


def _generated(sequences, prompt_len):
    out = []
    for row in sequences[:, prompt_len:].tolist():
        out.append(row[: row.index(EOS)] if EOS in row else row)
    return out


STRATEGIES = [
    {"strategy": "greedy"},
    {"strategy": "sample", "seed": 0},
    {"strategy": "sample", "top_k": 3, "seed": 1},
    {"strategy": "sample", "top_p": 0.5, "consistent": True, "seed": 2},
    {"strategy": "sample", "num_return_sequences": 4, "seed": 3},
    {"strategy": "beam", "num_beams": 3},
    {"strategy": "beam", "num_beams": 4, "num_return_sequences": 2, "length_penalty": 0.0},
]


@pytest.mark.parametrize("overrides", STRATEGIES, ids=lambda o: ",".join(map(str, o.values())))
def test_random_model_gives_only_spans(gpt2, overrides):
    """A random-weights model is forced to copy: 100% of its outputs are spans, ended or cut
    at the length cap."""
    prompts = torch.tensor([[3, 4, 40], [41, 42, 43], [44, 45, 46]])
    cfg = DecodingConfig(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, **overrides)
    proc = SpanConstraintProcessor(SOURCES, prompts.shape[1], EOS)
    out = decode(gpt2, prompts, cfg, logits_processor=[proc])
    rows_per_source = out.sequences.shape[0] // len(SOURCES)
    for r, tokens in enumerate(_generated(out.sequences, prompts.shape[1])):
        assert _is_span(tokens, SOURCES[r // rows_per_source]), (r, tokens)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batched_decoding_equals_one_by_one(gpt2, strategy):
    prompts = torch.tensor([[3, 4, 40], [41, 42, 43], [44, 45, 46]])
    cfg = DecodingConfig(
        max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, strategy=strategy,
        num_beams=3 if strategy == "beam" else 1,
    )  # fmt: skip
    batched = decode(
        gpt2, prompts, cfg, logits_processor=[SpanConstraintProcessor(SOURCES, 3, EOS)]
    )
    for i, src in enumerate(SOURCES):
        alone = decode(
            gpt2, prompts[i : i + 1], cfg, logits_processor=[SpanConstraintProcessor([src], 3, EOS)]
        )
        n = int(alone.lengths[0])
        assert torch.equal(alone.sequences[0, : 3 + n], batched.sequences[i, : 3 + n])


@pytest.mark.parametrize("overrides", STRATEGIES, ids=lambda o: ",".join(map(str, o.values())))
def test_inside_model_generate(gpt2, overrides):
    prompts = torch.tensor([[3, 4, 40], [41, 42, 43], [44, 45, 46]])
    cfg = DecodingConfig(max_new_tokens=6, eos_token_id=EOS, pad_token_id=PAD, **overrides)
    kwargs = generate_kwargs(cfg)
    proc = SpanConstraintProcessor(SOURCES, prompts.shape[1], EOS)
    kwargs["logits_processor"] = [proc, *kwargs.get("logits_processor", [])]
    torch.manual_seed(0)
    sequences = gpt2.generate(prompts, attention_mask=torch.ones_like(prompts), **kwargs)
    rows_per_source = sequences.shape[0] // len(SOURCES)
    for r, tokens in enumerate(_generated(sequences, prompts.shape[1])):
        tokens = [t for t in tokens if t != PAD]
        assert _is_span(tokens, SOURCES[r // rows_per_source]), (r, tokens)
    if cfg.strategy == "greedy":  # and the same tokens as our decoder
        ours = decode(gpt2, prompts, cfg, logits_processor=[proc])
        assert torch.equal(ours.sequences, sequences[:, : ours.sequences.shape[1]])
