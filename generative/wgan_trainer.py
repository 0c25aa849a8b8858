"""`WGANTrainer`: the HF `Trainer` with two optimisers and alternating updates.

How Trainer's machinery is used (transformers 5.x `_inner_training_loop`):

- One Trainer step = one **critic** update. `self.optimizer` / `self.lr_scheduler` are the
  critic's (built by Trainer's own `create_optimizer` on `model.critic`, so `optim`,
  `learning_rate`, `adam_beta*`, `weight_decay` and `lr_scheduler_type` apply to it), and the
  Trainer loop steps them after `training_step` returns the critic loss.
- The **generator** has its own optimiser of the same class with `generator_learning_rate`,
  stepped inside `training_step`: at the start of step s when s > 0 and s % n_critic == 0,
  i.e. after every n_critic critic updates (the order of Gulrajani et al.'s toy code). It is
  prepared by `accelerate`, saved next to the critic's in every checkpoint
  (`generator_optimizer.pt`) and restored on `resume_from_checkpoint`.
- Post-step critic hooks (weight clipping) run from a callback on `on_optimizer_step`, right
  after the critic update, and once at `on_train_begin`.
- Logging adds namespaced means since the last log: ``wgan/critic_loss``, ``wgan/w_estimate``,
  ``wgan/penalty``, ``wgan/generator_loss``.

- Multi-process (`accelerate launch --num_processes N`): the generator and critic are called as
  submodules, bypassing DDP's forward hooks, so `training_step` averages their gradients across
  processes itself (`_average_gradients`) before each update. Verified: single-process
  `accelerate launch`; NOT verified: several processes (CPU-only here, where Trainer did not
  enter distributed mode under `torchrun`).

Limits: gradient accumulation is refused (it would repeat generator steps).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.optimization import get_scheduler

from .wgan_losses import WGAN_OBJECTIVES, build_objective

__all__ = ["WGANTrainingArguments", "WGANTrainer", "GENERATOR_OPTIMIZER_NAME"]

GENERATOR_OPTIMIZER_NAME = "generator_optimizer.pt"


@dataclass
class WGANTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the WGAN options. `learning_rate` is the critic's."""

    objective: str = field(
        default="gp", metadata={"help": f"Critic objective, one of {WGAN_OBJECTIVES.names()}."}
    )
    n_critic: int = field(default=5, metadata={"help": "Critic updates per generator update."})
    penalty_weight: float = field(
        default=10.0, metadata={"help": "lambda of the gradient / Lipschitz penalties."}
    )
    clip_value: float = field(default=0.01, metadata={"help": "Weight-clipping bound c."})
    generator_learning_rate: float | None = field(
        default=None, metadata={"help": "Generator learning rate; default: learning_rate."}
    )
    max_grad_norm: float = field(
        default=0.0,
        metadata={"help": "Critic gradient-norm clipping; off by default (it fights the GP)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.objective not in WGAN_OBJECTIVES:
            raise ValueError(
                f"objective must be one of {WGAN_OBJECTIVES.names()}, got {self.objective!r}"
            )
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")
        if self.penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {self.penalty_weight}")
        if self.clip_value <= 0:
            raise ValueError(f"clip_value must be positive, got {self.clip_value}")
        if self.generator_learning_rate is not None and self.generator_learning_rate <= 0:
            raise ValueError(
                f"generator_learning_rate must be positive, got {self.generator_learning_rate}"
            )
        if self.gradient_accumulation_steps != 1:
            raise ValueError(
                "WGANTrainer needs gradient_accumulation_steps == 1, "
                f"got {self.gradient_accumulation_steps}"
            )


class _CriticHookCallback(TrainerCallback):
    """Runs the objective's post-update hook (weight clipping) on the critic."""

    def __init__(self, trainer: WGANTrainer):
        self.trainer = trainer

    def _run(self):
        critic = self.trainer.accelerator.unwrap_model(self.trainer.model).critic
        self.trainer.objective.after_critic_step(critic)

    def on_train_begin(self, args, state, control, **kwargs):
        self._run()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._run()


class WGANTrainer(Trainer):
    """Train a `WGANModel` on a dataset with a column ``x`` of real samples.

    Use like `Trainer`: `WGANTrainer(model, args=WGANTrainingArguments(...),
    train_dataset=ds).train(resume_from_checkpoint=...)`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, WGANTrainingArguments):
            raise ValueError(
                f"WGANTrainer needs WGANTrainingArguments, got {type(self.args).__name__}"
            )
        self.objective = build_objective(
            self.args.objective,
            penalty_weight=self.args.penalty_weight,
            clip_value=self.args.clip_value,
        )
        if self.objective.requires_spectral_norm and not self.model.config.spectral_norm:
            raise ValueError(
                f"objective {self.args.objective!r} needs WGANConfig.spectral_norm=True"
            )
        self.generator_optimizer = None
        self.generator_lr_scheduler = None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.add_callback(_CriticHookCallback(self))

    # -- optimisers ---------------------------------------------------------------------
    def create_optimizer(self, model=None):
        unwrapped = self.accelerator.unwrap_model(model if model is not None else self.model)
        if self.optimizer is None:
            super().create_optimizer(unwrapped.critic)
        if self.generator_optimizer is None:
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, unwrapped)
            kwargs = {**kwargs, "lr": self.args.generator_learning_rate or self.args.learning_rate}
            self.generator_optimizer = cls(unwrapped.generator.parameters(), **kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if self.generator_lr_scheduler is None and self.generator_optimizer is not None:
            self.generator_optimizer = self.accelerator.prepare_optimizer(self.generator_optimizer)
            gen_steps = max(1, num_training_steps // self.args.n_critic)
            self.generator_lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type,
                optimizer=self.generator_optimizer,
                num_warmup_steps=self.args.get_warmup_steps(gen_steps),
                num_training_steps=gen_steps,
            )
        return scheduler

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save and self.generator_optimizer is not None:
            state = {
                "optimizer": self.generator_optimizer.state_dict(),
                "scheduler": self.generator_lr_scheduler.state_dict(),
            }
            torch.save(state, os.path.join(output_dir, GENERATOR_OPTIMIZER_NAME))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        path = None if checkpoint is None else os.path.join(checkpoint, GENERATOR_OPTIMIZER_NAME)
        if path is not None and os.path.isfile(path):
            state = torch.load(path, map_location=self.args.device, weights_only=True)
            self.generator_optimizer.load_state_dict(state["optimizer"])
            self.generator_lr_scheduler.load_state_dict(state["scheduler"])

    def _average_gradients(self, module: torch.nn.Module) -> None:
        """Mean-reduce `module`'s gradients over processes (a no-op in a single process)."""
        if self.accelerator.num_processes == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)
                p.grad /= self.accelerator.num_processes

    # -- one step -----------------------------------------------------------------------
    def _generator_step(self, wgan, real: torch.Tensor) -> None:
        self.generator_optimizer.zero_grad(set_to_none=True)
        wgan.critic.requires_grad_(False)  # the generator step must not touch critic grads
        try:
            fake = wgan.generate_from(wgan.noise(real.shape[0]))
            loss = self.objective.generator_loss(wgan.critic_scores, real, fake)
            self.accelerator.backward(loss)
            self._average_gradients(wgan.generator)
            self.generator_optimizer.step()
            self.generator_lr_scheduler.step()
        finally:
            wgan.critic.requires_grad_(True)
            self.generator_optimizer.zero_grad(set_to_none=True)
        self._metrics["wgan/generator_loss"].append(loss.item())

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        model.train()
        inputs = self._prepare_inputs(inputs)
        wgan = self.accelerator.unwrap_model(model)
        real = inputs["x"].flatten(1).to(wgan.dtype)
        step = self.state.global_step
        if step > 0 and step % self.args.n_critic == 0:
            self._generator_step(wgan, real)
        with torch.no_grad():
            fake = wgan.generate_from(wgan.noise(real.shape[0]))
        loss, stats = self.objective.critic_loss(wgan.critic_scores, real, fake)
        self.accelerator.backward(loss)
        self._average_gradients(wgan.critic)
        self._metrics["wgan/critic_loss"].append(loss.item())
        for k, v in stats.items():
            self._metrics[f"wgan/{k}"].append(v)
        return loss.detach()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Critic loss on a batch (used by `evaluate`); fake samples are drawn fresh."""
        wgan = self.accelerator.unwrap_model(model)
        real = inputs["x"].flatten(1).to(wgan.dtype)
        with torch.enable_grad():  # the gradient penalty needs input gradients even in eval
            fake = wgan.generate_from(wgan.noise(real.shape[0])).detach()
            loss, _ = self.objective.critic_loss(wgan.critic_scores, real, fake)
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:
            logs.update({k: sum(v) / len(v) for k, v in self._metrics.items()})
            self._metrics.clear()
        super().log(logs, start_time)
