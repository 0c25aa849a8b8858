"""Consistent decoding for HF models: processors, greedy/sampling/beam loops, the
self-terminating output layer, and non-termination / repetition metrics."""

from . import metrics
from .adapters import HFCausalLMAdapter, HFEncoderDecoderAdapter, as_step_model
from .config import DecodingConfig, DecodingOutput
from .decode import STRATEGY_REGISTRY, decode, generate_kwargs, register_strategy
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
    register,
)
from .protocol import StepModel
from .self_terminating import SelfTerminatingHead, SelfTerminatingStepModel
from .spans import SpanConstraintProcessor, word_boundaries

__all__ = [
    "PROCESSORS",
    "STRATEGY_REGISTRY",
    "ConsistentTopK",
    "ConsistentTopP",
    "DecodingConfig",
    "DecodingOutput",
    "HFCausalLMAdapter",
    "HFEncoderDecoderAdapter",
    "MinNewTokensProcessor",
    "NoRepeatNGramProcessor",
    "RepetitionPenaltyProcessor",
    "SpanConstraintProcessor",
    "StepModel",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "as_step_model",
    "build_processors",
    "decode",
    "generate_kwargs",
    "register",
    "register_strategy",
    "word_boundaries",
]
__all__ += ["SelfTerminatingHead", "SelfTerminatingStepModel", "metrics"]
