"""The non-termination study's language models (`studies.nontermination.lm`), vanilla or
self-terminating: the step model equals the full forward, greedy / consistent / beam decoding
of ST models through `decoding.decode` stop in time for any weights, and the library's
`SelfTerminatingStepModel` over a plain HF GPT-2 decodes the same as the built-in ST head."""

import math

import pytest
import torch

from decoding import DecodingConfig, decode
from decoding.self_terminating import context_mask_for, greedy_stop_bound
from studies.nontermination.lm import (
    GPT2LanguageModel,
    LMStepModel,
    LSTMLanguageModel,
    LSTMLMConfig,
)

V = 13


def _models(eps: float, eos: int):
    lstm = LSTMLanguageModel(LSTMLMConfig(V, eos, hidden_size=16, st_epsilon=eps, context_length=4))
    gpt = GPT2LanguageModel.from_sizes(
        V, eos, eps, n_layer=1, n_embd=16, n_head=2, n_positions=128, st_context_length=4
    )
    return {"lstm": lstm, "gpt2": gpt}


@pytest.mark.parametrize("arch", ["lstm", "gpt2"])
def test_step_model_matches_full_forward(arch):
    model = _models(1e-2, 3)[arch].eval()
    ids = torch.randint(4, V, (3, 9))
    sm = LMStepModel(model)
    state = sm.reorder(sm.start(ids[:, :5]), torch.tensor([0, 1, 2]))
    for t in range(5, 10):
        step_lp, state = sm.step(ids[:, :t], state)
        mask = context_mask_for(t, 4, 3, "cpu")
        full = model.incremental(ids[:, :t], None, None, mask)[0][:, -1]
        torch.testing.assert_close(step_lp, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["lstm", "gpt2"])
@pytest.mark.parametrize("eps", [0.1, 0.02])
def test_greedy_stops_within_bound_for_any_weights(arch, eps):
    model = _models(eps, eos=2)[arch]
    bound = greedy_stop_bound(eps)
    prompts = torch.randint(3, V, (6, 5))
    out = decode(
        LMStepModel(model), prompts, DecodingConfig(max_new_tokens=bound + 10, eos_token_id=2)
    )
    assert out.finished.all()
    assert int(out.lengths.max()) <= bound


@pytest.mark.parametrize("eps", [0.1, 0.02])
def test_greedy_bound_is_tight_in_the_worst_case(eps):
    """End-token logit +50 (beta = 1 - eps at every step) and one dominant ordinary token:
    greedy keeps that token until p(eos) > 0.5, i.e. exactly the bound."""
    model = _models(eps, eos=2)["lstm"]
    with torch.no_grad():
        model.proj.bias[2] = 50.0
        model.proj.bias[5] = 50.0
    bound = greedy_stop_bound(eps)
    out = decode(
        LMStepModel(model),
        torch.randint(3, V, (4, 5)),
        DecodingConfig(max_new_tokens=bound + 10, eos_token_id=2),
    )
    assert out.finished.all()
    assert out.lengths.tolist() == [bound] * 4


def test_consistent_sampling_terminates_with_st():
    model = _models(0.05, eos=2)["gpt2"]
    cfg = DecodingConfig(
        strategy="sample", top_k=2, consistent=True, max_new_tokens=60, eos_token_id=2, seed=0
    )
    out = decode(LMStepModel(model), torch.randint(3, V, (8, 5)), cfg)
    assert out.finished.all()
    # (1 - 0.05)^(60*61/2) ~ 1e-41: not terminating would be a bug, not bad luck
    assert math.log(0.95) * 60 * 61 / 2 < -90


def test_beam_search_on_st_model_runs():
    model = _models(0.1, eos=2)["lstm"]
    cfg = DecodingConfig(
        strategy="beam", num_beams=3, max_new_tokens=40, eos_token_id=2, early_stopping=True
    )
    out = decode(LMStepModel(model), torch.randint(3, V, (2, 5)), cfg)
    assert out.finished.all()


def test_st_step_wrapper_over_hf_adapter_matches_lm_step_model():
    """A plain GPT-2 + `SelfTerminatingStepModel` (HF cache path of `decode`) decodes the same
    tokens as `GPT2LanguageModel` with the ST head built in (end-token bias 0)."""
    from transformers import GPT2LMHeadModel

    from decoding import as_step_model
    from decoding.self_terminating import SelfTerminatingStepModel

    st = GPT2LanguageModel.from_sizes(
        V, 2, 0.05, n_layer=1, n_embd=16, n_head=2, n_positions=128, st_eos_bias_init=0.0
    )
    plain = GPT2LMHeadModel(st.config)
    missing = plain.load_state_dict(st.state_dict(), strict=False)
    assert missing.missing_keys == [] and missing.unexpected_keys == ["eos_bias"]
    plain.eval()
    prompts = torch.randint(3, V, (3, 5))
    for cfg in (
        DecodingConfig(max_new_tokens=70, eos_token_id=2),
        DecodingConfig(
            strategy="beam", num_beams=2, max_new_tokens=70, eos_token_id=2, early_stopping=True
        ),
    ):
        ours = decode(LMStepModel(st), prompts, cfg)
        wrapped = decode(SelfTerminatingStepModel(as_step_model(plain), 2, 0.05), prompts, cfg)
        assert torch.equal(ours.sequences, wrapped.sequences)
        torch.testing.assert_close(ours.scores, wrapped.scores, atol=1e-4, rtol=1e-4)
        assert wrapped.finished.all()
