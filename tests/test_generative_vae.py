"""VAE: loss equals hand computation, save/load round trip, trainer logs and warm-up."""

import math

import pytest
import torch
from transformers import AutoConfig, AutoModel

from generative.data import toy_dataset
from generative.vae import (
    VAEConfig,
    VAEModel,
    VAETrainer,
    VAETrainingArguments,
    gaussian_kl,
    naive_regularizer,
)

TINY = dict(input_dim=16, latent_dim=3, hidden_sizes=[8], image_size=4, channels=[4])


def test_gaussian_kl_hand_values():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    # second row: 0.5*(1 + 4 - log 4 - 1) + 0.5*(4 + 1 - 0 - 1)
    expected = torch.tensor([0.0, 0.5 * (4 - math.log(4.0)) + 2.0])
    assert torch.allclose(gaussian_kl(mu, logvar), expected)


def test_naive_regularizer_hand_values():
    mu = torch.tensor([[1.0, 2.0]])
    logvar = torch.tensor([[math.log(4.0), 0.0]])  # sigma = 2, 1
    assert torch.allclose(naive_regularizer(mu, logvar), torch.tensor([5.0 + 1.0]))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("regularizer", ["kl", "naive"])
def test_loss_is_sum_over_dims_mean_over_batch(likelihood, regularizer):
    model = VAEModel(VAEConfig(**TINY, likelihood=likelihood, regularizer=regularizer, beta=0.7))
    model.eval()  # z = mu, so the loss is deterministic
    x = torch.rand(5, 16)
    out = model(x)
    mu, logvar = model.encode(x)
    raw = model.decoder(mu)
    if likelihood == "gaussian":
        rec = ((x - raw) ** 2).sum(1).mean()
    else:
        p = torch.sigmoid(raw)
        rec = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean()
    sigma = (0.5 * logvar).exp()
    if regularizer == "kl":
        reg = (0.5 * (mu**2 + sigma**2 - logvar - 1)).sum(1).mean()
    else:
        reg = ((mu**2).sum(1) + ((sigma - 1) ** 2).sum(1)).mean()
    assert torch.allclose(out.reconstruction_loss, rec, atol=1e-5)
    assert torch.allclose(out.kl, reg, atol=1e-6)
    assert torch.allclose(out.loss, rec + 0.7 * reg, atol=1e-5)


def test_training_samples_fresh_noise_eval_uses_mu():
    model = VAEModel(VAEConfig(**TINY))
    x = torch.rand(4, 16)
    model.train()
    assert not torch.equal(model(x).z, model(x).z)
    model.eval()
    assert torch.equal(model(x).z, model.encode(x)[0])


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_save_load_round_trip_with_auto_classes(tmp_path, architecture):
    model = VAEModel(VAEConfig(**TINY, architecture=architecture)).eval()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VAEConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, VAEModel)
    x = torch.rand(3, 16)
    assert torch.equal(model(x).reconstruction, loaded(x).reconstruction)


def test_sample_and_interpolate():
    model = VAEModel(VAEConfig(**TINY, likelihood="bernoulli")).eval()
    s = model.sample(6)
    assert s.shape == (6, 16) and s.min() >= 0 and s.max() <= 1
    a, b = torch.rand(16), torch.rand(16)
    strip = model.interpolate(a, b, steps=5)
    assert strip.shape == (5, 16)
    assert torch.allclose(strip[0], model.decode(model.encode(a[None])[0])[0], atol=1e-6)
    assert torch.allclose(strip[-1], model.decode(model.encode(b[None])[0])[0], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"architecture": "rnn"}, "architecture"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"regularizer": "mmd"}, "regularizer"),
        ({"beta": -1.0}, "beta"),
        ({"architecture": "conv", "image_size": 5}, "conv"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VAEConfig(**{**TINY, **kwargs})


def _trainer(tmp_path, **kw):
    ds = toy_dataset("8gaussians", n=64)
    model = VAEModel(VAEConfig(input_dim=2, latent_dim=2, hidden_sizes=[8]))
    args = VAETrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        **kw,
    )
    return VAETrainer(model=model, args=args, train_dataset=ds)


def test_trainer_logs_reconstruction_and_kl_and_updates(tmp_path):
    trainer = _trainer(tmp_path, max_steps=4, logging_steps=2, learning_rate=1e-2)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    after = list(trainer.model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for h in logs:
        assert {"vae/reconstruction", "vae/kl", "vae/beta"} <= set(h)
        assert h["vae/beta"] == pytest.approx(1.0)


def test_kl_warmup_ramps_beta(tmp_path):
    trainer = _trainer(tmp_path, max_steps=4, logging_steps=1, kl_warmup_steps=4)
    trainer.train()
    betas = [h["vae/beta"] for h in trainer.state.log_history if "vae/beta" in h]
    assert betas == pytest.approx([0.25, 0.5, 0.75, 1.0])
    with pytest.raises(ValueError, match="kl_warmup_steps"):
        VAETrainingArguments(output_dir=str(tmp_path), kl_warmup_steps=-1)
