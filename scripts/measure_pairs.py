"""What users get from `qgen generate`, measured on passages the toolkit never trained on
(issue 22): pairs per passage, how many the shipped reader answers right, how well the answers
match the human answers of the same passages, answer lengths, speed and peak memory.

Each variant is a set of `qgen generate` flags, run as its own process (so its peak memory is
its own, from ``/usr/bin/time`` when present) on the same passages. One JSON line per variant,
then a Markdown table::

    python scripts/measure_pairs.py --data ../shared/data/tydiqa_en/english_tydiqa_dev.json \\
        --passages 60 --workdir runs/pairs_tydi \\
        --variant "defaults=" --variant "round trip=--round_trip"

    # a second domain: COVID-QA's long papers, cut into SQuAD-length windows
    python scripts/measure_pairs.py --data ../shared/data/covid_qa/covid_qa.json \\
        --window_words 150 --passages 60 --workdir runs/pairs_covid --variant "defaults="

Measures (per variant):
* ``pairs_per_passage``, ``passages_full`` (with ``--num_pairs`` pairs), ``passages_without_pair``;
* ``reader_right``: the share of pairs whose question the shipped reader answers with token F1
  >= 0.5 against the pair's answer (a proxy for a right pair; a run checked by the same reader
  passes its own check by construction, so read it with the gold measures);
* ``gold_em`` / ``gold_f1``: per pair, the best exact match / token F1 of its answer against
  the human answers of its passage (do the answers hit what people asked about?);
  ``gold_recall``: the share of passages where some pair's answer has token F1 >= 0.5 with a
  human answer (more pairs a passage can only raise it);
* ``answer_words``: mean and distribution of answer lengths in words;
* ``passages_per_second`` (generation only, from the run's summary) and ``peak_mb``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time


def load_passages(
    path: str, limit: int, window_words: int | None, per_context: int = 3
) -> list[dict]:
    """The first ``limit`` distinct contexts of a SQuAD-format file with their human answers;
    with ``window_words``, long contexts are cut at sentence ends into windows of about that
    many words, each keeping the answers that fall inside it (at most ``per_context`` windows
    with an answer from each context)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out: list[dict] = []
    seen: set[str] = set()
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            if context in seen:
                continue
            seen.add(context)
            answers = [
                (a["text"], a["answer_start"]) for qa in paragraph["qas"] for a in qa["answers"]
            ]
            taken = 0
            for lo, hi in _windows(context, window_words):
                golds = [t for t, s in answers if lo <= s and s + len(t) <= hi]
                if golds and taken < per_context:
                    out.append({"id": f"p{len(out)}", "context": context[lo:hi], "gold": golds})
                    taken += 1
                if len(out) == limit:
                    return out
    return out


