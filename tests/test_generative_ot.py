"""Exact batch W1: brute force over permutations and closed forms."""

import itertools

import numpy as np
import pytest
import torch

from generative.ot import batch_w1, batch_w1_plan, pairwise_l2


def _brute_force_w1(x: np.ndarray, y: np.ndarray) -> float:
    cost = pairwise_l2(x, y)
    n = len(x)
    return min(cost[np.arange(n), list(p)].mean() for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n,dim", [(2, 1), (4, 2), (6, 3)])
def test_matches_brute_force(seed, n, dim):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    assert batch_w1(x, y) == pytest.approx(_brute_force_w1(x, y), abs=1e-12)


@pytest.mark.parametrize("shift", [(3.0, 0.0), (1.0, -2.0), (0.1, 0.1)])
def test_shifted_point_set_costs_the_shift_norm(shift):
    # identity coupling gives ||s||, the 1-Lipschitz f(x) = <x, s>/||s|| gives >= ||s||
    x = np.random.default_rng(0).normal(size=(50, 2))
    assert batch_w1(x, x + np.array(shift)) == pytest.approx(np.linalg.norm(shift), rel=1e-9)


def test_one_dimensional_closed_form_is_sorted_matching():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=40), rng.exponential(size=40)
    expected = np.abs(np.sort(x) - np.sort(y)).mean()
    assert batch_w1(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-9)


def test_permuted_copy_is_zero_and_plan_inverts_permutation():
    x = torch.randn(30, 4, 4)  # images are flattened
    perm = torch.randperm(30)
    w, plan = batch_w1_plan(x, x[perm])
    assert w == pytest.approx(0.0, abs=1e-9)
    assert torch.equal(perm[torch.as_tensor(plan)], torch.arange(30))


def test_symmetric_and_triangle_inequality():
    rng = np.random.default_rng(2)
    a, b, c = (rng.normal(size=(20, 3)) for _ in range(3))
    assert batch_w1(a, b) == pytest.approx(batch_w1(b, a))
    assert batch_w1(a, c) <= batch_w1(a, b) + batch_w1(b, c) + 1e-12


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), "equal batch sizes"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "same sample size"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "non-empty"),
    ],
)
def test_rejects_bad_shapes(x, y, match):
    with pytest.raises(ValueError, match=match):
        batch_w1(x, y)
