"""Adversarial training on the word embeddings: FGM (one step) and PGD (projected steps).

``scope="matrix"`` is Su's recipe (https://kexue.fm/archives/7234,
``task_iflytek_adversarial_training.py``): the perturbation lives on the whole (V, D) embedding
matrix, normalised by one global norm, so a token gets the same perturbation wherever it occurs.
``scope="output"`` perturbs the (B, T, D) word-embedding output per example (Miyato et al.). Both
are applied as an additive forward hook, so the embedding weights are never modified (nothing to
restore).

The adversarial loss is back-propagated *in addition to* the clean loss (objective L + L_adv, the
usual PyTorch FGM); Su's Keras code steps on L_adv alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import REGULARIZERS, Regularizer, StepContext
from .embedding import SCOPES, l2_normalize

__all__ = ["FGM", "PGD", "fgm_perturbation", "project_l2_ball"]


def fgm_perturbation(grad: torch.Tensor, epsilon: float, scope: str = "matrix") -> torch.Tensor:
    """delta = epsilon * g / ||g|| (global norm for ``"matrix"``, per example for ``"output"``)."""
    return epsilon * l2_normalize(grad.float(), scope)


def project_l2_ball(delta: torch.Tensor, epsilon: float, scope: str = "matrix") -> torch.Tensor:
    """Project onto {||delta|| <= epsilon} (global or per-example norm)."""
    if scope == "matrix":
        norm = delta.norm()
        return delta * (epsilon / norm) if norm > epsilon else delta
    norm = delta.flatten(1).norm(dim=1).view(-1, *([1] * (delta.dim() - 1)))
    return delta * torch.clamp(epsilon / (norm + 1e-12), max=1.0)


def _perturbation_norm(delta: torch.Tensor, scope: str) -> float:
    if scope == "matrix":
        return float(delta.norm())
    return float(delta.flatten(1).norm(dim=1).max())


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _clean_grad_requirement(scope: str) -> frozenset[str]:
    """What the trainer must collect in the main pass so `_clean_grad` can read it."""
    return frozenset({"matrix_grad" if scope == "matrix" else "output_grad"})


def _clean_grad(ctx: StepContext, scope: str) -> torch.Tensor | None:
    leaf = ctx.matrix_leaf if scope == "matrix" else ctx.output_leaf
    grad = None if leaf is None else leaf.grad
    if grad is None or not torch.isfinite(grad).all():
        return None  # e.g. an fp16 overflow step the scaler will skip anyway
    return grad


@REGULARIZERS.register("fgm")
@dataclass
class FGM(Regularizer):
    """Fast gradient method: delta = epsilon * g/||g||, then back-propagate L(x + delta).

    Args:
        epsilon: perturbation norm (Su: 0.5 on IFLYTEK; default 1.0).
        scope: ``"matrix"`` or ``"output"``.
    """

    epsilon: float = 1.0
    scope: str = "matrix"

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")
        _check_scope(self.scope)
        self.last_perturbation_norm: float | None = None

    @property
    def requires(self) -> frozenset[str]:
        return _clean_grad_requirement(self.scope)

    def after_backward(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        grad = _clean_grad(ctx, self.scope)
        if grad is None:
            return {}
        delta = fgm_perturbation(grad, self.epsilon, self.scope)
        self.last_perturbation_norm = _perturbation_norm(delta, self.scope)
        loss, _ = ctx.loss_fn(ctx.inputs, **{self.scope: delta})
        ctx.backward(loss)
        return {"adv/loss": loss.detach()}

    @classmethod
    def from_args(cls, args: Any) -> FGM | None:
        return cls(epsilon=args.fgm_epsilon, scope=args.fgm_scope) if args.fgm_epsilon else None


@REGULARIZERS.register("pgd")
@dataclass
class PGD(Regularizer):
    """Projected gradient descent: ``steps`` ascent steps of size alpha in the epsilon-ball.

    Intermediate gradients are taken w.r.t. the perturbation only (``torch.autograd.grad``), so
    only the final adversarial loss adds to the parameter gradients.

    Args:
        epsilon: radius of the L2 ball.
        alpha: step size of each normalised ascent step.
        steps: number of ascent steps (>= 1; ``steps=1, alpha=epsilon`` is FGM).
        scope: ``"matrix"`` or ``"output"``.
    """

    epsilon: float = 1.0
    alpha: float = 0.3
    steps: int = 3
    scope: str = "matrix"

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        _check_scope(self.scope)
        self.perturbation_norms: list[float] = []

    @property
    def requires(self) -> frozenset[str]:
        return _clean_grad_requirement(self.scope)

    def after_backward(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        grad = _clean_grad(ctx, self.scope)
        if grad is None:
            return {}
        delta = torch.zeros_like(grad, dtype=torch.float32)
        self.perturbation_norms = []
        for k in range(self.steps):
            delta = project_l2_ball(
                delta + self.alpha * l2_normalize(grad.float(), self.scope),
                self.epsilon,
                self.scope,
            )
            self.perturbation_norms.append(_perturbation_norm(delta, self.scope))
            if k == self.steps - 1:
                break
            leaf = delta.detach().requires_grad_(True)
            loss, _ = ctx.loss_fn(ctx.inputs, **{self.scope: leaf})
            (grad,) = torch.autograd.grad(loss, leaf)
        loss, _ = ctx.loss_fn(ctx.inputs, **{self.scope: delta.detach()})
        ctx.backward(loss)
        return {"adv/loss": loss.detach()}

    @classmethod
    def from_args(cls, args: Any) -> PGD | None:
        if not args.pgd_epsilon:
            return None
        return cls(
            epsilon=args.pgd_epsilon,
            alpha=args.pgd_alpha,
            steps=args.pgd_steps,
            scope=args.pgd_scope,
        )
