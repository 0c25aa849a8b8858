"""The generative experiments behind docs/generative.md (run via scripts/generative_experiments.py),
on the models and trainers of the `generative` package.

Parts: ``vae`` (VAE on digits: curves, samples, interpolation, 2-D latent ellipses),
``wgan_toy`` and ``wgan_digits`` (five critic objectives; critic estimate next to the exact
batch W1 during training; sample quality), ``minibatch`` (Stanczuk et al.'s mini-batch finding).
Every part writes JSON lines to ``out_dir/results.jsonl`` and small PNGs to ``img_dir``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from decoding.registry import Registry
from generative.data import dataset_array, load_digits_dataset, sample_toy, toy_dataset, toy_spec
from generative.ot import batch_w1
from generative.vae import VAEConfig, VAEModel, VAETrainer, VAETrainingArguments
from generative.wgan import WGANConfig, WGANModel
from generative.wgan_trainer import WGANTrainer, WGANTrainingArguments

from .metrics import DigitClassifier, minibatch_w1_comparison, mode_metrics
from .plots import OBJECTIVE_ORDER, curve_plot, ellipse_plot, image_grid, pyplot
from .report import results_markdown

__all__ = [
    "ExperimentConfig",
    "W1TrackingCallback",
    "run_experiments",
    "PARTS",
]

# part name -> its runner ``run(cfg, recorder)``, in the order `run_experiments` runs them by
# default (minibatch, vae, wgan_toy, wgan_digits); a runner joins with ``@PARTS.register(name)``
PARTS: Registry[Callable[..., None]] = Registry("experiment part")
OBJECTIVES = OBJECTIVE_ORDER


@dataclass
class ExperimentConfig:
    """Sizes of every experiment; `quick=True` shrinks them to a seconds-long smoke run."""

    out_dir: str = field(default="runs/generative", metadata={"help": "JSON lines, checkpoints."})
    img_dir: str = field(default="runs/generative/img", metadata={"help": "PNG plots."})
    parts: list[str] = field(default_factory=lambda: list(PARTS), metadata={"help": "Parts."})
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    toys: list[str] = field(default_factory=lambda: ["8gaussians", "25gaussians", "swissroll"])
    quick: bool = field(default=False, metadata={"help": "Tiny sizes for CI."})
    seed: int = 0
    vae_steps: int = 3000
    vae_batch: int = 64
    toy_steps: int = 4000
    toy_batch: int = 128
    toy_hidden: int = 64
    digits_steps: int = 3000
    digits_batch: int = 128
    digits_hidden: int = 256
    n_critic: int = 5
    track_every: int = 200
    eval_samples: int = 1000
    minibatch_sizes: list[int] = field(default_factory=lambda: [16, 64, 256, 512])
    minibatch_repeats: int = 20

    def __post_init__(self):
        for p in self.parts:
            if p not in PARTS:
                raise ValueError(
                    f"ExperimentConfig.parts: unknown part {p!r}; known: {PARTS.names()}"
                )
        for name in ("vae_steps", "toy_steps", "digits_steps", "track_every", "eval_samples"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"ExperimentConfig.{name} must be positive, got {getattr(self, name)}"
                )
        if self.quick:
            self.vae_steps, self.toy_steps, self.digits_steps = 10, 10, 10
            self.toy_hidden, self.digits_hidden, self.track_every = 16, 16, 5
            self.eval_samples, self.minibatch_sizes, self.minibatch_repeats = 64, [16], 2
            self.toys, self.toy_batch, self.digits_batch = self.toys[:1], 32, 32


class W1TrackingCallback(TrainerCallback):
    """Every `every` steps: the critic's W1 estimate and the exact batch W1 on fresh batches."""

    def __init__(self, real: np.ndarray, objective, batch_size: int, every: int, seed: int = 0):
        self.real, self.objective, self.batch_size, self.every = real, objective, batch_size, every
        self.rng = np.random.default_rng(seed)
        self.history: list[dict[str, float]] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every and state.global_step != state.max_steps:
            return
        idx = self.rng.choice(len(self.real), self.batch_size, replace=False)
        real = torch.as_tensor(self.real[idx], dtype=model.dtype)
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        model.eval()  # spectral norm: no power iteration while measuring
        with torch.no_grad():
            fake = model.sample(self.batch_size, generator=gen)
            est = self.objective.estimate(model.critic_scores, real, fake).item()
        model.train()
        self.history.append(
            {"step": state.global_step, "critic_estimate": est, "exact_w1": batch_w1(real, fake)}
        )


