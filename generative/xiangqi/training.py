"""Training the Xiangqi LM with HF ``Trainer`` and Su's length curriculum.

The curriculum (docs/xiangqi.md, "Training run"): the sequence length grows with the number of batches
seen, 64 -> 128 -> 256 -> 512 tokens, and every game is truncated head-first (its first tokens
are kept), so the model learns openings first. Su switched at 20k / 40k / 80k batches; the
thresholds are arguments because our runs are far shorter. A `CurriculumCallback` sets the
length on the `CurriculumCollator` at the start of every optimizer step.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from regularizers.callbacks import TimeBudgetCallback

from .model import XiangqiModelArguments, build_model
from .tokenizer import TOKENIZERS, XiangqiTokenizerBase

__all__ = [
    "XiangqiDataArguments",
    "XiangqiTrainingArguments",
    "CurriculumCollator",
    "CurriculumCallback",
    "curriculum_length",
    "load_games",
    "split_games",
    "games_to_dataset",
    "train_xiangqi",
    "export_xiangqi_model",
    "TRAINING_INFO",
]

TRAINING_INFO = "xiangqi_training.json"


@dataclass
class XiangqiDataArguments:
    """Where the games are and how they are split."""

    games_path: str | None = field(
        default=None,
        metadata={"help": "games file, JSON lines with an 'iccs' field (required for training)"},
    )
    val_games: int = field(default=500, metadata={"help": "games held out for validation"})
    split_seed: int = field(
        default=0, metadata={"help": "seed of the train/validation permutation"}
    )
    max_games: int | None = field(
        default=None, metadata={"help": "use only the first N games (smoke runs)"}
    )

    def __post_init__(self) -> None:
        if self.val_games < 1:
            raise ValueError(f"val_games must be >= 1, got val_games={self.val_games}")
        if self.max_games is not None and self.max_games <= self.val_games:
            raise ValueError(f"max_games={self.max_games} must exceed val_games={self.val_games}")


@dataclass
class XiangqiTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the length curriculum."""

    curriculum_steps: str = field(
        default="20000,40000,80000",
        metadata={
            "help": "comma-separated optimizer steps at which the length grows (Su: 20k,40k,80k)"
        },
    )
    curriculum_lengths: str = field(
        default="64,128,256,512",
        metadata={"help": "comma-separated lengths in tokens, one more than steps"},
    )
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "stop (and save) after this much wall-clock time (shared machines)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        steps, lengths = self.curriculum()
        if len(lengths) != len(steps) + 1:
            raise ValueError(
                f"curriculum_lengths={self.curriculum_lengths!r} needs exactly one more entry "
                f"than curriculum_steps={self.curriculum_steps!r}"
            )
        if steps != sorted(steps) or min(lengths) < 2:
            raise ValueError(
                f"curriculum_steps={self.curriculum_steps!r} must increase and lengths be >= 2"
            )

    def curriculum(self) -> tuple[list[int], list[int]]:
        steps = [int(s) for s in self.curriculum_steps.split(",") if s.strip()]
        lengths = [int(s) for s in self.curriculum_lengths.split(",") if s.strip()]
        return steps, lengths


def curriculum_length(step: int, steps: list[int], lengths: list[int]) -> int:
    """The sequence length after ``step`` batches: ``lengths[i]`` for ``steps[i-1] <= step < steps[i]``."""
    for threshold, length in zip(steps, lengths):
        if step < threshold:
            return length
    return lengths[-1]


class CurriculumCollator:
    """Truncate head-first to ``max_length``, pad right, and mask padding out of the loss.

    Returns ``input_ids``, ``attention_mask`` and ``labels`` (``-100`` at padding).
    """

    def __init__(self, pad_token_id: int, max_length: int = 512) -> None:
        self.pad_token_id = pad_token_id
        self.max_length = max_length

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        seqs = [list(f["input_ids"])[: self.max_length] for f in features]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class CurriculumCallback(TrainerCallback):
    """Set the collator's length from the global step before every step."""

    def __init__(self, collator: CurriculumCollator, steps: list[int], lengths: list[int]) -> None:
        self.collator, self.steps, self.lengths = collator, steps, lengths

    def _update(self, state) -> None:
        self.collator.max_length = curriculum_length(state.global_step, self.steps, self.lengths)

    def on_train_begin(self, args, state, control, **kwargs):
        self._update(state)

    def on_step_begin(self, args, state, control, **kwargs):
        self._update(state)


