"""`ExactLMHead`: a causal LM's logits from the fastest layout that gives its own logits bit
for bit.

On CPU, ``F.linear(h, W)`` with HF's ``(V, H)`` output embedding runs far below memory
bandwidth for a few rows: MKL's GEMM for a small row count over the whole 46 MB matrix of the
benchmark model (8 rows: 8.7 ms, against 2.2-3.4 ms for the layouts below). Two other
layouts compute the same dot products:

* ``transposed``: ``h @ W_t`` (+ bias) from a contiguous ``(H, V)`` copy of the weight;
* ``chunked``: ``F.linear`` on slices of ``CHUNK`` vocabulary rows, each written into its
  columns of one output; a slice is small enough for the BLAS's small-matrix kernel.

Whether a layout sums in the model's order depends on the BLAS kernel the row count selects
(on the benchmark machine, AVX-512: ``chunked`` at every row count tried, ``transposed`` from
32 rows on; on an AVX2 machine ``transposed`` from 2 rows). So the head decides per row count
(and thread count): the first time it meets one, it computes every layout on the hidden
states at hand, keeps those equal to the model's head bit for bit, times them (the model's
head included; the least of ``TIMING_ROUNDS`` interleaved rounds, since noise only adds time)
and uses the fastest from then on. Only float32 on the CPU, outside autocast; everything else
goes to the model's own head, as does anything that autograd records.

Heads are cached per module (`for_model`), together with the weight version they copied, so
the copy and the decisions are made once per model, not once per `decode` call.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CHUNK", "TIMING_ROUNDS", "ExactLMHead"]

CHUNK = 512  # vocabulary rows per slice of the chunked layout (768 KB in float32 at H=384)
TIMING_ROUNDS = 3

Layout = Callable[[torch.Tensor], torch.Tensor]


class ExactLMHead:
    """``linear(hidden)`` computed by the fastest layout found bitwise equal for the row count.

    Args:
        linear: the model's output embedding (an `nn.Linear` without hooks).
    """

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, linear: nn.Linear):
        self.linear = linear
        self.weight = linear.weight.detach()  # (V, H)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self._weight_t: torch.Tensor | None = None  # (H, V), made when first needed
        # (rows, threads) -> the layout chosen, and the name of each choice (for tests, docs)
        self.layouts: dict[tuple[int, int], Layout] = {}
        self.chosen: dict[tuple[int, int], str] = {}

    @classmethod
    def for_model(cls, model: nn.Module) -> ExactLMHead | None:
        """The head of ``model`` (cached per model and weight version), or None when its output
        embedding is not a plain `nn.Linear` or has hooks (which the layouts would bypass)."""
        linear = model.get_output_embeddings()
        if type(linear) is not nn.Linear or linear._forward_hooks or linear._forward_pre_hooks:
            return None
        key = tuple(
            (p.data_ptr(), p._version) for p in (linear.weight, linear.bias) if p is not None
        )
        cached = cls._cache.get(linear)
        if cached is None or cached[0] != key:
            cached = cls._cache[linear] = (key, cls(linear))
        return cached[1]

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, V)
        if (
            hidden.device.type != "cpu"
            or hidden.dtype != torch.float32
            or self.weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or (torch.is_grad_enabled() and hidden.requires_grad)
        ):
            return self.linear(hidden)
        key = (hidden.shape[0], torch.get_num_threads())
        layout = self.layouts.get(key)
        if layout is None:
            return self._choose(hidden.contiguous(), key)
        return layout(hidden)

    def _own(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight, self.bias)

    def _transposed(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return hidden @ self.weight_t
        return torch.addmm(self.bias, hidden, self.weight_t)

    def _chunked(self, hidden: torch.Tensor) -> torch.Tensor:
        vocab = self.weight.shape[0]
        out = hidden.new_empty(hidden.shape[0], vocab)
        for start in range(0, vocab, CHUNK):
            stop = min(start + CHUNK, vocab)
            if self.bias is None:
                torch.mm(hidden, self.weight[start:stop].t(), out=out[:, start:stop])
            else:
                out[:, start:stop] = F.linear(
                    hidden, self.weight[start:stop], self.bias[start:stop]
                )
        return out

    @property
    def weight_t(self) -> torch.Tensor:
        if self._weight_t is None:
            with torch.inference_mode(False):  # a normal tensor, also when made inside decode
                self._weight_t = self.weight.t().contiguous()
        return self._weight_t

    def _choose(self, hidden: torch.Tensor, key: tuple[int, int]) -> torch.Tensor:
        """The model's logits; decide the layout for this row count on the way."""
        own = self.linear(hidden)
        layouts = {"own": self._own, "transposed": self._transposed, "chunked": self._chunked}
        exact = {
            name: fn
            for name, fn in layouts.items()
            if torch.equal(fn(hidden), own)  # "own" too: F.linear is what the module runs
        }
        best = dict.fromkeys(exact, float("inf"))
        for _ in range(TIMING_ROUNDS if len(exact) > 1 else 0):
            for name, fn in exact.items():
                start = time.perf_counter()
                fn(hidden)
                best[name] = min(best[name], time.perf_counter() - start)
        name = min(best, key=best.get) if best else None
        self.layouts[key] = exact[name] if name is not None else self.linear
        self.chosen[key] = name or "module"
        if "transposed" not in self.chosen.values():
            self._weight_t = None  # not worth its memory (remade if another row count asks)
        return own
