"""An extractive question-answering reader: any ``AutoModelForQuestionAnswering`` directory,
through transformers' ``question-answering`` pipeline (windows with a stride, best span).

Two uses in qgen: the round trip of generated pairs with a second model (``qgen generate
--round_trip_reader DIR``: keep a pair when the reader, asked its question, finds its answer),
and measuring what generated data is worth (train a reader on it with `qgen.training.reader`,
score it on human questions with `evaluate_reader`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from qgen.generation.filters import normalize_answer, token_f1

__all__ = ["ExtractiveReader", "evaluate_reader", "squad_scores"]


class ExtractiveReader:
    """Answer questions about passages with an extractive QA model.

    Each (question, passage) is cut into windows of ``max_length`` tokens (``stride`` overlap);
    the answer is the span of passage tokens, at most ``max_answer_len`` long, with the highest
    start + end logit over all windows. (transformers 5 dropped its ``question-answering``
    pipeline; this is its span search, batched.)

    Args:
        path: an ``AutoModelForQuestionAnswering`` directory with its (fast) tokenizer.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        max_answer_len: longest answer, in tokens.
        max_length: tokens per window.
        stride: tokens shared by consecutive windows.
    """

    def __init__(
        self, path: str | os.PathLike, device: str | None = None, max_answer_len: int = 30,
        max_length: int = 384, stride: int = 128,
    ):  # fmt: skip
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
        self.model.to(self.device).eval()
        self.max_answer_len, self.max_length, self.stride = max_answer_len, max_length, stride

    def answer(
        self, passages: Sequence[str], questions: Sequence[str], batch_size: int = 16
    ) -> list[dict[str, Any]]:
        """The best span for each (passage, question): ``{"answer", "start", "score"}``
        (``score``: its start + end logit)."""
        import torch

        if len(passages) != len(questions):
            raise ValueError(f"got {len(passages)} passages but {len(questions)} questions")
        best: list[dict[str, Any]] = [
            {"answer": "", "start": -1, "score": -float("inf")} for _ in passages
        ]
        for lo in range(0, len(passages), batch_size):
            chunk_p, chunk_q = passages[lo : lo + batch_size], questions[lo : lo + batch_size]
            enc = self.tokenizer(
                [q.strip() for q in chunk_q], list(chunk_p), truncation="only_second",
                max_length=self.max_length, stride=self.stride, return_overflowing_tokens=True,
                return_offsets_mapping=True, padding=True, return_tensors="pt",
            )  # fmt: skip
            sample_of = enc.pop("overflow_to_sample_mapping").tolist()
            offsets = enc.pop("offset_mapping").tolist()
            with torch.no_grad():
                out = self.model(**{k: v.to(self.device) for k, v in enc.items()})
            starts, ends = out.start_logits.float().cpu(), out.end_logits.float().cpu()
            for w, sample in enumerate(sample_of):
                sequence = enc.sequence_ids(w)
                in_passage = torch.tensor([s == 1 for s in sequence])
                span = self._best_span(starts[w], ends[w], in_passage)
                if span is None:
                    continue
                (i, j), score = span
                k = lo + sample
                if score > best[k]["score"]:
                    a, b = offsets[w][i][0], offsets[w][j][1]
                    best[k] = {"answer": passages[k][a:b], "start": a, "score": score}
        return best

    def _best_span(self, start, end, in_passage):
        """``((i, j), start[i] + end[j])`` maximal over passage tokens with 0 <= j - i < cap."""
        import torch

        if not bool(in_passage.any()):
            return None
        neg = torch.finfo(start.dtype).min
        s = start.masked_fill(~in_passage, neg)
        e = end.masked_fill(~in_passage, neg)
        total = s[:, None] + e[None, :]  # (L, L)
        n = len(s)
        band = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(
            self.max_answer_len
        )
        total = total.masked_fill(~band, neg)
        flat = int(total.argmax())
        i, j = divmod(flat, n)
        return (i, j), float(total[i, j])


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 (in percent): per question the best over its gold
    answers, averaged over questions."""
    if len(predictions) != len(golds):
        raise ValueError(
            f"predictions and golds differ in length: {len(predictions)} != {len(golds)}"
        )
    if not predictions:
        raise ValueError("no predictions to score")
    em = f1 = 0.0
    for pred, refs in zip(predictions, golds):
        em += max(float(normalize_answer(pred) == normalize_answer(g)) for g in refs)
        f1 += max(token_f1(pred, g) for g in refs)
    n = len(predictions)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "questions": n}


def evaluate_reader(
    path: str | os.PathLike, squad_file: str, batch_size: int = 16, max_samples: int | None = None
) -> dict[str, float]:
    """Exact match and F1 of a reader on the questions of a SQuAD-format file."""
    from qgen.io.squad import load_squad

    rows = load_squad(squad_file)
    rows = rows.filter(lambda r: len(r["answers"]["text"]) > 0)
    if max_samples is not None:
        rows = rows.select(range(min(max_samples, len(rows))))
    reader = ExtractiveReader(path)
    answers = reader.answer(rows["context"], rows["question"], batch_size=batch_size)
    return squad_scores([a["answer"] for a in answers], [r["text"] for r in rows["answers"]])
