"""WGAN: penalties equal hand computations, save/load, alternating updates, resume."""

import os

import pytest
import torch
from torch import nn
from transformers import AutoModel, TrainerCallback

from generative.data import toy_dataset
from generative.wgan import WGANConfig, WGANModel
from generative.wgan_losses import (
    WGAN_OBJECTIVES,
    WGANObjective,
    build_objective,
    ctransform_estimate,
    gradient_penalty,
)
from generative.wgan_trainer import GENERATOR_OPTIMIZER_NAME, WGANTrainer, WGANTrainingArguments

TINY = dict(data_dim=2, noise_dim=2, generator_hidden=[8], critic_hidden=[8])


def _linear_critic(weight):
    critic = nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
        critic.bias.fill_(0.3)
    return critic


@pytest.mark.parametrize(
    "weight,name,expected",
    [
        # a linear critic a.x + b has gradient a everywhere: the penalties are closed-form
        ([1.2, 1.6], "gp", (2.0 - 1) ** 2),
        ([0.3, 0.4], "gp", (0.5 - 1) ** 2),
        ([1.2, 1.6], "gp0", 2.0**2),
        ([1.2, 1.6], "lp", (2.0 - 1) ** 2),
        ([0.3, 0.4], "lp", 0.0),
    ],
)
def test_penalty_of_linear_critic(weight, name, expected):
    critic = _linear_critic(weight)
    real, fake = torch.randn(7, 2), torch.randn(7, 2)
    obj = build_objective(name, penalty_weight=3.0)
    assert obj.penalty(critic, real, fake).item() == pytest.approx(3.0 * expected, rel=1e-5)
    loss, stats = obj.critic_loss(critic, real, fake)
    w = (critic(real).mean() - critic(fake).mean()).item()
    assert stats["w_estimate"] == pytest.approx(w, rel=1e-5)
    assert loss.item() == pytest.approx(-w + 3.0 * expected, rel=1e-5, abs=1e-6)


def test_penalty_at_given_interpolates_of_quadratic_critic():
    # D(x) = ||x||^2 / 2 has gradient x, so the penalty is mean (||x_hat|| - c)^2
    def critic(x):
        return 0.5 * x.pow(2).sum(1)

    real, fake = torch.randn(6, 3), torch.randn(6, 3)
    eps = torch.rand(6)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake
    norms = x_hat.norm(dim=1)
    for center in (1.0, 0.0):
        got = gradient_penalty(critic, real, fake, center=center, eps=eps)
        assert got.item() == pytest.approx(((norms - center) ** 2).mean().item(), rel=1e-5)
    got = gradient_penalty(critic, real, fake, one_sided=True, eps=eps)
    assert got.item() == pytest.approx(((norms - 1).clamp(min=0) ** 2).mean().item(), rel=1e-5)


def test_gradient_penalty_is_differentiable_in_critic_weights():
    critic = _linear_critic([1.2, 1.6])
    gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2)).backward()
    # d/da (||a|| - 1)^2 = 2 (||a|| - 1) a / ||a||
    expected = 2 * (2.0 - 1) * torch.tensor([[1.2, 1.6]]) / 2.0
    assert torch.allclose(critic.weight.grad, expected, atol=1e-5)


def test_ctransform_estimate_matches_loops():
    critic = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    real, fake = torch.randn(6, 3), torch.randn(4, 3)
    phi = critic(real).squeeze(1)
    second = sum(min(torch.dist(real[i], fake[j]) - phi[i] for i in range(6)) for j in range(4))
    expected = phi.mean() + second / 4
    assert ctransform_estimate(critic, real, fake).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


@pytest.mark.parametrize("seed", range(3))
def test_ctransform_estimate_is_a_lower_bound_of_exact_batch_w1(seed):
    # (phi, phi^c) is dual-feasible, so W_hat <= W1 for any critic; the optimal dual attains it
    from generative.ot import batch_w1

    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(12, 2), torch.randn(12, 2) + 1.0
    assert ctransform_estimate(critic, real, fake).item() <= batch_w1(real, fake) + 1e-6


def test_ctransform_generator_gradient_reaches_only_fake():
    critic = _linear_critic([1.0, 0.0])
    real = torch.randn(5, 2, requires_grad=True)
    fake = torch.randn(5, 2, requires_grad=True)
    build_objective("ctransform").generator_loss(critic, real, fake).backward()
    assert real.grad is None and fake.grad is not None


def test_weight_clipping_clamps_every_parameter():
    critic = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    build_objective("clip", clip_value=0.05).after_critic_step(critic)
    assert all(p.abs().max() <= 0.05 for p in critic.parameters())


