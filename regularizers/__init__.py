"""Regularizers for fine-tuning HF models: noise, gradient penalties, FGM/PGD, VAT, WEISSI, clipping.

Each regularizer is a small object with one interface (``base.Regularizer``) registered by name
in ``REGULARIZERS``; ``RegularizedTrainer`` runs a list of them inside ``transformers.Trainer``,
and ``RegularizedTrainingArguments`` exposes them on the command line. docs/regularization.md
explains each method and where it departs from Su's code.

``callbacks`` holds the training utilities that the packages which train models (`qgen`,
`generative`) share: ``TimeBudgetCallback`` (a wall-clock budget) and ``has_accelerator``.
This package imports none of `qgen` and `generative`, and of `decoding` only
`decoding.registry` (the `Registry` type behind ``REGULARIZERS``).
"""

from .adversarial import FGM, PGD, fgm_perturbation, project_l2_ball
from .arguments import RegularizedTrainingArguments, from_training_args
from .base import REGULARIZERS, Regularizer, StepContext, build_regularizer
from .callbacks import TimeBudgetCallback, has_accelerator
from .clipping import GradientClipping, clip_coefficient, clip_hard_, clip_soft_, global_grad_norm
from .embedding import EmbeddingTap, l2_normalize
from .gradient_penalty import (
    EmbeddingGradientPenalty,
    RandomProjectionGradientPenalty,
    embedding_gradient_penalty,
    random_projection_penalty,
)
from .noise import GaussianNoise, output_jacobian_sq_norm, smoothness_monte_carlo
from .trainer import RegularizedTrainer
from .vat import VAT, kl_with_logits, virtual_adversarial_perturbation
from .weissi import WEISSI, default_weissi_parameters, weissi_decoupled_step_, weissi_penalty

__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "StepContext",
    "build_regularizer",
    "EmbeddingTap",
    "l2_normalize",
    "GaussianNoise",
    "smoothness_monte_carlo",
    "output_jacobian_sq_norm",
    "EmbeddingGradientPenalty",
    "RandomProjectionGradientPenalty",
    "embedding_gradient_penalty",
    "random_projection_penalty",
    "FGM",
    "PGD",
    "fgm_perturbation",
    "project_l2_ball",
    "VAT",
    "kl_with_logits",
    "virtual_adversarial_perturbation",
    "WEISSI",
    "weissi_penalty",
    "weissi_decoupled_step_",
    "default_weissi_parameters",
    "GradientClipping",
    "clip_coefficient",
    "clip_hard_",
    "clip_soft_",
    "global_grad_norm",
    "RegularizedTrainingArguments",
    "RegularizedTrainer",
    "from_training_args",
    "TimeBudgetCallback",
    "has_accelerator",
]
