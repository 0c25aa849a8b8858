"""Variational autoencoder as an HF model and trainer (docs/generative.md, "The VAE").

Per-sample loss (Su, https://kexue.fm/archives/7725):
    ||x - D(mu(x) + eps * sigma(x))||^2 + sum_i 1/2 (mu_i^2 + sigma_i^2 - log sigma_i^2 - 1),
with the reconstruction summed over data dimensions and the KL summed over latent dimensions,
both then averaged over the batch (a mean over dimensions would silently reweight the two).
The encoder outputs mu and log sigma^2; training samples a fresh eps per forward pass, eval
mode uses mu as the code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
)
from transformers.utils import ModelOutput

from decoding.registry import Registry

__all__ = [
    "VAEConfig",
    "VAEModel",
    "VAEOutput",
    "VAETrainingArguments",
    "VAETrainer",
    "gaussian_kl",
    "naive_regularizer",
    "reconstruction_loss",
    "VAE_ARCHITECTURES",
]

_LIKELIHOODS = ("gaussian", "bernoulli")


class VAEConfig(PretrainedConfig):
    """Configuration of `VAEModel`.

    Args:
        input_dim: flattened data size (64 for 8x8 digits, 2 for toys).
        latent_dim: size d of the code z.
        hidden_sizes: MLP hidden widths of the encoder (the decoder mirrors them).
        architecture: "mlp" or "conv" (conv needs `image_size` and `channels`).
        image_size: side of the square image for the conv architecture.
        channels: conv channels per stride-2 layer for the conv architecture.
        likelihood: "gaussian" (squared error summed over dims) or "bernoulli" (BCE summed).
        beta: weight of the regulariser (1.0 = the standard VAE).
        regularizer: "kl" (Gaussian KL) or "naive" (||mu||^2 + ||sigma - 1||^2, ablation only).
    """

    model_type = "generative_vae"

    def __init__(
        self,
        input_dim: int = 64,
        latent_dim: int = 8,
        hidden_sizes: list[int] | tuple[int, ...] = (256, 128),
        architecture: str = "mlp",
        image_size: int = 8,
        channels: list[int] | tuple[int, ...] = (16, 32),
        likelihood: str = "gaussian",
        beta: float = 1.0,
        regularizer: str = "kl",
        **kwargs,
    ):
        self.input_dim = int(input_dim)
        self.latent_dim = int(latent_dim)
        self.hidden_sizes = list(hidden_sizes)
        self.architecture = architecture
        self.image_size = int(image_size)
        self.channels = list(channels)
        self.likelihood = likelihood
        self.beta = float(beta)
        self.regularizer = regularizer
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        if self.input_dim <= 0:
            raise ValueError(f"VAEConfig.input_dim must be positive, got {self.input_dim}")
        if self.latent_dim <= 0:
            raise ValueError(f"VAEConfig.latent_dim must be positive, got {self.latent_dim}")
        if any(h <= 0 for h in self.hidden_sizes):
            raise ValueError(f"VAEConfig.hidden_sizes must be positive, got {self.hidden_sizes}")
        if self.architecture not in VAE_ARCHITECTURES:
            raise ValueError(
                f"VAEConfig.architecture must be one of {tuple(VAE_ARCHITECTURES)}, "
                f"got {self.architecture!r}"
            )
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(
                f"VAEConfig.likelihood must be one of {_LIKELIHOODS}, got {self.likelihood!r}"
            )
        if self.regularizer not in _VAE_REGULARIZERS:
            raise ValueError(
                f"VAEConfig.regularizer must be one of {tuple(_VAE_REGULARIZERS)}, "
                f"got {self.regularizer!r}"
            )
        if self.beta < 0:
            raise ValueError(f"VAEConfig.beta must be >= 0, got {self.beta}")
        if self.architecture == "conv":
            side = self.image_size // 2 ** len(self.channels)
            if (
                self.image_size**2 != self.input_dim
                or side * 2 ** len(self.channels) != self.image_size
            ):
                raise ValueError(
                    f"VAEConfig: conv needs input_dim == image_size**2 and image_size divisible by "
                    f"2**len(channels), got input_dim={self.input_dim}, image_size={self.image_size}, "
                    f"channels={self.channels}"
                )


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _mlp_encoder_decoder(config: VAEConfig) -> tuple[nn.Module, nn.Module]:
    enc = _mlp([config.input_dim, *config.hidden_sizes, 2 * config.latent_dim])
    dec = _mlp([config.latent_dim, *reversed(config.hidden_sizes), config.input_dim])
    return enc, dec


def _conv_encoder_decoder(config: VAEConfig) -> tuple[nn.Module, nn.Module]:
    s, ch = config.image_size, config.channels
    side = s // 2 ** len(ch)  # spatial size after the stride-2 convolutions
    enc_layers: list[nn.Module] = [nn.Unflatten(1, (1, s, s))]
    for c_in, c_out in zip([1, *ch[:-1]], ch):
        enc_layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    enc_layers += [nn.Flatten(), nn.Linear(ch[-1] * side * side, 2 * config.latent_dim)]
    dec_layers: list[nn.Module] = [
        nn.Linear(config.latent_dim, ch[-1] * side * side),
        nn.Unflatten(1, (ch[-1], side, side)),
    ]
    for c_in, c_out in zip(reversed(ch), [*reversed(ch[:-1]), 1]):
        dec_layers += [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    dec_layers.append(nn.Flatten())
    return nn.Sequential(*enc_layers), nn.Sequential(*dec_layers)


# name -> builder of (encoder, decoder), for `VAEConfig.architecture`
VAE_ARCHITECTURES: Registry[Callable[[VAEConfig], tuple[nn.Module, nn.Module]]] = Registry(
    "VAE architecture", {"mlp": _mlp_encoder_decoder, "conv": _conv_encoder_decoder}
)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent dims. (B, d), (B, d) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=-1)


def naive_regularizer(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Su's stepping-stone regulariser ||mu||^2 + ||sigma - 1||^2. (B, d), (B, d) -> (B,)."""
    sigma = (0.5 * logvar).exp()
    return mu.pow(2).sum(dim=-1) + (sigma - 1).pow(2).sum(dim=-1)


