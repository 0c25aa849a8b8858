"""The training data of ``qgen train``: SQuAD JSON, JSON lines or `datasets` directories read
with `qgen.io.squad.load_squad` (its validation and error messages), and an exact account of
what reading kept and dropped, per file, naming the records (`FileReport`).

`load_squad` moves answer starts that miss their answer to the nearest occurrence and drops
answers that are not in the context without a word; here each of those is counted, and the
questions left without an answer (which teach nothing) are dropped and counted too.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
import torch

from qgen.io.squad import QGenDataError, load_squad

__all__ = [
    "FileReport",
    "has_split",
    "load_training_data",
    "read_training_file",
    "split_by_context",
]

logger = logging.getLogger(__name__)
MAX_EXAMPLES = 3  # records named per kind of problem and file


@dataclass
class FileReport:
    """What reading one training file kept and dropped.

    Args:
        path: the file (or ``directory[split]`` for a `datasets` directory).
        questions: records (questions) read.
        used: questions kept, those with at least one answer in their context.
        answers: answers read.
        starts_recomputed: answers whose ``answer_start`` did not point at the answer text,
            moved to the nearest occurrence of the text in the context.
        answers_not_in_context: answers dropped because their text is not in the context.
        empty_answers: answers dropped because their text is empty.
        questions_without_answer: questions dropped, no answer left (none given, or none in
            the context).
        examples: up to `MAX_EXAMPLES` records of each kind of problem, each named by file,
            record (line or JSON path, and id) and field.
    """

    path: str
    questions: int = 0
    used: int = 0
    answers: int = 0
    starts_recomputed: int = 0
    answers_not_in_context: int = 0
    empty_answers: int = 0
    questions_without_answer: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, message: str) -> None:
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(message)

    def summary(self) -> str:
        """One line: the counts, and the first record of each kind of problem."""
        parts = [f"{self.path}: {self.used} of {self.questions} questions used"]
        for count, what, kind in (
            (self.starts_recomputed, "answer start(s) recomputed", "starts_recomputed"),
            (self.answers_not_in_context, "answer(s) not in the context dropped",
             "answers_not_in_context"),
            (self.empty_answers, "empty answer(s) dropped", "empty_answers"),
            (self.questions_without_answer, "question(s) without an answer dropped",
             "questions_without_answer"),
        ):  # fmt: skip
            if count:
                parts.append(f"{count} {what} (e.g. {self.examples[kind][0]})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _answer_pairs(answers: Any) -> list[tuple[str, int]]:
    """(text, start) pairs of an ``answers`` field `load_squad` has already validated."""
    if answers is None:
        return []
    if isinstance(answers, Mapping):
        text, start = answers["text"], answers["answer_start"]
        if isinstance(text, str):
            text, start = [text], [start]
        return [(t, int(s)) for t, s in zip(text, start)]
    return [(a["text"], int(a["answer_start"])) for a in answers]


def _raw_records(path: str) -> Iterator[tuple[str, Mapping]]:
    """``(where, record with its context)`` of a file `load_squad` has read, in its order and
    named as its errors name them."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None  # JSON lines, as load_squad reads them
    if isinstance(obj, Mapping) and "data" in obj:
        for a, article in enumerate(obj["data"]):
            for p, para in enumerate(article["paragraphs"]):
                for q, qa in enumerate(para["qas"]):
                    where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                    yield where, {"id": f"{a}-{p}-{q}", **qa, "context": para["context"]}
    elif isinstance(obj, list):
        for i, raw in enumerate(obj):
            yield f"{path}: [{i}]", raw
    else:
        for n, line in enumerate(text.split("\n"), start=1):  # as `for line in file` counts
            if line.strip():
                yield f"{path}: line {n}", json.loads(line)


def _count(report: FileReport, records: Iterator[tuple[str, Mapping]]) -> None:
    """Count, as `load_squad` treats them, the answers and questions of ``records``."""
    for where, raw in records:
        report.questions += 1
        name = f"{where} (id {str(raw['id'])!r})" if "id" in raw else where
        context, kept = raw["context"], 0
        pairs = _answer_pairs(raw.get("answers"))
        for k, (text, start) in enumerate(pairs):
            report.answers += 1
            field_name = f"field 'answers.text[{k}]'"
            if not text.strip():
                report.empty_answers += 1
                report.note("empty_answers", f"{name}: {field_name} is empty")
                continue
            if context[start : start + len(text)] != text:
                hits = [m.start() for m in re.finditer(re.escape(text), context)]
                if not hits:
                    report.answers_not_in_context += 1
                    report.note(
                        "answers_not_in_context",
                        f"{name}: {field_name} {text!r} is not in the context",
                    )
                    continue
                report.starts_recomputed += 1
                moved = min(hits, key=lambda h: abs(h - start))
                report.note(
                    "starts_recomputed",
                    f"{name}: field 'answers.answer_start[{k}]' {start} does not point at "
                    f"{text!r}: moved to {moved}",
                )
            kept += 1
        if not kept:
            report.questions_without_answer += 1
            why = "no answer is in the context"
            if "answers" not in raw:
                why = "no field 'answers'"
            elif not pairs:
                why = "field 'answers' is empty"
            elif not any(text.strip() for text, _ in pairs):
                why = "its answers are empty"
            report.note("questions_without_answer", f"{name}: {why}")


