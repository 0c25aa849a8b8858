"""Write a trained checkpoint as a compact qgen model directory, as the shipped models were made."""

from __future__ import annotations

import json
import os
from pathlib import Path

from qgen.modeling.pretrained import check_model_dir

__all__ = ["export_model"]


def export_model(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    generation_config=None,
    task: str | None = None,
) -> str:
    """Write a trained checkpoint as a compact qgen model directory (how the shipped model is
    made): fp16 safetensors in one file whose config says float32 (so it loads as float32),
    the tokenizer, and the decoding settings.

    Args:
        checkpoint: a training output or checkpoint directory (model + tokenizer).
        output: the directory to write.
        generation_config: a `QAGenerationConfig` to save beside it (default: the checkpoint's,
            else the defaults).
        task: the task it was trained for (default: the checkpoint's ``qgen_task``).

    Returns:
        The output directory.
    """
    import torch
    from transformers import AutoTokenizer

    from qgen.generation.config import QAGenerationConfig
    from qgen.modeling.unilm import UniLMForQAGeneration

    model = UniLMForQAGeneration.from_pretrained(checkpoint, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if task is not None:
        model.config.qgen_task = task
    if generation_config is None:
        generation_config = QAGenerationConfig.from_pretrained(checkpoint)
    os.makedirs(output, exist_ok=True)
    model.half().save_pretrained(output, max_shard_size="2GB")
    config_path = Path(output) / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"  # compute dtype; the tensors on disk are fp16
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tokenizer.save_pretrained(output)
    generation_config.save_pretrained(output)
    check_model_dir(output)
    return str(output)
