"""What are generated pairs worth to a reader, against human pairs at equal count, on domains
the generator never saw? (issue 22, item 3)

For one domain:

* ``tydi``: TyDi QA GoldP English; pairs are generated from its train passages and the readers
  are scored on its dev questions (the setup of `studies.generated_data.study`);
* ``covid``: COVID-QA, whole scientific papers cut at sentence ends into windows of about
  ``window_words`` words; the papers are split (seeded) into train papers, whose windows the
  pairs are generated from, and held-out papers, whose human questions (each with the window
  that holds its answer) score the readers.

Each variant is a set of ``qgen generate`` flags (e.g. ``unchecked=--no_round_trip``, or
``default=`` for the defaults); every variant generates from the same train passages, and ``N``
pairs are taken round robin over the passages (each passage's best pair, then each one's
second, ...). The same reader recipe (all-MiniLM-L6-v2, ``epochs`` epochs) is trained on each
variant's N pairs and on N human pairs drawn at random from the same train passages, once per
seed, and scored on the held-out human questions (SQuAD EM / F1). The ratio of a variant's F1
to the human pairs' F1 is what the issue asks about (goal: at least 0.95).

Every step writes into ``output_dir`` and is skipped when its output exists, so a run resumes.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studies.generated_data.study import _read_jsonl, _train_and_score, _write_jsonl, round_robin

__all__ = ["DownstreamConfig", "covid_windows", "parse_variants", "run_downstream"]

DOMAINS = ("tydi", "covid")


@dataclass
class DownstreamConfig:
    domain: str = field(metadata={"help": f"One of {DOMAINS}."})
    data_dir: str = field(default="../shared/data", metadata={"help": "The shared data folder."})
    output_dir: str = field(default="runs/downstream")
    variants: str = field(
        default="unchecked=--no_round_trip;default=",
        metadata={"help": "NAME=FLAGS;NAME=FLAGS: qgen generate flags of each variant."},
    )
    pairs: int = field(
        default=1000, metadata={"help": "N: pairs per reader (human and each variant)."}
    )
    num_pairs: int = 3
    passages: int = field(
        default=0,
        metadata={"help": "Train passages to generate from (0: enough for N pairs at num_pairs a "
                  "passage, plus a quarter)."},
    )  # fmt: skip
    window_words: int = field(default=150, metadata={"help": "covid: words per window."})
    heldout_papers: float = field(
        default=0.3, metadata={"help": "covid: share of held-out papers."}
    )
    model: str | None = field(default=None, metadata={"help": "qgen model (default: shipped)."})
    reader_base: str | None = field(
        default=None, metadata={"help": "Reader backbone (default: all-MiniLM-L6-v2)."}
    )
    device: str | None = None
    generate_batch_size: int = 16
    epochs: float = 5.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    seed: int = 0
    reader_seeds: str = field(default="0,1,2", metadata={"help": "One reader per set and seed."})
    quick: bool = field(default=False, metadata={"help": "A smoke run: tiny sizes."})

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ValueError(f"--domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.pairs < 1:
            raise ValueError(f"--pairs must be >= 1, got {self.pairs}")
        parse_variants(self.variants)


def parse_variants(spec: str) -> dict[str, str]:
    """``"a=--x 1;b="`` -> ``{"a": "--x 1", "b": ""}``."""
    variants = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, flags = part.partition("=")
        if not sep or not re.fullmatch(r"[\w.+-]+", name.strip()):
            raise ValueError(
                f"--variants: {part!r} is not NAME=FLAGS (NAME: letters, digits, _.+-)"
            )
        variants[name.strip()] = flags.strip()
    if not variants:
        raise ValueError("--variants: no variant given")
    return variants


# ----------------------------------------------------------------- the domains


def _squad_rows(path: str) -> list[dict]:
    from qgen.io.squad import load_squad

    return [r for r in load_squad(path) if r["answers"]["text"]]


def covid_windows(path: str, words: int, heldout: float, seed: int) -> tuple[list, list]:
    """COVID-QA cut into windows: ``(train_rows, heldout_rows)``, SQuAD rows whose context is
    the window that holds the answer (questions whose answer crosses a window end are left
    out), the papers split at random (seeded) with ``heldout`` of them held out."""
    with open(path, encoding="utf-8") as f:
        articles = json.load(f)["data"]
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    held = set(order[: math.ceil(heldout * len(articles))])
    train, test = [], []
    for a, article in enumerate(articles):
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = _sentence_windows(context, words)
            for qa in paragraph["qas"]:
                for answer in qa["answers"][:1]:
                    start, text = answer["answer_start"], answer["text"]
                    lo, hi = next(((lo, hi) for lo, hi in spans
                                   if lo <= start and start + len(text) <= hi), (None, None))  # fmt: skip
                    if lo is None or context[start : start + len(text)] != text:
                        continue
                    row = {"id": str(qa["id"]), "title": article.get("title", str(a)),
                           "context": context[lo:hi], "question": qa["question"],
                           "answers": {"text": [text], "answer_start": [start - lo]}}  # fmt: skip
                    (test if a in held else train).append(row)
    return train, test


def _sentence_windows(text: str, words: int) -> list[tuple[int, int]]:
    """Character spans of consecutive windows of about ``words`` words, cut at sentence ends."""
    ends = [m.end() for m in re.finditer(r"[.!?](\s+|$)", text)] or [len(text)]
    spans, lo, count, prev = [], 0, 0, 0
    for end in ends:
        count += len(text[prev:end].split())
        prev = end
        if count >= words:
            spans.append((lo, end))
            lo, count = end, 0
    if lo < len(text) and text[lo:].strip():
        spans.append((lo, len(text)))
    return spans


def domain_data(cfg: DownstreamConfig, out: Path) -> tuple[list[dict], str]:
    """``(train_rows, heldout_file)``: the human train pairs and the held-out questions."""
    if cfg.domain == "tydi":
        folder = os.path.join(cfg.data_dir, "tydiqa_en")
        train = os.path.join(folder, "english_tydiqa_train.json")
        dev = os.path.join(folder, "english_tydiqa_dev.json")
        for path in (train, dev):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} not found: pass --data_dir (the shared data folder)"
                )
        return _squad_rows(train), dev
    path = os.path.join(cfg.data_dir, "covid_qa", "covid_qa.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: pass --data_dir (the shared data folder)")
    heldout_file = out / "heldout.jsonl"
    train, test = covid_windows(path, cfg.window_words, cfg.heldout_papers, cfg.seed)
    if not heldout_file.exists():
        _write_jsonl(test, str(heldout_file))
    return train, str(heldout_file)


# ----------------------------------------------------------------- generation


def _passages(cfg: DownstreamConfig, human: list[dict]) -> list[str]:
    """The train passages every variant generates from, in a seeded order."""
    passages = sorted({r["context"] for r in human})
    random.Random(cfg.seed).shuffle(passages)
    wanted = cfg.passages or math.ceil(1.25 * cfg.pairs / cfg.num_pairs)
    if cfg.quick:
        wanted = min(wanted, 8)
    return passages[:wanted]


def _generate(cfg: DownstreamConfig, name: str, flags: str, inp: Path, out: Path) -> dict:
    """A variant's records and its run's summary (cached in ``out``)."""
    output = out / f"generated-{name}.jsonl"
    summary_file = out / f"generated-{name}.summary.json"
    if summary_file.exists():
        return {"records": _read_jsonl(str(output)), **json.loads(summary_file.read_text())}
    cmd = [sys.executable, "-m", "qgen", "generate", "--input", str(inp), "--output", str(output),
           "--overwrite", "--num_pairs", str(cfg.num_pairs), "--seed", str(cfg.seed), "--quiet",
           "--batch_size", str(cfg.generate_batch_size), *flags.split()]  # fmt: skip
    if cfg.model:
        cmd += ["--model", cfg.model]
    if cfg.device:
        cmd += ["--device", cfg.device]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"variant {name!r} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    saved = {"summary": summary, "wall_s": time.perf_counter() - start, "flags": flags}
    summary_file.write_text(json.dumps(saved, indent=1))
    return {"records": _read_jsonl(str(output)), **saved}


# ----------------------------------------------------------------- the study


def run_downstream(cfg: DownstreamConfig) -> dict:
    """Run (or resume) every step; returns the results (also in output_dir/results.json)."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:
        cfg.pairs, cfg.epochs = min(cfg.pairs, 12), 1.0
    human, heldout = domain_data(cfg, out)
    passages = _passages(cfg, human)
    inp = out / "train_passages.jsonl"
    if not inp.exists():
        _write_jsonl([{"id": f"p{i}", "context": p} for i, p in enumerate(passages)], str(inp))
    chosen = set(passages)
    human_pool = [r for r in human if r["context"] in chosen] or human
    if len(human_pool) < cfg.pairs:  # too few human pairs on these passages: draw from all
        human_pool = human
    variants = parse_variants(cfg.variants)
    runs = {name: _generate(cfg, name, flags, inp, out) for name, flags in variants.items()}
    n = min(cfg.pairs, len(human_pool), *(len(r["records"]) for r in runs.values()))
    rng = random.Random(cfg.seed)
    sets = {"human": rng.sample(human_pool, n)}
    for name, run in runs.items():
        sets[name] = round_robin(run["records"], n)
    results = {
        "config": asdict(cfg), "pairs_per_set": n, "train_passages": len(passages),
        "heldout_questions": len(_squad_rows(heldout)),
        "variants": {
            name: {"flags": run["flags"], "pairs": len(run["records"]),
                   "pairs_per_passage": round(len(run["records"]) / len(passages), 3),
                   "passages_per_second": run["summary"].get("passages_per_second"),
                   "wall_s": round(run["wall_s"], 1)}
            for name, run in runs.items()
        },
    }  # fmt: skip
    seeds = [int(x) for x in cfg.reader_seeds.split(",")]
    for seed in seeds:  # every set once before any set twice: a cut run still compares them all
        for name, rows in sets.items():
            scores = _train_and_score(cfg, name, rows, heldout, out, seed)
            results.setdefault("by_seed", {}).setdefault(name, []).append(scores)
    human_f1 = [r["f1"] for r in results["by_seed"]["human"]]
    for name, runs_ in results["by_seed"].items():
        f1 = [r["f1"] for r in runs_]
        em = [r["exact_match"] for r in runs_]
        results.setdefault("readers", {})[name] = {
            "seeds": len(f1), "f1": round(sum(f1) / len(f1), 2), "f1_min": round(min(f1), 2),
            "f1_max": round(max(f1), 2), "exact_match": round(sum(em) / len(em), 2),
            # per seed: the variant's F1 over the human pairs' F1 of the same seed
            "f1_vs_human": round(sum(a / b for a, b in zip(f1, human_f1)) / len(f1), 3),
        }  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
