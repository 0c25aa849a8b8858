"""Which cheap signal tells, before the question is asked, whether a sampled answer will make a
right pair? (issue 22, "better answers": measure before keeping.)

On passages the toolkit never saw, the shipped model over-generates (``--candidates`` questions
per passage, one round, no check), the shipped reader answers every question, and a pair counts
as right when the reader's answer has token F1 >= 0.5 with the pair's. For each signal this
prints its AUC for "right" over all pairs, and the share of right pairs and of passages with 3
right ones when each passage keeps only its top ``--keep`` answers by that signal:

* ``answer_score``: the answer stage's mean log-probability per token;
* ``score``: the mean log-probability over both stages (needs the question; the order in which
  the generator returns a passage's pairs);
* ``reader_empty`` / ``reader_what``: the reader's start + end logit for the answer's span when
  asked an empty question / "what?", minus the best span's (would a reader ever pick this span
  without a question?);
* ``reader_confidence``: the reader's own score for its answer to the real question (needs it).

    python scripts/answer_priors.py --data ../shared/data/tydiqa_en/english_tydiqa_dev.json \\
        --passages 40 --candidates 12 --output runs/answer_priors.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys


def _span_prior(model, tokenizer, passage: str, question: str, spans, cache: dict) -> list:
    """Per answer span, start + end logit of its first / last passage token minus the best ones,
    for ``question``; None when the span has no token in the reader's first window."""
    import torch

    if (passage, question) not in cache:
        enc = tokenizer(question, passage, return_offsets_mapping=True, truncation="only_second",
                        max_length=384, return_tensors="pt")  # fmt: skip
        offsets = enc.pop("offset_mapping")[0].tolist()
        sequence = enc.sequence_ids(0)
        with torch.no_grad():
            out = model(**enc)
        start, end = out.start_logits[0].float(), out.end_logits[0].float()
        inside = torch.tensor([s == 1 for s in sequence])
        best = float(start.masked_fill(~inside, -1e9).max() + end.masked_fill(~inside, -1e9).max())
        cache[(passage, question)] = (start, end, offsets, sequence, best)
    start, end, offsets, sequence, best = cache[(passage, question)]
    values = []
    for a0, a1 in spans:
        tokens = [i for i, (x, y) in enumerate(offsets) if sequence[i] == 1 and y > a0 and x < a1]
        values.append(None if not tokens else float(start[tokens[0]] + end[tokens[-1]]) - best)
    return values


def auc(rows: list[dict], key: str) -> float | None:
    """P(a right pair's signal > a wrong one's), ties halved."""
    scored = [(r[key], r["right"]) for r in rows if r.get(key) is not None]
    pos = [x for x, ok in scored if ok]
    neg = [x for x, ok in scored if not ok]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def keep_top(rows: list[dict], key: str, keep: int) -> dict:
    """Each passage's top ``keep`` pairs by ``key``: the share right and the passages with
    ``keep`` right ones."""
    by = collections.defaultdict(list)
    for r in rows:
        by[r["passage"]].append(r)
    chosen = []
    for pairs in by.values():
        ranked = sorted(pairs, key=lambda r: -(r[key] if r[key] is not None else -1e9))
        chosen.append(ranked[:keep])
    kept = [r for c in chosen for r in c]
    return {
        "right_share": round(sum(r["right"] for r in kept) / max(len(kept), 1), 3),
        "passages_all_right": sum(sum(r["right"] for r in c) >= keep for c in chosen),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a SQuAD-format file (its contexts)")
    parser.add_argument("--passages", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=12, help="questions asked a passage")
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write every pair with its signals")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from measure_pairs import load_passages
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    import qgen
    from qgen.generation.filters import token_f1
    from qgen.generation.reader import ExtractiveReader
    from qgen.modeling.pretrained import default_reader_path

    passages = load_passages(args.data, args.passages, None)
    generator = qgen.QAGenerator.from_pretrained(device="cpu", seed=args.seed)
    contexts = [p["context"] for p in passages]
    # one round, every pair passes: the generator's candidates in its own order
    out = generator.generate(contexts, candidates=args.candidates, rounds=1,
                             check=lambda passage, kept, new: new)  # fmt: skip
    reader = ExtractiveReader(default_reader_path(), "cpu")
    model = AutoModelForQuestionAnswering.from_pretrained(default_reader_path()).float().eval()
    tokenizer = AutoTokenizer.from_pretrained(default_reader_path())
    rows, cache = [], {}
    for i, (passage, pairs) in enumerate(zip(contexts, out)):
        read = reader.answer([passage] * len(pairs), [p["question"] for p in pairs])
        spans = [(p["answer_start"], p["answer_start"] + len(p["answer"])) for p in pairs]
        empty = _span_prior(model, tokenizer, passage, "", spans, cache)
        what = _span_prior(model, tokenizer, passage, "what?", spans, cache)
        for rank, (pair, answer) in enumerate(zip(pairs, read)):
            rows.append({
                "passage": i, "rank": rank, "question": pair["question"], "answer": pair["answer"],
                "score": pair["score"], "answer_score": pair["answer_score"],
                "reader_answer": answer["answer"], "reader_confidence": answer["score"],
                "reader_empty": empty[rank], "reader_what": what[rank],
                "right": token_f1(answer["answer"], pair["answer"]) >= 0.5,
                "answer_words": len(pair["answer"].split()),
            })  # fmt: skip
    signals = ("answer_score", "score", "reader_empty", "reader_what", "reader_confidence")
    result = {
        "passages": len(passages), "pairs": len(rows),
        "right_share": round(sum(r["right"] for r in rows) / max(len(rows), 1), 3),
        "passages_with_keep_right": sum(
            sum(r["right"] for r in rows if r["passage"] == i) >= args.keep
            for i in range(len(passages))
        ),
        "auc": {k: None if auc(rows, k) is None else round(auc(rows, k), 3) for k in signals},
        f"top_{args.keep}": {k: keep_top(rows, k, args.keep) for k in signals},
    }  # fmt: skip
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump({"result": result, "pairs": rows}, f, ensure_ascii=False, indent=1)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
