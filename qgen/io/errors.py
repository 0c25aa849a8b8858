"""The error of bad input data, raised by every reader of `qgen.io`."""

__all__ = ["QGenDataError"]


class QGenDataError(ValueError):
    """Bad input data; the message names the file, line (or JSON path) and field."""
