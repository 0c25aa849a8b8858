"""The trained English model that ships inside the package, and checked loading of any qgen model
directory.

``qgen/models/en-qag-minilm-l6/`` holds all-MiniLM-L6-v2 fine-tuned as an answer-then-question
generator on SQuAD (the Du et al. 2017 train split): fp16 safetensors, the tokenizer, its decoding
settings (``qa_generation_config.json``) and a model card (``README.md``). `QAGenerator.from_pretrained()`,
``qgen generate`` / ``qgen evaluate`` without ``--model`` and ``transformers.pipeline("qa-generation")``
without a model use it.

``qgen/models/en-reader-minilm-l6/`` holds an extractive reader (all-MiniLM-L6-v2 fine-tuned as a
``BertForQuestionAnswering`` on the same SQuAD train split, with its model card): ``qgen generate
--round_trip`` with the shipped model asks it each generated question and keeps the pairs whose
answer it finds (`default_reader_path`).

`check_model_dir` runs before any weights are read: a directory without ``config.json``, a model
that is not a qgen model, and a missing, truncated or placeholder (Git LFS pointer) weights file each
get an error that names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_READER",
    "LANGUAGE_MODELS",
    "QGenModelError",
    "check_model_dir",
    "default_model_path",
    "default_reader_path",
    "is_shipped_english",
    "language_model_path",
    "load_model",
    "quantize_int8",
    "shipped_or_path",
]

DEFAULT_MODEL = "en-qag-minilm-l6"
DEFAULT_READER = "en-reader-minilm-l6"
# language code -> the shipped qag model of that language (QAGenerator.from_pretrained("zh"),
# qgen generate --model zh); the Chinese one ships once its training is finished
LANGUAGE_MODELS = {"en": DEFAULT_MODEL, "zh": "zh-qag-e5-small-l6"}
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"  # qgen/models
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_TOKENIZER = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")


class QGenModelError(OSError):
    """A model directory that is missing, damaged or not a qgen model."""


def _check_safetensors(path: Path) -> None:
    """The header is readable and the file is as long as the header says (not truncated, not a
    Git LFS pointer)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(f.read(header_len))
        end = max(
            (t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0
        )
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        lfs = path.read_bytes()[:40].startswith(b"version https://git-lfs")
        what = "a Git LFS pointer, not the weights" if lfs else f"unreadable ({err})"
        raise QGenModelError(f"{path}: damaged weights file: {what}") from None
    if size != 8 + header_len + end:
        raise QGenModelError(
            f"{path}: damaged weights file: {size} bytes, the header says {8 + header_len + end} "
            "(truncated or partly downloaded)"
        )


def check_model_dir(path: str | os.PathLike, hint: str = "", reader: bool = False) -> None:
    """Check that ``path`` is a complete qgen model (or extractive reader) directory before
    loading it.

    Args:
        path: the directory.
        hint: appended to the error message (what to do).
        reader: check an extractive reader (any ``AutoModelForQuestionAnswering``) instead.

    Raises:
        QGenModelError: naming the file and the problem.
    """
    p = Path(path)
    suffix = f" {hint}" if hint else ""
    config = p / "config.json"
    if not p.is_dir():
        raise QGenModelError(f"{path}: no such model directory.{suffix}")
    if not config.is_file():
        raise QGenModelError(f"{path}: not a model directory (no config.json).{suffix}")
    try:
        fields = json.loads(config.read_text(encoding="utf-8"))
        model_type, architectures = fields.get("model_type"), fields.get("architectures") or []
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise QGenModelError(f"{config}: cannot read model config ({err}).{suffix}") from None
    from qgen.modeling.unilm import UniLMConfig

    if reader:
        if not any(a.endswith("ForQuestionAnswering") for a in architectures):
            raise QGenModelError(
                f"{config}: field 'architectures' is {architectures}: not an extractive QA "
                "model (*ForQuestionAnswering; train one with scripts/train_reader.py)"
            )
    elif model_type != UniLMConfig.model_type:
        raise QGenModelError(
            f"{config}: field 'model_type' is {model_type!r}, not {UniLMConfig.model_type!r}: not "
            "a qgen model (fine-tune a BERT checkpoint with qgen train first)"
        )
    weights = [p / name for name in _WEIGHTS if (p / name).is_file()]
    if not weights:
        raise QGenModelError(f"{path}: no weights file ({' or '.join(_WEIGHTS)}).{suffix}")
    if weights[0].name == "model.safetensors":
        _check_safetensors(weights[0])
    if not any((p / name).is_file() for name in _TOKENIZER):
        raise QGenModelError(f"{path}: no tokenizer files ({' or '.join(_TOKENIZER)}).{suffix}")


def default_model_path() -> str:
    """The directory of the shipped English model, checked.

    Raises:
        QGenModelError: the checkpoint is missing or damaged (e.g. a checkout without it).
    """
    path = MODELS_DIR / DEFAULT_MODEL
    check_model_dir(
        path,
        hint="The shipped model is missing or damaged: reinstall qgen-toolkit (pip install "
        "--force-reinstall qgen-toolkit, or a fresh clone of the repository), or pass a "
        "model directory explicitly (--model DIR / from_pretrained(DIR)).",
    )
    return str(path)


def shipped_or_path(name: str) -> str:
    """``name`` when such a path exists, else the shipped model folder of that name
    (``qgen/models/<name>``, or of a language code: ``"en"``, ``"zh"``, `LANGUAGE_MODELS`) when
    there is one, else ``name`` unchanged (for the check that follows to name it).

    Raises:
        QGenModelError: ``name`` is a language code whose model this install does not ship.
    """
    if os.path.exists(name):
        return name
    if name in LANGUAGE_MODELS:
        return language_model_path(name)
    shipped = MODELS_DIR / name
    return str(shipped) if shipped.is_dir() else name


def language_model_path(language: str) -> str:
    """The checked directory of the shipped qag model of ``language`` (``"en"``, ``"zh"``).

    Raises:
        QGenModelError: no such language, or its model is not in this install.
    """
    if language not in LANGUAGE_MODELS:
        raise QGenModelError(
            f"no shipped model for language {language!r}; shipped: {sorted(LANGUAGE_MODELS)}"
        )
    path = MODELS_DIR / LANGUAGE_MODELS[language]
    if not path.is_dir():
        raise QGenModelError(
            f"{path}: the {LANGUAGE_NAMES.get(language, language)} model is not in this install "
            "yet; pass a model directory trained with qgen train (--model DIR)"
        )
    check_model_dir(path)
    return str(path)


def default_reader_path() -> str:
    """The directory of the shipped English extractive reader, checked.

    Raises:
        QGenModelError: the reader is missing or damaged (e.g. a checkout without it).
    """
    path = MODELS_DIR / DEFAULT_READER
    check_model_dir(
        path, reader=True,
        hint="The shipped reader is missing or damaged: reinstall qgen-toolkit, or pass "
        "--round_trip_reader DIR (or qag: the generating model checks its own pairs).",
    )  # fmt: skip
    return str(path)


def load_model(
    path: str | os.PathLike | None = None, device: str | None = None, int8: bool = False
):
    """Load a qgen model and its tokenizer, checked; float32 weights in eval mode.

    Args:
        path: a qgen model directory, or a language code (``"en"``, ``"zh"``: that language's
            shipped model); None: the shipped English model.
        device: ``"cpu"``, ``"cuda"``, ...; default: CUDA when available.
        int8: quantize the linear layers to int8 (`quantize_int8`; CPU only).

    Returns:
        ``(model, tokenizer)``.
    """
    import torch
    from transformers import AutoTokenizer

    from qgen.modeling.unilm import UniLMForQAGeneration

    if path is None:
        path = default_model_path()
    else:
        path = shipped_or_path(os.fspath(path))  # a directory, or a language code ("zh")
        check_model_dir(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    # The shipped weights are fp16 on disk; compute in float32 (fp16 is slow or missing on CPUs).
    model = UniLMForQAGeneration.from_pretrained(path, dtype=torch.float32)
    model = model.to(device).eval()
    return (quantize_int8(model) if int8 else model), tokenizer


def quantize_int8(model):
    """A copy of ``model`` for CPU inference whose linear layers hold int8 weights, their inputs
    quantized per batch at run time (PyTorch dynamic quantization). Decoding one token at a time
    is bound by reading weights, so a quarter of the bytes makes it faster; quality measured
    in docs/results.md. The embeddings and layer norms stay float32.

    Raises:
        ValueError: the model is not on a CPU (dynamic quantization has no GPU kernels; use
            bf16 there).
    """
    import warnings

    import torch

    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 runs on CPUs only (PyTorch dynamic quantization); on a GPU use bf16")
    with warnings.catch_warnings():  # torch.ao's notice that this API moves to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def is_shipped_english(model: str | os.PathLike | None) -> bool:
    """Whether ``model`` (a directory, a shipped name or language code, or None: the default)
    is the English qag model shipped with qgen, whose reader ships with it too."""
    if model is None:
        return True
    try:
        path = shipped_or_path(os.fspath(model))
    except QGenModelError:  # a language whose model is not shipped
        return False
    english = MODELS_DIR / LANGUAGE_MODELS["en"]
    return english.is_dir() and os.path.isdir(path) and os.path.samefile(path, english)
