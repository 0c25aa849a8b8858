"""WEISSI: a weight-scale-shift-invariant regulariser (Liu, Cui & Chan 2020; Su,
https://kexue.fm/archives/7681).

R = lambda1 * sum_l log ||W_l|| + lambda2 * sum_l || W_l / ||W_l|| ||_1, ||.|| the Frobenius norm.
The log term is invariant when one ReLU layer is scaled by c and the next by 1/c (L2 is not);
its gradient lambda1 * W/||W||^2 is weight decay with a per-layer, scale-adaptive coefficient.
By default the weights of Linear/Conv layers are regularised; biases, norm gains and embeddings
are not (the source is silent; a design choice). With LayerNorm/BatchNorm between layers the
invariance structure differs (each layer is scale invariant on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .base import REGULARIZERS, Regularizer, StepContext

__all__ = ["WEISSI", "weissi_penalty", "default_weissi_parameters", "weissi_decoupled_step_"]

MODES = ("loss", "decoupled")
_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def default_weissi_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of Linear/Conv layers (and HF ``Conv1D``) that require grad."""
    params = []
    for module in model.modules():
        if isinstance(module, _LAYER_TYPES) or type(module).__name__ == "Conv1D":
            if module.weight.requires_grad:
                params.append(module.weight)
    return params


def weissi_penalty(
    model: nn.Module | None,
    lambda1: float,
    lambda2: float,
    params: Iterable[torch.Tensor] | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """lambda1 * sum log||W|| + lambda2 * sum ||W/||W|| ||_1 over ``params`` (default: see module doc).

    ``eps`` guards the log and the division as ||W|| -> 0 (the log term is unbounded below).
    """
    params = list(params) if params is not None else default_weissi_parameters(model)
    if not params:
        raise ValueError("weissi_penalty: no parameters to regularise")
    total = params[0].new_zeros((), dtype=torch.float32)
    for w in params:
        norm = w.float().norm().clamp_min(eps)
        total = total + lambda1 * norm.log() + lambda2 * (w.float() / norm).abs().sum()
    return total


@torch.no_grad()
def weissi_decoupled_step_(
    params: Iterable[torch.Tensor], lr: float, lambda1: float, lambda2: float
) -> None:
    """AdamW-style decoupled update W <- W - lr * grad R(W), outside the optimizer's preconditioner."""
    for w in params:
        with torch.enable_grad():
            leaf = w.detach().float().requires_grad_(True)
            (grad,) = torch.autograd.grad(weissi_penalty(None, lambda1, lambda2, [leaf]), leaf)
        w.sub_((lr * grad).to(w.dtype))


@REGULARIZERS.register("weissi")
@dataclass
class WEISSI(Regularizer):
    """WEISSI as a loss term (``mode="loss"``) or decoupled after each optimizer step.

    Args:
        lambda1: weight of sum log||W||.
        lambda2: weight of sum ||W/||W|| ||_1.
        mode: ``"loss"`` or ``"decoupled"``.
        params: tensors to regularise; default Linear/Conv weights of the model.
    """

    lambda1: float = 1e-3
    lambda2: float = 0.0
    mode: str = "loss"
    params: list[torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.lambda1 < 0 or self.lambda2 < 0 or self.lambda1 + self.lambda2 == 0:
            raise ValueError(
                f"lambda1, lambda2 must be >= 0 and not both 0, got {self.lambda1}, {self.lambda2}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def _params(self, model: nn.Module) -> list[torch.Tensor]:
        if self.params is None:
            self.params = default_weissi_parameters(model)
        return self.params

    def loss_term(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        if self.mode != "loss":
            return {}
        return {
            "reg/weissi": weissi_penalty(None, self.lambda1, self.lambda2, self._params(ctx.model))
        }

    def attach(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        record: Callable[[dict[str, torch.Tensor]], None],
    ) -> list[Any]:
        if self.mode != "decoupled":
            return []
        chosen = {id(p) for p in self._params(model)}

        def post_hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            for group in opt.param_groups:
                params = [p for p in group["params"] if id(p) in chosen]
                weissi_decoupled_step_(params, group["lr"], self.lambda1, self.lambda2)
            record(
                {
                    "reg/weissi": weissi_penalty(
                        None, self.lambda1, self.lambda2, self.params
                    ).detach()
                }
            )

        return [optimizer.register_step_post_hook(post_hook)]

    @classmethod
    def from_args(cls, args: Any) -> WEISSI | None:
        if not (args.weissi_lambda1 or args.weissi_lambda2):
            return None
        return cls(lambda1=args.weissi_lambda1, lambda2=args.weissi_lambda2, mode=args.weissi_mode)
