"""WGAN generator and critic as one HF model (docs/generative.md, "The WGAN and how it uses
`Trainer`").

`WGANModel` holds both networks so that one `save_pretrained` / `from_pretrained` and one
Trainer checkpoint carry the whole GAN. `forward(x)` returns the critic's scores (that is what
the Trainer feeds batches to); `sample(n)` draws from the generator. Both are MLPs on
flattened samples; the critic optionally uses spectral normalisation
(`torch.nn.utils.parametrizations.spectral_norm`). The critic has no batch normalisation,
which would break the per-sample gradient penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from decoding.registry import Registry

__all__ = ["WGANConfig", "WGANModel"]

# name -> module factory, for `WGANConfig.activation` / `WGANConfig.generator_output`
_ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry(
    "activation",
    {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh},
)
_OUTPUTS: Registry[Callable[[], nn.Module]] = Registry(
    "generator output", {"none": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
)


class WGANConfig(PretrainedConfig):
    """Configuration of `WGANModel`.

    Args:
        data_dim: flattened sample size (2 for toys, 64 for 8x8 digits).
        noise_dim: size of the generator's input z ~ N(0, I).
        generator_hidden: hidden widths of the generator MLP.
        critic_hidden: hidden widths of the critic MLP.
        activation: "relu", "leaky_relu" or "tanh" (both networks).
        generator_output: "none", "sigmoid" (data in [0, 1]) or "tanh" (data in [-1, 1]).
        spectral_norm: wrap every critic Linear in spectral normalisation.
    """

    model_type = "generative_wgan"

    def __init__(
        self,
        data_dim: int = 2,
        noise_dim: int = 2,
        generator_hidden: list[int] | tuple[int, ...] = (128, 128, 128),
        critic_hidden: list[int] | tuple[int, ...] = (128, 128, 128),
        activation: str = "relu",
        generator_output: str = "none",
        spectral_norm: bool = False,
        **kwargs,
    ):
        self.data_dim = int(data_dim)
        self.noise_dim = int(noise_dim)
        self.generator_hidden = list(generator_hidden)
        self.critic_hidden = list(critic_hidden)
        self.activation = activation
        self.generator_output = generator_output
        self.spectral_norm = bool(spectral_norm)
        super().__init__(**kwargs)
        for name in ("data_dim", "noise_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WGANConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("generator_hidden", "critic_hidden"):
            if any(h <= 0 for h in getattr(self, name)):
                raise ValueError(f"WGANConfig.{name} must be positive, got {getattr(self, name)}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"WGANConfig.activation must be one of {_ACTIVATIONS.names()}, got {self.activation!r}"
            )
        if self.generator_output not in _OUTPUTS:
            raise ValueError(
                f"WGANConfig.generator_output must be one of {_OUTPUTS.names()}, "
                f"got {self.generator_output!r}"
            )


def _mlp(sizes: list[int], activation: str, sn: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(a, b)
        layers.append(spectral_norm(linear) if sn else linear)
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return layers


class WGANModel(PreTrainedModel):
    """Generator G: z (B, noise_dim) -> x (B, data_dim); critic D: x (B, data_dim) -> (B,)."""

    config_class = WGANConfig
    base_model_prefix = "wgan"
    main_input_name = "x"

    def __init__(self, config: WGANConfig):
        super().__init__(config)
        g_sizes = [config.noise_dim, *config.generator_hidden, config.data_dim]
        self.generator = nn.Sequential(
            *_mlp(g_sizes, config.activation), _OUTPUTS[config.generator_output]()
        )
        c_sizes = [config.data_dim, *config.critic_hidden, 1]
        self.critic = nn.Sequential(*_mlp(c_sizes, config.activation, sn=config.spectral_norm))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear) and not hasattr(module, "parametrizations"):
            module.reset_parameters()

    def critic_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (B,) critic values on flattened samples."""
        return self.critic(x.flatten(1).to(self.dtype)).squeeze(-1)

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        """Critic scores of a batch, (B, ...) -> (B,)."""
        return self.critic_scores(x)

    def noise(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I) of shape (num_samples, noise_dim) on the model's device."""
        z = torch.randn(num_samples, self.config.noise_dim, generator=generator)
        return z.to(self.device, self.dtype)

    def generate_from(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): (B, noise_dim) -> (B, data_dim)."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw `num_samples` generated samples, (num_samples, data_dim)."""
        return self.generator(self.noise(num_samples, generator))


AutoConfig.register(WGANConfig.model_type, WGANConfig, exist_ok=True)
AutoModel.register(WGANConfig, WGANModel, exist_ok=True)
