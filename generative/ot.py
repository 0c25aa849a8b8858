"""Exact Wasserstein-1 distance between two equal-size mini-batches (docs/generative.md,
"Exact batch W1").

Between two uniform empirical measures with the same number of points, an optimal transport
plan can be taken to be a permutation (Birkhoff-von Neumann), so the exact W1 is an assignment
problem, solved here with the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`).
The ground cost is the Euclidean distance between flattened samples, the same metric the
c-transform critic uses, so the two numbers are comparable.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

__all__ = ["pairwise_l2", "batch_w1", "batch_w1_plan"]

ArrayLike = np.ndarray | torch.Tensor


def _as_2d_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch dimension, got a scalar")
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


def pairwise_l2(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Euclidean cost matrix between flattened samples.

    Args:
        x: (N, ...) batch. y: (M, ...) batch with the same per-sample size.

    Returns:
        (N, M) float64 array with entry [i, j] = ||x_i - y_j||_2.
    """
    a, b = _as_2d_numpy(x, "x"), _as_2d_numpy(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"x and y must have the same sample size, got {a.shape[1]} and {b.shape[1]}"
        )
    return cdist(a, b, metric="euclidean")


def batch_w1_plan(x: ArrayLike, y: ArrayLike) -> tuple[float, np.ndarray]:
    """Exact W1 and the optimal matching between two equal-size uniform batches.

    Args:
        x: (N, ...) batch. y: (N, ...) batch; samples are flattened.

    Returns:
        (w1, perm): w1 = (1/N) * sum_i ||x_i - y_perm[i]||, perm a length-N index array.
    """
    cost = pairwise_l2(x, y)
    n, m = cost.shape
    if n != m:
        raise ValueError(f"batch_w1 needs equal batch sizes, got {n} and {m}")
    if n == 0:
        raise ValueError("batch_w1 needs non-empty batches")
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(n, dtype=np.int64)
    perm[rows] = cols
    return float(cost[rows, cols].mean()), perm


def batch_w1(x: ArrayLike, y: ArrayLike) -> float:
    """Exact Wasserstein-1 distance between two equal-size uniform batches (Euclidean ground cost).

    Args:
        x: (N, ...) batch. y: (N, ...) batch; samples are flattened.

    Returns:
        The W1 distance as a Python float.
    """
    return batch_w1_plan(x, y)[0]
