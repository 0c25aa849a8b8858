"""`SharedPrefixKVCache` (issue 21): the prompt's keys/values once per prompt, the same logits.

Each scenario drives the cached step model through expansions, beam steps, dropped rows,
selections of sources with repeats and answers appended with padding, and checks every logits
tensor against re-encoding the whole sequence (``use_cache=False``). The arithmetic differs from
the replicated cache (another summation order), so logits are compared within a tolerance.
"""

import dataclasses

import pytest
import torch
from qgen_fixtures import step_prompt, tiny_unilm_model

from decoding import DecodingConfig, decode
from qgen.modeling.step import PrefilledStepModel, SharedPrefixKVCache, UniLMStepModel

ATOL = 1e-5  # fp32; the tiny model's logits are O(1)


class Mirror:
    """A cached state and the full sequence it stands for; every logits tensor the cached step
    model returns is checked against re-encoding that sequence."""

    def __init__(self, model, ids, am, tt):
        self.model, self.step_model = model, UniLMStepModel(model)
        self.ids, self.am, self.tt = ids, am, tt
        self.state = self.step_model.start(ids, attention_mask=am, token_type_ids=tt)
        self.checked = 0
        self.check(self.state.logits)
        self.state.logits = None  # checked: the next step reads a new token

    def reference(self) -> torch.Tensor:
        naive = UniLMStepModel(self.model, use_cache=False)
        state = naive.start(self.ids, attention_mask=self.am, token_type_ids=self.tt)
        return naive.step(self.ids, state)[0]

    def check(self, logits: torch.Tensor) -> None:
        torch.testing.assert_close(logits, self.reference(), atol=ATOL, rtol=0)
        self.checked += 1

    def reorder(self, index: list[int], copy: bool = False) -> None:
        """``copy``: reorder a copy of the state (as `QAGenerator._decode` does)."""
        index = torch.tensor(index)
        state = dataclasses.replace(self.state) if copy else self.state
        self.state = self.step_model.reorder(state, index)
        self.ids, self.am, self.tt = (
            x.index_select(0, index) for x in (self.ids, self.am, self.tt)
        )

    def extend(self, tokens: list[list[int]]) -> None:
        """Append right-padded blocks of target tokens (0: padding)."""
        ids = torch.tensor(tokens)
        am = (ids != 0).long()
        self.state = self.step_model.extend(self.state, ids, am, am)
        self._append(ids, am, am)
        self.check(self.state.logits)
        self.state.logits = None

    def step(self, seed: int) -> None:
        """One generated token per row."""
        token = torch.randint(
            5, 99, (self.ids.shape[0], 1), generator=torch.Generator().manual_seed(seed)
        )
        ones = torch.ones_like(token)
        self._append(token, ones, ones)
        logits, self.state = self.step_model.step(self.ids, self.state)
        self.check(logits)

    def _append(self, ids, am, tt) -> None:
        self.ids, self.am, self.tt = (
            torch.cat(x, dim=1) for x in ((self.ids, ids), (self.am, am), (self.tt, tt))
        )


def _expand(n: int, k: int) -> list[int]:
    return [i for i in range(n) for _ in range(k)]


