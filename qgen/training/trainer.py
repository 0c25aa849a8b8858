"""Fine-tuning a BERT checkpoint as a UniLM question / QA-pair generator with the HF `Trainer`.

``qgen train`` (`qgen.cli.train`, also ``scripts/train_qag.py``) parses the three dataclasses
below with `HfArgumentParser` and calls :func:`train`. The same code runs on CPU and, unchanged,
under ``accelerate launch`` / ``torchrun`` on several GPUs (the `Trainer` handles devices, DDP,
gradient accumulation and mixed precision); ``--mixed_precision auto`` picks bf16 (or fp16) when
the hardware computes it natively.

``--output_dir D`` ends as a ready qgen model directory: compact fp16 weights, the tokenizer,
``qa_generation_config.json`` and a model card (``README.md``), with the data account
(``training_data.json``) and the metrics (``all_results.json``). The `Trainer` works in
``D/checkpoints`` (``checkpoint-*`` folders, ``trainer_state.json``, the final fp32 weights), where
``--resume_from_checkpoint latest`` finds the newest checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import datasets
import torch
from transformers import AutoTokenizer, TrainerCallback, TrainerState
from transformers.trainer_utils import SaveStrategy, get_last_checkpoint

from qgen.generation.config import QAGenerationConfig
from qgen.generation.language import detect_language
from qgen.io.squad import drop_long_answers
from qgen.modeling.inputs import TASKS, UniLMCollator
from qgen.modeling.precision import cpu_has_native_bf16
from qgen.modeling.unilm import UniLMForQAGeneration
from qgen.training.data import FileReport, has_split, load_training_data, split_by_context
from qgen.training.export import export_model
from qgen.training.features import build_features

# the QG script takes the regularizer options (--fgm_epsilon, --clip_mode, ...; docs/qgen.md,
# "Training", and docs/regularization.md, "Use")
from regularizers import RegularizedTrainer as _Trainer
from regularizers import RegularizedTrainingArguments as _TrainingArguments

# shared with generative.xiangqi (the wall-clock budget of --max_train_minutes)
from regularizers.callbacks import TimeBudgetCallback, has_accelerator

__all__ = [
    "CHECKPOINTS",
    "ModelArguments",
    "DataArguments",
    "QGTrainingArguments",
    "SaveOnStopCallback",
    "checkpoint_dir",
    "cpu_has_native_bf16",
    "load_training_data",
    "resolve_checkpoint",
    "split_by_context",
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


def _paths(value: str | list[str]) -> list[str]:
    """``"a.json,b.json"`` or ``["a.json", "b.json,c.json"]`` -> one path per entry."""
    entries = [value] if isinstance(value, str) else list(value)
    return [p.strip() for entry in entries for p in entry.split(",") if p.strip()]


@dataclass
class DataArguments:
    """What to train on and how to assemble source and target."""

    train_file: list[str] = field(
        metadata={
            "help": "Training data: SQuAD JSON, JSON lines (one context/question/answers record "
            "a line) or a datasets directory (Dataset.save_to_disk; of a DatasetDict, split "
            "'train'). Several files: space- or comma-separated."
        }
    )
    validation_file: list[str] | None = field(
        default=None,
        metadata={"help": "Data for the evaluation loss, in the same forms as --train_file."},
    )
    validation_split_name: str = field(
        default="validation",
        metadata={
            "help": "Without --validation_file or --validation_split: the split of this name of "
            "a DatasetDict directory given as --train_file (if it has one) is the evaluation "
            "data. A DatasetDict given as --validation_file is read at this split."
        },
    )
    task: str = field(default="qag", metadata={"help": f"One of {TASKS}."})
    language: str | None = field(
        default=None,
        metadata={
            "help": "The language the model is trained for, saved in its config "
            "(qgen_language), so that qgen warns when a passage is in another; default: the "
            "script of most training passages (zh for CJK, else en)."
        },
    )
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
        self.train_file = _paths(self.train_file)
        if self.validation_file is not None:
            self.validation_file = _paths(self.validation_file)
        if not self.train_file:
            raise ValueError(f"train_file={self.train_file!r} names no file")
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is not one of {TASKS}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split={self.validation_split} must be in [0, 1)")
        if self.validation_file and self.validation_split > 0:
            raise ValueError(
                f"validation_file={self.validation_file} and validation_split="
                f"{self.validation_split} are alternatives: pick one"
            )
        for name in ("max_length", "max_answer_length", "max_question_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be >= 1")


@dataclass
class QGTrainingArguments(_TrainingArguments):
    """`TrainingArguments` (with the regularizer options when available) plus ``mixed_precision``
    and ``max_train_minutes``; ``output_dir`` is required (it ends as the model directory)."""

    output_dir: str = field(
        metadata={
            "help": "The model directory to write: fp16 weights, tokenizer, "
            "qa_generation_config.json, README.md (model card), training_data.json, "
            "all_results.json; the Trainer's checkpoints go to OUTPUT_DIR/checkpoints."
        }
    )
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


CHECKPOINTS = "checkpoints"  # the Trainer's folder inside the model directory


def checkpoint_dir(output_dir: str) -> str:
    """Where the `Trainer` of a run into ``output_dir`` writes its checkpoints."""
    return os.path.join(output_dir, CHECKPOINTS)


def resolve_checkpoint(resume: str | None, output_dir: str) -> str | None:
    """The checkpoint to resume from: ``resume`` as given, or for ``latest`` the newest
    ``checkpoint-*`` folder of ``output_dir/checkpoints`` (or of ``output_dir`` itself, where
    runs made before that folder wrote them).

    Raises:
        ValueError: ``latest`` and there is no checkpoint.
    """
    if resume not in ("latest", "auto", "True", "true"):
        return resume
    for folder in (checkpoint_dir(output_dir), output_dir):
        last = get_last_checkpoint(folder) if os.path.isdir(folder) else None
        if last is not None:
            return last
    raise ValueError(
        f"resume_from_checkpoint={resume!r}: no checkpoint-* folder in {checkpoint_dir(output_dir)}"
    )


class SaveOnStopCallback(TrainerCallback):
    """Save a checkpoint at the step where a callback stopped training early (the time budget of
    ``--max_train_minutes``), so that ``--resume_from_checkpoint latest`` goes on from there;
    the `Trainer` itself saves at the end only when it reaches ``max_steps``."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_training_stop and args.save_strategy in (
            SaveStrategy.STEPS,
            SaveStrategy.EPOCH,
        ):
            control.should_save = True
        return control


