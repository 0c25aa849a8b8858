"""Consistent decoding for HF models: processors, greedy/sampling/beam loops, the
self-terminating output layer, and non-termination / repetition metrics."""

from .config import DecodingConfig, DecodingOutput
from .protocol import StepModel

__all__ = ["DecodingConfig", "DecodingOutput", "StepModel"]
