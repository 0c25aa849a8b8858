"""Consistent decoding for HF models: processors, greedy/sampling/beam loops, the
self-terminating output layer, and non-termination / repetition metrics (docs/decoding.md).

`registry` holds `Registry`, the name -> implementation table that every package of the
repository uses (`PROCESSORS` and `STRATEGIES` here)."""

from . import metrics
from .adapters import HFCausalLMAdapter, HFEncoderDecoderAdapter, as_step_model
from .config import STRATEGIES, DecodingConfig, DecodingOutput
from .decode import decode, generate_kwargs
from .processors import (
    PROCESSORS,
    ConsistentTopK,
    ConsistentTopP,
    MinNewTokensProcessor,
    NoRepeatNGramProcessor,
    RepetitionPenaltyProcessor,
    TemperatureProcessor,
    TopKProcessor,
    TopPProcessor,
    build_processors,
)
from .protocol import StepModel
from .registry import Registry, UnknownNameError
from .self_terminating import SelfTerminatingHead, SelfTerminatingStepModel
from .spans import SpanConstraintProcessor, word_boundaries
from .without_replacement import FirstTokensWithoutReplacement

__all__ = [
    "PROCESSORS",
    "STRATEGIES",
    "ConsistentTopK",
    "ConsistentTopP",
    "DecodingConfig",
    "DecodingOutput",
    "FirstTokensWithoutReplacement",
    "HFCausalLMAdapter",
    "HFEncoderDecoderAdapter",
    "MinNewTokensProcessor",
    "NoRepeatNGramProcessor",
    "Registry",
    "RepetitionPenaltyProcessor",
    "SpanConstraintProcessor",
    "StepModel",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "UnknownNameError",
    "as_step_model",
    "build_processors",
    "decode",
    "generate_kwargs",
    "word_boundaries",
]
__all__ += ["SelfTerminatingHead", "SelfTerminatingStepModel", "metrics"]
