"""Which arithmetic inference runs in: bf16 autocast where the hardware computes bf16 natively
(CUDA GPUs with bf16, CPUs with AVX512-BF16 or AMX), fp32 elsewhere (where bf16 is emulated and
slower). One place decides, for the generator, the CLI, the pipeline and training."""

from __future__ import annotations

import torch

__all__ = ["AUTOCAST_CHOICES", "cpu_has_native_bf16", "native_bf16", "resolve_autocast_dtype"]

# what users may pass as ``autocast_dtype`` besides a torch dtype
AUTOCAST_CHOICES = ("auto", "bf16", "fp32")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is faster
    than fp32 (1.3-1.6x for a MiniLM-L6 training step on an AVX512-BF16 CPU); on other CPUs bf16
    is emulated and slower."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 natively."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def _quantized(model) -> bool:
    """Whether ``model`` holds dynamically quantized (int8) layers, which autocast must not
    touch."""
    return any(".quantized" in type(m).__module__ for m in model.modules())


def resolve_autocast_dtype(
    value: torch.dtype | str | None, device: torch.device | str, model=None
) -> torch.dtype | None:
    """The autocast dtype to run under, or None for the model's own (fp32).

    Args:
        value: ``"auto"`` (bf16 where ``device`` computes it natively, else None), ``"bf16"``,
            ``"fp32"`` / None (no autocast), or a torch dtype.
        device: where the model runs.
        model: with int8 (dynamically quantized) layers, ``"auto"`` gives None.

    Raises:
        ValueError: ``value`` is none of these.
    """
    if value is None or isinstance(value, torch.dtype):
        return value
    if value == "fp32":
        return None
    if value == "bf16":
        return torch.bfloat16
    if value == "auto":
        if model is not None and _quantized(model):
            return None
        return torch.bfloat16 if native_bf16(device) else None
    raise ValueError(
        f"autocast_dtype must be a torch dtype, None or one of {AUTOCAST_CHOICES}, got {value!r}"
    )
