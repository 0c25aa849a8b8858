"""Virtual adversarial training (Miyato et al.; Su's embedding-matrix recipe,
https://kexue.fm/archives/7466).

The perturbation direction maximises KL(p_clean || p(x + r)) to second order: the dominant
eigenvector of the Hessian, found by power iteration with finite differences
(u <- grad_d KL(p || p(x + xi * u/||u||))). Targets are detached (Su: numpy constants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .base import REGULARIZERS, Regularizer, StepContext
from .embedding import SCOPES, l2_normalize

__all__ = ["VAT", "kl_with_logits", "virtual_adversarial_perturbation"]


def kl_with_logits(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(target) || softmax(logits)) over the last dim, averaged over all other positions.

    ``target_logits`` is detached. Shapes: (..., C).
    """
    log_p = F.log_softmax(target_logits.detach().float().reshape(-1, target_logits.shape[-1]), -1)
    log_q = F.log_softmax(logits.float().reshape(-1, logits.shape[-1]), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def virtual_adversarial_perturbation(
    divergence: Callable[[torch.Tensor], torch.Tensor],
    like: torch.Tensor,
    epsilon: float,
    xi: float,
    iters: int,
    scope: str = "matrix",
) -> torch.Tensor:
    """Power iteration for the VAT direction, scaled to norm ``epsilon``.

    Args:
        divergence: d -> D(p_clean, p(x + d)), a scalar differentiable in d.
        like: tensor giving the shape/device of the perturbation.
        epsilon: final norm (global for ``"matrix"``, per example for ``"output"``).
        xi: finite-difference scale.
        iters: power iterations (0 = random Gaussian direction).
    """
    d = torch.randn(like.shape, device=like.device, dtype=torch.float32)
    for _ in range(iters):
        d = (xi * l2_normalize(d, scope)).requires_grad_(True)
        (d,) = torch.autograd.grad(divergence(d), d)
    return epsilon * l2_normalize(d.detach(), scope)


@REGULARIZERS.register("vat")
@dataclass
class VAT(Regularizer):
    """Adds alpha * KL(p_clean || p(x + r_adv)) with r_adv on the word embeddings.

    Uses the trainer's unlabelled batch when one is available (semi-supervised), else the current
    batch with its labels ignored. Needs a model whose outputs carry ``logits`` (..., C); for
    token-level logits the KL is averaged over every returned position, so models should return
    logits only where they matter (as the UniLM question generator does).

    Args:
        epsilon: perturbation norm (Su: 1).
        xi: finite-difference scale (Su: 10, since the whole matrix is one vector).
        iters: power iterations (Su: 1).
        alpha: weight of the VAT loss.
        scope: ``"matrix"`` (Su) or ``"output"`` (Miyato).
    """

    epsilon: float = 1.0
    xi: float = 10.0
    iters: int = 1
    alpha: float = 1.0
    scope: str = "matrix"
    requires = frozenset({"outputs"})
    uses_unlabeled = True

    def __post_init__(self) -> None:
        for name in ("epsilon", "xi", "alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.iters < 0:
            raise ValueError(f"iters must be >= 0, got {self.iters}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        self.last_perturbation: torch.Tensor | None = None

    def after_backward(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        inputs = ctx.unlabeled_inputs if ctx.unlabeled_inputs is not None else ctx.inputs
        if inputs is ctx.inputs and ctx.outputs is not None and "logits" in ctx.outputs:
            target = ctx.outputs["logits"].detach()
        else:
            with torch.no_grad():
                target = ctx.logits_fn(inputs)
        weight = ctx.embedding.weight
        if self.scope == "matrix":
            like = weight
        else:
            like = torch.empty(*inputs["input_ids"].shape, weight.shape[1], device=weight.device)

        def divergence(d: torch.Tensor) -> torch.Tensor:
            return kl_with_logits(target, ctx.logits_fn(inputs, **{self.scope: d}))

        r_adv = virtual_adversarial_perturbation(
            divergence, like, self.epsilon, self.xi, self.iters, self.scope
        )
        self.last_perturbation = r_adv
        loss = divergence(r_adv)
        ctx.backward(self.alpha * loss, batch_mean=True)
        return {"vat/loss": loss.detach()}

    @classmethod
    def from_args(cls, args: Any) -> VAT | None:
        if not args.vat_epsilon:
            return None
        return cls(
            epsilon=args.vat_epsilon,
            xi=args.vat_xi,
            iters=args.vat_iters,
            alpha=args.vat_alpha,
            scope=args.vat_scope,
        )