# (name, operations): ("r", index[, copy]) reorder, ("x", blocks) extend, ("s",) one token
SCENARIOS = {
    "expand_then_beam": [
        ("s",),
        ("r", _expand(3, 4)),
        ("s",),
        ("r", [1, 1, 0, 3, 4, 4, 6, 7, 11, 8, 9, 9]),  # every row stays in its group
        ("s",),
        ("s",),
    ],
    "drop_rows_and_whole_groups": [
        ("r", _expand(3, 3)),
        ("s",),
        ("r", [0, 2, 4, 6, 7, 8]),  # uneven groups: 2, 1, 3 rows
        ("s",),
        ("r", [0, 1, 3, 4, 5]),  # group 1 leaves: groups 0 and 2 (a copy of their prompts)
        ("s",),
        ("r", [2, 3]),  # only group 2 (a view)
        ("s",),
        ("s",),
    ],
    "stage_2_selection": [  # sources picked with repeats, out of order; padded answers
        ("r", [2, 0, 0, 2, 2, 1], True),
        ("x", [[11, 12, 3], [13, 3, 0], [14, 15, 3], [16, 3, 0], [17, 18, 19], [3, 0, 0]]),
        ("s",),
        ("r", _expand(6, 2)),  # into beams: groups of 4, 2, 6 rows, interleaved
        ("s",),
        ("r", [1, 0, 3, 3, 4, 5, 7, 6, 8, 9, 11, 10]),
        ("s",),
        ("r", [0, 1, 2, 3, 6, 7, 10, 11]),  # finished inputs leave
        ("s",),
    ],
    "extend_twice": [
        ("r", [0, 1, 1, 2]),
        ("x", [[11, 3], [12, 0], [13, 14], [3, 0]]),
        ("x", [[15, 0, 0], [16, 17, 18], [19, 0, 0], [20, 21, 0]]),
        ("s",),
        ("r", [3, 2, 1, 0]),
        ("s",),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_reorders_and_extends_give_the_uncached_logits(name):
    """Prompts with padding inside (row 1) and a target prefix (row 2), through expansions,
    beam reorders, drops, selections and padded extends: cached == re-encoded, every step."""
    mirror = Mirror(tiny_unilm_model(), *step_prompt())
    for seed, (op, *args) in enumerate(SCENARIOS[name]):
        if op == "r":
            mirror.reorder(*args)
        elif op == "x":
            mirror.extend(*args)
        else:
            mirror.step(seed)
    assert mirror.checked >= 4


def test_the_prompt_is_stored_once_per_group():
    """Expanding into many rows copies no prompt: the rows point at the prompts read once,
    and their own buffers hold only the positions after the prompt."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    step_model = UniLMStepModel(model)
    base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    cache = base.cache
    assert isinstance(cache, SharedPrefixKVCache)
    prompt = cache.prefix
    assert prompt.keys_t[0].shape[0] == 3 and prompt.keys_t[0].shape[-1] == 12
    for rows in (2, 10, 50):
        state = step_model.reorder(dataclasses.replace(base), torch.arange(3).repeat(rows))
        seq = torch.cat([ids.repeat(rows, 1), torch.full((3 * rows, 1), 7)], dim=1)
        _, state = step_model.step(seq, state)  # the prompt's logits
        _, state = step_model.step(seq, state)  # one token
        shared = state.cache.prefix
        assert shared is prompt  # the same tensors, not copies
        assert all(k.data_ptr() == p.data_ptr() for k, p in zip(shared.keys_t, prompt.keys_t))
        own = state.cache.keys[0]
        assert own.shape[0] == 3 * rows and own.shape[2] <= 1 + SharedPrefixKVCache.GROW
    assert base.cache.length == 12 and base.cache.keys == []  # the batch's state untouched


def test_groups_without_rows_are_left_out():
    """Selecting some sources keeps only their prompts: a view where they are consecutive,
    else a copy of those prompts (never one per row)."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    step_model = UniLMStepModel(model)
    base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    full = base.cache.prefix.values[0]
    view = step_model.reorder(dataclasses.replace(base), torch.tensor([1, 2, 2, 1])).cache
    assert view.prefix.groups == 2 and view.group.tolist() == [0, 1, 1, 0]
    assert view.prefix.values[0].data_ptr() == full[1].data_ptr()
    copy = step_model.reorder(dataclasses.replace(base), torch.tensor([2, 0, 2, 2])).cache
    assert copy.prefix.groups == 2 and copy.group.tolist() == [1, 0, 1, 1]
    torch.testing.assert_close(copy.prefix.values[0], full[[0, 2]], atol=0, rtol=0)


def test_a_copied_state_leaves_the_batch_state_alone():
    """`QAGenerator._decode` decodes from ``dataclasses.replace(batch.state)`` several times:
    each decode gives the same result, and the shared prompts are never written."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    step_model = UniLMStepModel(model)
    base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
    before = [k.clone() for k in base.cache.prefix.keys_t]
    config = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=6, eos_token_id=None)
    outs = []
    for _ in range(2):
        state = step_model.reorder(dataclasses.replace(base), torch.tensor([0, 2, 2]))
        outs.append(decode(PrefilledStepModel(step_model, state), ids[[0, 2, 2]], config))
    assert torch.equal(outs[0].sequences, outs[1].sequences)
    assert all(torch.equal(a, b) for a, b in zip(before, base.cache.prefix.keys_t))


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_decoding_matches_the_replicated_cache(strategy):
    """The same tokens as the lean step with every row's own prompt copy (fp32, tiny model),
    and logits within float tolerance."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    config = DecodingConfig(
        strategy=strategy, num_beams=4, max_new_tokens=10, eos_token_id=3, drop_finished=True
    )
    outs = [
        decode(
            UniLMStepModel(model, shared_prefix=s),
            ids,
            config,
            attention_mask=am,
            token_type_ids=tt,
        )
        for s in (False, True)
    ]
    assert torch.equal(outs[0].sequences, outs[1].sequences)
    torch.testing.assert_close(outs[0].scores, outs[1].scores, atol=ATOL, rtol=0)


def test_bf16_autocast():
    """Under bf16 autocast (the default on CPUs that compute bf16 natively) the shared cache
    attends in fp32: its logits are as close to the fp32 logits as the replicated cache's."""
    model = tiny_unilm_model()
    ids, am, tt = step_prompt()
    rows = torch.tensor([0, 0, 1, 2, 2, 2])
    prefix = torch.tensor([[11, 12, 3], [13, 3, 0], [14, 15, 3], [16, 3, 0], [17, 3, 0], [3, 0, 0]])
    pre_mask = (prefix != 0).long()

    def logits(shared: bool, bf16: bool) -> torch.Tensor:
        step_model = UniLMStepModel(model, shared_prefix=shared)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            base = step_model.start(ids, attention_mask=am, token_type_ids=tt)
            state = step_model.reorder(dataclasses.replace(base), rows)
            state = step_model.extend(state, prefix, pre_mask, pre_mask)
            seq = torch.cat([ids[rows], prefix], dim=1)
            out = [step_model.step(seq, state)[0]]
            for t in range(4):
                seq = torch.cat([seq, torch.full((6, 1), 20 + t)], dim=1)
                out.append(step_model.step(seq, state)[0])
        return torch.stack(out)

    reference = logits(shared=False, bf16=False)
    torch.testing.assert_close(logits(shared=True, bf16=False), reference, atol=ATOL, rtol=0)
    replicated = (logits(shared=False, bf16=True) - reference).abs().max()
    shared = (logits(shared=True, bf16=True) - reference).abs().max()
    assert shared <= 2 * replicated + 1e-3, (shared, replicated)
    assert shared < 0.1
