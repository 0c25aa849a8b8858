"""The ``qgen`` command line, in one place: `main` (``qgen`` / ``python -m qgen``), one module
per subcommand (`generate`, `evaluate`), the passage reader (`inputs`) and what they share
(`options`: errors, the model directory check, decoding options)."""

from qgen.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
