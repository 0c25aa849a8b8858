"""The self-terminating layer: bound on p(eos), normalisation, eos anywhere, incremental ==
full sequence, and greedy / consistent decoding through `decoding.decode` with
`SelfTerminatingStepModel` stop in time.

The non-termination study's language models with the layer built in (`studies.nontermination.lm`)
are tested in tests/test_nontermination_lm.py."""

import pytest
import torch

from decoding import DecodingConfig, SelfTerminatingStepModel, as_step_model, decode
from decoding.self_terminating import (
    SelfTerminatingHead,
    context_mask_for,
    greedy_stop_bound,
    self_terminating_log_probs,
)

V, H = 13, 8


def _head(eos: int, eps: float) -> SelfTerminatingHead:
    return SelfTerminatingHead(torch.nn.Linear(H, V), eos_token_id=eos, epsilon=eps)


@pytest.mark.parametrize("eos", [0, 5, V - 1])
@pytest.mark.parametrize("eps", [1e-1, 1e-2, 1e-3])
def test_eos_lower_bound_and_normalised(eos, eps):
    hidden = torch.randn(4, 60, H) * 4  # large hidden states: extreme logits
    log_probs, _ = _head(eos, eps)(hidden)
    probs = log_probs.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, 60))
    t = torch.arange(60, dtype=torch.float64)
    bound = 1 - (1 - eps) ** (t + 1)
    assert (probs[..., eos].double() >= bound - 1e-6).all()


def test_eos_probability_is_monotone_and_not_tied_to_last_index():
    log_probs, _ = _head(eos=2, eps=1e-2)(torch.randn(3, 30, H))
    p_eos = log_probs[..., 2].exp()
    assert (p_eos[:, 1:] >= p_eos[:, :-1] - 1e-6).all()
    # the last column is an ordinary token, not the end token
    assert not torch.allclose(log_probs[..., V - 1].exp(), p_eos)


def test_matches_reference_formula_when_eos_is_last():
    """Same numbers as the reference ``RNNLanguageModelST.forward`` (eos last, no context)."""
    eps = 1e-2
    logits = torch.randn(2, 7, V)
    ours, _ = self_terminating_log_probs(logits, V - 1, eps)
    beta = torch.clamp((1 - eps) * torch.sigmoid(logits[..., -1:]), min=1e-10)
    p_eos = 1 - torch.exp(torch.cumsum(torch.log(beta), 1))
    prev = torch.cat([torch.zeros(2, 1, 1), p_eos], 1)[:, :-1]
    alpha = torch.clamp(beta * (1 - prev), min=1e-10)
    ps = torch.cat([alpha * torch.softmax(logits[..., :-1], -1), p_eos], -1).clamp(min=1e-10)
    ref = torch.log(ps / ps.sum(-1, keepdim=True))
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_incremental_equals_full_sequence():
    head = _head(eos=4, eps=1e-2)
    hidden = torch.randn(2, 25, H)
    mask = context_mask_for(25, 5, 2, hidden.device)
    full, full_sum = head(hidden, None, mask)
    parts, past = [], None
    for lo, hi in ((0, 7), (7, 8), (8, 25)):
        lp, past = head(hidden[:, lo:hi], past, mask[:, lo:hi])
        parts.append(lp)
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(past, full_sum)


def test_context_steps_have_no_eos_mass():
    lp, log_sum = _head(eos=1, eps=1e-2)(
        torch.randn(2, 8, H), None, context_mask_for(8, 5, 2, "cpu")
    )
    assert (lp[:, :5, 1].exp() < 1e-8).all()
    assert (lp[:, 5:, 1].exp() > 0).all()
    assert log_sum.shape == (2,)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="epsilon"):
        SelfTerminatingHead(torch.nn.Linear(H, V), eos_token_id=1, epsilon=0.0)
    with pytest.raises(ValueError, match="eos_token_id"):
        self_terminating_log_probs(torch.randn(1, 2, V), V, 1e-2)


def test_greedy_stop_bound_values():
    assert greedy_stop_bound(1e-2) == 69
    assert greedy_stop_bound(1e-3) == 693
    assert greedy_stop_bound(0.5) == 1


def _plain_gpt2(eos: int):
    """A randomly initialised HF GPT-2 (no ST head of its own): any weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=V, n_layer=1, n_embd=16, n_head=2, n_positions=256, eos_token_id=eos
    )
    return GPT2LMHeadModel(config).eval()


def test_context_mask_for():
    mask = context_mask_for(4, 3, 2, "cpu", start=1)
    assert mask.shape == (2, 4) and mask.dtype == torch.bool
    assert mask[0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("eps", [0.1, 0.02])
def test_step_wrapper_greedy_stops_within_bound_for_any_weights(eps):
    model = _plain_gpt2(eos=2)
    bound = greedy_stop_bound(eps)
    out = decode(
        SelfTerminatingStepModel(as_step_model(model), 2, eps),
        torch.randint(3, V, (4, 5)),
        DecodingConfig(max_new_tokens=bound + 10, eos_token_id=2),
    )
    assert out.finished.all()
    assert int(out.lengths.max()) <= bound


def test_step_wrapper_consistent_sampling_terminates():
    cfg = DecodingConfig(
        strategy="sample", top_k=2, consistent=True, max_new_tokens=60, eos_token_id=2, seed=0
    )
    out = decode(
        SelfTerminatingStepModel(as_step_model(_plain_gpt2(eos=2)), 2, 0.05),
        torch.randint(3, V, (6, 5)),
        cfg,
    )
    assert out.finished.all()
