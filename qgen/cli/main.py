"""The ``qgen`` command: ``qgen generate``, ``qgen evaluate`` and ``qgen train`` (also
``python -m qgen ...``).

Every user error exits with status 2 and ``qgen: error: <message>`` naming the file, line,
field or option; inputs, the output path and the model directory are checked before the model
loads.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qgen.cli import evaluate, generate
from qgen.cli.options import CLIError
from qgen.io.journal import OutputError
from qgen.io.squad import QGenDataError
from qgen.modeling.pretrained import QGenModelError

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = {
    "generate": (generate, "generate question-answer pairs for passages"),
    "evaluate": (evaluate, "score a qgen model on SQuAD-format data"),
}
# `qgen train` is the training side (the HF Trainer; QGEN_TRAINING_SIDE in tests/test_layout.py):
# it is imported only when the command runs, so that `qgen generate` and `qgen evaluate` never
# load it. Its options go to it unparsed (`qgen train --help` lists them).
_TRAIN_HELP = "fine-tune a BERT checkpoint on SQuAD-format data into a qgen model directory"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qgen", description="Question-answer pair generation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in _SUBCOMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    sub.add_parser("train", help=_TRAIN_HELP, add_help=False)  # options: qgen.cli.train
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qgen`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_argv = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar above the command's own output
    try:
        if args.command == "generate":
            generate.report(generate.run(args))
        elif args.command == "train":
            from qgen.cli import train  # the one lazy door to the training side

            train.run(args)
        else:
            evaluate.run(args)
    except (CLIError, OutputError, QGenDataError, QGenModelError, FileNotFoundError) as err:
        print(f"qgen: error: {err}", file=sys.stderr)
        return 2
    return 0
