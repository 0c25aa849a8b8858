"""The lean UniLM step (issue 21) gives the earlier step's logits and outputs.

Bit for bit with every row's own copy of its prompt (``shared_prefix=False``, `InPlaceKVCache`:
the same arithmetic as the earlier step). With the prompt kept once per source (the default,
`SharedPrefixKVCache`) attention is split into the prompt part and the row's own part, another
summation order: there the tokens must be the same and logits and scores equal within float
tolerance (tests/test_qgen_shared_prefix.py checks it against re-encoding too).
"""

import dataclasses
import functools

import pytest
import torch
from qgen_fixtures import (
    LogitsRecorder as Recorder,
)
from qgen_fixtures import (
    step_prompt,
    tiny_sentencepiece_tokenizer,
    tiny_unilm_model,
    tiny_wordpiece_tokenizer,
)

import qgen.generation.generator as generator_module
from decoding import DecodingConfig, decode
from qgen.generation.generator import QAGenerator
from qgen.modeling.step import FastLMHead, InPlaceKVCache, KVCache, UniLMStepModel

EOS = 3
PASSAGES = [
    "The Eiffel Tower is in Paris, France. It was built in 1889 by Gustave Eiffel.",
    "The cat sat on the mat. The dog sat in the city of Paris, the capital of France.",
    "A river runs in the city.",
]


class Prefilled(Recorder):
    """A recorder whose ``start`` hands out a state read already (as `PrefilledStepModel`)."""

    def __init__(self, inner, state):
        super().__init__(inner)
        self.state = state

    def start(self, input_ids, **kw):
        return self.state


# shared_prefix -> exact? (the shared prompt changes the summation order, see the docstring)
LEAN = {False: True, True: False}


def _same(x: torch.Tensor, y: torch.Tensor, exact: bool) -> bool:
    return torch.equal(x, y) if exact else torch.allclose(x, y, atol=1e-5, rtol=0)


CONFIGS = {
    "greedy": dict(strategy="greedy"),
    "beam": dict(strategy="beam", num_beams=3),
    "beam_no_drop": dict(strategy="beam", num_beams=4, drop_finished=False),
    "sample": dict(strategy="sample", top_p=0.9, consistent=True, seed=3, num_return_sequences=2),
}


@pytest.mark.parametrize("shared_prefix", list(LEAN))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_lean_step_equals_the_earlier_step(name, shared_prefix):
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(max_new_tokens=12, eos_token_id=EOS, **CONFIGS[name])
    runs = []
    for lean in (False, True):
        rec = Recorder(UniLMStepModel(model, lean=lean, shared_prefix=shared_prefix))
        out = decode(rec, ids, config, attention_mask=am, token_type_ids=tt)
        runs.append((out, rec.logits))
    (a, la), (b, lb) = runs
    exact = LEAN[shared_prefix]
    assert torch.equal(a.sequences, b.sequences)
    assert _same(a.scores, b.scores, exact)
    assert len(la) == len(lb)
    assert all(_same(x, y, exact) for x, y in zip(la, lb))


