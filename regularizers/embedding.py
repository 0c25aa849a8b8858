"""Additive perturbation of a word-embedding module through a forward hook.

Embedding lookup is linear in the matrix, so ``lookup(ids; E + d) = lookup(ids; E) + lookup(ids; d)``.
Adding ``F.embedding(ids, d)`` to the module output therefore perturbs the whole matrix (Su's
``scope="matrix"``) without touching the weights, and a zero leaf ``d`` receives exactly the
dense gradient dL/dE in ``d.grad``. A (B, T, D) tensor added to the output is the per-example
``scope="output"`` perturbation. The weights themselves are never written to.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EmbeddingTap", "l2_normalize", "SCOPES"]

SCOPES = ("matrix", "output")


def l2_normalize(t: torch.Tensor, scope: str, eps: float = 1e-8) -> torch.Tensor:
    """Divide by the L2 norm: global over the tensor (``"matrix"``) or per example (``"output"``).

    Args:
        t: (V, D) matrix perturbation or (B, T, D) output perturbation.
        scope: ``"matrix"`` (one Frobenius norm, as in Su's code) or ``"output"`` (one norm per
            leading index, as in Miyato et al.).
    """
    if scope == "matrix":
        return t / (t.norm() + eps)
    if scope == "output":
        norm = t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))
        return t / (norm + eps)
    raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


class EmbeddingTap:
    """Context manager: while active, every forward of ``module`` returns a perturbed output.

    Args:
        module: the word-embedding module (``model.get_input_embeddings()``).
        matrix: (V, D) tensor added to the embedding matrix, or ``None``.
        output: (B, T, D) tensor added to the output, ``"zeros"`` for a fresh zero leaf that
            records dL/d(output) in ``.grad`` (created at the first call, see ``output_leaf``),
            or ``None``.
        transforms: callables applied to the output last (e.g. Gaussian noise).
    """

    def __init__(
        self,
        module: nn.Module,
        matrix: torch.Tensor | None = None,
        output: torch.Tensor | str | None = None,
        transforms: list[Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        if matrix is not None and not isinstance(module, nn.Embedding):
            raise TypeError(
                f"scope='matrix' needs an nn.Embedding input embedding, got {type(module).__name__}"
            )
        self.module = module
        self.matrix = matrix
        self.output = output
        self.output_leaf: torch.Tensor | None = output if torch.is_tensor(output) else None
        self.transforms = transforms or []
        self.calls = 0
        self._handle = None

    def _hook(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1 and self.output is not None:
            raise RuntimeError(
                "the word-embedding module was called twice in one perturbed forward"
            )
        if self.matrix is not None:
            ids = args[0]
            out = out + F.embedding(ids, self.matrix.to(out.dtype), padding_idx=module.padding_idx)
        if isinstance(self.output, str):
            self.output_leaf = torch.zeros_like(out, requires_grad=True)
        if self.output_leaf is not None:
            if self.output_leaf.shape != out.shape:
                raise ValueError(
                    f"output perturbation of shape {tuple(self.output_leaf.shape)} does not match "
                    f"the embedding output {tuple(out.shape)}"
                )
            out = out + self.output_leaf.to(out.dtype)
        for fn in self.transforms:
            out = fn(out)
        return out

    def __enter__(self) -> EmbeddingTap:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        if exc[0] is None and self.calls == 0:
            raise RuntimeError(
                "the word-embedding module was not called: embedding regularizers need models "
                "called with input_ids (not inputs_embeds)"
            )
