"""How well does the round trip tell a right pair from a wrong one, and at what cost?

Human pairs stand in for generated ones, so that right and wrong are known: from SQuAD passages
with at least three questions whose answers differ, each question ``q_i`` with its own answer
``a_i`` is a right pair, and the same question with the next answer of the passage
``a_{i+1}`` a wrong one (a fluent question about the passage, whose answer is a real span of it,
that does not answer it: the hard case of generated data). Each reader reads every question:

* ``unilm``: the qag model itself (`qgen.generation.round_trip`): among the passage's answers, the one with
  the highest ``log p(answer, question | passage)``;
* ``extractive``: an extractive QA model (`qgen.generation.reader.ExtractiveReader`), the best span.

A pair is kept when the answer read agrees with the pair's (token F1 >= threshold). Reported
per reader and threshold: precision (kept pairs that are right), recall (right pairs kept),
and seconds per pair.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field

from qgen.generation.filters import token_f1

__all__ = ["RoundTripCheckConfig", "load_passages", "run_check"]


@dataclass
class RoundTripCheckConfig:
    squad_file: str = field(metadata={"help": "SQuAD-format JSON (e.g. squad_dev_v1.1.json)."})
    model: str | None = field(default=None, metadata={"help": "qag model (default: shipped)."})
    reader: str | None = field(
        default=None, metadata={"help": "Extractive QA model directory (optional)."}
    )
    passages: int = 200
    max_pairs: int = field(default=4, metadata={"help": "Right pairs per passage, at most."})
    thresholds: str = "0.5,0.8,1.0"
    seed: int = 0
    output: str | None = field(default=None, metadata={"help": "Write the results JSON here."})


def load_passages(path: str, n: int, max_pairs: int, seed: int) -> list[dict]:
    """A seeded sample of ``n`` passages with >= 3 questions of distinct answers; each
    ``{"context", "pairs": [{"question", "answer", "answer_start"}]}`` (at most ``max_pairs``)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    found = []
    for article in data:
        for para in article["paragraphs"]:
            pairs, seen = [], set()
            for qa in para["qas"]:
                if not qa["answers"]:
                    continue
                answer = qa["answers"][0]
                key = answer["text"].strip().lower()
                if key in seen:
                    continue
                seen.add(key)
                pairs.append(
                    {"question": qa["question"], "answer": answer["text"],
                     "answer_start": answer["answer_start"]}
                )  # fmt: skip
            if len(pairs) >= 3:
                found.append({"context": para["context"], "pairs": pairs[:max_pairs]})
    random.Random(seed).shuffle(found)
    return found[:n]


def _unilm_reads(model_dir, passages) -> tuple[list[list[str]], float]:
    """The answer the qag model reads each question as asking for, and the seconds it took."""
    from qgen.generation.round_trip import round_trip_answers
    from qgen.modeling.pretrained import load_model

    model, tokenizer = load_model(model_dir, "cpu")
    t0 = time.perf_counter()
    reads = []
    for p in passages:
        chosen = round_trip_answers(model, tokenizer, p["context"], p["pairs"])
        reads.append([p["pairs"][j]["answer"] for j in chosen])
    return reads, time.perf_counter() - t0


def _extractive_reads(reader_dir, passages) -> tuple[list[list[str]], float]:
    from qgen.generation.reader import ExtractiveReader

    reader = ExtractiveReader(reader_dir, device="cpu")
    contexts = [p["context"] for p in passages for _ in p["pairs"]]
    questions = [q["question"] for p in passages for q in p["pairs"]]
    t0 = time.perf_counter()
    answers = [a["answer"] for a in reader.answer(contexts, questions)]
    seconds = time.perf_counter() - t0
    reads, i = [], 0
    for p in passages:
        reads.append(answers[i : i + len(p["pairs"])])
        i += len(p["pairs"])
    return reads, seconds


def _scores(passages, reads, threshold: float) -> dict:
    kept_right = kept_wrong = right = 0
    for p, read in zip(passages, reads):
        pairs = p["pairs"]
        for i, answer_read in enumerate(read):
            right += 1
            kept_right += token_f1(answer_read, pairs[i]["answer"]) >= threshold
            wrong = pairs[(i + 1) % len(pairs)]["answer"]  # q_i with another answer
            kept_wrong += token_f1(answer_read, wrong) >= threshold
    kept = kept_right + kept_wrong
    return {
        "threshold": threshold,
        "precision": 100 * kept_right / kept if kept else 0.0,
        "recall": 100 * kept_right / right if right else 0.0,
        "kept_right": kept_right, "kept_wrong": kept_wrong,
    }  # fmt: skip


def run_check(cfg: RoundTripCheckConfig) -> dict:
    passages = load_passages(cfg.squad_file, cfg.passages, cfg.max_pairs, cfg.seed)
    if not passages:
        raise ValueError(f"{cfg.squad_file}: no passage with 3 questions of distinct answers")
    thresholds = [float(t) for t in cfg.thresholds.split(",")]
    n_pairs = sum(len(p["pairs"]) for p in passages)
    results = {"config": asdict(cfg), "passages": len(passages),
               "right_pairs": n_pairs, "wrong_pairs": n_pairs, "readers": {}}  # fmt: skip
    readers = {"unilm": lambda: _unilm_reads(cfg.model, passages)}
    if cfg.reader:
        readers["extractive"] = lambda: _extractive_reads(cfg.reader, passages)
    for name, read in readers.items():
        reads, seconds = read()
        results["readers"][name] = {
            # every question is read once; a wrong pair reuses its question's reading
            "seconds_per_pair": seconds / n_pairs,
            "by_threshold": [_scores(passages, reads, t) for t in thresholds],
        }
    if cfg.output:
        with open(cfg.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return results