def _from_disk(path: str, split: str) -> tuple[datasets.Dataset, str]:
    """The split ``split`` of a `datasets` directory (a saved `Dataset` is taken whole)."""
    try:
        loaded = datasets.load_from_disk(path)
    except FileNotFoundError:
        raise QGenDataError(
            f"{path}: a directory, but not a datasets directory (Dataset.save_to_disk)"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise QGenDataError(f"{path}: no split {split!r}; its splits: {sorted(loaded)}")
        return loaded[split], f"{path}[{split}]"
    return loaded, path


def has_split(path: str, split: str) -> bool:
    """Whether ``path`` is a `DatasetDict` directory with the split ``split``."""
    return os.path.isfile(os.path.join(path, "dataset_dict.json")) and os.path.isdir(
        os.path.join(path, split)
    )


def read_training_file(path: str, split: str = "train") -> tuple[datasets.Dataset, FileReport]:
    """Read one training file and account for what was kept.

    Args:
        path: a SQuAD JSON file, a JSON-lines file (one ``context, question, answers`` record a
            line), a JSON list of such records, or a `datasets` directory (``save_to_disk`` of
            a `Dataset`, or of a `DatasetDict`, of which split ``split`` is read).
        split: the split of a `DatasetDict` directory.

    Returns:
        The rows of `load_squad` that have an answer, and the `FileReport`.

    Raises:
        QGenDataError: an empty file, bad records (file, record and field named), a missing
            split, or a file none of whose questions has an answer in its context.
        FileNotFoundError: no such file or directory.
    """
    if os.path.isdir(path):
        raw, name = _from_disk(path, split)
        if len(raw) == 0:
            raise QGenDataError(f"{name}: no questions found (0 rows)")
        try:
            ds = load_squad(raw)
        except QGenDataError as err:  # its messages say "dataset": name the directory
            message = str(err)
            if message.startswith("dataset"):
                message = name + message[len("dataset") :]
            raise QGenDataError(message) from None
        records = ((f"{name}: row {i}", {"id": f"row-{i}", **row}) for i, row in enumerate(raw))
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
        if os.path.getsize(path) == 0:
            raise QGenDataError(f"{path}: the file is empty")
        try:
            ds, name = load_squad(path), path
        except UnicodeDecodeError as err:
            raise QGenDataError(f"{path}: not UTF-8 text ({err})") from None
        records = _raw_records(path)
    report = FileReport(name)
    _count(report, records)
    ds = ds.filter(lambda row: len(row["answers"]["text"]) > 0, desc="questions with an answer")
    report.used = len(ds)
    if report.used == 0:
        raise QGenDataError(
            f"{name}: none of its {report.questions} questions has an answer in its context to "
            f"train on (e.g. {'; '.join(report.examples['questions_without_answer'])})"
        )
    problems = (report.starts_recomputed, report.answers_not_in_context, report.empty_answers,
                report.questions_without_answer)  # fmt: skip
    (logger.warning if any(problems) else logger.info)(report.summary())
    return ds, report


def load_training_data(
    paths: str | Sequence[str], split: str = "train"
) -> tuple[datasets.Dataset, list[FileReport]]:
    """Read several training files (a list, or one string of comma-separated paths) as one
    dataset, with a `FileReport` for each (`read_training_file`)."""
    if isinstance(paths, str):
        paths = [paths]
    paths = [p.strip() for entry in paths for p in entry.split(",") if p.strip()]
    if not paths:
        raise QGenDataError("no training file given")
    parts, reports = [], []
    for path in paths:
        ds, report = read_training_file(path, split)
        parts.append(ds)
        reports.append(report)
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0], reports


def split_by_context(
    ds: datasets.Dataset, fraction: float, seed: int = 42
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a flat dataset into (train, held-out) so that no passage lands in both."""
    contexts = sorted(set(ds["context"]))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(contexts), generator=generator).tolist()
    n_held = max(1, round(fraction * len(contexts)))
    held = {contexts[i] for i in order[:n_held]}
    is_held = [c in held for c in ds["context"]]
    train_idx = [i for i, h in enumerate(is_held) if not h]
    held_idx = [i for i, h in enumerate(is_held) if h]
    return ds.select(train_idx), ds.select(held_idx)