def _windows(text: str, words: int | None) -> list[tuple[int, int]]:
    if words is None:
        return [(0, len(text))]
    ends = [m.end() for m in re.finditer(r"[.!?](\s+|$)", text)] or [len(text)]
    spans, lo, count = [], 0, 0
    prev = 0
    for end in ends:
        count += len(text[prev:end].split())
        prev = end
        if count >= words:
            spans.append((lo, end))
            lo, count = end, 0
    if lo < len(text) and len(text[lo:].split()) >= words // 3:
        spans.append((lo, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def run_variant(
    name: str, flags: str, inp: str, workdir: str, extra: list[str], reuse: bool = False
) -> dict:
    """Run `qgen generate` with ``flags``; its records, summary and peak memory (``reuse``:
    those of an earlier run of the variant in ``workdir``, when there is one)."""
    slug = re.sub(r"\W+", "_", name).strip("_") or "run"
    out = os.path.join(workdir, f"{slug}.jsonl")
    cmd = [sys.executable, "-m", "qgen", "generate", "--input", inp, "--output", out,
           "--overwrite", "--quiet", *extra, *flags.split()]  # fmt: skip
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    peak_file = os.path.join(workdir, f"{slug}.peak")
    if timer:
        cmd = [timer, "-f", "%M", "-o", peak_file, *cmd]
    start = time.perf_counter()
    summary_file = os.path.join(workdir, f"{slug}.summary.json")
    if reuse and os.path.exists(out) and os.path.exists(summary_file):  # measured before
        with open(out, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        with open(summary_file, encoding="utf-8") as f:
            saved = json.load(f)
        return {"records": records, "summary": saved["summary"], "peak_mb": saved["peak_mb"],
                "wall_s": saved["wall_s"]}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"variant {name!r} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    with open(out, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    # the run's summary: the JSON line `qgen generate --output` prints on stdout
    summary = next(
        (json.loads(line) for line in reversed(proc.stdout.splitlines()) if line.startswith("{")),
        {},
    )
    peak = None
    if timer and os.path.exists(peak_file):
        with open(peak_file) as f:
            peak = int(f.read().split()[-1]) / 1024
    with open(summary_file, "w", encoding="utf-8") as f:
        json.dump({"summary": summary, "peak_mb": peak, "wall_s": wall}, f)
    return {"records": records, "summary": summary, "peak_mb": peak, "wall_s": wall}


def measure(name: str, flags: str, passages: list[dict], run: dict, reader, num_pairs: int) -> dict:
    from qgen.generation.filters import normalize_answer, token_f1

    records = run["records"]
    per = collections.Counter(r["id"].rsplit("-", 1)[0] for r in records)
    gold = {p["id"]: p["gold"] for p in passages}
    answers = [r["answers"]["text"][0] for r in records]
    read = reader.answer([r["context"] for r in records], [r["question"] for r in records])
    right = [token_f1(a["answer"], ans) >= 0.5 for a, ans in zip(read, answers)]
    golds = [gold[r["id"].rsplit("-", 1)[0]] for r in records]
    em = [
        any(normalize_answer(a) == normalize_answer(g) for g in gs) for a, gs in zip(answers, golds)
    ]
    f1 = [max(token_f1(a, g) for g in gs) for a, gs in zip(answers, golds)]
    hit = {r["id"].rsplit("-", 1)[0] for r, x in zip(records, f1) if x >= 0.5}
    words = [len(a.split()) for a in answers]
    bins = collections.Counter(
        "1" if w == 1 else "2" if w == 2 else "3" if w == 3 else "4-5" if w <= 5
        else "6-10" if w <= 10 else ">10" for w in words
    )  # fmt: skip
    n, k = len(records), len(passages)
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    return {
        "variant": name,
        "flags": flags,
        "passages": k,
        "pairs_asked": num_pairs,
        "pairs": n,
        "pairs_per_passage": round(n / k, 2),
        "passages_full": sum(per[p["id"]] >= num_pairs for p in passages),
        "passages_without_pair": sum(per[p["id"]] == 0 for p in passages),
        "reader_right": mean(right),
        "gold_em": mean(em),
        "gold_f1": mean(f1),
        "gold_recall": round(len(hit) / k, 3),
        "answer_words": mean(words),
        "answer_words_share": {
            b: round(bins[b] / max(n, 1), 3) for b in ("1", "2", "3", "4-5", "6-10", ">10")
        },  # fmt: skip
        "passages_per_second": run["summary"].get("passages_per_second"),
        "peak_mb": None if run["peak_mb"] is None else round(run["peak_mb"]),
        "filtered": run["summary"].get("filtered"),
    }


def table(rows: list[dict]) -> str:
    head = ("| variant | pairs / passage | full | none | reader right | gold EM | gold F1 | "
            "gold recall | answer words | passages/s | peak MB |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    lines = [
        f"| {r['variant']} | {r['pairs_per_passage']} | {r['passages_full']} | "
        f"{r['passages_without_pair']} | {r['reader_right']} | {r['gold_em']} | {r['gold_f1']} | "
        f"{r['gold_recall']} | {r['answer_words']} | {r['passages_per_second']} | {r['peak_mb']} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a SQuAD-format file (contexts + answers)")
    parser.add_argument("--passages", type=int, default=60, help="distinct passages (default 60)")
    parser.add_argument("--window_words", type=int, default=None,
                        help="cut long contexts into windows of about this many words")  # fmt: skip
    parser.add_argument("--workdir", required=True, help="where inputs and outputs go")
    parser.add_argument("--variant", action="append", required=True,
                        help="NAME=FLAGS: a variant (a name without \"=\") and its qgen generate flags (repeatable)")  # fmt: skip
    parser.add_argument("--num_pairs", type=int, default=3)
    parser.add_argument("--extra", default="", help="flags added to every variant")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the outputs of variants run before in --workdir again")  # fmt: skip
    args = parser.parse_args(argv)

    from qgen.generation.reader import ExtractiveReader
    from qgen.modeling.pretrained import default_reader_path

    if not os.path.isfile(args.data):
        raise SystemExit(f"--data {args.data}: no such file")
    os.makedirs(args.workdir, exist_ok=True)
    passages = load_passages(args.data, args.passages, args.window_words)
    if not passages:
        raise SystemExit(f"--data {args.data}: no passage with an answer")
    inp = os.path.join(args.workdir, "passages.jsonl")
    with open(inp, "w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps({"id": p["id"], "context": p["context"]}, ensure_ascii=False) + "\n")
    reader = ExtractiveReader(default_reader_path(), "cpu")
    rows = []
    extra = ["--num_pairs", str(args.num_pairs), *args.extra.split()]
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        run = run_variant(name, flags, inp, args.workdir, extra, args.reuse)
        row = measure(name, flags, passages, run, reader, args.num_pairs)
        print(json.dumps(row), flush=True)
        rows.append(row)
    words = sum(len(p["context"].split()) for p in passages) / len(passages)
    print(f"\n{len(passages)} passages, {words:.0f} words on average, from {args.data}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
