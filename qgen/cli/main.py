"""The ``qgen`` command: ``qgen generate`` and ``qgen evaluate`` (also ``python -m qgen ...``).

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qgen", description="Question-answer pair generation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in _SUBCOMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qgen`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar above the command's own output
    try:
        if args.command == "generate":
            generate.report(generate.run(args))
        else:
            evaluate.run(args)
    except (CLIError, OutputError, QGenDataError, QGenModelError, FileNotFoundError) as err:
        print(f"qgen: error: {err}", file=sys.stderr)
        return 2
    return 0
