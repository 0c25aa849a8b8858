"""Gaussian noise on the word-embedding output, and the noise <-> gradient-penalty identity.

For small sigma and MSE, E_eps ||f(x + eps) - f(x)||^2 ~= 1/2 sigma^2 * sum_i lambda_i ||grad f_i||^2
with lambda_i = 2 (docs/regularization.md, "Tests"). ``smoothness_monte_carlo`` and ``output_jacobian_sq_norm``
compute both sides; the tests check they agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .base import REGULARIZERS, Regularizer

__all__ = ["GaussianNoise", "smoothness_monte_carlo", "output_jacobian_sq_norm"]


def smoothness_monte_carlo(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: float, n_samples: int
) -> torch.Tensor:
    """Monte Carlo mean of ||f(x + eps) - f(x)||^2 over ``n_samples`` draws eps ~ N(0, sigma^2 I).

    Args:
        f: maps a (N, d) batch to (N, k) outputs.
        x: a single input of shape (d,).
    """
    with torch.no_grad():
        fx = f(x.unsqueeze(0))
        eps = sigma * torch.randn(n_samples, *x.shape, dtype=x.dtype)
        return ((f(x.unsqueeze(0) + eps) - fx) ** 2).sum(-1).mean()


def output_jacobian_sq_norm(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """Exact sum_i ||grad_x f_i(x)||^2 (the squared Frobenius norm of the Jacobian at x of shape (d,))."""
    jac = torch.autograd.functional.jacobian(lambda v: f(v.unsqueeze(0)).squeeze(0), x)
    return (jac**2).sum()


@REGULARIZERS.register("noise")
@dataclass
class GaussianNoise(Regularizer):
    """Adds sigma * N(0, I) to the word-embedding output in the training forward pass.

    Args:
        sigma: standard deviation of the noise (> 0).
    """

    sigma: float = 0.1

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def on_embedding_output(self, output: torch.Tensor) -> torch.Tensor:
        return output + self.sigma * torch.randn_like(output)

    @classmethod
    def from_args(cls, args: Any) -> GaussianNoise | None:
        return cls(sigma=args.noise_sigma) if args.noise_sigma else None