def load_games(path: str | None, max_games: int | None = None) -> list[str]:
    """The ICCS strings of a games file (JSON lines with an ``iccs`` field).

    A missing ``path`` (None, or no such file) raises `FileNotFoundError` naming the path and
    ``--games_path``, the flag of the training and evaluation scripts that sets it.
    """
    if not path:
        raise FileNotFoundError(
            "no games file given: pass --games_path PATH (JSON lines with an 'iccs' field)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"games file not found: {path!r}; pass --games_path PATH to an existing file "
            "(JSON lines with an 'iccs' field)"
        )
    games = []
    with open(path) as f:
        for line in f:
            if max_games is not None and len(games) >= max_games:
                break
            if line.strip():
                games.append(json.loads(line)["iccs"])
    return games


def split_games(n_games: int, val_games: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded permutation split: ``(train_indices, validation_indices)``."""
    perm = np.random.default_rng(seed).permutation(n_games).tolist()
    return sorted(perm[val_games:]), sorted(perm[:val_games])


def games_to_dataset(games: list[str], tokenizer: XiangqiTokenizerBase, max_length: int) -> Dataset:
    """A ``Dataset`` of ``input_ids`` (``[BOS]`` + the game), truncated head-first to ``max_length``."""
    return Dataset.from_dict({"input_ids": [tokenizer.encode_moves(g)[:max_length] for g in games]})


def train_xiangqi(
    model_args: XiangqiModelArguments,
    data_args: XiangqiDataArguments,
    training_args: XiangqiTrainingArguments,
) -> dict:
    """Train, save model + tokenizer + the split/arguments to ``output_dir``, return the metrics."""
    tokenizer = TOKENIZERS[model_args.tokenizer]()
    games = load_games(data_args.games_path, data_args.max_games)
    train_idx, val_idx = split_games(len(games), data_args.val_games, data_args.split_seed)
    steps, lengths = training_args.curriculum()
    max_length = min(max(lengths), model_args.n_positions)
    train_ds = games_to_dataset([games[i] for i in train_idx], tokenizer, max_length)
    model = build_model(model_args, tokenizer)
    collator = CurriculumCollator(tokenizer.pad_token_id, lengths[0])
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        data_collator=collator,
        callbacks=[CurriculumCallback(collator, steps, lengths)],
    )
    if training_args.max_train_minutes is not None:
        trainer.add_callback(TimeBudgetCallback(training_args.max_train_minutes))
    result = trainer.train()
    trainer.save_model(training_args.output_dir)
    tokenizer.save_pretrained(training_args.output_dir)
    info = {
        "model_args": asdict(model_args),
        "data_args": asdict(data_args),
        "curriculum": {"steps": steps, "lengths": lengths},
        "n_train_games": len(train_idx),
        "n_val_games": len(val_idx),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "global_step": trainer.state.global_step,
        "final_length": collator.max_length,
        "metrics": result.metrics,
        "log_history": trainer.state.log_history,
    }
    if trainer.is_world_process_zero():
        with open(os.path.join(training_args.output_dir, TRAINING_INFO), "w") as f:
            json.dump(info, f, indent=1, default=str)
    return info


def export_xiangqi_model(model_dir: str, output_dir: str, games_path: str | None = None) -> str:
    """Write ``model_dir`` (a `train_xiangqi` output) compactly to ``output_dir``: float16
    safetensors, the tokenizer, and the training record without its step-by-step log.

    Args:
        games_path: what to record as the games file (e.g. a path relative to the repository
            instead of this machine's absolute one; default: as trained).
    """
    from transformers import AutoModelForCausalLM

    from .tokenizer import load_xiangqi_tokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir).half()
    os.makedirs(output_dir, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    load_xiangqi_tokenizer(model_dir).save_pretrained(output_dir)
    record_path = os.path.join(model_dir, TRAINING_INFO)
    if os.path.isfile(record_path):
        with open(record_path) as f:
            info = json.load(f)
        losses = [e["loss"] for e in info.pop("log_history", []) if "loss" in e]
        info["final_train_loss"] = losses[-1] if losses else None
        if games_path is not None:
            info["data_args"]["games_path"] = games_path
        with open(os.path.join(output_dir, TRAINING_INFO), "w") as f:
            json.dump(info, f, indent=1, default=str)
    return output_dir
