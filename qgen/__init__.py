"""qgen: BERT + UniLM question/answer-pair generation.

Importing the package registers `UniLMConfig` / `UniLMForQAGeneration` with the transformers Auto
classes (model type ``"qgen-unilm"``) and the ``"qa-generation"`` pipeline task.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.pipelines import PIPELINE_REGISTRY

from .data import TASKS, UniLMCollator, build_features, split_passage
from .fast_decoding import UniLMStepModel
from .generation import QAGenerator
from .generation_config import QAGenerationConfig
from .modeling import UniLMConfig, UniLMForQAGeneration, UniLMOutput
from .pipeline import TASK, QAGenerationPipeline, ShippedModelDefault
from .presets import PRESETS
from .pretrained import QGenModelError, default_model_path
from .squad import QGenDataError, load_squad

__all__ = [
    "PRESETS",
    "QAGenerationConfig",
    "QAGenerationPipeline",
    "QAGenerator",
    "QGenModelError",
    "TASKS",
    "QGenDataError",
    "UniLMCollator",
    "UniLMConfig",
    "UniLMForQAGeneration",
    "UniLMOutput",
    "UniLMStepModel",
    "build_features",
    "default_model_path",
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
    if TASK not in PIPELINE_REGISTRY.supported_tasks:
        PIPELINE_REGISTRY.register_pipeline(
            TASK,
            pipeline_class=QAGenerationPipeline,
            pt_model=AutoModelForCausalLM,
            default={"model": ShippedModelDefault()},
            type="text",
        )


_register()
