"""Generative models as HF models and trainers: a VAE, WGANs with five critic objectives, and
the exact batch Wasserstein-1 distance used to check what the critics estimate
(docs/generative.md). Critic objectives and toy distributions are looked up by name in the
registries ``WGAN_OBJECTIVES`` and ``TOY_DISTRIBUTIONS`` (`decoding.registry.Registry`).

The names below load on first use (PEP 562 ``__getattr__``): ``import generative`` imports
nothing else, so that ``python -m generative.xiangqi uci`` (which runs this file first) does not
wait for torch, transformers and datasets. ``from generative import VAEModel`` works as before;
`VAEConfig` / `WGANConfig` join the transformers Auto classes when their module is imported
(any name of it, or ``import generative.vae`` / ``generative.wgan``).

`generative.xiangqi` (the Chinese-chess GPT) is a separate subpackage and is not imported here.
"""

from __future__ import annotations

import importlib

# public name -> the submodule that defines it
_EXPORTS = {
    "data": (
        "TOY_DISTRIBUTIONS",
        "ToySpec",
        "dataset_array",
        "load_digits_dataset",
        "sample_toy",
        "toy_dataset",
        "toy_spec",
    ),
    "ot": ("batch_w1", "batch_w1_plan", "pairwise_l2"),
    "vae": (
        "VAEConfig",
        "VAEModel",
        "VAEOutput",
        "VAETrainer",
        "VAETrainingArguments",
        "gaussian_kl",
        "naive_regularizer",
        "reconstruction_loss",
    ),
    "wgan": ("WGANConfig", "WGANModel"),
    "wgan_losses": (
        "WGAN_OBJECTIVES",
        "WGANObjective",
        "build_objective",
        "ctransform_estimate",
        "gradient_penalty",
    ),
    "wgan_trainer": ("WGANTrainer", "WGANTrainingArguments"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
