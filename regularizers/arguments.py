"""``RegularizedTrainingArguments``: ``TrainingArguments`` plus the regularizer fields (0/None = off)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .base import REGULARIZERS, Regularizer

__all__ = ["RegularizedTrainingArguments", "from_training_args"]

logger = logging.getLogger(__name__)

_SCOPES = ("matrix", "output")


@dataclass
class RegularizedTrainingArguments(TrainingArguments):
    """Command-line options for every regularizer (``--fgm_epsilon 0.5 --vat_epsilon 1 ...``).

    Choosing ``clip_mode`` replaces the Trainer's own clipping: ``max_grad_norm`` is set to 0.
    """

    noise_sigma: float = field(
        default=0.0, metadata={"help": "Gaussian noise std on the word-embedding output (0 = off)."}
    )
    gp_epsilon: float = field(
        default=0.0,
        metadata={
            "help": "Embedding gradient penalty: loss += 1/2*eps*sum (dL/de)^2 (Su: 1; 0 = off)."
        },
    )
    rp_gp_epsilon: float = field(
        default=0.0, metadata={"help": "Random-projection logit-Jacobian penalty weight (0 = off)."}
    )
    fgm_epsilon: float = field(
        default=0.0, metadata={"help": "FGM perturbation norm (Su: 0.5; 0 = off)."}
    )
    fgm_scope: str = field(
        default="matrix",
        metadata={
            "help": "FGM scope: 'matrix' (whole embedding matrix, global norm; Su) or 'output' (per example)."
        },
    )
    pgd_epsilon: float = field(default=0.0, metadata={"help": "PGD L2-ball radius (0 = off)."})
    pgd_alpha: float = field(default=0.3, metadata={"help": "PGD step size."})
    pgd_steps: int = field(default=3, metadata={"help": "PGD ascent steps."})
    pgd_scope: str = field(default="matrix", metadata={"help": "PGD scope: 'matrix' or 'output'."})
    vat_epsilon: float = field(
        default=0.0, metadata={"help": "VAT perturbation norm (Su: 1; 0 = off)."}
    )
    vat_xi: float = field(
        default=10.0,
        metadata={"help": "VAT finite-difference scale xi (Su: 10 with scope 'matrix')."},
    )
    vat_iters: int = field(default=1, metadata={"help": "VAT power iterations (Su: 1)."})
    vat_alpha: float = field(default=1.0, metadata={"help": "Weight of the VAT loss."})
    vat_scope: str = field(default="matrix", metadata={"help": "VAT scope: 'matrix' or 'output'."})
    weissi_lambda1: float = field(
        default=0.0, metadata={"help": "WEISSI weight of sum log||W|| (0 = off)."}
    )
    weissi_lambda2: float = field(
        default=0.0, metadata={"help": "WEISSI weight of sum ||W/||W|| ||_1 (0 = off)."}
    )
    weissi_mode: str = field(
        default="loss",
        metadata={"help": "WEISSI as a 'loss' term or 'decoupled' after the optimizer step."},
    )
    clip_mode: str | None = field(
        default=None,
        metadata={
            "help": "Global-norm gradient clipping 'hard' or 'soft' (None = Trainer's max_grad_norm)."
        },
    )
    clip_gamma: float = field(default=1.0, metadata={"help": "Clipping threshold gamma."})

    def __post_init__(self) -> None:
        for name in (
            "noise_sigma",
            "gp_epsilon",
            "rp_gp_epsilon",
            "fgm_epsilon",
            "pgd_epsilon",
            "vat_epsilon",
            "weissi_lambda1",
            "weissi_lambda2",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("pgd_alpha", "vat_xi", "vat_alpha", "clip_gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.pgd_steps < 1:
            raise ValueError(f"pgd_steps must be >= 1, got {self.pgd_steps}")
        if self.vat_iters < 0:
            raise ValueError(f"vat_iters must be >= 0, got {self.vat_iters}")
        for name in ("fgm_scope", "pgd_scope", "vat_scope"):
            if getattr(self, name) not in _SCOPES:
                raise ValueError(f"{name} must be one of {_SCOPES}, got {getattr(self, name)!r}")
        if self.weissi_mode not in ("loss", "decoupled"):
            raise ValueError(f"weissi_mode must be 'loss' or 'decoupled', got {self.weissi_mode!r}")
        if self.clip_mode not in (None, "hard", "soft"):
            raise ValueError(f"clip_mode must be None, 'hard' or 'soft', got {self.clip_mode!r}")
        if self.clip_mode is not None and self.max_grad_norm:
            logger.info(
                "clip_mode=%s replaces the Trainer's clipping: max_grad_norm %s -> 0",
                self.clip_mode,
                self.max_grad_norm,
            )
            self.max_grad_norm = 0.0
        super().__post_init__()


def from_training_args(args: RegularizedTrainingArguments) -> list[Regularizer]:
    """The regularizers switched on in ``args``, one per registered kind, in registry-name order."""
    regs = (REGULARIZERS[name].from_args(args) for name in REGULARIZERS.names())
    return [r for r in regs if r is not None]