def _common_args(out: Path, steps: int, batch: int, cfg: ExperimentConfig) -> dict:
    return dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=batch,
        logging_steps=max(1, steps // 30),
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        lr_scheduler_type="constant",
        seed=cfg.seed,
        dataloader_drop_last=True,
    )


class _Recorder:
    def __init__(self, cfg: ExperimentConfig):
        self.out = Path(cfg.out_dir)
        self.img = Path(cfg.img_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.img.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        (self.out / "results.jsonl").write_text("")  # one run per file

    def add(self, row: dict) -> None:
        self.rows.append(row)
        with open(self.out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def savefig(self, fig, name: str) -> None:
        fig.savefig(self.img / name, dpi=72, bbox_inches="tight")
        pyplot().close(fig)


# -- mini-batch finding ---------------------------------------------------------------------
@PARTS.register("minibatch")
def run_minibatch(cfg: ExperimentConfig, rec: _Recorder) -> None:
    data = {"digits": dataset_array(load_digits_dataset())}
    data["25gaussians"] = sample_toy("25gaussians", 4000, seed=cfg.seed)
    for name, x in data.items():
        for b in cfg.minibatch_sizes:
            row = minibatch_w1_comparison(x, b, cfg.minibatch_repeats, seed=cfg.seed)
            rec.add({"part": "minibatch", "data": name, **row})


# -- VAE ------------------------------------------------------------------------------------
def _train_vae(cfg: ExperimentConfig, rec: _Recorder, name: str, **config_kw):
    train, test = load_digits_dataset("train"), load_digits_dataset("test")
    model = VAEModel(VAEConfig(input_dim=64, hidden_sizes=[256, 128], **config_kw))
    args = VAETrainingArguments(
        **_common_args(rec.out / name, cfg.vae_steps, cfg.vae_batch, cfg),
        learning_rate=1e-3,
        kl_warmup_steps=cfg.vae_steps // 10,
    )
    t0 = time.time()
    trainer = VAETrainer(model=model, args=args, train_dataset=train)
    trainer.train()
    model.eval()
    x_test = torch.as_tensor(dataset_array(test))
    with torch.no_grad():
        out = model(x_test, sample_latent=True)  # the ELBO terms on held-out digits
    curve = [
        (h["step"], h["vae/reconstruction"], h["vae/kl"])
        for h in trainer.state.log_history
        if "vae/kl" in h
    ]
    row = {
        "part": "vae",
        "run": name,
        **config_kw,
        "steps": cfg.vae_steps,
        "test_reconstruction": out.reconstruction_loss.item(),
        "test_kl": out.kl.item(),
        "seconds": round(time.time() - t0, 1),
    }
    return model, test, row, curve


def _latent_cover(mu: np.ndarray, sigma: np.ndarray, n: int = 4000, seed: int = 0) -> float:
    """Share of prior draws z ~ N(0, I) inside at least one ellipse mu_i +- sigma_i."""
    z = np.random.default_rng(seed).standard_normal((n, mu.shape[1]))
    inside = (((z[:, None, :] - mu[None]) / sigma[None]) ** 2).sum(-1) <= 1.0  # (n, N)
    return float(inside.any(1).mean())


@PARTS.register("vae")
def run_vae(cfg: ExperimentConfig, rec: _Recorder) -> None:
    plt = pyplot()
    runs = {
        "latent8_bernoulli": dict(latent_dim=8, likelihood="bernoulli"),
        "latent2_sse": dict(latent_dim=2, likelihood="gaussian"),
        "latent2_bernoulli": dict(latent_dim=2, likelihood="bernoulli"),
        "latent2_bernoulli_naive": dict(latent_dim=2, likelihood="bernoulli", regularizer="naive"),
    }
    curves, ellipses = {}, {}
    for name, kw in runs.items():
        torch.manual_seed(cfg.seed)
        model, test, row, curve = _train_vae(cfg, rec, name, **kw)
        curves[name] = curve
        x = torch.as_tensor(dataset_array(test))
        y = dataset_array(test, "label")
        if kw["latent_dim"] == 2:
            with torch.no_grad():
                mu, logvar = model.encode(x)
            mu, sigma = mu.numpy(), (0.5 * logvar).exp().numpy()
            row["prior_covered_by_ellipses"] = _latent_cover(mu, sigma, seed=cfg.seed)
            row["aggregate_var"] = (mu.var(0) + (sigma**2).mean(0)).tolist()
            row["mean_sigma"] = sigma.mean(0).tolist()
            ellipses[name] = (mu, sigma, y)
        else:
            gen = torch.Generator().manual_seed(cfg.seed)
            samples = model.sample(64, generator=gen).numpy()
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.imshow(image_grid(samples, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
            ax.set_title(f"VAE samples ({name})", fontsize=9)
            rec.savefig(fig, "generative_vae_samples.png")
            pairs = [(0, 1), (3, 8), (4, 9), (2, 7)]
            strips = [
                model.interpolate(x[y == a][0], x[y == b][0], steps=10).numpy() for a, b in pairs
            ]
            fig, ax = plt.subplots(figsize=(6, 2.6))
            ax.imshow(image_grid(np.concatenate(strips), 10), cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
            ax.set_title("interpolation between codes mu(x_a) -> mu(x_b)", fontsize=9)
            rec.savefig(fig, "generative_vae_interpolation.png")
        rec.add(row)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for name, curve in curves.items():
        c = np.array(curve)
        axes[0].plot(c[:, 0], c[:, 1], label=name)
        axes[1].plot(c[:, 0], c[:, 2], label=name)
    axes[0].set(title="reconstruction (train batch mean)", xlabel="step", yscale="log")
    axes[1].set(title="KL / regulariser (train batch mean)", xlabel="step")
    axes[1].legend(fontsize=7)
    rec.savefig(fig, "generative_vae_curves.png")
    fig, axes = plt.subplots(1, len(ellipses), figsize=(3.3 * len(ellipses), 3.3), squeeze=False)
    for ax, (name, (mu, sigma, y)) in zip(axes[0], ellipses.items()):
        ellipse_plot(ax, mu, sigma, y, f"{name}: mu +- sigma")
    rec.savefig(fig, "generative_vae_latent2.png")


# -- WGAN -----------------------------------------------------------------------------------
_OPTIM = {  # original WGAN used RMSProp with clipping; the rest Adam(0.5, 0.9) as in WGAN-GP
    "clip": dict(optim="rmsprop", learning_rate=5e-4),
}


def _train_wgan(cfg, rec, name, objective, config, dataset, real_pool, steps, batch, lr):
    torch.manual_seed(cfg.seed)
    model = WGANModel(WGANConfig(**config, spectral_norm=objective == "sn"))
    opt = {"optim": "adamw_torch", "learning_rate": lr, "adam_beta1": 0.5, "adam_beta2": 0.9}
    opt.update(_OPTIM.get(objective, {}))
    args = WGANTrainingArguments(
        **_common_args(rec.out / name, steps, batch, cfg),
        objective=objective,
        n_critic=cfg.n_critic,
        **opt,
    )
    trainer = WGANTrainer(model=model, args=args, train_dataset=dataset)
    tracker = W1TrackingCallback(real_pool, trainer.objective, batch, cfg.track_every, cfg.seed)
    trainer.add_callback(tracker)
    t0 = time.time()
    trainer.train()
    model.eval()
    samples = model.sample(
        cfg.eval_samples, generator=torch.Generator().manual_seed(cfg.seed)
    ).numpy()
    np.save(rec.out / f"{name}_samples.npy", samples)  # to redraw plots without retraining
    return model, samples, tracker.history, round(time.time() - t0, 1)


def _summary(hist: list[dict]) -> dict:
    last = hist[-max(1, len(hist) // 4) :]  # the last quarter of the tracked points
    est, ex = (
        np.array([h["critic_estimate"] for h in hist]),
        np.array([h["exact_w1"] for h in hist]),
    )
    corr = float(np.corrcoef(est, ex)[0, 1]) if len(hist) > 2 and est.std() > 0 else None
    return {
        "final_exact_w1": float(np.mean([h["exact_w1"] for h in last])),
        "final_critic_estimate": float(np.mean([h["critic_estimate"] for h in last])),
        "estimate_exact_corr": corr,
    }


@PARTS.register("wgan_toy")
def run_wgan_toy(cfg: ExperimentConfig, rec: _Recorder) -> None:
    plt = pyplot()
    h = cfg.toy_hidden
    config = dict(data_dim=2, noise_dim=2, generator_hidden=[h] * 3, critic_hidden=[h] * 3)
    fig, axes = plt.subplots(
        len(cfg.toys),
        len(cfg.objectives),
        figsize=(2.2 * len(cfg.objectives), 2.2 * len(cfg.toys)),
        squeeze=False,
    )
    for r, toy in enumerate(cfg.toys):
        spec = toy_spec(toy)
        dataset = toy_dataset(toy, n=20_000, seed=cfg.seed)
        pool = sample_toy(toy, 20_000, seed=cfg.seed + 1)
        ref = sample_toy(toy, 2 * cfg.eval_samples, seed=cfg.seed + 2)
        baseline = batch_w1(ref[: cfg.eval_samples], ref[cfg.eval_samples :])
        histories = {}
        for c, obj in enumerate(cfg.objectives):
            _, samples, hist, secs = _train_wgan(
                cfg,
                rec,
                f"wgan_{toy}_{obj}",
                obj,
                config,
                dataset,
                pool,
                cfg.toy_steps,
                cfg.toy_batch,
                1e-3,
            )
            histories[obj] = hist
            row = {
                "part": "wgan_toy",
                "data": toy,
                "objective": obj,
                "steps": cfg.toy_steps,
                "seconds": secs,
            }
            row["sample_w1"] = batch_w1(samples, ref[: cfg.eval_samples])
            row["real_real_w1"] = baseline
            if spec.centers is not None:
                row.update(mode_metrics(samples, spec.centers, spec.std))
            row.update(_summary(hist))
            rec.add(row)
            ax = axes[r][c]
            ax.scatter(ref[:500, 0], ref[:500, 1], s=1, c="0.7")
            ax.scatter(samples[:500, 0], samples[:500, 1], s=1, c="C3")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{toy} / {obj}", fontsize=8)
        rec.savefig(
            curve_plot(
                histories,
                f"{toy}: critic estimate vs exact W1 (batch {cfg.toy_batch})",
            ),
            f"generative_wgan_{toy}_w1.png",
        )
    rec.savefig(fig, "generative_wgan_toy_samples.png")


@PARTS.register("wgan_digits")
def run_wgan_digits(cfg: ExperimentConfig, rec: _Recorder) -> None:
    plt = pyplot()
    train, test = load_digits_dataset("train"), load_digits_dataset("test")
    x_train, y_train = dataset_array(train), dataset_array(train, "label")
    x_test, y_test = dataset_array(test), dataset_array(test, "label")
    clf = DigitClassifier.fit(x_train, y_train, x_test, y_test, seed=cfg.seed)
    real_scores = clf.score_samples(x_test)
    rec.add({"part": "digits_classifier", "test_accuracy": clf.test_accuracy, **real_scores})
    h = cfg.digits_hidden
    config = dict(
        data_dim=64,
        noise_dim=16,
        generator_hidden=[h, h],
        critic_hidden=[h, h],
        generator_output="sigmoid",
    )
    n_eval = min(cfg.eval_samples, len(x_test))
    baseline = batch_w1(x_test[:n_eval], x_train[:n_eval])
    histories, grids = {}, {}
    for obj in cfg.objectives:
        _, samples, hist, secs = _train_wgan(
            cfg,
            rec,
            f"wgan_digits_{obj}",
            obj,
            config,
            train,
            x_train,
            cfg.digits_steps,
            cfg.digits_batch,
            5e-4,
        )
        histories[obj] = hist
        grids[obj] = image_grid(samples[:36], 6)
        row = {"part": "wgan_digits", "objective": obj, "steps": cfg.digits_steps, "seconds": secs}
        row["sample_w1"] = batch_w1(samples[:n_eval], x_test[:n_eval])
        row["real_real_w1"] = baseline
        row.update(clf.score_samples(samples))
        row.update(_summary(hist))
        rec.add(row)
    rec.savefig(
        curve_plot(
            histories,
            f"digits: critic estimate vs exact W1 (batch {cfg.digits_batch})",
        ),
        "generative_wgan_digits_w1.png",
    )
    fig, axes = plt.subplots(1, len(grids), figsize=(2.2 * len(grids), 2.4), squeeze=False)
    for ax, (obj, g) in zip(axes[0], grids.items()):
        ax.imshow(g, cmap="gray_r", vmin=0, vmax=1)
        ax.axis("off")
        ax.set_title(obj, fontsize=9)
    rec.savefig(fig, "generative_wgan_digits_samples.png")


def run_experiments(cfg: ExperimentConfig) -> list[dict]:
    """Run the selected parts; returns all result rows (also appended to results.jsonl)."""
    torch.set_num_threads(1)
    rec = _Recorder(cfg)
    rec.add(
        {
            "part": "config",
            **asdict(cfg),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )
    for part in cfg.parts:
        t0, c0 = time.time(), time.process_time()
        PARTS[part](cfg, rec)
        wall, cpu = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
        rec.add({"part": "timing", "name": part, "seconds": wall, "cpu_seconds": cpu})
    (rec.out / "results.md").write_text(results_markdown(rec.rows))
    return rec.rows
