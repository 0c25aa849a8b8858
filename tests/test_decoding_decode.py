"""`decode` against HF `generate`, and its invariants (cached == uncached, batched ==
one-by-one, beam(1) == greedy, sample(top_k=1) == greedy, seeded sampling)."""

import pytest
import torch
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessor,
)

from decoding import DecodingConfig, StepModel, decode, generate_kwargs

VOCAB, PAD = 99, 1


def _separate(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the LM head so logits are well separated: argmax ties would make exact
    comparisons between two implementations flaky."""
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(20.0)
    return model.eval()


@pytest.fixture(scope="module")
def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=2,
    )
    return _separate(GPT2LMHeadModel(cfg))


@pytest.fixture(scope="module")
def bart() -> BartForConditionalGeneration:
    torch.manual_seed(0)
    cfg = BartConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=64,
        forced_eos_token_id=None,
        tie_word_embeddings=False,
    )
    return _separate(BartForConditionalGeneration(cfg))


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three left-padded prompts of lengths 6, 4, 5."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, 6), generator=gen)
    mask = torch.ones_like(ids)
    for row, pad in ((1, 2), (2, 1)):
        ids[row, :pad], mask[row, :pad] = PAD, 0
    return ids, mask


def _frequent_token(model, ids, mask) -> int:
    """A token greedy decoding emits often: used as the end token so that rows do end."""
    out = decode(model, ids, DecodingConfig(max_new_tokens=12), attention_mask=mask)
    gen = out.sequences[:, -12:].flatten()
    gen = gen[gen > PAD + 1]
    return int(torch.bincount(gen).argmax())


@pytest.fixture(scope="module")
def gpt2_eos(gpt2) -> int:
    return _frequent_token(gpt2, *_batch())


@pytest.fixture(scope="module")
def bart_eos(bart) -> int:
    return _frequent_token(bart, *_batch())


BEAM_VARIANTS = [
    {},
    {"length_penalty": 0.0},
    {"length_penalty": 2.0, "early_stopping": True},
    {"length_penalty": -1.0, "early_stopping": "never"},
    {"early_stopping": "never", "num_return_sequences": 3},
    {"num_beams": 2, "min_new_tokens": 4, "no_repeat_ngram_size": 2, "repetition_penalty": 1.3},
]
GREEDY_VARIANTS = [
    {},
    {"min_new_tokens": 5},
    {"repetition_penalty": 1.5, "no_repeat_ngram_size": 2},
]


def _config(eos: int, **overrides) -> DecodingConfig:
    kwargs = {"max_new_tokens": 10, "eos_token_id": eos, "pad_token_id": PAD, **overrides}
    if kwargs.get("strategy") == "beam":
        kwargs.setdefault("num_beams", 3)
    return DecodingConfig(**kwargs)


@pytest.mark.parametrize(
    "overrides",
    [dict(v) for v in GREEDY_VARIANTS] + [{"strategy": "beam", **v} for v in BEAM_VARIANTS],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "greedy",
)
def test_causal_lm_matches_generate(gpt2, gpt2_eos, overrides):
    ids, mask = _batch()
    cfg = _config(gpt2_eos, **overrides)
    ours = decode(gpt2, ids, cfg, attention_mask=mask)
    theirs = gpt2.generate(ids, attention_mask=mask, **generate_kwargs(cfg))
    assert torch.equal(ours.sequences, theirs)
    ends = (ours.sequences[:, ids.shape[1] :] == gpt2_eos).any(-1)
    assert torch.equal(ours.finished, ends)


def test_some_rows_end_early(gpt2, gpt2_eos):
    out = decode(gpt2, _batch()[0], _config(gpt2_eos), attention_mask=_batch()[1])
    assert out.finished.any()
    row = int(out.finished.nonzero()[0])
    end = 6 + int(out.lengths[row])
    assert (out.sequences[row, end:] == PAD).all()  # padded after the end token


@pytest.mark.parametrize(
    "overrides",
    [{}, {"strategy": "beam"}, {"strategy": "beam", "length_penalty": 2.0, "early_stopping": True}],
    ids=["greedy", "beam", "beam-lp2-early"],
)
def test_encoder_decoder_matches_generate(bart, bart_eos, overrides):
    ids, mask = _batch()
    ids, mask = ids.flip(1), mask.flip(1)  # encoders take right padding
    cfg = _config(bart_eos, **overrides)
    ours = decode(bart, ids, cfg, attention_mask=mask)
    theirs = bart.generate(ids, attention_mask=mask, **generate_kwargs(cfg))
    assert torch.equal(ours.sequences, theirs)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("kind", ["causal", "encoder-decoder"])
def test_cached_equals_uncached(gpt2, bart, gpt2_eos, bart_eos, strategy, kind):
    model, eos = (gpt2, gpt2_eos) if kind == "causal" else (bart, bart_eos)
    ids, mask = _batch(1)
    cached = decode(model, ids, _config(eos, strategy=strategy), attention_mask=mask)
    uncached = decode(
        model, ids, _config(eos, strategy=strategy, use_cache=False), attention_mask=mask
    )
    assert torch.equal(cached.sequences, uncached.sequences)
    assert torch.allclose(cached.scores, uncached.scores, atol=1e-4)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_batched_equals_one_by_one(gpt2, gpt2_eos, strategy):
    ids, mask = _batch(2)
    cfg = _config(gpt2_eos, strategy=strategy)
    batched = decode(gpt2, ids, cfg, attention_mask=mask)
    for row in range(ids.shape[0]):
        pad = int((mask[row] == 0).sum())
        alone = decode(gpt2, ids[row : row + 1, pad:], cfg)
        length = int(batched.lengths[row])
        assert int(alone.lengths[0]) == length
        assert torch.equal(
            alone.sequences[0, : 6 - pad + length], batched.sequences[row, pad : 6 + length]
        )
        assert torch.allclose(alone.scores[0], batched.scores[row], atol=1e-4)


def test_beam_with_one_beam_equals_greedy(gpt2, gpt2_eos):
    ids, mask = _batch(3)
    greedy = decode(gpt2, ids, _config(gpt2_eos), attention_mask=mask)
    # early_stopping=True: with one beam, stop at the first finished hypothesis, as greedy does.
    beam = decode(
        gpt2,
        ids,
        _config(gpt2_eos, strategy="beam", num_beams=1, early_stopping=True),
        attention_mask=mask,
    )
    assert torch.equal(greedy.sequences, beam.sequences)
    assert torch.allclose(greedy.scores, beam.scores, atol=1e-4)


def test_sample_with_top_k_1_equals_greedy(gpt2, gpt2_eos):
    ids, mask = _batch(4)
    greedy = decode(gpt2, ids, _config(gpt2_eos), attention_mask=mask)
    sample = decode(
        gpt2, ids, _config(gpt2_eos, strategy="sample", top_k=1, seed=0), attention_mask=mask
    )
    assert torch.equal(greedy.sequences, sample.sequences)


def test_seeded_sampling_is_reproducible(gpt2, gpt2_eos):
    ids, mask = _batch(5)
    cfg = dict(
        strategy="sample", top_p=0.9, temperature=1.5, num_return_sequences=4, max_new_tokens=15
    )
    a = decode(gpt2, ids, _config(gpt2_eos, seed=7, **cfg), attention_mask=mask)
    b = decode(gpt2, ids, _config(gpt2_eos, seed=7, **cfg), attention_mask=mask)
    gen = torch.Generator().manual_seed(7)
    c = decode(gpt2, ids, _config(gpt2_eos, generator=gen, **cfg), attention_mask=mask)
    d = decode(gpt2, ids, _config(gpt2_eos, seed=8, **cfg), attention_mask=mask)
    assert a.sequences.shape[0] == 12
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.sequences, c.sequences)
    assert not torch.equal(a.sequences, d.sequences)


def test_sampling_matches_generate(gpt2, gpt2_eos):
    ids, mask = _batch(6)
    cfg = _config(
        gpt2_eos,
        strategy="sample",
        top_k=20,
        top_p=0.8,
        temperature=0.9,
        seed=11,
        num_return_sequences=2,
    )
    ours = decode(gpt2, ids, cfg, attention_mask=mask)
    torch.manual_seed(11)
    theirs = gpt2.generate(ids, attention_mask=mask, **generate_kwargs(cfg))
    assert torch.equal(ours.sequences, theirs)


class NextToken:
    """Flax-style fake model: the next token is (last + 1) mod V, with probability ~1."""

    vocab = 10

    def start(self, input_ids, **model_kwargs):
        return {"steps": 0}

    def step(self, input_ids, state):
        logits = (
            torch.nn.functional.one_hot((input_ids[:, -1] + 1) % self.vocab, self.vocab).float()
            * 30
        )
        return logits, {"steps": state["steps"] + 1}

    def reorder(self, state, index):
        return state


@pytest.mark.parametrize(
    "overrides",
    [{}, {"strategy": "beam", "num_beams": 3}, {"strategy": "sample", "top_k": 1, "seed": 0}],
    ids=["greedy", "beam", "sample"],
)
def test_step_model_toy_decodes_exactly(overrides):
    assert isinstance(NextToken(), StepModel)
    ids = torch.tensor([[1, 2], [5, 6], [8, 9]])
    cfg = DecodingConfig(max_new_tokens=5, eos_token_id=9, pad_token_id=0, **overrides)
    out = decode(NextToken(), ids, cfg)
    expected = torch.tensor([[1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 8, 9, 0, 0], [8, 9, 0, 1, 2, 3, 4]])
    assert torch.equal(out.sequences, expected)
    assert out.finished.tolist() == [False, True, False]
    assert out.lengths.tolist() == [5, 3, 5]
    assert torch.allclose(out.scores, torch.zeros(3), atol=1e-9)
    assert torch.allclose(out.normalized_scores, out.scores / out.lengths)


def test_min_new_tokens_and_eos_list():
    ids = torch.tensor([[6], [2]])
    out = decode(
        NextToken(), ids, DecodingConfig(max_new_tokens=6, eos_token_id=[9, 4], pad_token_id=0)
    )
    assert out.sequences.tolist() == [[6, 7, 8, 9], [2, 3, 4, 0]]  # both end tokens end a row
    assert out.finished.tolist() == [True, True] and out.lengths.tolist() == [3, 2]
    cfg = DecodingConfig(max_new_tokens=6, eos_token_id=[9, 4], pad_token_id=0, min_new_tokens=4)
    out = decode(NextToken(), ids, cfg)
    generated = out.sequences[:, 1:5]
    assert not ((generated == 9) | (generated == 4)).any()  # no end token among the first 4


def test_bad_inputs_raise(gpt2):
    with pytest.raises(ValueError, match="eos_token_id=500"):
        decode(gpt2, torch.tensor([[5, 6]]), DecodingConfig(eos_token_id=500))
    with pytest.raises(TypeError, match="StepModel"):
        decode(object(), torch.tensor([[5, 6]]))
    with pytest.raises(ValueError, match=r"input_ids.shape=\(2,\)"):
        decode(gpt2, torch.tensor([5, 6]))
    with pytest.raises(ValueError, match=r"attention_mask.shape=\(1, 3\)"):
        decode(gpt2, torch.tensor([[5, 6]]), attention_mask=torch.ones(1, 3))
    changed = DecodingConfig()
    changed.strategy = "contrastive"  # after validation: decode's registry lookup still names it
    with pytest.raises(ValueError, match="unknown decoding strategy 'contrastive'; known: beam"):
        decode(gpt2, torch.tensor([[5, 6]]), changed)


class BanToken(LogitsProcessor):
    def __init__(self, token: int):
        self.token = token

    def __call__(self, input_ids, scores):
        return scores.index_fill(-1, torch.tensor([self.token]), -float("inf"))


def test_extra_logits_processor():
    cfg = DecodingConfig(max_new_tokens=4, pad_token_id=0)
    out = decode(NextToken(), torch.tensor([[6]]), cfg, logits_processor=[BanToken(8)])
    assert out.sequences.tolist() == [[6, 7, 0, 1, 2]]  # 8 banned: the flat rest gives 0


def test_extra_logits_processor_matches_generate(gpt2, gpt2_eos):
    ids, mask = _batch(7)
    cfg = _config(gpt2_eos, strategy="sample", top_k=5, seed=2)
    ban = BanToken(gpt2_eos)
    ours = decode(gpt2, ids, cfg, attention_mask=mask, logits_processor=[ban])
    torch.manual_seed(2)
    theirs = gpt2.generate(ids, attention_mask=mask, logits_processor=[ban], **generate_kwargs(cfg))
    assert torch.equal(ours.sequences, theirs) and not ours.finished.any()


@pytest.mark.parametrize("inference_mode", [True, False])
def test_outputs_are_normal_tensors(gpt2, gpt2_eos, inference_mode):
    ids, mask = _batch(8)
    cfg = _config(gpt2_eos, inference_mode=inference_mode)
    out = decode(gpt2, ids, cfg, attention_mask=mask)
    assert not out.sequences.is_inference()
    emb = torch.nn.Embedding(VOCAB, 4)
    emb(out.sequences).sum().backward()  # usable as training input afterwards
    assert emb.weight.grad is not None
    reference = decode(
        gpt2, ids, _config(gpt2_eos, inference_mode=not inference_mode), attention_mask=mask
    )
    assert torch.equal(out.sequences, reference.sequences)


def test_encoder_decoder_sampling_matches_generate(bart, bart_eos):
    ids, mask = _batch(9)
    ids, mask = ids.flip(1), mask.flip(1)
    cfg = _config(
        bart_eos, strategy="sample", top_p=0.7, consistent=True, seed=4, num_return_sequences=2
    )
    ours = decode(bart, ids, cfg, attention_mask=mask)
    torch.manual_seed(4)
    theirs = bart.generate(ids, attention_mask=mask, **generate_kwargs(cfg))
    assert torch.equal(ours.sequences, theirs)