def _read_data(data_args: DataArguments, training_args, output_dir: str):
    """The raw training and evaluation rows and the `FileReport`s of the files read."""
    raw_train, train_reports = load_training_data(data_args.train_file)
    reports = {"train": train_reports, "validation": []}
    raw_eval = None
    if data_args.validation_file:
        raw_eval, reports["validation"] = load_training_data(
            data_args.validation_file, split=data_args.validation_split_name
        )
    elif data_args.validation_split > 0:
        raw_train, raw_eval = split_by_context(
            raw_train, data_args.validation_split, training_args.seed
        )
        if training_args.process_index == 0:
            os.makedirs(output_dir, exist_ok=True)
            raw_eval.to_json(os.path.join(output_dir, "heldout.jsonl"), force_ascii=False)
    else:  # a DatasetDict's own validation split
        dict_dirs = [
            p for p in data_args.train_file if has_split(p, data_args.validation_split_name)
        ]
        if dict_dirs:
            raw_eval, reports["validation"] = load_training_data(
                dict_dirs, split=data_args.validation_split_name
            )
    if data_args.max_train_samples is not None and data_args.max_train_samples < len(raw_train):
        # a seeded random subset: SQuAD files are sorted by article, the first N are one topic
        raw_train = raw_train.shuffle(seed=training_args.seed).select(
            range(data_args.max_train_samples)
        )
    if raw_eval is not None and data_args.max_eval_samples is not None:
        raw_eval = raw_eval.select(range(min(data_args.max_eval_samples, len(raw_eval))))
    return raw_train, raw_eval, reports


