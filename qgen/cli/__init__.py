"""The ``qgen`` command line: `main` (``qgen`` / ``python -m qgen``) dispatches to one module per
sub-command (`generate`, `evaluate`, and `train`), and `options` holds what they share (the
user-error type, the model directory check, number checks and the decoding options). The
passages they read come from `qgen.io.corpus`."""

from qgen.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
