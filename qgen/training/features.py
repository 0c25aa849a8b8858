"""Training features for the UniLM question generator: per task, ``[CLS] source [SEP] target``
rows from SQuAD rows (`qgen.io.squad.load_squad`), and shared-passage packing (several targets
after one copy of their source, with the loss and gradients of the unpacked examples)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import datasets

from qgen.modeling.inputs import (
    TASKS,
    _ids,
    answer_sentence_span,
    encode_source,
    special_token_ids,
)

__all__ = ["build_features", "pack_features"]


def _example_features(
    row: Mapping,
    tokenizer,
    task: str,
    max_length: int,
    max_answer_length: int,
    max_question_length: int,
    training: bool,
    shared_windows: bool = False,
) -> dict[str, Any] | None:
    answers = row["answers"]
    if not answers["text"]:
        return None  # nothing to learn from (e.g. SQuAD 2.0 unanswerable)
    _, sep_id = special_token_ids(tokenizer)
    answer, a_start = answers["text"][0], int(answers["answer_start"][0])
    a_span = (a_start, a_start + len(answer))
    passage = row["context"]
    if task == "sentence-qg":
        s, e = answer_sentence_span(passage, *a_span)
        passage, a_span = passage[s:e], (a_span[0] - s, a_span[1] - s)
    answer_ids = _ids(tokenizer, answer, max_answer_length)
    question_ids = _ids(tokenizer, row["question"], max_question_length)
    if task == "qag":
        target = answer_ids + [sep_id] + question_ids + [sep_id]
    else:
        target = question_ids + [sep_id]
    # shared windows reserve room for the longest target, so every question of a passage sees
    # the same windows whatever its own length (at most half the budget: a short max_length
    # keeps room for the passage; a target over that reserve gets its own window)
    longest = max_question_length + 1 + (max_answer_length + 1 if task == "qag" else 0)
    longest = max(len(target), min(longest, (max_length - 2) // 2))
    source, _ = encode_source(
        tokenizer,
        passage,
        answer if task == "qg" else None,
        max_length=max_length,
        reserve=longest if shared_windows else len(target),
        answer_span=a_span,
        max_answer_length=max_answer_length,
        shared_windows=shared_windows,
    )
    if not training:
        target = []
    return {"input_ids": source + target, "token_type_ids": [0] * len(source) + [1] * len(target)}


def build_features(
    dataset: datasets.Dataset,
    tokenizer,
    task: str,
    max_length: int = 384,
    max_answer_length: int = 32,
    max_question_length: int = 64,
    training: bool = True,
    pack: bool = False,
    shared_windows: bool | None = None,
) -> datasets.Dataset:
    """Tokenize SQuAD rows into UniLM features for ``task``.

    Args:
        dataset: rows as `load_squad` returns them (only the first answer of a row is used;
            rows without an answer are skipped).
        tokenizer: a fast tokenizer; its cls/sep (or bos/eos) tokens frame the segments.
        task: one of ``TASKS``.
        max_length: tokens per sequence, source + target. Longer passages are cut to a window
            that holds the answer.
        max_answer_length: cap on answer tokens (``[SEP]`` not counted).
        max_question_length: cap on question tokens (``[SEP]`` not counted).
        training: True: source + target (for the loss). False: the source only (for
            generation / evaluation), keeping the original columns beside it.
        pack: with ``training``, put the targets of examples that share a source after one copy
            of it (`pack_features`); the loss and gradients are those of the unpacked examples.
        shared_windows: cut passages longer than the budget on a fixed grid of windows (each
            answer in the window that holds it farthest from the edges) rather than around each
            answer, so that the questions of a long passage share sources and pack (CMRC 2018:
            1.6 -> 3.3 questions per row). Default: on when packing.

    Returns:
        A Dataset with ``input_ids`` and ``token_type_ids`` (lists of ints; no padding), and
        ``target_segment_ids`` when packed. With ``training=False`` it also keeps ``id, title,
        context, question, answers``.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {TASKS}")
    for name, value in (
        ("max_length", max_length),
        ("max_answer_length", max_answer_length),
        ("max_question_length", max_question_length),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {name}={value}")

    if shared_windows is None:
        shared_windows = pack and training

    def convert(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "token_type_ids": []}
        keep = [] if training else [c for c in batch if c not in out]
        for c in keep:
            out[c] = []
        for i in range(len(batch["context"])):
            row = {c: batch[c][i] for c in batch}
            feats = _example_features(
                row,
                tokenizer,
                task,
                max_length,
                max_answer_length,
                max_question_length,
                training,
                shared_windows,
            )
            if feats is None:
                continue
            for c in ("input_ids", "token_type_ids"):
                out[c].append(feats[c])
            for c in keep:
                out[c].append(row[c])
        return out

    features = dataset.map(
        convert, batched=True, remove_columns=dataset.column_names, desc=f"features ({task})"
    )
    if pack and training:
        features = pack_features(features, max_length)
    return features


def pack_features(features: datasets.Dataset, max_length: int = 384) -> datasets.Dataset:
    """Pack training features that share a source: ``[CLS] source [SEP] target_1 target_2 ...``.

    SQuAD has 4.6 questions per paragraph, and unpacked, each question encodes its paragraph
    again. Here every group of features with the same source ids (the same passage window, and
    for task ``qg`` the same answer) becomes rows of one source followed by as many of its
    targets as fit ``max_length``, in input order. ``target_segment_ids`` marks them (0 on the
    source, ``k`` on the ``k``-th target); `UniLMForQAGeneration` gives each target the mask,
    positions and predictions of its unpacked example. A passage that had to be cut to a window
    around each answer has a different source per question and stays one target per row.

    Args:
        features: ``build_features(..., training=True)`` output.
        max_length: tokens per packed row (a single feature longer than this stays as it is).

    Returns:
        A Dataset with ``input_ids``, ``token_type_ids`` and ``target_segment_ids``.
    """
    groups: dict[tuple[int, ...], list[list[int]]] = {}
    for ids, types in zip(features["input_ids"], features["token_type_ids"]):
        source_len = types.index(1) if 1 in types else len(types)
        groups.setdefault(tuple(ids[:source_len]), []).append(ids[source_len:])

    rows: dict[str, list] = {"input_ids": [], "token_type_ids": [], "target_segment_ids": []}

    def emit(source: tuple[int, ...], targets: list[list[int]]) -> None:
        ids, segments = list(source), [0] * len(source)
        for k, target in enumerate(targets, start=1):
            ids += target
            segments += [k] * len(target)
        rows["input_ids"].append(ids)
        rows["token_type_ids"].append([int(s > 0) for s in segments])
        rows["target_segment_ids"].append(segments)

    for source, targets in groups.items():
        current: list[list[int]] = []
        used = len(source)
        for target in targets:
            if current and used + len(target) > max_length:
                emit(source, current)
                current, used = [], len(source)
            current.append(target)
            used += len(target)
        emit(source, current)
    return datasets.Dataset.from_dict(rows)