def _data_metrics(reports: dict[str, list[FileReport]]) -> dict[str, int]:
    """The training files' counts, summed, as flat metrics (``data_*``)."""
    names = ("questions", "used", "answers", "starts_recomputed", "answers_not_in_context",
             "empty_answers", "questions_without_answer")  # fmt: skip
    return {f"data_{n}": sum(getattr(r, n) for r in reports["train"]) for n in names}


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: QGTrainingArguments,
    command: str | None = None,
) -> dict[str, float]:
    """Fine-tune and write ``training_args.output_dir`` as a ready qgen model directory.

    The data is read (and every problem in it counted or raised) before the model loads. The
    `Trainer` works in ``output_dir/checkpoints``; at the end the first process exports the
    model there to ``output_dir`` (`export_model`: fp16 weights, tokenizer,
    ``qa_generation_config.json``) and writes the model card ``README.md``, the data account
    ``training_data.json`` and the metrics ``all_results.json``. ``qgen generate --model
    OUTPUT_DIR`` and ``transformers.pipeline("qa-generation", model=OUTPUT_DIR)`` load it.

    Args:
        model_args, data_args, training_args: the parsed options.
        command: the command line, for the model card (default: ``sys.argv``).

    Returns:
        The metrics (those of the `Trainer`, the evaluation loss, the ``data_*`` counts).
    """
    started = time.monotonic()
    output_dir = training_args.output_dir
    args = copy.copy(training_args)  # the Trainer writes checkpoints beside, not into, the model
    args.output_dir = checkpoint_dir(output_dir)
    resume = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
    raw_train, raw_eval, reports = _read_data(data_args, args, output_dir)
    tokenizer, model = _load_model(model_args, data_args.task)
    language = data_args.language or data_language(raw_train["context"])
    model.config.qgen_language = language

    if data_args.task == "qg":  # the answer goes into the source: drop answers over the cap
        raw_train = drop_long_answers(raw_train, tokenizer, data_args.max_answer_length)
        raw_eval = drop_long_answers(raw_eval, tokenizer, data_args.max_answer_length)
    train_features = _features(raw_train, tokenizer, data_args, args)
    eval_features = _features(raw_eval, tokenizer, data_args, args) if raw_eval else None
    logger.info(
        "task=%s train questions=%d features=%d eval=%s",
        data_args.task,
        len(raw_train),
        len(train_features),
        len(eval_features) if eval_features is not None else 0,
    )

    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=UniLMCollator(tokenizer),
        processing_class=tokenizer,
    )
    if args.max_train_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(args.max_train_minutes))
    trainer.add_callback(SaveOnStopCallback())  # after the budget: it saves where that stops
    if resume is None and os.path.isdir(args.output_dir) and get_last_checkpoint(args.output_dir):
        logger.warning(
            "%s holds checkpoints of an earlier run: this run starts over (continue one with "
            "--resume_from_checkpoint latest)",
            args.output_dir,
        )
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()  # the fp32 weights, into the checkpoints folder
    metrics = dict(result.metrics)
    metrics["train_samples"] = len(train_features)  # rows (packed rows hold several questions)
    metrics["train_questions"] = len(raw_train)
    metrics["language"] = language
    metrics["global_step"] = trainer.state.global_step
    metrics["examples_seen"] = trainer.state.global_step * trainer.get_total_train_batch_size(args)
    if resume is not None:
        state = TrainerState.load_from_json(os.path.join(resume, "trainer_state.json"))
        metrics["resumed_from_step"] = state.global_step
    metrics.update(_data_metrics(reports))
    if eval_features is not None:
        metrics.update(trainer.evaluate())
        metrics["eval_samples"] = len(eval_features)
        metrics["eval_questions"] = len(raw_eval)
    trainer.log_metrics("all", metrics)
    trainer.save_state()
    if trainer.is_world_process_zero():
        metrics["total_seconds"] = round(time.monotonic() - started, 1)
        _write_model_dir(model_args, data_args, args, output_dir, metrics, reports, command)
    return metrics


def data_language(contexts) -> str:
    """The language of most of the distinct passages (the first 1,000), by script."""
    votes = Counter(detect_language(c) for c in list(dict.fromkeys(contexts))[:1000])
    return votes.most_common(1)[0][0] if votes else "en"


def _load_model(model_args: ModelArguments, task: str):
    """The backbone's tokenizer, and the backbone as a `UniLMForQAGeneration` for ``task``."""
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path
    )
    overrides = {}
    if model_args.num_hidden_layers is not None:
        overrides["num_hidden_layers"] = model_args.num_hidden_layers
    # the layers past num_hidden_layers are not loaded (transformers names them unexpected)
    model = UniLMForQAGeneration.from_pretrained(model_args.model_name_or_path, **overrides)
    model.config.qgen_task = task  # saved: the generator then knows where answers go
    return tokenizer, model


