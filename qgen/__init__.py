"""qgen: BERT + UniLM question/answer-pair generation.

Importing the package registers `UniLMConfig` / `UniLMForQAGeneration` with the transformers Auto
classes (model type ``"qgen-unilm"``) and the ``"qa-generation"`` pipeline task.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.pipelines import PIPELINE_REGISTRY

from qgen.generation.config import QAGenerationConfig
from qgen.generation.dataset import generate_dataset, iter_dataset
from qgen.generation.generator import QAGenerator
from qgen.generation.pipeline import TASK, QAGenerationPipeline, ShippedModelDefault
from qgen.generation.presets import PRESETS
from qgen.io.squad import QGenDataError, load_squad
from qgen.modeling.inputs import TASKS, UniLMCollator, split_passage
from qgen.modeling.pretrained import QGenModelError, default_model_path
from qgen.modeling.step import UniLMStepModel
from qgen.modeling.unilm import UniLMConfig, UniLMForQAGeneration, UniLMOutput

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
    "generate_dataset",
    "iter_dataset",
    "default_model_path",
    "load_squad",
    "split_passage",
]


def __getattr__(name: str):
    # the training side loads on demand: `import qgen` (and every inference module) stays free
    # of it, and `qgen.build_features` still works
    if name == "build_features":
        from qgen.training.features import build_features

        return build_features
    raise AttributeError(f"module 'qgen' has no attribute {name!r}")


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
