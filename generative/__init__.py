"""Generative models as HF models and trainers: a VAE, WGANs with five critic objectives, and
the exact batch Wasserstein-1 distance used to check what the critics estimate
(docs/generative.md). Critic objectives and toy distributions are looked up by name in the
registries ``WGAN_OBJECTIVES`` and ``TOY_DISTRIBUTIONS`` (`decoding.registry.Registry`).

`generative.xiangqi` (the Chinese-chess GPT) is a separate subpackage and is not imported here.
"""

from .data import (
    TOY_DISTRIBUTIONS,
    ToySpec,
    dataset_array,
    load_digits_dataset,
    sample_toy,
    toy_dataset,
    toy_spec,
)
from .ot import batch_w1, batch_w1_plan, pairwise_l2
from .vae import (
    VAEConfig,
    VAEModel,
    VAEOutput,
    VAETrainer,
    VAETrainingArguments,
    gaussian_kl,
    naive_regularizer,
    reconstruction_loss,
)
from .wgan import WGANConfig, WGANModel
from .wgan_losses import (
    WGAN_OBJECTIVES,
    WGANObjective,
    build_objective,
    ctransform_estimate,
    gradient_penalty,
)
from .wgan_trainer import WGANTrainer, WGANTrainingArguments

__all__ = [
    "TOY_DISTRIBUTIONS",
    "ToySpec",
    "dataset_array",
    "load_digits_dataset",
    "sample_toy",
    "toy_dataset",
    "toy_spec",
    "batch_w1",
    "batch_w1_plan",
    "pairwise_l2",
    "VAEConfig",
    "VAEModel",
    "VAEOutput",
    "VAETrainer",
    "VAETrainingArguments",
    "gaussian_kl",
    "naive_regularizer",
    "reconstruction_loss",
    "WGANConfig",
    "WGANModel",
    "WGAN_OBJECTIVES",
    "WGANObjective",
    "build_objective",
    "ctransform_estimate",
    "gradient_penalty",
    "WGANTrainer",
    "WGANTrainingArguments",
]
