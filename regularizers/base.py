"""The one regularizer interface, the per-step context it sees, and ``REGULARIZERS``, the
registry of regularizer classes by name (a `decoding.registry.Registry`).

A regularizer is a small object with up to four hooks, all optional:

- ``on_embedding_output(output)``: edit the word-embedding output of the *main* forward pass
  (Gaussian noise);
- ``loss_term(ctx)``: terms added to the loss before the main backward (gradient penalties,
  WEISSI as a loss);
- ``after_backward(ctx)``: extra forward/backward passes after the main backward, accumulating
  into the same gradients (FGM, PGD, VAT);
- ``attach(optimizer, model, record)``: optimizer step hooks (clipping, decoupled WEISSI).

Hooks return ``{name: scalar tensor}``; the trainer averages them over the logging interval and
logs them under those names (``"reg/gp"``, ``"adv/loss"``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from decoding.registry import Registry

__all__ = [
    "REGULARIZERS",
    "Regularizer",
    "StepContext",
    "build_regularizer",
]


class Regularizer:
    """Base class: every hook is a no-op, so a subclass overrides only what it needs.

    Class attributes:
        name: its name in ``REGULARIZERS`` (set by ``REGULARIZERS.register(name)``).
        requires: what the main forward must record, a subset of
            ``{"matrix_grad", "output_grad", "outputs", "double_backprop"}``: the dense gradient of
            the loss w.r.t. the word-embedding matrix, the gradient w.r.t. the word-embedding output
            (a zero leaf added to it, shape (B, T, D)), the model outputs (logits), and a main
            forward that supports double backprop (math attention kernel).
        uses_unlabeled: whether ``after_backward`` wants an unlabelled batch when one is available.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    uses_unlabeled: ClassVar[bool] = False

    def on_embedding_output(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def loss_term(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {}

    def after_backward(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {}

    def attach(
        self,
        optimizer: torch.optim.Optimizer,
        model: nn.Module,
        record: Callable[[dict[str, torch.Tensor]], None],
    ) -> list[Any]:
        """Install hooks on the (unwrapped torch) optimizer; return their handles.

        ``record`` takes ``{name: scalar}`` to be logged like the other hooks' returns.
        """
        return []

    @classmethod
    def from_args(cls, args: Any) -> Regularizer | None:
        """Build from a ``RegularizedTrainingArguments``; ``None`` when switched off there."""
        return None


@dataclass
class StepContext:
    """What a regularizer sees during one training micro-batch.

    Attributes:
        model: the model as the trainer calls it (possibly wrapped by accelerate).
        embedding: the word-embedding module (``get_input_embeddings()`` of the unwrapped model).
        inputs: the micro-batch (already on the device).
        loss: the clean micro-batch loss, still attached to the graph inside ``loss_term``.
        outputs: the model outputs of the main forward (``.logits`` when the model returns them).
        matrix_leaf: zero (V, D) leaf added to the embedding matrix in the main pass; its ``.grad``
            holds dL/dE after the main backward (when some regularizer requires ``matrix_grad``).
        output_leaf: zero (B, T, D) leaf added to the word-embedding output in the main pass.
        loss_fn: ``loss_fn(inputs, matrix=None, output=None) -> (loss, outputs)``; a forward pass
            with the given additive perturbations of the embedding matrix / output.
        logits_fn: same, returning the logits only (for unlabelled batches).
        backward: ``backward(loss, batch_mean=False)`` scales ``loss`` like the main loss for
            gradient accumulation (``batch_mean=True``: a per-micro-batch mean, always divided by
            the accumulation steps) and back-propagates through the accelerator.
        unlabeled_inputs: an unlabelled batch for semi-supervised regularizers, or ``None``.
    """

    model: nn.Module
    embedding: nn.Module
    inputs: Mapping[str, Any]
    loss: torch.Tensor
    outputs: Any
    loss_fn: Callable[..., tuple[torch.Tensor, Any]]
    logits_fn: Callable[..., torch.Tensor]
    backward: Callable[..., None]
    matrix_leaf: torch.Tensor | None = None
    output_leaf: torch.Tensor | None = None
    unlabeled_inputs: Mapping[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _set_name(name: str, cls: type[Regularizer]) -> None:
    cls.name = name


# name -> regularizer class: ``@REGULARIZERS.register("fgm")`` on the class (duplicates raise);
# ``REGULARIZERS["nope"]`` raises a KeyError (also a ValueError) listing the known names.
REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer", on_register=_set_name)


def build_regularizer(name: str, **kwargs: Any) -> Regularizer:
    """``build_regularizer("fgm", epsilon=0.5)``: ``REGULARIZERS[name](**kwargs)``."""
    return REGULARIZERS[name](**kwargs)
