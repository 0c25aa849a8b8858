"""The issue-21 shortcuts keep the outputs: exact top-p, the multinomial replica, the
preallocated cache, the exact LM head, the fast body and dropping finished rows."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, TopKLogitsWarper, TopPLogitsWarper

from decoding import DecodingConfig, TopKProcessor, TopPProcessor, decode, generate_kwargs
from decoding.adapters import HFCausalLMAdapter
from decoding.bodies import GPT2Body, fast_body_for
from decoding.cache import PreallocatedLayer, preallocated_cache
from decoding.config import SHORTCUTS
from decoding.lm_head import CHUNK, ExactLMHead
from decoding.nucleus import top_p_threshold
from decoding.rows import LiveRows
from decoding.search import _choose_multinomial, _choose_multinomial_fast

VOCAB, PAD = 99, 1


def _random_logits(kind: str, gen: torch.Generator, rows: int = 6, vocab: int = 1000):
    if kind == "flat":
        return torch.randn(rows, vocab, generator=gen) * 0.3
    if kind == "peaked":
        return torch.randn(rows, vocab, generator=gen) * 6.0
    if kind == "ties":  # few distinct values: cuts often fall inside a run of equal scores
        return torch.randint(0, 6, (rows, vocab), generator=gen).float()
    if kind == "masked":  # -inf entries, as after a constraint
        x = torch.randn(rows, vocab, generator=gen) * 2
        return x.masked_fill(torch.rand(rows, vocab, generator=gen) < 0.5, float("-inf"))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["flat", "peaked", "ties", "masked"])
@pytest.mark.parametrize("min_keep", [1, 3])
def test_fast_top_p_equals_hf(kind, min_keep):
    gen = torch.Generator().manual_seed(hash((kind, min_keep)) % 2**31)
    ties_seen = 0
    for _ in range(40):
        scores = _random_logits(kind, gen)
        top_p = float(torch.rand(1, generator=gen)) * 0.98 + 0.01
        before = scores.clone()
        ours = TopPProcessor(top_p, min_tokens_to_keep=min_keep)(None, scores)
        theirs = TopPLogitsWarper(top_p, min_tokens_to_keep=min_keep)(None, scores)
        assert torch.equal(scores, before)  # input not modified
        assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs))  # same kept set
        assert torch.equal(ours.softmax(-1), theirs.softmax(-1))  # same probabilities
        ties_seen += int((~top_p_threshold(scores, top_p, min_keep)[1]).sum())
    if kind == "ties":
        assert ties_seen > 0  # the fallback to HF's sort was exercised


def test_fast_top_p_large_vocabulary_rows():
    gen = torch.Generator().manual_seed(3)
    scores = (
        torch.randn(8, 30000, generator=gen) * torch.tensor([0.4, 1, 2, 4, 8, 12, 16, 30])[:, None]
    )
    for top_p in (0.1, 0.5, 0.9, 0.95, 0.999):
        ours = TopPProcessor(top_p)(None, scores)
        theirs = TopPLogitsWarper(top_p)(None, scores)
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("min_keep", [1, 3, 2000])
def test_fast_top_p_odd_rows_equal_hf(min_keep):
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(4, 1000, generator=gen)
    scores[0] = float("-inf")  # nothing to keep: softmax gives NaN
    scores[1, 10] = float("nan")
    scores[2, :995] = float("-inf")  # fewer finite scores than min_keep
    for top_p in (0.05, 0.5, 0.95):
        ours = TopPProcessor(top_p, min_tokens_to_keep=min_keep)(None, scores)
        theirs = TopPLogitsWarper(top_p, min_tokens_to_keep=min_keep)(None, scores)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("kind", ["flat", "peaked", "ties"])
@pytest.mark.parametrize("top_k", [1, 5, 50])
def test_top_k_equals_hf(kind, top_k):
    gen = torch.Generator().manual_seed(top_k)
    for _ in range(10):
        scores = _random_logits(kind, gen)
        assert torch.equal(
            TopKProcessor(top_k)(None, scores), TopKLogitsWarper(top_k)(None, scores)
        )


@pytest.mark.parametrize("kind", ["flat", "peaked", "masked", "ties"])
def test_fast_sampling_draws_torch_multinomial_tokens(kind):
    gen = torch.Generator().manual_seed(0)
    for seed in range(20):
        scores = _random_logits(kind, gen, rows=5, vocab=3000)
        a, b = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        tokens, logp = _choose_multinomial(scores, a)
        fast_tokens, fast_logp = _choose_multinomial_fast(scores, b)
        assert torch.equal(tokens, fast_tokens) and torch.equal(logp, fast_logp)
        assert torch.equal(a.get_state(), b.get_state())  # the generator advanced alike


def test_preallocated_layer_gives_dynamic_cache_tensors():
    cache = preallocated_cache(GPT2Config(n_layer=2), capacity=10)
    assert all(isinstance(layer, PreallocatedLayer) for layer in cache.layers)
    layer = cache.layers[0]
    k, v = torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5)
    keys, values = layer.update(k, v)
    assert torch.equal(keys, k) and layer.get_seq_length() == 4
    k2 = torch.randn(3, 2, 1, 5)
    keys, _ = layer.update(k2, k2)
    assert torch.equal(keys, torch.cat([k, k2], dim=2))
    layer.reorder_cache(torch.tensor([2, 2, 0, 1]))
    assert torch.equal(layer.keys, torch.cat([k, k2], dim=2)[[2, 2, 0, 1]])
    expected = layer.values.clone()
    # same row count: all rows gathered into the spare buffers, one row moved in place, none
    for index in ([1, 1, 3, 0], [0, 1, 2, 2], [0, 1, 2, 3], [3, 2, 1, 0]):
        layer.reorder_cache(torch.tensor(index))
        expected = expected[index]
        assert torch.equal(layer.values, expected) and layer.keys.shape == expected.shape
    with pytest.raises(ValueError, match="capacity=10"):
        layer.update(torch.randn(4, 2, 6, 5), torch.randn(4, 2, 6, 5))


def test_preallocated_layer_follows_random_beam_reorders():
    """Expansion, reorders within the expansion groups (prefix not copied), across them,
    dropped rows and appended tokens: always the rows a plain tensor would hold."""
    gen = torch.Generator().manual_seed(0)
    layer = PreallocatedLayer(capacity=30)
    keys = torch.randn(3, 2, 5, 4, generator=gen)
    layer.update(keys, -keys)
    for step in range(25):
        n = keys.shape[0]
        kind = "expand" if step == 0 else ["within", "within", "across", "drop"][step % 4]
        if kind == "expand":
            index = torch.arange(n).repeat_interleave(4)
        elif kind == "within":  # each row follows a row of its own group (beam search)
            group = torch.div(torch.arange(n), 4, rounding_mode="floor")
            index = group * 4 + torch.randint(0, 4, (n,), generator=gen)
            index = torch.minimum(index, torch.tensor(n - 1))
        elif kind == "across":
            index = torch.randint(0, n, (n,), generator=gen)
        else:
            index = torch.randperm(n, generator=gen)[: max(1, n - 1)]
        layer.reorder_cache(index)
        keys = keys[index]
        new = torch.randn(keys.shape[0], 2, 1, 4, generator=gen)
        layer.update(new, -new)
        keys = torch.cat([keys, new], dim=2)
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, -keys)
        if step == 1:  # a reorder within the groups: the 5 prompt slots were not copied
            assert layer._shared == 5
            assert torch.equal(layer._groups, torch.arange(3).repeat_interleave(4))


@pytest.fixture(scope="module")
def gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     tie_word_embeddings=False, bos_token_id=0, eos_token_id=2)  # fmt: skip
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)  # well separated logits (no argmax near-ties)
    return model.eval()


def _batch(seed: int = 0, rows: int = 4):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (rows, 6), generator=gen)
    mask = torch.ones_like(ids)
    ids[1, :2], mask[1, :2] = PAD, 0
    return ids, mask


def test_fast_lm_head_is_used_and_bitwise_with_several_rows(gpt2):
    ids, mask = _batch()
    adapter = HFCausalLMAdapter(gpt2, max_new_tokens=4, fast_lm_head=True)
    state = adapter.start(ids, attention_mask=mask)
    assert state.head is not None  # the check on the prompt passed
    plain = HFCausalLMAdapter(gpt2)
    ref = plain.start(ids, attention_mask=mask)
    seq = ids
    for _ in range(4):
        ours, state = adapter.step(seq, state)
        theirs, ref = plain.step(seq, ref)
        assert torch.equal(ours, theirs)
        seq = torch.cat([seq, ours.argmax(-1, keepdim=True)], dim=1)


@pytest.mark.parametrize("bias", [False, True])
def test_exact_lm_head_gives_the_linear_logits_at_every_row_count(bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 2 * CHUNK + 37, bias=bias)  # a partial last slice
    head = ExactLMHead(linear)
    with torch.inference_mode():
        for rows in (1, 2, 3, 5, 8, 33):
            for _ in range(2):  # the first call chooses, the second uses the choice
                hidden = torch.randn(rows, 48)
                assert torch.equal(head(hidden), linear(hidden))
            assert head.chosen[(rows, torch.get_num_threads())] in ("own", "transposed", "chunked")


def test_exact_lm_head_is_cached_per_model_and_weight_version(gpt2):
    head = ExactLMHead.for_model(gpt2)
    assert head is ExactLMHead.for_model(gpt2)
    clone = GPT2LMHeadModel(gpt2.config).eval()
    clone.load_state_dict(gpt2.state_dict())
    assert ExactLMHead.for_model(clone) is not head
    with torch.no_grad():
        clone.lm_head.weight.mul_(1.0)  # a new weight version
    assert ExactLMHead.for_model(clone) is not ExactLMHead.for_model(gpt2)


def _step_both(model, ids, mask, steps=4, **shortcuts):
    """Step the adapter with ``shortcuts`` and the plain one side by side; logits must agree."""
    adapter = HFCausalLMAdapter(model, max_new_tokens=steps, **shortcuts)
    plain = HFCausalLMAdapter(model)
    with torch.inference_mode():
        state, ref = adapter.start(ids, attention_mask=mask), plain.start(ids, attention_mask=mask)
        seq = ids
        for _ in range(steps):
            ours, state = adapter.step(seq, state)
            theirs, ref = plain.step(seq, ref)
            assert torch.equal(ours, theirs)
            seq = torch.cat([seq, ours.argmax(-1, keepdim=True)], dim=1)
    return state


@pytest.mark.parametrize("padded", [False, True])
def test_fast_body_is_used_and_bitwise(gpt2, padded):
    ids, mask = _batch()
    state = _step_both(gpt2, ids, mask if padded else None, fast_body=True, fast_lm_head=True)
    assert isinstance(state.body, GPT2Body) and state.body_checked


def test_fast_body_is_dropped_when_it_differs(gpt2, monkeypatch):
    original = GPT2Body.__call__
    monkeypatch.setattr(GPT2Body, "__call__", lambda *a: original(*a) * (1 + 2**-20))
    ids, mask = _batch()
    state = _step_both(gpt2, ids, mask, fast_body=True)
    assert state.body is None and state.body_checked


def test_fast_body_is_refused_for_hooks_and_training(gpt2):
    assert fast_body_for(gpt2) is not None
    handle = gpt2.transformer.h[0].mlp.register_forward_hook(lambda *a: None)
    try:
        assert fast_body_for(gpt2) is None
    finally:
        handle.remove()
    gpt2.train()
    try:
        assert fast_body_for(gpt2) is None
    finally:
        gpt2.eval()


def test_fast_lm_head_refused_when_the_model_changes_its_logits(gpt2):
    class Scaled(GPT2LMHeadModel):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 0.5
            return out

    scaled = Scaled(gpt2.config).eval()
    scaled.load_state_dict(gpt2.state_dict())
    ids, mask = _batch()
    state = HFCausalLMAdapter(scaled, max_new_tokens=4, fast_lm_head=True).start(
        ids, attention_mask=mask
    )
    assert state.head is None


def _eos(model, ids, mask) -> int:
    out = decode(model, ids, DecodingConfig(max_new_tokens=12), attention_mask=mask)
    gen = out.sequences[:, -12:].flatten()
    return int(torch.bincount(gen[gen > PAD + 1]).argmax())


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"strategy": "beam", "num_beams": 3},
        {"strategy": "beam", "num_beams": 2, "early_stopping": True, "num_return_sequences": 2},
        {"strategy": "sample", "top_p": 0.8, "seed": 3, "num_return_sequences": 2},
        {"strategy": "sample", "top_p": 0.6, "top_k": 20, "consistent": True, "seed": 5},
    ],
    ids=["greedy", "beam3", "beam2-early", "nucleus", "consistent"],
)
def test_shortcuts_match_generate_and_plain_decode(gpt2, overrides):
    ids, mask = _batch(1, rows=5)
    eos = _eos(gpt2, ids, mask)
    cfg = DecodingConfig(max_new_tokens=14, eos_token_id=eos, pad_token_id=PAD, **overrides)
    seed = overrides.get("seed")
    fast = decode(gpt2, ids, cfg, attention_mask=mask)
    plain = decode(gpt2, ids, cfg.without_shortcuts(), attention_mask=mask)
    if seed is not None:
        torch.manual_seed(seed)
    theirs = gpt2.generate(ids, attention_mask=mask, **generate_kwargs(cfg))
    assert fast.finished.any() and len(set(fast.lengths.tolist())) > 1  # rows ended apart
    assert torch.equal(fast.sequences, theirs)
    assert torch.equal(fast.sequences, plain.sequences)
    assert torch.allclose(fast.scores, plain.scores, atol=1e-4)


def test_live_rows_drop_reaches_the_model(gpt2):
    ids, mask = _batch(2, rows=5)
    eos = _eos(gpt2, ids, mask)
    seen: list[int] = []

    class Counting(LiveRows):
        def step(self, input_ids, state):
            seen.append(input_ids.shape[0] if state.live is None else int(state.live.shape[0]))
            return super().step(input_ids, state)

    from decoding.adapters import as_step_model
    from decoding.search import greedy_search

    model = Counting(as_step_model(gpt2))
    state = model.start(ids, attention_mask=mask)
    cfg = DecodingConfig(max_new_tokens=14, eos_token_id=eos, pad_token_id=PAD)
    from decoding.processors import build_processors

    out = greedy_search(model, ids, state, cfg, lambda v: build_processors(cfg, v, ids.shape[1]))
    assert out.finished.any()
    assert seen[0] == 5 and min(seen) < 5  # finished rows left the batch


def test_without_shortcuts_switches_every_one_off():
    plain = DecodingConfig().without_shortcuts()
    assert not any(getattr(plain, name) for name in SHORTCUTS)
    assert all(getattr(DecodingConfig(), name) for name in SHORTCUTS)
