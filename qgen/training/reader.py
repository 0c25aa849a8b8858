"""Fine-tune an extractive QA reader (``AutoModelForQuestionAnswering``) on SQuAD-format data with
the HF `Trainer`: for the round trip of generated pairs (`qgen.generation.reader`), and to measure what a
generated dataset is worth (train on it, score on human questions).

    python scripts/train_reader.py --model_name_or_path DIR --train_file qa.jsonl \
        --output_dir runs/reader --num_train_epochs 2 --per_device_train_batch_size 16

The passage is cut into windows of ``max_length`` tokens with a ``stride`` overlap; a window
that does not hold the answer points at ``[CLS]`` (the standard SQuAD recipe of transformers'
``run_qa.py``). Only the first answer of a row is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReaderArguments", "prepare_train_features", "train_reader"]

logger = logging.getLogger(__name__)


@dataclass
class ReaderArguments:
    """What to fine-tune, on what."""

    model_name_or_path: str = field(metadata={"help": "A BERT-style checkpoint directory."})
    train_file: str = field(
        metadata={"help": "SQuAD-format JSON / JSONL (qgen generate output too)."}
    )
    max_length: int = field(default=384, metadata={"help": "Tokens per window."})
    stride: int = field(default=128, metadata={"help": "Tokens shared by consecutive windows."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random subset of N questions."}
    )

    def __post_init__(self):
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"stride={self.stride} must be in [0, max_length={self.max_length})")


def prepare_train_features(
    examples: dict[str, list], tokenizer, max_length: int = 384, stride: int = 128
) -> dict[str, Any]:
    """Tokenize (question, context) rows into windows with answer start/end token positions."""
    questions = [q.strip() for q in examples["question"]]
    enc = tokenizer(
        questions, examples["context"], truncation="only_second", max_length=max_length,
        stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
    )  # fmt: skip
    sample_of = enc.pop("overflow_to_sample_mapping")
    offsets_of = enc.pop("offset_mapping")
    enc["start_positions"], enc["end_positions"] = [], []
    for i, offsets in enumerate(offsets_of):
        cls_index = 0
        answers = examples["answers"][sample_of[i]]
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        sequence = enc.sequence_ids(i)
        first = sequence.index(1)
        last = len(sequence) - 1 - sequence[::-1].index(1)
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            enc["start_positions"].append(cls_index)  # this window does not hold the answer
            enc["end_positions"].append(cls_index)
            continue
        start = first
        while start <= last and offsets[start][0] <= start_char:
            start += 1
        end = last
        while end >= first and offsets[end][1] >= end_char:
            end -= 1
        enc["start_positions"].append(start - 1)
        enc["end_positions"].append(end + 1)
    return enc


def train_reader(args: ReaderArguments, training_args) -> dict[str, float]:
    """Fine-tune and save the reader (model + tokenizer) to ``training_args.output_dir``."""
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
    )

    from qgen.io.squad import load_squad

    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model_name_or_path)
    rows = load_squad(args.train_file)
    rows = rows.filter(
        lambda r: len(r["answers"]["text"]) > 0 and r["answers"]["answer_start"][0] >= 0
    )
    if args.max_train_samples is not None and args.max_train_samples < len(rows):
        rows = rows.shuffle(seed=training_args.seed).select(range(args.max_train_samples))
    with training_args.main_process_first(desc="tokenising"):
        features = rows.map(
            prepare_train_features, batched=True, remove_columns=rows.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": args.max_length, "stride": args.stride},
            desc="reader features",
        )  # fmt: skip
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=features,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    result = trainer.train()
    trainer.save_model()
    metrics = {**result.metrics, "train_questions": len(rows), "train_windows": len(features)}
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    return metrics
