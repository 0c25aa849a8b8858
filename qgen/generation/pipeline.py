"""`transformers.pipeline("qa-generation", model=DIR)`: passages in, question-answer pairs out.

``import qgen`` registers the task. The pipeline is a thin shell around `QAGenerator`: a list
of passages is generated in batches of ``batch_size`` passage windows (the two decoding stages
run batched), not one passage at a time.

    >>> import qgen, transformers
    >>> qa = transformers.pipeline("qa-generation")          # the English model shipped with qgen
    >>> qa("The Eiffel Tower is in Paris.", num_pairs=2)
    [{'question': 'where is the eiffel tower?', 'answer': 'Paris', 'answer_start': 23, 'score': -0.41}, ...]
    >>> transformers.pipeline("qa-generation", model="runs/qag")   # a model you trained

The model directory's saved decoding settings (``qa_generation_config.json``) are the defaults;
arguments at construction or per call override them.
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

from qgen.generation.config import generator_kwargs
from qgen.generation.generator import QAGenerator
from qgen.io.corpus import check_passages
from qgen.modeling.pretrained import default_model_path
from qgen.modeling.unilm import UniLMForQAGeneration

__all__ = ["QAGenerationPipeline", "TASK", "ShippedModelDefault"]

TASK = "qa-generation"

_GENERATOR_ARGS = (
    "answer_config",
    "question_config",
    "preset",
    "max_source_length",
    "window_stride",
    "use_cache",
    "seed",
    "constrain_answers",
    "answer_candidates",
)
_CALL_ARGS = ("num_pairs", "keep_non_span_answers")


class ShippedModelDefault:
    """The task's default model for ``transformers.pipeline("qa-generation")``.

    transformers unpacks a task's default as ``(model, revision)`` only when no model is given;
    unpacking this checks the shipped checkpoint then, so a missing or damaged one gets qgen's
    clear error instead of a failed Hub lookup of a path.
    """

    def __iter__(self):
        return iter((default_model_path(), None))


class QAGenerationPipeline(Pipeline):
    """Generate ``{"question", "answer", "answer_start", "score"}`` pairs for passages.

    Call arguments (also accepted by ``transformers.pipeline(...)`` as defaults):
        num_pairs: pairs per passage (default: the model's saved setting, 3).
        keep_non_span_answers: with ``constrain_answers=False``, keep answers that are not a
            span of the passage (default False).
        batch_size: passage windows per decoding call (default 8).
        answer_config, question_config, preset, max_source_length, window_stride, use_cache,
        seed, constrain_answers, answer_candidates: as in `qgen.generation.generator.QAGenerator`.

    Returns:
        For one passage (a string) a list of pairs; for a list of passages, one list per passage.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _pipeline_calls_generate = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.model, UniLMForQAGeneration):
            raise TypeError(
                f"the qa-generation pipeline needs a UniLMForQAGeneration model, got {type(self.model).__name__}"
            )
        self.model.eval()

    def _sanitize_parameters(self, **kwargs):
        unknown = set(kwargs) - set(_GENERATOR_ARGS) - set(_CALL_ARGS)
        if unknown:
            raise TypeError(f"unknown qa-generation argument(s): {sorted(unknown)}")
        forward = {k: v for k, v in kwargs.items() if v is not None}
        return {}, forward, {}

    def _generate(
        self, passages: list[str], batch_size: int, params: dict[str, Any]
    ) -> list[list[dict]]:
        overrides = {k: params[k] for k in _GENERATOR_ARGS if k in params}
        settings = generator_kwargs(self.model.name_or_path, **overrides)
        generator = QAGenerator(self.model, self.tokenizer, **settings)
        call = {k: params[k] for k in _CALL_ARGS if k in params}
        return generator.generate(passages, batch_size=batch_size, **call)

    def __call__(self, inputs: str | list[str], batch_size: int | None = None, **kwargs):
        """Generate pairs for one passage (str) or a list of passages."""
        single = isinstance(inputs, str)
        passages = check_passages([inputs] if single else list(inputs))
        _, forward, _ = self._sanitize_parameters(**kwargs)
        params = {**self._forward_params, **forward}
        batch_size = batch_size or self._batch_size or 8
        out = self._generate(passages, batch_size, params) if passages else []
        return out[0] if single else out

    # The single-input path of the base class (`run_single`) still works through these three.
    def preprocess(self, passage: str, **_: Any) -> dict[str, Any]:
        return {"passage": passage}

    def _forward(self, model_inputs: dict[str, Any], **params: Any) -> dict[str, Any]:
        return {"pairs": self._generate([model_inputs["passage"]], 1, params)[0]}

    def postprocess(self, model_outputs: dict[str, Any], **_: Any) -> list[dict[str, Any]]:
        return model_outputs["pairs"]
