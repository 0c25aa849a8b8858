"""WGAN critic objectives (docs/generative.md, "The WGAN and how it uses `Trainer`"), each a
small class in the ``WGAN_OBJECTIVES`` registry.

An objective gives the critic loss (to minimise), the generator loss, the critic's estimate of
W1 (what the critic "believes" the distance is), and an optional hook run after each critic
optimiser step (weight clipping). Objectives:

- "clip": original WGAN, weights clamped to [-c, c] after every critic step;
- "gp": WGAN-GP, lambda * E(||grad D(x_hat)|| - 1)^2 at random interpolates;
- "gp0": zero-centred penalty, lambda * E ||grad D(x_hat)||^2;
- "lp": one-sided Lipschitz penalty (Petzka et al. 2018), lambda * E max(0, ||grad|| - 1)^2;
- "sn": no penalty; the critic must be built with spectral normalisation;
- "ctransform": Mallasto et al.'s estimator
  W_hat = mean_i phi(x_i) + mean_j min_i [ ||x_i - y_j|| - phi(x_i) ].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from decoding.registry import Registry

__all__ = [
    "WGANObjective",
    "WeightClipping",
    "GradientPenalty",
    "SpectralNormObjective",
    "CTransform",
    "WGAN_OBJECTIVES",
    "build_objective",
    "gradient_penalty",
    "ctransform_estimate",
]

Critic = Callable[[torch.Tensor], torch.Tensor]  # (B, D) -> (B,) or (B, 1)


def _scores(critic: Critic, x: torch.Tensor) -> torch.Tensor:
    return critic(x).reshape(-1)


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    center: float = 1.0,
    one_sided: bool = False,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of (||grad D(x_hat)|| - center)^2 at x_hat = eps * real + (1 - eps) * fake.

    Args:
        critic: maps (B, D) to scores.
        real, fake: (B, D) batches.
        center: 1.0 (WGAN-GP) or 0.0 (zero-centred).
        one_sided: penalise only norms above `center` (the Lipschitz penalty).
        eps: (B,) interpolation weights; default U[0, 1] per sample.
    """
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    eps = eps.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    # create_graph=True so the penalty's own gradient reaches the critic's weights
    (grad,) = torch.autograd.grad(_scores(critic, x_hat).sum(), x_hat, create_graph=True)
    excess = grad.flatten(1).norm(dim=1) - center
    if one_sided:
        excess = excess.clamp(min=0)
    return excess.pow(2).mean()


def ctransform_estimate(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """W_hat = mean_i phi(x_i) + mean_j min_i [||x_i - y_j||_2 - phi(x_i)] (Mallasto et al.).

    The min over i is non-smooth: the gradient flows only through each fake's argmin real.
    """
    phi = _scores(critic, real)  # (N,)
    cost = torch.cdist(fake.flatten(1), real.flatten(1))  # (M, N)
    return phi.mean() + (cost - phi.unsqueeze(0)).min(dim=1).values.mean()


class WGANObjective:
    """Base: the Kantorovich-Rubinstein objective E_p D(x) - E_q D(G(z)) without a penalty."""

    name = "base"
    requires_spectral_norm = False

    def estimate(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The critic's estimate of W1 between the batches."""
        return _scores(critic, real).mean() - _scores(critic, fake).mean()

    def penalty(self, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return real.new_zeros(())

    def critic_loss(
        self, critic: Critic, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss the critic minimises, and stats: w_estimate, penalty."""
        w = self.estimate(critic, real, fake)
        pen = self.penalty(critic, real, fake)
        return -w + pen, {"w_estimate": w.item(), "penalty": pen.item()}

    def generator_loss(
        self, critic: Critic, real: torch.Tensor, fake: torch.Tensor
    ) -> torch.Tensor:
        """Loss the generator minimises (only terms that depend on `fake` matter)."""
        return -_scores(critic, fake).mean()

    def after_critic_step(self, critic: nn.Module) -> None:
        """Hook run after every critic optimiser step (and once before training)."""


def _set_name(name: str, cls: type[WGANObjective]) -> None:
    cls.name = name


# name -> objective class: ``@WGAN_OBJECTIVES.register("gp")`` on the class (duplicates raise;
# the class's ``name`` becomes "gp")
WGAN_OBJECTIVES: Registry[type[WGANObjective]] = Registry("WGAN objective", on_register=_set_name)


@WGAN_OBJECTIVES.register("clip")
class WeightClipping(WGANObjective):
    """Original WGAN: clamp every critic parameter to [-clip_value, clip_value]."""

    def __init__(self, clip_value: float = 0.01, **_):
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        self.clip_value = clip_value

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        for p in critic.parameters():
            p.clamp_(-self.clip_value, self.clip_value)


class GradientPenalty(WGANObjective):
    """lambda * E(||grad D(x_hat)|| - center)^2, optionally one-sided."""

    center = 1.0
    one_sided = False

    def __init__(self, penalty_weight: float = 10.0, **_):
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        self.penalty_weight = penalty_weight

    def penalty(self, critic, real, fake):
        gp = gradient_penalty(critic, real, fake, center=self.center, one_sided=self.one_sided)
        return self.penalty_weight * gp


@WGAN_OBJECTIVES.register("gp")
class CenteredGradientPenalty(GradientPenalty):
    center = 1.0


@WGAN_OBJECTIVES.register("gp0")
class ZeroCenteredGradientPenalty(GradientPenalty):
    center = 0.0


@WGAN_OBJECTIVES.register("lp")
class LipschitzPenalty(GradientPenalty):
    center = 1.0
    one_sided = True


@WGAN_OBJECTIVES.register("sn")
class SpectralNormObjective(WGANObjective):
    """No penalty: the Lipschitz bound comes from spectral normalisation of the critic."""

    requires_spectral_norm = True

    def __init__(self, **_):
        pass


@WGAN_OBJECTIVES.register("ctransform")
class CTransform(WGANObjective):
    """c-transform WGAN: the critic maximises W_hat, the generator minimises it."""

    def __init__(self, **_):
        pass

    def estimate(self, critic, real, fake):
        return ctransform_estimate(critic, real, fake)

    def generator_loss(self, critic, real, fake):
        return ctransform_estimate(critic, real.detach(), fake)


def build_objective(name: str, **kwargs) -> WGANObjective:
    """Instantiate an objective by name (kwargs: clip_value, penalty_weight); an unknown name
    raises a ValueError listing the known ones."""
    return WGAN_OBJECTIVES[name](**kwargs)
