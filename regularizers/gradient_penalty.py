"""Gradient penalties: Su's embedding gradient penalty and the random-projection output penalty.

- Embedding GP (https://kexue.fm/archives/7234, ``task_iflytek_gradient_penalty.py``):
  total = L + 1/2 * eps * gp with gp = sum over every token occurrence of ||dL/de||^2, e the
  word-embedding *lookup output* (before position/segment embeddings are added) and L the
  *batch-mean* loss. Double backprop.
- Random projection (https://kexue.fm/archives/7466, 2D):
  sum_i ||grad_x f_i||^2 = E_eta ||grad_x sum_i eta_i f_i||^2 with Rademacher eta, so one backward
  pass per sample instead of one per output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import REGULARIZERS, Regularizer, StepContext

__all__ = [
    "embedding_gradient_penalty",
    "random_projection_penalty",
    "EmbeddingGradientPenalty",
    "RandomProjectionGradientPenalty",
]


def embedding_gradient_penalty(
    loss: torch.Tensor, embeddings_output: torch.Tensor, create_graph: bool = True
) -> torch.Tensor:
    """sum((dL/de)^2) for the word-embedding output ``e`` (B, T, D); differentiable when ``create_graph``."""
    (grad,) = torch.autograd.grad(loss, embeddings_output, create_graph=create_graph)
    return (grad**2).sum()


def random_projection_penalty(
    outputs: torch.Tensor,
    inputs: torch.Tensor,
    eta: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    create_graph: bool = True,
    retain_graph: bool | None = None,
) -> torch.Tensor:
    """One-sample estimate of sum_b sum_i lambda_i ||grad_{x_b} f_i(x_b)||^2.

    Args:
        outputs: f(x), any shape whose leading dimension indexes independent examples.
        inputs: x, with ``outputs`` computed from it; gradients per example land in their own rows.
        eta: projection, same shape as ``outputs``; Rademacher (+-1) when ``None``.
        weights: lambda_i (e.g. 2 for MSE, 1/p_i for KL), broadcast to ``outputs``; used as
            sqrt(lambda) * eta and detached.
        create_graph: keep the result differentiable (for training on it).
        retain_graph: keep the graph of ``outputs`` for further calls (default: ``create_graph``).
    """
    if eta is None:
        eta = torch.randint(0, 2, outputs.shape, device=outputs.device).to(outputs.dtype) * 2 - 1
    if weights is not None:
        eta = eta * weights.detach().sqrt()
    (grad,) = torch.autograd.grad(
        (eta * outputs).sum(), inputs, create_graph=create_graph, retain_graph=retain_graph
    )
    return (grad**2).sum()


@REGULARIZERS.register("gp")
@dataclass
class EmbeddingGradientPenalty(Regularizer):
    """Su's gradient penalty on the word-embedding output: adds 1/2 * epsilon * sum (dL/de)^2.

    Args:
        epsilon: penalty scale (Su's default 1.0); the loss gains 1/2 * epsilon * gp.
    """

    epsilon: float = 1.0
    requires = frozenset({"output_grad", "double_backprop"})

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")

    def loss_term(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        gp = embedding_gradient_penalty(ctx.loss, ctx.output_leaf)
        return {"reg/gp": 0.5 * self.epsilon * gp}

    @classmethod
    def from_args(cls, args: Any) -> EmbeddingGradientPenalty | None:
        return cls(epsilon=args.gp_epsilon) if args.gp_epsilon else None


@REGULARIZERS.register("rp_gp")
@dataclass
class RandomProjectionGradientPenalty(Regularizer):
    """Output-gradient penalty epsilon * mean_b ||d(sum_i eta_i logit_i)/de_b||^2 with Rademacher eta.

    Penalises the (squared Frobenius) Jacobian of the logits w.r.t. the word-embedding output, the
    gradient-penalty form of embedding noise with MSE on logits (sigma^2 = epsilon). Needs a model
    whose outputs carry ``logits``.

    Args:
        epsilon: penalty weight.
    """

    epsilon: float = 0.01
    requires = frozenset({"output_grad", "outputs", "double_backprop"})

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")

    def loss_term(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        logits = ctx.outputs["logits"]
        pen = random_projection_penalty(logits.float(), ctx.output_leaf)
        return {"reg/rp_gp": self.epsilon * pen / ctx.output_leaf.shape[0]}

    @classmethod
    def from_args(cls, args: Any) -> RandomProjectionGradientPenalty | None:
        return cls(epsilon=args.rp_gp_epsilon) if args.rp_gp_epsilon else None