def _write_model_dir(model_args, data_args, args, output_dir, metrics, reports, command) -> None:
    """Export the trained model from the checkpoints folder into ``output_dir`` and write the
    model card, the data account and the metrics beside it."""
    config = QAGenerationConfig.from_pretrained(model_args.model_name_or_path)  # a qgen backbone's
    if data_args.max_length < config.max_source_length:  # no longer windows than it trained on
        config.max_source_length = data_args.max_length
        config.window_stride = min(config.window_stride, data_args.max_length // 4)
    # longer windows where training rows were longer (512 tokens: 384-token windows), within
    # what the source of a training row held and what the positions leave for both stages
    positions = UniLMForQAGeneration.config_class.from_pretrained(args.output_dir)
    fit = min(
        data_args.max_length - data_args.max_answer_length - data_args.max_question_length - 2,
        positions.max_position_embeddings
        - config.answer.max_new_tokens
        - config.question.max_new_tokens,
    )
    if data_args.task == "qag" and fit > config.max_source_length:
        config.max_source_length = fit
    export_model(args.output_dir, output_dir, config, task=data_args.task)
    account = {split: [r.to_dict() for r in rs] for split, rs in reports.items()}
    for name, content in (("training_data.json", account), ("all_results.json", metrics)):
        with open(os.path.join(output_dir, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, ensure_ascii=False)
            f.write("\n")
    card = _model_card(model_args, data_args, args, output_dir, metrics, reports, command)
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    logger.info("model directory ready: %s (qgen generate --model %s)", output_dir, output_dir)


def _hardware(args) -> str:
    processes = f"{args.world_size} process{'es' if args.world_size > 1 else ''}"
    if args.device.type == "cuda":
        return f"{processes}, each on a {torch.cuda.get_device_name(args.device)}"
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f"{processes} on CPU ({os.cpu_count()} cores, {cpu}; {threads} thread(s) each)"


def _data_table(reports: dict[str, list[FileReport]]) -> list[str]:
    lines = [
        "| data | questions used | read | answer starts recomputed | answers not in the context "
        "| questions without an answer (dropped) |",
        "|---|---|---|---|---|---|",
    ]
    for split, split_reports in reports.items():
        for r in split_reports:
            counts = (r.used, r.questions, r.starts_recomputed, r.answers_not_in_context,
                      r.questions_without_answer)  # fmt: skip
            lines.append(f"| {split}: `{r.path}` | " + " | ".join(map(str, counts)) + " |")
    return lines


def _recipe(model_args, data_args, args, metrics) -> dict[str, str]:
    backbone = f"`{model_args.model_name_or_path}`"
    if model_args.num_hidden_layers:
        backbone += f" (its first {model_args.num_hidden_layers} layers)"
    steps = f"{metrics['global_step']} (epochs: {metrics.get('epoch', 0):.2f}"
    if "resumed_from_step" in metrics:
        steps += f"; resumed from step {metrics['resumed_from_step']}"
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    rows, world, accumulation = (
        args.per_device_train_batch_size, args.world_size, args.gradient_accumulation_steps
    )  # fmt: skip
    batch = (
        f"{rows} rows x {world} process(es) x {accumulation} = {rows * world * accumulation} rows"
    )
    if data_args.pack:
        batch += " per step (packed: the questions of a passage share a row)"
    precision = "fp32"
    if args.bf16 or args.fp16:
        precision = f"{'bf16' if args.bf16 else 'fp16'} autocast, fp32 master weights"
    losses = [f"{metrics[k]:.4f}" if k in metrics else "-" for k in ("train_loss", "eval_loss")]
    return {
        "backbone": backbone,
        "task": f"`{data_args.task}`",
        "training questions": str(metrics["train_questions"]),
        "evaluation questions": str(metrics.get("eval_questions", 0)),
        "steps": steps + ")",
        "learning rate": f"{args.learning_rate:g} ({schedule}, warmup {args.warmup_steps})",
        "batch": batch,
        "max length": f"{data_args.max_length} tokens (answers <= {data_args.max_answer_length}, "
        f"questions <= {data_args.max_question_length})",
        "precision": f"{precision}; saved as fp16",
        "train / eval loss": " / ".join(losses),
        "time": f"{metrics['total_seconds']:.1f} s, of which training "
        f"{metrics.get('train_runtime', 0):.1f} s",
        "hardware": _hardware(args),
        "seed": str(args.seed),
        "language": f"{metrics.get('language', '?')} (config `qgen_language`)",
    }


def _model_card(model_args, data_args, args, output_dir, metrics, reports, command) -> str:
    """A model-card stub: the data (question counts per file), the recipe, time and hardware,
    and the command line."""
    command = command or shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    name = os.path.basename(os.path.abspath(output_dir))
    recipe = _recipe(model_args, data_args, args, metrics)
    held_out = ""
    if data_args.validation_split > 0:
        held_out = (
            f"\nEvaluation data: `heldout.jsonl`, {data_args.validation_split:.0%} of the training "
            "passages, held out whole.\n"
        )
    return f"""---
library_name: transformers
tags:
- qgen
- question-generation
- {data_args.task}
---

# {name}

A qgen `{data_args.task}` model (a BERT encoder with the UniLM mask) fine-tuned with `qgen train`:

```bash
qgen generate --model {output_dir} --input passages.txt
```

Decoding settings: `qa_generation_config.json`. What reading the data kept and dropped:
`training_data.json`; the metrics: `all_results.json`; the checkpoints (for
`--resume_from_checkpoint latest`): `{CHECKPOINTS}/`.

## Training data

{chr(10).join(_data_table(reports))}
{held_out}
## Recipe

| | |
|---|---|
{chr(10).join(f"| {k} | {v} |" for k, v in recipe.items())}

## Command

```bash
{command}
```
"""