def reconstruction_loss(decoded: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Per-sample reconstruction loss summed over data dims. (B, D), (B, D) -> (B,).

    `decoded` is the mean for "gaussian" and the logits for "bernoulli".
    """
    if likelihood == "gaussian":
        return (x - decoded).pow(2).sum(dim=-1)
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(decoded, x, reduction="none").sum(dim=-1)
    raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")


# name -> the latent regulariser (mu, logvar) -> (B,), for `VAEConfig.regularizer`
_VAE_REGULARIZERS: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry(
    "VAE regularizer", {"kl": gaussian_kl, "naive": naive_regularizer}
)


@dataclass
class VAEOutput(ModelOutput):
    """Output of `VAEModel.forward`; losses are batch means of per-sample sums."""

    loss: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    kl: torch.Tensor | None = None  # the chosen regulariser (KL or naive)
    reconstruction: torch.Tensor | None = None  # (B, D) decoded mean / probabilities
    mu: torch.Tensor | None = None  # (B, d)
    logvar: torch.Tensor | None = None  # (B, d)
    z: torch.Tensor | None = None  # (B, d)


class VAEModel(PreTrainedModel):
    """Encoder x -> (mu, log sigma^2), reparameterised z = mu + eps * sigma, decoder z -> x."""

    config_class = VAEConfig
    base_model_prefix = "vae"
    main_input_name = "x"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder, self.decoder = VAE_ARCHITECTURES[config.architecture](config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            module.reset_parameters()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) -> mu (B, d), logvar (B, d)."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    def _decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, D): the decoded mean (gaussian) or pixel probabilities (bernoulli)."""
        out = self._decode_raw(z)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def forward(self, x: torch.Tensor, sample_latent: bool | None = None, **kwargs) -> VAEOutput:
        """Encode, sample (training) or take mu (eval), decode, and compute the loss.

        Args:
            x: (B, D) or (B, H, W) inputs.
            sample_latent: force sampling on/off; default: sample in training mode only.
        """
        x = x.flatten(1).to(self.dtype)
        mu, logvar = self.encode(x)
        sample = self.training if sample_latent is None else sample_latent
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        raw = self._decode_raw(z)
        rec = reconstruction_loss(raw, x, self.config.likelihood).mean()
        reg = _VAE_REGULARIZERS[self.config.regularizer](mu, logvar).mean()
        recon = torch.sigmoid(raw) if self.config.likelihood == "bernoulli" else raw
        return VAEOutput(
            loss=rec + self.config.beta * reg,
            reconstruction_loss=rec,
            kl=reg,
            reconstruction=recon,
            mu=mu,
            logvar=logvar,
            z=z,
        )

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode `num_samples` prior draws z ~ N(0, I). Returns (num_samples, D)."""
        z = torch.randn(num_samples, self.config.latent_dim, generator=generator)
        return self.decode(z.to(self.device, self.dtype))

    @torch.no_grad()
    def interpolate(self, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decode the straight line between the codes mu(x_a) and mu(x_b).

        Args:
            x_a, x_b: single samples (D,) or (1, D).
            steps: number of points including both ends.

        Returns:
            (steps, D) decoded samples.
        """
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        mu_a, _ = self.encode(x_a.reshape(1, -1).to(self.device, self.dtype))
        mu_b, _ = self.encode(x_b.reshape(1, -1).to(self.device, self.dtype))
        t = torch.linspace(0, 1, steps, device=self.device, dtype=self.dtype).unsqueeze(1)
        return self.decode((1 - t) * mu_a + t * mu_b)


AutoConfig.register(VAEConfig.model_type, VAEConfig, exist_ok=True)
AutoModel.register(VAEConfig, VAEModel, exist_ok=True)


@dataclass
class VAETrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the KL warm-up schedule."""

    kl_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "Ramp the regulariser weight linearly from 0 to beta over this many steps."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")


class VAETrainer(Trainer):
    """`Trainer` for `VAEModel`: applies the KL warm-up and logs ``vae/reconstruction`` and
    ``vae/kl`` (the regulariser) separately, plus ``vae/beta`` (the weight in use)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._metrics: dict[str, list[float]] = defaultdict(list)

    def current_beta(self) -> float:
        beta = self.accelerator.unwrap_model(self.model).config.beta
        warmup = getattr(self.args, "kl_warmup_steps", 0)
        if warmup <= 0:
            return beta
        return beta * min(1.0, (self.state.global_step + 1) / warmup)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(x=inputs["x"])
        beta = self.current_beta() if model.training else model.config.beta
        loss = outputs.reconstruction_loss + beta * outputs.kl
        if model.training:
            self._metrics["vae/reconstruction"].append(outputs.reconstruction_loss.item())
            self._metrics["vae/kl"].append(outputs.kl.item())
            self._metrics["vae/beta"].append(beta)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:
            logs.update({k: sum(v) / len(v) for k, v in self._metrics.items()})
            self._metrics.clear()
        super().log(logs, start_time)