def test_objective_registry_errors():
    with pytest.raises(ValueError, match="known"):
        build_objective("hinge")
    with pytest.raises(ValueError, match="unknown WGAN objective 'hinge'; known: clip, ctransform"):
        build_objective("hinge")
    with pytest.raises(ValueError, match="already registered"):
        WGAN_OBJECTIVES.register("gp")(WGANObjective)
    assert set(WGAN_OBJECTIVES) == {"clip", "gp", "gp0", "lp", "sn", "ctransform"}
    assert all(cls.name == name for name, cls in WGAN_OBJECTIVES.items())
    assert WGANObjective.name == "base"  # the failed registration left the base class alone


@pytest.mark.parametrize("sn", [False, True])
def test_save_load_round_trip(tmp_path, sn):
    model = WGANModel(WGANConfig(**TINY, spectral_norm=sn)).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, WGANModel) and loaded.config.spectral_norm == sn
    x, z = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.allclose(model(x), loaded(x)) and torch.equal(
        model.generate_from(z), loaded.generate_from(z)
    )


def test_config_validation_names_the_field():
    for kwargs, field in [({"data_dim": 0}, "data_dim"), ({"activation": "gelu"}, "activation")]:
        with pytest.raises(ValueError, match=field):
            WGANConfig(**{**TINY, **kwargs})


def _args(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=16,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        lr_scheduler_type="constant",
        seed=0,
    )
    return WGANTrainingArguments(**{**base, **kw})


class _Snapshots(TrainerCallback):
    def __init__(self):
        self.items = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        flat = [
            torch.cat([p.detach().flatten().clone() for p in m.parameters()])
            for m in (model.generator, model.critic)
        ]
        self.items.append((state.global_step, *flat))


@pytest.mark.parametrize("objective", sorted(WGAN_OBJECTIVES))
def test_critic_every_step_generator_every_n_critic(tmp_path, objective):
    model = WGANModel(WGANConfig(**TINY, spectral_norm=objective == "sn"))
    trainer = WGANTrainer(
        model=model,
        args=_args(tmp_path, objective=objective, n_critic=3, max_steps=7, logging_steps=7),
        train_dataset=toy_dataset("8gaussians", n=64),
    )
    snaps = _Snapshots()
    trainer.add_callback(snaps)
    g0 = torch.cat([p.detach().flatten().clone() for p in model.generator.parameters()])
    c0 = torch.cat([p.detach().flatten().clone() for p in model.critic.parameters()])
    trainer.train()
    prev_g, prev_c = g0, c0
    for step, g, c in snaps.items:
        # step s (0-based) = global_step - 1 updates the generator first when s % 3 == 0, s > 0
        assert torch.equal(g, prev_g) == ((step - 1) % 3 != 0 or step == 1), step
        assert not torch.equal(c, prev_c), step
        prev_g, prev_c = g, c
    logs = trainer.state.log_history[0]
    assert {"wgan/critic_loss", "wgan/w_estimate", "wgan/penalty", "wgan/generator_loss"} <= set(
        logs
    )
    if objective == "clip":
        assert all(p.abs().max() <= 0.01 + 1e-8 for p in model.critic.parameters())


def test_resume_from_checkpoint_reproduces_uninterrupted_run(tmp_path):
    def run(out, max_steps, resume=None, init_seed=0):
        torch.manual_seed(init_seed)  # a different init proves the checkpoint's weights are used
        model = WGANModel(WGANConfig(**TINY))
        args = _args(
            out,
            n_critic=2,
            max_steps=max_steps,
            save_strategy="steps",
            save_steps=3,
            logging_steps=3,
        )
        trainer = WGANTrainer(model=model, args=args, train_dataset=toy_dataset("8gaussians", n=64))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full", 6)
    ckpt = tmp_path / "full" / "checkpoint-3"
    assert (ckpt / GENERATOR_OPTIMIZER_NAME).is_file() and (ckpt / "optimizer.pt").is_file()
    resumed = run(tmp_path / "resumed", 6, resume=str(ckpt), init_seed=1)
    assert resumed.state.global_step == 6
    assert resumed.generator_optimizer.state_dict()["state"], "generator optimiser state lost"
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_trainer_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        _args(tmp_path, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="objective"):
        _args(tmp_path, objective="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        _args(tmp_path, n_critic=0)
    with pytest.raises(ValueError, match="spectral_norm"):
        WGANTrainer(
            model=WGANModel(WGANConfig(**TINY)),
            args=_args(tmp_path, objective="sn"),
            train_dataset=toy_dataset("8gaussians", n=16),
        )


def test_generator_learning_rate_is_separate(tmp_path):
    trainer = WGANTrainer(
        model=WGANModel(WGANConfig(**TINY)),
        args=_args(tmp_path, max_steps=1, generator_learning_rate=3e-3),
        train_dataset=toy_dataset("8gaussians", n=16),
    )
    trainer.create_optimizer()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)
    assert trainer.generator_optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
    critic_ids = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert critic_ids == {id(p) for p in trainer.model.critic.parameters()}
    assert not os.path.exists(os.path.join(str(tmp_path), "checkpoint-1"))
