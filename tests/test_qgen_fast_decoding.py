"""UniLMStepModel: the cached decoder is exact (same tokens and logits as re-encoding)."""

import pytest
import torch
from qgen_fixtures import LogitsRecorder as Recorder
from qgen_fixtures import step_prompt, tiny_unilm_model

from decoding import DecodingConfig, StepModel, decode
from qgen.modeling.step import InPlaceKVCache, KVCache, SharedPrefixKVCache, UniLMStepModel

EOS = 3


def test_is_a_step_model():
    assert isinstance(UniLMStepModel(tiny_unilm_model()), StepModel)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(strategy="greedy"),
        dict(strategy="beam", num_beams=3),
        dict(strategy="sample", top_p=0.9, consistent=True, seed=3, num_return_sequences=2),
    ],
)
def test_cached_equals_uncached(kwargs):
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(max_new_tokens=12, eos_token_id=EOS, **kwargs)
    runs = []
    for use_cache in (True, False):
        rec = Recorder(UniLMStepModel(model, use_cache=use_cache))
        out = decode(rec, ids, config, attention_mask=am, token_type_ids=tt)
        runs.append((out, rec.logits))
    (a, la), (b, lb) = runs
    assert torch.equal(a.sequences, b.sequences)
    assert torch.allclose(a.scores, b.scores, atol=1e-4)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert torch.allclose(x, y, atol=1e-4)


def test_naive_full_head_matches():
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(max_new_tokens=6, eos_token_id=EOS)
    a = decode(UniLMStepModel(model), ids, config, attention_mask=am, token_type_ids=tt)
    b = decode(
        UniLMStepModel(model, use_cache=False, full_head=True),
        ids,
        config,
        attention_mask=am,
        token_type_ids=tt,
    )
    assert torch.equal(a.sequences, b.sequences)
    with pytest.raises(ValueError, match="full_head"):
        UniLMStepModel(model, use_cache=True, full_head=True)


def test_step_logits_equal_the_training_forward():
    """The logits the decoder sees are the ones the model is trained on (teacher forcing)."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    rec = Recorder(UniLMStepModel(model))
    config = DecodingConfig(max_new_tokens=5, eos_token_id=None)
    out = decode(rec, ids[:1], config, attention_mask=am[:1], token_type_ids=tt[:1])
    seq = out.sequences  # (1, 12 + 5)
    full_tt = torch.cat([tt[:1], torch.ones(1, 5, dtype=torch.long)], dim=1)
    full = model(seq, token_type_ids=full_tt, full_logits=True).logits  # (1, 17, V)
    for t, logits in enumerate(rec.logits):
        assert torch.allclose(logits[0], full[0, 11 + t], atol=1e-4)


def test_padding_inside_the_prompt_is_transparent():
    """A row decoded alone gives the same tokens as in a padded batch."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(max_new_tokens=8, eos_token_id=None)
    batched = decode(UniLMStepModel(model), ids, config, attention_mask=am, token_type_ids=tt)
    alone = decode(UniLMStepModel(model), ids[1:2, :9], config, token_type_ids=tt[1:2, :9])
    assert torch.equal(batched.sequences[1, 12:], alone.sequences[0, 9:])


def test_extend_equals_reading_the_wholestep_prompt():
    """Encode sources once, pick rows (repeats allowed), append padded answers: same logits
    and the same continuation as starting from the concatenated prompt."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    ids, am, tt = ids[:2, :10], am[:2, :10], tt[:2, :10]  # two sources, the second padded
    step_model = UniLMStepModel(model)
    base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    rows = torch.tensor([0, 1, 1])
    prefix = torch.tensor([[11, 12, 3], [13, 3, 0], [14, 15, 3]])
    pre_mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1]])
    state = step_model.reorder(base, rows)
    state = step_model.extend(state, prefix, pre_mask, pre_mask)
    full_ids = torch.cat([ids[rows], prefix], dim=1)
    full_mask = torch.cat([am[rows], pre_mask], dim=1)
    full_tt = torch.cat([tt[rows], pre_mask], dim=1)
    fresh = UniLMStepModel(model, use_cache=False).start(
        full_ids, attention_mask=full_mask, token_type_ids=full_tt
    )
    reference, _ = UniLMStepModel(model, use_cache=False).step(full_ids, fresh)
    assert torch.allclose(state.logits, reference, atol=1e-4)
    config = DecodingConfig(max_new_tokens=6, eos_token_id=None)

    class Prefilled(Recorder):
        def start(self, input_ids, **kw):
            return state

    a = decode(Prefilled(step_model), full_ids, config)
    b = decode(
        UniLMStepModel(model, use_cache=False),
        full_ids,
        config,
        attention_mask=full_mask,
        token_type_ids=full_tt,
    )
    assert torch.equal(a.sequences, b.sequences)
    with pytest.raises(ValueError, match="cached state"):
        UniLMStepModel(model, use_cache=False).extend(fresh, prefix)


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(shared_prefix=False), dict(lean=False)],
    ids=["shared", "lean", "earlier"],
)
def test_cache_growth_keeps_decoding_exact(monkeypatch, kwargs):
    """Buffers that must grow while decoding (1 spare position at a time) change nothing."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(strategy="beam", num_beams=2, max_new_tokens=10, eos_token_id=None)
    expected = decode(
        UniLMStepModel(model, use_cache=False), ids, config, attention_mask=am, token_type_ids=tt
    )
    for cache in (KVCache, InPlaceKVCache, SharedPrefixKVCache):
        monkeypatch.setattr(cache, "GROW", 1)
    step_model = UniLMStepModel(model, **kwargs)
    got = decode(step_model, ids, config, attention_mask=am, token_type_ids=tt)
    assert torch.equal(got.sequences, expected.sequences)
    assert torch.allclose(got.scores, expected.scores, atol=1e-4)
