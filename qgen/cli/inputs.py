"""Reading the passages of ``qgen generate``: ``.txt`` (one passage per non-empty line),
``.jsonl`` (one object per line with ``context``, or ``passage`` / ``text``, and optional ``id``
and ``title``), ``.json`` (SQuAD format, questions ignored, or a list of objects or strings).
The whole file is checked before the model loads; errors name the file, line and field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data import check_passage
from .options import CLIError

__all__ = ["PASSAGE_FIELDS", "Passage", "read_passages"]

PASSAGE_FIELDS = ("context", "passage", "text")


@dataclass
class Passage:
    id: str
    title: str
    context: str


def _passage(raw, where: str, default_id: str) -> Passage:
    if isinstance(raw, str):
        raw = {"context": raw}
    if not isinstance(raw, dict):
        raise CLIError(f"{where}: expected a JSON object or string, got {type(raw).__name__}")
    field = next((f for f in PASSAGE_FIELDS if f in raw), None)
    if field is None:
        raise CLIError(f"{where}: missing field 'context' (or 'passage' / 'text')")
    text = check_passage(raw[field], f"{where}: field {field!r}")
    title = raw.get("title", "")
    return Passage(str(raw.get("id", default_id)), "" if title is None else str(title), text)


def read_passages(path: str) -> list[Passage]:
    """Read and validate passages from a ``.txt``, ``.jsonl`` or ``.json`` file.

    Raises:
        CLIError: naming the file, line (or JSON path) and field of the first problem.
    """
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{path}: cannot read input file (no such file)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"{path}: cannot read input file ({err})") from None
    stem = p.stem
    suffix = p.suffix.lower()
    passages: list[Passage] = []
    if suffix == ".txt":
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                passages.append(Passage(f"{stem}-{n}", "", line.strip()))
    elif suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as err:
                raise CLIError(f"{path}: line {n}: malformed JSON ({err.msg})") from None
            passages.append(_passage(raw, f"{path}: line {n}", f"{stem}-{n}"))
    elif suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise CLIError(f"{path}: line {err.lineno}: malformed JSON ({err.msg})") from None
        passages = _json_passages(obj, path, stem)
    else:
        raise CLIError(f"{path}: unknown input type {suffix!r} (use .txt, .jsonl or .json)")
    if not passages:
        raise CLIError(f"{path}: no passages found")
    return passages


def _json_passages(obj, path: str, stem: str) -> list[Passage]:
    if isinstance(obj, list):
        return [_passage(raw, f"{path}: [{i}]", f"{stem}-{i}") for i, raw in enumerate(obj)]
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise CLIError(f"{path}: expected SQuAD format (field 'data') or a list of passages")
    passages = []
    for a, article in enumerate(obj["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise CLIError(f"{path}: data[{a}]: missing field 'paragraphs'")
        for k, para in enumerate(paragraphs):
            raw = {"title": article.get("title", ""), **para} if isinstance(para, dict) else para
            passages.append(_passage(raw, f"{path}: data[{a}].paragraphs[{k}]", f"{stem}-{a}-{k}"))
    return passages
