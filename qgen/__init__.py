"""qgen: BERT + UniLM question/answer-pair generation.

Importing the package registers `UniLMConfig` / `UniLMForQAGeneration` with the transformers Auto
classes (model type ``"qgen-unilm"``).
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .data import TASKS, QGenDataError, UniLMCollator, build_features, load_squad, split_passage
from .modeling import UniLMConfig, UniLMForQAGeneration, UniLMOutput

__all__ = [
    "TASKS",
    "QGenDataError",
    "UniLMCollator",
    "UniLMConfig",
    "UniLMForQAGeneration",
    "UniLMOutput",
    "build_features",
    "load_squad",
    "split_passage",
]


def _register() -> None:
    try:
        AutoConfig.register(UniLMConfig.model_type, UniLMConfig)
    except ValueError:  # already registered (module reloaded)
        pass
    for auto in (AutoModel, AutoModelForCausalLM):
        try:
            auto.register(UniLMConfig, UniLMForQAGeneration)
        except ValueError:
            pass


_register()
