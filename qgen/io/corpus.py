"""Passages to generate from, read as a stream: a corpus is never held in memory.

`iter_passages(source)` yields `Passage(id, title, context)` one at a time from

* ``.txt``: one passage per non-empty line (id ``<file stem>-<line>``);
* ``.jsonl``: one object per line with ``context`` (or ``passage`` / ``text``) and optional
  ``id`` and ``title`` (id default ``<stem>-<line>``);
* ``.parquet`` / ``.csv``: rows with the same columns, streamed through `datasets`
  (id default ``<stem>-<row>``);
* ``.json``: SQuAD format (``{"data": [{"title", "paragraphs": [{"context"}]}]}``, questions
  ignored; id ``<stem>-<article>-<paragraph>``) or a list of objects or strings (one JSON
  document, so this one format is parsed whole);
* a `datasets.Dataset` / `datasets.IterableDataset` (or any iterable of such rows or strings):
  id from the ``id`` column, else the row's position.

Ids are stable: the same input gives the same ids in the same order, which is what lets
``qgen generate`` split a corpus between processes and resume after a crash. Every passage goes
through `check_passage`; errors (`QGenDataError`) name the file, line or row, and field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgen.io.errors import QGenDataError
from qgen.io.jsonl import iter_jsonl, iter_lines

__all__ = [
    "FORMATS",
    "PASSAGE_FIELDS",
    "Passage",
    "check_passage",
    "check_passages",
    "count_passages",
    "iter_passages",
]

FORMATS = (".txt", ".jsonl", ".json", ".parquet", ".csv")
PASSAGE_FIELDS = ("context", "passage", "text")


def check_passage(text, where: str) -> str:
    """The one check of a passage given to qgen (by the CLI, the pipeline, `QAGenerator`): a
    non-empty string. Raises `QGenDataError` (a ValueError) naming ``where`` (``passages[3]``,
    ``p.jsonl: line 7: field 'context'``)."""
    if not isinstance(text, str):
        raise QGenDataError(f"{where} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise QGenDataError(f"{where} is an empty passage")
    return text


def check_passages(passages) -> list[str]:
    """`check_passage` on each item of a sequence (``passages[i]``); returns them as a list."""
    if isinstance(passages, str):
        raise QGenDataError("passages must be a list of strings, got one string")
    return [check_passage(p, f"passages[{i}]") for i, p in enumerate(passages)]


@dataclass(frozen=True)
class Passage:
    """One passage: a stable ``id``, an optional ``title``, and the text (``context``)."""

    id: str
    title: str
    context: str


def _passage(raw: Any, where: str, default_id: str) -> Passage:
    if isinstance(raw, str):
        raw = {"context": raw}
    if not isinstance(raw, dict):
        raise QGenDataError(f"{where}: expected a JSON object or string, got {type(raw).__name__}")
    field = next((f for f in PASSAGE_FIELDS if raw.get(f) is not None), None)
    if field is None:
        raise QGenDataError(f"{where}: missing field 'context' (or 'passage' / 'text')")
    text = check_passage(raw[field], f"{where}: field {field!r}")
    title = raw.get("title")
    pid = raw.get("id")
    return Passage(
        default_id if pid is None else str(pid), "" if title is None else str(title), text
    )


def _txt(path: str, stem: str) -> Iterator[Passage]:
    for n, line in iter_lines(path):
        if line.strip():
            yield Passage(f"{stem}-{n}", "", line.strip())


def _jsonl(path: str, stem: str) -> Iterator[Passage]:
    for n, raw in iter_jsonl(path, objects_only=False):  # a line may be a bare string
        yield _passage(raw, f"{path}: line {n}", f"{stem}-{n}")


def _json(path: str, stem: str) -> Iterator[Passage]:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as err:
        raise QGenDataError(f"{path}: line {err.lineno}: malformed JSON ({err.msg})") from None
    except UnicodeDecodeError as err:
        raise QGenDataError(f"{path}: cannot read input file ({err})") from None
    if isinstance(obj, list):
        for i, raw in enumerate(obj):
            yield _passage(raw, f"{path}: [{i}]", f"{stem}-{i}")
        return
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise QGenDataError(f"{path}: expected SQuAD format (field 'data') or a list of passages")
    for a, article in enumerate(obj["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise QGenDataError(f"{path}: data[{a}]: missing field 'paragraphs'")
        for k, para in enumerate(paragraphs):
            raw = {"title": article.get("title", ""), **para} if isinstance(para, dict) else para
            yield _passage(raw, f"{path}: data[{a}].paragraphs[{k}]", f"{stem}-{a}-{k}")


def _tabular(path: str, stem: str, builder: str) -> Iterator[Passage]:
    import datasets

    try:
        rows = datasets.load_dataset(builder, data_files=path, split="train", streaming=True)
        # csv: the header is line 1, so row i is on line i + 2
        first_line = 2 if builder == "csv" else None
        for i, row in enumerate(rows):
            where = f"{path}: line {i + first_line}" if first_line else f"{path}: row {i}"
            yield _passage(dict(row), where, f"{stem}-{i}")
    except QGenDataError:
        raise
    except Exception as err:  # pyarrow / pandas parse errors: name the file
        raise QGenDataError(f"{path}: cannot read {builder} input ({err})") from None


def _rows(rows: Iterable[Any], name: str) -> Iterator[Passage]:
    for i, row in enumerate(rows):
        yield _passage(dict(row) if not isinstance(row, str) else row, f"{name} row {i}", str(i))


_READERS = {".txt": _txt, ".jsonl": _jsonl, ".json": _json}


def iter_passages(source: str | os.PathLike | Iterable[Any]) -> Iterator[Passage]:
    """Yield the passages of a file (by its suffix, see the module docstring) or of a
    `datasets.Dataset` / `IterableDataset` / iterable of rows, one at a time.

    Raises:
        QGenDataError: a missing or unreadable file, an unknown format, or a bad passage
            (naming the file, line or row, and field).
    """
    if not isinstance(source, str | os.PathLike):
        yield from _rows(source, type(source).__name__)
        return
    path = str(source)
    if not os.path.isfile(path):
        raise QGenDataError(f"{path}: cannot read input file (no such file)")
    suffix = Path(path).suffix.lower()
    stem = Path(path).stem
    if suffix in _READERS:
        yield from _READERS[suffix](path, stem)
    elif suffix in (".parquet", ".csv"):
        yield from _tabular(path, stem, suffix[1:])
    else:
        raise QGenDataError(f"{path}: unknown input type {suffix!r} (use {', '.join(FORMATS)})")


def count_passages(source: str | os.PathLike | Iterable[Any]) -> int:
    """Read the whole input once, checking every passage and that no id is used twice, and
    return how many there are (memory: an 8-byte digest per id). Raises `QGenDataError` at the
    first bad passage or repeated id, or when there is none."""
    seen: set[bytes] = set()
    for passage in iter_passages(source):
        key = hashlib.blake2b(passage.id.encode("utf-8"), digest_size=8).digest()
        if key in seen:
            raise QGenDataError(
                f"{source}: passage id {passage.id!r} is used twice (ids must be unique)"
            )
        seen.add(key)
    if not seen:
        raise QGenDataError(f"{source}: no passages found")
    return len(seen)
