"""Load and validate SQuAD-format data for the UniLM question generator: a SQuAD JSON file, a
JSON-lines file, a JSON list of flat records, or a `datasets.Dataset`, read into one flat row per
question (``id, title, context, question, answers``). Answer starts that miss the answer are
recomputed; bad input raises `QGenDataError` naming the file, line (or JSON path) and field.
`qgen.training.features.build_features` builds the model's features from these rows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from qgen.io.errors import QGenDataError
from qgen.io.jsonl import iter_jsonl

__all__ = ["COLUMNS", "QGenDataError", "drop_long_answers", "load_squad"]

COLUMNS = ("id", "title", "context", "question", "answers")
logger = logging.getLogger(__name__)


def _normalise_answers(answers: Any, where: str) -> dict[str, list]:
    """SQuAD answers in any of the usual shapes -> ``{"text": [...], "answer_start": [...]}``."""
    if answers is None:
        return {"text": [], "answer_start": []}
    if isinstance(answers, Mapping):  # flat (HF datasets) form
        if "text" not in answers or "answer_start" not in answers:
            raise QGenDataError(f"{where}: field 'answers' needs 'text' and 'answer_start'")
        text, start = answers["text"], answers["answer_start"]
        if isinstance(text, str):
            text, start = [text], [start]
        if len(text) != len(start):
            raise QGenDataError(
                f"{where}: field 'answers' has {len(text)} texts but {len(start)} starts"
            )
        pairs = list(zip(text, start))
    elif isinstance(answers, list):  # nested SQuAD form: [{"text", "answer_start"}, ...]
        pairs = []
        for k, ans in enumerate(answers):
            if not isinstance(ans, Mapping) or "text" not in ans or "answer_start" not in ans:
                raise QGenDataError(
                    f"{where}: field 'answers[{k}]' needs 'text' and 'answer_start'"
                )
            pairs.append((ans["text"], ans["answer_start"]))
    else:
        raise QGenDataError(
            f"{where}: field 'answers' must be a list or a dict, got {type(answers).__name__}"
        )
    out = {"text": [], "answer_start": []}
    for k, (text, start) in enumerate(pairs):
        if not isinstance(text, str):
            raise QGenDataError(
                f"{where}: field 'answers.text[{k}]' must be a string, got {text!r}"
            )
        try:
            start = int(start)
        except (TypeError, ValueError):
            raise QGenDataError(
                f"{where}: field 'answers.answer_start[{k}]' must be an integer, got {start!r}"
            ) from None
        out["text"].append(text)
        out["answer_start"].append(start)
    return out


def _fix_offsets(context: str, answers: dict[str, list]) -> dict[str, list]:
    """Recompute answer starts that do not point at the answer (CMRC 2018 has a few): the
    occurrence nearest to the given start; answers not in the context are dropped."""
    out = {"text": [], "answer_start": []}
    for text, start in zip(answers["text"], answers["answer_start"]):
        if not text.strip():
            continue
        if context[start : start + len(text)] != text:
            hits = [m.start() for m in re.finditer(re.escape(text), context)]
            if not hits:
                continue
            start = min(hits, key=lambda h: abs(h - start))
        out["text"].append(text)
        out["answer_start"].append(start)
    return out


def _record(raw: Mapping, where: str, default_id: str, title: str = "") -> dict[str, Any]:
    for name in ("context", "question"):
        if name not in raw:
            raise QGenDataError(f"{where}: missing field {name!r}")
        if not isinstance(raw[name], str):
            raise QGenDataError(
                f"{where}: field {name!r} must be a string, got {type(raw[name]).__name__}"
            )
    if not raw["context"].strip():
        raise QGenDataError(f"{where}: field 'context' is empty")
    answers = _normalise_answers(raw.get("answers"), where)
    return {
        "id": str(raw.get("id", default_id)),
        "title": str(raw.get("title", title) or ""),
        "context": raw["context"],
        "question": raw["question"],
        "answers": _fix_offsets(raw["context"], answers),
    }


def _records_from_squad_json(obj: Mapping, path: str) -> list[dict]:
    records = []
    if not isinstance(obj.get("data"), list):
        raise QGenDataError(f"{path}: field 'data' must be a list of articles")
    for a, article in enumerate(obj["data"]):
        if not isinstance(article, Mapping) or not isinstance(article.get("paragraphs"), list):
            raise QGenDataError(f"{path}: data[{a}]: missing field 'paragraphs'")
        title = article.get("title", "")
        for p, para in enumerate(article["paragraphs"]):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            if not isinstance(para, Mapping) or "context" not in para:
                raise QGenDataError(f"{where}: missing field 'context'")
            if not isinstance(para.get("qas"), list):
                raise QGenDataError(f"{where}: missing field 'qas'")
            for q, qa in enumerate(para["qas"]):
                if not isinstance(qa, Mapping):
                    raise QGenDataError(f"{where}.qas[{q}]: expected an object")
                raw = {**qa, "context": para["context"]}
                records.append(_record(raw, f"{where}.qas[{q}]", f"{a}-{p}-{q}", title))
    return records


def load_squad(source: str | Path | datasets.Dataset) -> datasets.Dataset:
    """Load SQuAD-format data as a flat `datasets.Dataset`, one row per question.

    Args:
        source: a SQuAD JSON file (``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``),
            a JSON-lines file (one flat record per line: ``id, title, context, question,
            answers{text, answer_start}``), a JSON file holding a list of such records, or a
            `datasets.Dataset` with SQuAD columns.

    Returns:
        A Dataset with columns ``id, title, context, question, answers`` where ``answers`` is
        ``{"text": [str], "answer_start": [int]}``. Answer starts that miss the answer text are
        recomputed (nearest occurrence); answers absent from the context are dropped.

    Raises:
        QGenDataError: naming the file, line / JSON path and field of bad input.
        FileNotFoundError: when the file does not exist.
    """
    if isinstance(source, datasets.Dataset):
        missing = [c for c in ("context", "question", "answers") if c not in source.column_names]
        if missing:
            raise QGenDataError(f"dataset: missing column(s) {missing}; has {source.column_names}")
        records = [_record(row, f"dataset: row {i}", f"row-{i}") for i, row in enumerate(source)]
    else:
        path = str(source)
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None  # not a single JSON document: read it as JSON lines
        if isinstance(obj, Mapping) and "data" in obj:
            records = _records_from_squad_json(obj, path)
        elif isinstance(obj, list):
            records = [_record(r, f"{path}: [{i}]", f"row-{i}") for i, r in enumerate(obj)]
        else:
            records = [
                _record(raw, f"{path}: line {n}", f"line-{n}") for n, raw in iter_jsonl(path)
            ]
    if not records:
        raise QGenDataError(f"{source}: no questions found")
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "title": datasets.Value("string"),
            "context": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": {
                "text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int32")),
            },
        }
    )
    return datasets.Dataset.from_list(records, features=features)


def drop_long_answers(ds, tokenizer, max_answer_tokens: int):
    """Rows whose first answer has at most ``max_answer_tokens`` tokens (None passes through)."""
    if ds is None:
        return None

    def short(row) -> bool:
        text = row["answers"]["text"][0] if row["answers"]["text"] else ""
        return len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_answer_tokens

    kept = ds.filter(short, desc="drop long answers")
    if len(kept) < len(ds):
        logger.warning(
            "dropped %d rows whose answer is over %d tokens", len(ds) - len(kept), max_answer_tokens
        )
    return kept
