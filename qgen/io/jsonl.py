"""JSON lines, read as a stream: the one reader behind `qgen.io.corpus` (passages) and
`qgen.io.squad` (questions), so both name a bad line the same way."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from qgen.io.errors import QGenDataError

__all__ = ["iter_jsonl", "iter_lines"]


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 text file, numbered from 1, one at a time.

    Raises:
        QGenDataError: ``"<path>: cannot read input file (...)"`` when the file is not UTF-8.
    """
    try:
        with open(path, encoding="utf-8") as f:
            yield from enumerate(f, start=1)
    except UnicodeDecodeError as err:
        raise QGenDataError(f"{path}: cannot read input file ({err})") from None


def iter_jsonl(path: str | os.PathLike, objects_only: bool = True) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line of a JSON-lines file, one at a
    time (memory does not grow with the file).

    Args:
        path: the file (UTF-8).
        objects_only: each line must hold a JSON object (default); with ``False`` any JSON value
            is yielded and the caller checks it (passages may be bare strings).

    Raises:
        QGenDataError: ``"<path>: line N: malformed JSON (...)"``, ``"<path>: line N: expected a
            JSON object"``, or the file is not UTF-8 (see `iter_lines`).
    """
    for n, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise QGenDataError(f"{path}: line {n}: malformed JSON ({err.msg})") from None
        if objects_only and not isinstance(value, dict):
            raise QGenDataError(f"{path}: line {n}: expected a JSON object")
        yield n, value
