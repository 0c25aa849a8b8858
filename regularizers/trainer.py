"""``RegularizedTrainer``: a ``transformers.Trainer`` that runs a list of regularizers.

Per micro-batch (``training_step``):
1. main forward with an ``EmbeddingTap`` on the word embeddings (noise; zero leaves that record
   dL/dE and dL/de when a regularizer requires them);
2. loss terms (gradient penalties, WEISSI) are added to the loss, which the Trainer scales for
   gradient accumulation and back-propagates through ``accelerator.backward``;
3. ``after_backward`` hooks run their extra passes (FGM, PGD, VAT), scaled the same way and
   accumulated into the same gradients.
Optimizer hooks (clipping, decoupled WEISSI) are installed on the torch optimizer in
``create_optimizer``; a clipping regularizer switches the Trainer's ``max_grad_norm`` off. Every
term returned by a hook is averaged over the logging interval and logged under its own name.
With no regularizers the trainer is exactly ``Trainer``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.data import DataLoader
from transformers import Trainer

from .arguments import RegularizedTrainingArguments, from_training_args
from .base import Regularizer, StepContext
from .clipping import GradientClipping
from .embedding import EmbeddingTap

__all__ = ["RegularizedTrainer"]

logger = logging.getLogger(__name__)


class RegularizedTrainer(Trainer):
    """``Trainer`` plus regularizers.

    Args:
        regularizers: regularizer objects; when ``None`` they are built from ``args`` if it is a
            ``RegularizedTrainingArguments`` (``from_training_args``), else none.
        unlabeled_dataset: optional dataset without labels; regularizers with ``uses_unlabeled``
            (VAT) get one batch of it (collated by ``data_collator``) per labelled micro-batch.
        *args, **kwargs: passed to ``Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        regularizers: Sequence[Regularizer] | None = None,
        unlabeled_dataset: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if regularizers is None:
            regularizers = (
                from_training_args(self.args)
                if isinstance(self.args, RegularizedTrainingArguments)
                else []
            )
        self.regularizers: list[Regularizer] = list(regularizers)
        if (
            any(isinstance(r, GradientClipping) for r in self.regularizers)
            and self.args.max_grad_norm
        ):
            logger.info("a clipping regularizer replaces max_grad_norm=%s", self.args.max_grad_norm)
            self.args.max_grad_norm = 0.0
        self.unlabeled_dataset = unlabeled_dataset
        self._unlabeled_iter = None
        self._reg_sums: dict[str, torch.Tensor] = {}
        self._reg_counts: dict[str, int] = {}
        self._hooked_optimizers: set[int] = set()
        self._ctx: StepContext | None = None

    # ---- optimizer hooks -------------------------------------------------------------------
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer
        if id(inner) not in self._hooked_optimizers:
            self._hooked_optimizers.add(id(inner))
            target = self.model if model is None else model
            for reg in self.regularizers:
                reg.attach(inner, target, self._record)
        return optimizer

    # ---- logging ---------------------------------------------------------------------------
    def _record(self, terms: Mapping[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            value = value.detach().float()
            self._reg_sums[name] = self._reg_sums.get(name, 0.0) + value
            self._reg_counts[name] = self._reg_counts.get(name, 0) + 1

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs and self._reg_sums:
            for name, total in self._reg_sums.items():
                logs[name] = round(float(total) / self._reg_counts[name], 6)
            self._reg_sums, self._reg_counts = {}, {}
        super().log(logs, *args, **kwargs)

    # ---- the training step -----------------------------------------------------------------
    def _embedding(self, model: nn.Module) -> nn.Module:
        return self.accelerator.unwrap_model(model).get_input_embeddings()

    def _loss_scaled_for_ga(self, num_items_in_batch: Any) -> bool:
        if self.loss_is_scaled_for_ga is not None:
            return self.loss_is_scaled_for_ga
        return (
            self.model_accepts_loss_kwargs and num_items_in_batch is not None
        ) or self.compute_loss_func is not None

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        if not (self.regularizers and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        requires = set().union(*(r.requires for r in self.regularizers))
        embedding = self._embedding(model)
        matrix_leaf = None
        if "matrix_grad" in requires:
            matrix_leaf = torch.zeros_like(
                embedding.weight, dtype=torch.float32, requires_grad=True
            )
        transforms = [
            r.on_embedding_output
            for r in self.regularizers
            if type(r).on_embedding_output is not Regularizer.on_embedding_output
        ]
        uses_tap = transforms or {"matrix_grad", "output_grad"} & requires
        tap = EmbeddingTap(
            embedding,
            matrix=matrix_leaf,
            output="zeros" if "output_grad" in requires else None,
            transforms=transforms,
        )
        # Fused attention kernels have no double backward; gradient penalties need one.
        kernel = sdpa_kernel(SDPBackend.MATH) if "double_backprop" in requires else nullcontext()
        with tap if uses_tap else nullcontext(), kernel:
            loss, outputs = super().compute_loss(model, dict(inputs), True, num_items_in_batch)

        def loss_fn(batch: Mapping[str, Any], matrix: Any = None, output: Any = None) -> Any:
            with self.compute_loss_context_manager(), EmbeddingTap(embedding, matrix, output):
                return super(RegularizedTrainer, self).compute_loss(
                    model, dict(batch), True, num_items_in_batch
                )

        def logits_fn(batch: Mapping[str, Any], matrix: Any = None, output: Any = None) -> Any:
            with self.compute_loss_context_manager(), EmbeddingTap(embedding, matrix, output):
                return model(**batch)["logits"]

        def backward(extra_loss: torch.Tensor, batch_mean: bool = False) -> None:
            if self.args.n_gpu > 1:
                extra_loss = extra_loss.mean()
            if batch_mean or not self._loss_scaled_for_ga(num_items_in_batch):
                extra_loss = extra_loss / self.current_gradient_accumulation_steps
            self.accelerator.backward(extra_loss)

        # Regularizers see a micro-batch-mean loss and return micro-batch terms; when the model
        # already divided the loss for gradient accumulation (num_items_in_batch), undo and redo
        # that division around them (exact when the micro-batches hold equal item counts).
        ga = (
            self.current_gradient_accumulation_steps
            if self._loss_scaled_for_ga(num_items_in_batch)
            else 1
        )
        ctx = StepContext(
            model=model,
            embedding=embedding,
            inputs=inputs,
            loss=loss * ga,
            outputs=outputs,
            loss_fn=loss_fn,
            logits_fn=logits_fn,
            backward=backward,
            matrix_leaf=matrix_leaf,
            output_leaf=tap.output_leaf,
        )
        terms: dict[str, torch.Tensor] = {}
        for reg in self.regularizers:
            terms.update(reg.loss_term(ctx))
        self._record(terms)
        total = loss + sum(terms.values()) / ga if terms else loss
        self._ctx = ctx
        return (total, outputs) if return_outputs else total

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        self._ctx = None
        loss = super().training_step(model, inputs, num_items_in_batch)
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return loss
        if self.unlabeled_dataset is not None and any(r.uses_unlabeled for r in self.regularizers):
            ctx.unlabeled_inputs = self._next_unlabeled_batch()
        for reg in self.regularizers:
            self._record(reg.after_backward(ctx))
        return loss

    def _next_unlabeled_batch(self) -> dict[str, Any]:
        if self._unlabeled_iter is None:
            dataset = self.unlabeled_dataset
            if hasattr(dataset, "column_names"):
                dataset = self._remove_unused_columns(dataset, description="unlabeled")
            generator = torch.Generator().manual_seed(self.args.seed)
            self._unlabeled_loader = DataLoader(
                dataset,
                batch_size=self.args.per_device_train_batch_size,
                shuffle=True,
                collate_fn=self.data_collator,
                generator=generator,
            )
            self._unlabeled_iter = iter(self._unlabeled_loader)
        try:
            batch = next(self._unlabeled_iter)
        except StopIteration:
            self._unlabeled_iter = iter(self._unlabeled_loader)
            batch = next(self._unlabeled_iter)
        batch = {k: v for k, v in batch.items() if k not in ("labels", "label", "label_ids")}
        return self._prepare_inputs(batch)
