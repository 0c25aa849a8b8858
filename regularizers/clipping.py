"""Gradient clipping by the global norm: hard min(1, g/||g||) and soft gamma/(||g|| + gamma)
(https://kexue.fm/archives/7469).

Both bound the update norm by lr * gamma and sandwich each other:
1/2 * min(1, gamma/||g||) <= gamma/(||g|| + gamma) <= min(1, gamma/||g||).
Soft clipping with lr = 1/L0 and gamma = L0/L1 is the optimal step under (L0, L1)-smoothness.
In the trainer, clipping runs as an optimizer step pre-hook on the torch optimizer (after
accelerate's GradScaler has unscaled the gradients), and the Trainer's own ``max_grad_norm``
clipping is switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .base import REGULARIZERS, Regularizer

__all__ = ["GradientClipping", "clip_coefficient", "clip_hard_", "clip_soft_", "global_grad_norm"]

MODES = ("hard", "soft")


def global_grad_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all gradients together (not per tensor)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    )


def clip_coefficient(norm: torch.Tensor | float, gamma: float, mode: str) -> torch.Tensor:
    """hard: min(1, gamma/(norm + 1e-6)) (as torch.clip_grad_norm_); soft: gamma/(norm + gamma)."""
    norm = torch.as_tensor(norm, dtype=torch.float32)
    if mode == "hard":
        return torch.clamp(gamma / (norm + 1e-6), max=1.0)
    if mode == "soft":
        return gamma / (norm + gamma)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


@torch.no_grad()
def _clip_(parameters: Iterable[torch.Tensor], gamma: float, mode: str) -> torch.Tensor:
    parameters = [p for p in parameters if p.grad is not None]
    norm = global_grad_norm(parameters)
    coef = clip_coefficient(norm, gamma, mode)
    for p in parameters:
        p.grad.mul_(coef.to(p.grad.device, p.grad.dtype))
    return norm


def clip_hard_(parameters: Iterable[torch.Tensor], gamma: float) -> torch.Tensor:
    """Scale gradients in place by min(1, gamma/||g||); returns the pre-clip global norm."""
    return _clip_(parameters, gamma, "hard")


def clip_soft_(parameters: Iterable[torch.Tensor], gamma: float) -> torch.Tensor:
    """Scale gradients in place by gamma/(||g|| + gamma); returns the pre-clip global norm."""
    return _clip_(parameters, gamma, "soft")


@REGULARIZERS.register("clip")
@dataclass
class GradientClipping(Regularizer):
    """Clip the accumulated gradients right before every optimizer step.

    Args:
        mode: ``"hard"`` or ``"soft"``.
        gamma: threshold (> 0).
    """

    mode: str = "soft"
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")

    def attach(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        record: Callable[[dict[str, torch.Tensor]], None],
    ) -> list[Any]:
        def pre_hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            params = [p for group in opt.param_groups for p in group["params"]]
            norm = _clip_(params, self.gamma, self.mode)
            record(
                {"grad/norm": norm, "grad/clip_coef": clip_coefficient(norm, self.gamma, self.mode)}
            )

        return [optimizer.register_step_pre_hook(pre_hook)]

    @classmethod
    def from_args(cls, args: Any) -> GradientClipping | None:
        return cls(mode=args.clip_mode, gamma=args.clip_gamma) if args.clip_mode else None
