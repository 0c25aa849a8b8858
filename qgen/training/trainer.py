"""Fine-tuning a BERT checkpoint as a UniLM question / QA-pair generator with the HF `Trainer`.

`scripts/train_qag.py` parses the three dataclasses below with `HfArgumentParser` and calls
:func:`train`. The same code runs on CPU and, unchanged, under ``accelerate launch`` /
``torchrun`` on several GPUs (the `Trainer` handles devices, DDP, gradient accumulation and
mixed precision); ``--mixed_precision auto`` picks bf16 (or fp16) when a GPU supports it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import datasets
import torch
from transformers import AutoTokenizer
from transformers.trainer_utils import get_last_checkpoint

from qgen.io.squad import drop_long_answers, load_squad
from qgen.modeling.inputs import TASKS, UniLMCollator
from qgen.modeling.unilm import UniLMForQAGeneration
from qgen.training.features import build_features

# the QG script takes the regularizer options (--fgm_epsilon, --clip_mode, ...; docs/qgen.md,
# "Training", and docs/regularization.md, "Use")
from regularizers import RegularizedTrainer as _Trainer
from regularizers import RegularizedTrainingArguments as _TrainingArguments

# shared with generative.xiangqi (the wall-clock budget of --max_train_minutes)
from regularizers.callbacks import TimeBudgetCallback, has_accelerator

__all__ = [
    "ModelArguments",
    "DataArguments",
    "QGTrainingArguments",
    "load_training_data",
    "split_by_context",
    "cpu_has_native_bf16",
    "train",
]

logger = logging.getLogger(__name__)
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")


@dataclass
class ModelArguments:
    """Which checkpoint to start from."""

    model_name_or_path: str = field(
        metadata={"help": "A BERT checkpoint directory (or a qgen model) to fine-tune."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer directory; defaults to model_name_or_path."}
    )
    num_hidden_layers: int | None = field(
        default=None,
        metadata={
            "help": "Keep only the first N encoder layers of the backbone (about N/L of the "
            "training and generation time of an L-layer backbone); default: all of them."
        },
    )

    def __post_init__(self):
        if self.num_hidden_layers is not None and self.num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers={self.num_hidden_layers} must be >= 1")


@dataclass
class DataArguments:
    """What to train on and how to assemble source and target."""

    train_file: str = field(
        metadata={"help": "SQuAD-format JSON / JSONL file; several files separated by commas."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "SQuAD-format file(s) for the evaluation loss."}
    )
    task: str = field(default="qag", metadata={"help": f"One of {TASKS}."})
    max_length: int = field(default=384, metadata={"help": "Max tokens of source + target."})
    max_answer_length: int = field(default=32, metadata={"help": "Max answer tokens (qag/qg)."})
    max_question_length: int = field(default=64, metadata={"help": "Max question tokens."})
    validation_split: float = field(
        default=0.0,
        metadata={
            "help": "Without --validation_file, hold out this fraction of the training passages "
            "(split by passage, so no passage is in both); written to output_dir/heldout.jsonl."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use a seeded random subset of N training questions (smoke/CPU runs)."},
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N evaluation questions."}
    )
    pack: bool = field(
        default=True,
        metadata={
            "help": "Put the targets of questions that share a passage after one copy of it "
            "(each example's loss and gradients unchanged, ~3x fewer tokens on SQuAD). A batch "
            "is then --per_device_train_batch_size packed rows (~4.6 questions each on SQuAD), "
            "so a step sees more questions. --no_pack: one row per question."
        },
    )

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not one of {TASKS}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split={self.validation_split} must be in [0, 1)")
        for name in ("max_length", "max_answer_length", "max_question_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be >= 1")


@dataclass
class QGTrainingArguments(_TrainingArguments):
    """`TrainingArguments` (with the regularizer options when available) plus ``mixed_precision``."""

    mixed_precision: str = field(
        default="auto",
        metadata={
            "help": f"One of {MIXED_PRECISION}; 'auto' = bf16 on GPUs that support it, else fp16 "
            "on GPU; on a CPU with native bf16 (AVX512-BF16 or AMX), bf16 autocast; else full "
            "precision. Master weights stay fp32. --bf16/--fp16 given explicitly win."
        },
    )
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate (AdamW)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints to keep."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training (and save) after this many minutes of wall time: for CPU "
            "runs on a budget. Unset, training goes the full --num_train_epochs/--max_steps."
        },
    )

    def __post_init__(self):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not has_accelerator():
            # `torchrun --nproc_per_node N` on a machine without GPUs: the Trainer runs
            # distributed (gloo) only with use_cpu; otherwise each process would train alone
            # and all of them would write the same output directory.
            self.use_cpu = True
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise ValueError(f"max_train_minutes={self.max_train_minutes} must be > 0")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision={self.mixed_precision!r} is not one of {MIXED_PRECISION}"
            )
        if not (self.bf16 or self.fp16):
            on_cpu = getattr(self, "use_cpu", False) or not has_accelerator()
            mode = self.mixed_precision
            if mode == "auto":
                if on_cpu:
                    mode = "bf16" if cpu_has_native_bf16() else "no"
                elif torch.cuda.is_available():
                    mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            if on_cpu and mode == "fp16":
                raise ValueError("mixed_precision='fp16' needs a GPU; on CPU use 'bf16' or 'no'")
            if on_cpu and mode == "bf16":
                self.use_cpu = True  # the Trainer accepts bf16 on CPU only with use_cpu
            self.bf16, self.fp16 = mode == "bf16", mode == "fp16"
        super().__post_init__()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is faster
    than fp32 (1.3-1.6x for a MiniLM-L6 training step on an AVX512-BF16 CPU); on other CPUs bf16
    is emulated and slower."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def load_training_data(paths: str, max_samples: int | None = None) -> datasets.Dataset:
    """Load one or several (comma-separated) SQuAD-format files as one flat dataset."""
    parts = [load_squad(p.strip()) for p in paths.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"no file given in {paths!r}")
    ds = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    return ds


def split_by_context(
    ds: datasets.Dataset, fraction: float, seed: int = 42
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a flat dataset into (train, held-out) so that no passage lands in both."""
    contexts = sorted(set(ds["context"]))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(contexts), generator=generator).tolist()
    n_held = max(1, round(fraction * len(contexts)))
    held = {contexts[i] for i in order[:n_held]}
    is_held = [c in held for c in ds["context"]]
    train_idx = [i for i, h in enumerate(is_held) if not h]
    held_idx = [i for i, h in enumerate(is_held) if h]
    return ds.select(train_idx), ds.select(held_idx)