@pytest.mark.parametrize("shared_prefix", list(LEAN))
def test_lean_extend_then_beam_equals_the_earlier_step(shared_prefix):
    """Stage 2's path: sources encoded once, rows picked (repeats), answers appended, beams."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    ids, am, tt = ids[:2, :10], am[:2, :10], tt[:2, :10]
    rows = torch.tensor([0, 1, 1, 0])
    prefix = torch.tensor([[11, 12, 3], [13, 3, 0], [14, 15, 3], [16, 3, 0]])
    pre_mask = (prefix != 0).long()
    config = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=8, eos_token_id=EOS)
    outs = []
    for lean in (False, True):
        step_model = UniLMStepModel(model, lean=lean, shared_prefix=shared_prefix)
        base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
        state = step_model.reorder(dataclasses.replace(base), rows)
        state = step_model.extend(state, prefix, pre_mask, pre_mask)
        full = torch.cat([ids[rows], prefix], dim=1)
        rec = Prefilled(step_model, state)
        outs.append((decode(rec, full, config), rec.logits))
    (a, la), (b, lb) = outs
    exact = LEAN[shared_prefix]
    assert torch.equal(a.sequences, b.sequences) and _same(a.scores, b.scores, exact)
    assert all(_same(x, y, exact) for x, y in zip(la, lb))


def test_a_copied_state_leaves_the_shared_cache_alone():
    """`QAGenerator._decode` decodes from ``dataclasses.replace(batch.state)``: the copy gets its
    own buffers at its first reorder (even an identity one), and the batch's state is intact
    for the next stage. (`InPlaceKVCache`; the shared cache: test_qgen_shared_prefix.py.)"""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    step_model = UniLMStepModel(model, shared_prefix=False)
    base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    assert isinstance(base.cache, InPlaceKVCache)
    keys = [k.clone() for k in base.cache.keys]
    length = base.cache.length
    config = DecodingConfig(max_new_tokens=5, eos_token_id=None)
    for _ in range(2):
        state = step_model.reorder(dataclasses.replace(base), torch.arange(3))
        assert state.cache is not base.cache
        decode(Prefilled(step_model, state), ids, config)
    assert base.cache.length == length
    assert all(
        torch.equal(k[:, :, :length], c[:, :, :length]) for k, c in zip(base.cache.keys, keys)
    )


def test_beam_reorders_in_place_and_copies_only_the_generated_part():
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    step_model = UniLMStepModel(model, shared_prefix=False)
    state = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    state = step_model.reorder(state, torch.arange(3).repeat_interleave(2))  # expand: a copy
    cache = state.cache
    assert cache.fixed == 12 and cache.group.tolist() == [0, 0, 1, 1, 2, 2]
    seq = torch.cat([ids.repeat_interleave(2, 0), torch.full((6, 1), 7)], dim=1)
    _, state = step_model.step(seq, state)  # the prompt's logits
    _, state = step_model.step(seq, state)  # one generated token
    before = [k.clone() for k in cache.keys]
    swap = torch.tensor([1, 0, 2, 2, 5, 4])  # every row stays in its group
    state = step_model.reorder(state, swap)
    assert state.cache is cache  # in place
    for old, new in zip(before, cache.keys):
        assert torch.equal(new[:6, :, :12], old[:6, :, :12])  # the prompt untouched
        assert torch.equal(new[:6, :, 12:13], old[swap, :, 12:13])
    state = step_model.reorder(state, torch.tensor([0, 2]))  # leaves groups: a new cache
    assert state.cache is not cache and state.cache.group.tolist() == [0, 1]


def test_fast_head_is_used_only_where_it_is_exact(monkeypatch):
    model = tiny_unilm_model()
    head = FastLMHead.for_model(model)
    assert head is FastLMHead.for_model(model)  # made once per model and weight version
    hidden = torch.randn(5, model.config.hidden_size)
    with torch.no_grad():
        assert torch.equal(head(hidden), model.lm_head(hidden))  # first call: the model's head
        assert torch.equal(head(hidden), model.lm_head(hidden))  # then whichever is exact
        head.exact[(5, torch.get_num_threads())] = False  # as if the kernels summed differently
        monkeypatch.setattr(torch, "addmm", None)  # never called where not exact
        assert torch.equal(head(hidden), model.lm_head(hidden))
        model.cls.predictions.decoder.weight.mul_(2.0)
    assert FastLMHead.for_model(model) is not head  # new weights: a new copy


def test_old_cache_is_kept_behind_the_flag():
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    assert isinstance(UniLMStepModel(model, lean=False).start(ids, am, tt).cache, KVCache)
    assert UniLMStepModel(model, use_cache=False).start(ids, am, tt).cache is None


def _generator(tok, **kw):
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 4.0
    return QAGenerator(model, tok, seed=0, **kw)


def _lean(monkeypatch, lean: bool, shared_prefix: bool) -> None:
    step = functools.partial(UniLMStepModel, lean=lean, shared_prefix=shared_prefix)
    monkeypatch.setattr(generator_module, "UniLMStepModel", step)


def _without_scores(results):
    """The results with every float (scores) replaced by None, and the floats in order."""
    floats = []

    def strip(x):
        if isinstance(x, float):
            floats.append(x)
            return None
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(strip(v) for v in x)
        return x

    return strip(results), floats


@pytest.mark.parametrize("shared_prefix", list(LEAN))
@pytest.mark.parametrize("tokenizer", [tiny_wordpiece_tokenizer, tiny_sentencepiece_tokenizer])
@pytest.mark.parametrize("preset", [None, "su-2020-07", "su-2020-11"])
def test_generate_is_identical_with_the_lean_step(monkeypatch, tokenizer, preset, shared_prefix):
    """Seeded sampling, beam and greedy questions: the same pairs, token for token, and the
    same scores (exactly with ``shared_prefix=False``, within 1e-5 with the shared prompt);
    small ``max_decode_rows`` and long passages (windows) exercise the splits and row drops."""
    tok = tokenizer()
    results = []
    for lean in (False, True):
        _lean(monkeypatch, lean, shared_prefix)
        gen = _generator(tok, preset=preset, max_source_length=24, window_stride=8,
                         max_decode_rows=10)  # fmt: skip
        pairs = gen.generate(PASSAGES, num_pairs=2, batch_size=2)
        answers = [p[0]["answer"] if p else None for p in pairs]
        keep = [i for i, a in enumerate(answers) if a]
        questions = gen.generate_questions(
            [PASSAGES[i] for i in keep], [answers[i] for i in keep], batch_size=2
        )
        results.append((pairs, questions))
    if LEAN[shared_prefix]:
        assert results[0] == results[1]
    else:
        (a, fa), (b, fb) = map(_without_scores, results)
        assert a == b and torch.allclose(torch.tensor(fa), torch.tensor(fb), atol=1e-5, rtol=0)
    assert any(results[0][0])
