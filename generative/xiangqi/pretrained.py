"""The shipped model: where it lives (`default_model_dir`) and how any trained model is loaded
(`load_xiangqi_model`).

Importing this module costs nothing (``os`` only): the command line and the UCI engine ask for
the model directory before they need the model, and torch / transformers are imported inside
`load_xiangqi_model`, when the model is really loaded (``isready`` or the first ``go``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from .tokenizer import XiangqiTokenizerBase

__all__ = ["SHIPPED_MODEL", "default_model_dir", "load_xiangqi_model"]

# the model shipped in the package (generative/xiangqi/models/<name>/, model card inside)
SHIPPED_MODEL = os.path.join(os.path.dirname(__file__), "models", "ccpd-move-gpt2-1m")


def default_model_dir() -> str | None:
    """The shipped model's directory, or None when the package has no model."""
    return SHIPPED_MODEL if os.path.isfile(os.path.join(SHIPPED_MODEL, "config.json")) else None


def load_xiangqi_model(model_dir: str) -> tuple[PreTrainedModel, XiangqiTokenizerBase]:
    """The model (eval mode, float32) and tokenizer saved by `train_xiangqi` (or shipped).

    Raises:
        OSError: when ``model_dir`` holds no model (the message names the directory).
    """
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise OSError(f"no Xiangqi model in {model_dir!r} (no config.json)")
    import torch
    from transformers import AutoModelForCausalLM

    from .tokenizer import load_xiangqi_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return model, load_xiangqi_tokenizer(model_dir)