def _features(ds, tokenizer, data_args: DataArguments, training_args) -> datasets.Dataset:
    with training_args.main_process_first(desc="tokenising"):
        return build_features(
            ds,
            tokenizer,
            data_args.task,
            max_length=data_args.max_length,
            max_answer_length=data_args.max_answer_length,
            max_question_length=data_args.max_question_length,
            training=True,
            pack=data_args.pack,
        )


def _resolve_checkpoint(resume: str | None, output_dir: str) -> str | None:
    """``--resume_from_checkpoint latest`` means the newest checkpoint in ``output_dir``."""
    if resume not in ("latest", "auto", "True", "true"):
        return resume
    last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if last is None:
        raise ValueError(
            f"resume_from_checkpoint={resume!r}: no checkpoint-* folder in {output_dir}"
        )
    return last


def train(
    model_args: ModelArguments, data_args: DataArguments, training_args: QGTrainingArguments
) -> dict[str, float]:
    """Fine-tune, save model + tokenizer to ``training_args.output_dir`` and return the metrics.

    The saved directory is a qgen model: ``qgen generate --model OUTPUT_DIR`` and
    ``transformers.pipeline("qa-generation", model=OUTPUT_DIR)`` load it.
    """
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path
    )
    overrides = {}
    if model_args.num_hidden_layers is not None:
        overrides["num_hidden_layers"] = model_args.num_hidden_layers
    # the layers past num_hidden_layers are not loaded (transformers names them unexpected)
    model = UniLMForQAGeneration.from_pretrained(model_args.model_name_or_path, **overrides)
    model.config.qgen_task = data_args.task  # saved: the generator then knows where answers go

    raw_train = load_training_data(data_args.train_file)
    raw_eval = None
    if data_args.validation_file:
        raw_eval = load_training_data(data_args.validation_file)
    elif data_args.validation_split > 0:
        raw_train, raw_eval = split_by_context(
            raw_train, data_args.validation_split, training_args.seed
        )
        if training_args.process_index == 0:
            os.makedirs(training_args.output_dir, exist_ok=True)
            raw_eval.to_json(
                os.path.join(training_args.output_dir, "heldout.jsonl"), force_ascii=False
            )
    if data_args.max_train_samples is not None and data_args.max_train_samples < len(raw_train):
        # a seeded random subset: SQuAD files are sorted by article, the first N are one topic
        raw_train = raw_train.shuffle(seed=training_args.seed).select(
            range(data_args.max_train_samples)
        )
    if raw_eval is not None and data_args.max_eval_samples is not None:
        raw_eval = raw_eval.select(range(min(data_args.max_eval_samples, len(raw_eval))))

    if data_args.task == "qg":  # the answer goes into the source: drop answers over the cap
        raw_train = drop_long_answers(raw_train, tokenizer, data_args.max_answer_length)
        raw_eval = drop_long_answers(raw_eval, tokenizer, data_args.max_answer_length)
    train_features = _features(raw_train, tokenizer, data_args, training_args)
    eval_features = _features(raw_eval, tokenizer, data_args, training_args) if raw_eval else None
    logger.info(
        "task=%s train features=%d eval=%s",
        data_args.task,
        len(train_features),
        len(eval_features) if eval_features is not None else 0,
    )

    trainer = _Trainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=UniLMCollator(tokenizer),
        processing_class=tokenizer,
    )
    if training_args.max_train_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(training_args.max_train_minutes))
    resume = _resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    metrics = dict(result.metrics)
    metrics["train_samples"] = len(train_features)  # rows (packed rows hold several questions)
    metrics["train_questions"] = len(raw_train)
    metrics["global_step"] = trainer.state.global_step
    metrics["examples_seen"] = trainer.state.global_step * trainer.get_total_train_batch_size(
        training_args
    )
    if eval_features is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_samples"] = len(eval_features)
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    trainer.save_state()
    return metrics
