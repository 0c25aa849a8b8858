"""FirstTokensWithoutReplacement: the rows of a prompt start with distinct tokens, drawn without
replacement (Gumbel-top-k), nucleus first; later steps untouched."""

import pytest
import torch

from decoding import PROCESSORS, FirstTokensWithoutReplacement

PROBS = torch.tensor([0.5, 0.3, 0.2, 0.0, 0.0])


def _scores(rows: int) -> torch.Tensor:
    return PROBS.log().expand(rows, -1).clone()  # the rows of one prompt share the scores


def _chosen(out: torch.Tensor) -> list[int]:
    finite = torch.isfinite(out)
    assert (finite.sum(-1) == 1).all()  # one token left per row
    return finite.float().argmax(-1).tolist()


def test_rows_of_a_prompt_get_distinct_tokens():
    proc = FirstTokensWithoutReplacement(2, 3, generator=torch.Generator().manual_seed(0))
    out = proc(torch.zeros(6, 2, dtype=torch.long), torch.cat([_scores(3), _scores(3)]))
    first, second = _chosen(out)[:3], _chosen(out)[3:]
    assert sorted(first) == sorted(second) == [0, 1, 2]  # the only possible tokens
    proc4 = FirstTokensWithoutReplacement(2, 4, generator=torch.Generator().manual_seed(0))
    tokens = _chosen(proc4(torch.zeros(4, 2, dtype=torch.long), _scores(4)))
    assert set(tokens) == {0, 1, 2} and tokens[3] == tokens[0]  # 3 possible: they repeat in turn


def test_one_row_draws_from_the_distribution():
    """Gumbel-max with one row is exact sampling: frequencies approach the probabilities."""
    g = torch.Generator().manual_seed(1)
    proc = FirstTokensWithoutReplacement(1, 1, generator=g)
    counts = torch.zeros(5)
    for _ in range(3000):
        counts[_chosen(proc(torch.zeros(1, 1, dtype=torch.long), _scores(1)))[0]] += 1
    assert torch.allclose(counts / 3000, PROBS, atol=0.03)


def test_the_nucleus_comes_first():
    scores = torch.tensor([0.9, 0.05, 0.05]).log().expand(2, -1).clone()
    for seed in range(20):
        proc = FirstTokensWithoutReplacement(
            0, 2, top_p=0.5, generator=torch.Generator().manual_seed(seed)
        )
        tokens = _chosen(proc(torch.zeros(2, 0, dtype=torch.long), scores))
        assert 0 in tokens and len(set(tokens)) == 2  # token 0 is the nucleus; then one other
    top1 = FirstTokensWithoutReplacement(0, 2, top_k=1, generator=torch.Generator().manual_seed(0))
    assert 0 in _chosen(top1(torch.zeros(2, 0, dtype=torch.long), scores))


def test_later_steps_and_validation():
    proc = FirstTokensWithoutReplacement(2, 3)
    scores = _scores(3)
    assert proc(torch.zeros(3, 5, dtype=torch.long), scores) is scores
    with pytest.raises(ValueError, match="group_size"):
        FirstTokensWithoutReplacement(2, 0)
    with pytest.raises(ValueError, match="not a multiple"):
        proc(torch.zeros(4, 2, dtype=torch.long), _scores(4))
    assert PROCESSORS["first_tokens_without_replacement"] is FirstTokensWithoutReplacement
