"""The non-termination study (Welleck et al. 2020 on our data): train small LMs on SQuAD
Wikipedia sentences, decode held-out and random 10-token prefixes with every decoder, and
measure non-termination, length, repetition and diversity.

Data: the contexts of ``squad/du_train.json`` split into sentences (a regex splitter on
``.!?`` followed by a capital), lower-cased and tokenised into words and single punctuation
marks (`tokenize`). Articles, not sentences, are split between train and held-out, so no
paragraph feeds both. Words outside the ``vocab_size - 4`` most frequent training words become
``<unk>``. Each sentence becomes ``<bos> w_1 .. w_n <eos>``; only sentences with
``context_length < n <= max_sentence_tokens`` words are kept, so the first
``context_length`` words are always a context and the end token never falls inside it.
``<eos>`` sits at index 3 (not the last index) on purpose: the ST layer must not assume it.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import metrics
from .config import DecodingConfig
from .lm import GPT2LanguageModel, LMStepModel, LSTMLanguageModel, LSTMLMConfig, lm_nll
from .self_terminating import greedy_stop_bound

__all__ = [
    "StudyConfig",
    "DECODERS",
    "tokenize",
    "split_sentences",
    "Vocab",
    "load_corpus",
    "run_study",
    "check_invariants",
]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

# name -> DecodingConfig fields (registry; eos / cap filled in at decode time)
DECODERS: dict[str, dict] = {
    "greedy": {"strategy": "greedy"},
    "beam-2": {"strategy": "beam", "num_beams": 2, "early_stopping": True},
    "beam-4": {"strategy": "beam", "num_beams": 4, "early_stopping": True},
    "ancestral": {"strategy": "sample"},
    "top-k-2": {"strategy": "sample", "top_k": 2},
    "top-k-4": {"strategy": "sample", "top_k": 4},
    "nucleus-0.2": {"strategy": "sample", "top_p": 0.2},
    "nucleus-0.4": {"strategy": "sample", "top_p": 0.4},
    "c-top-k-2": {"strategy": "sample", "top_k": 2, "consistent": True},
    "c-top-k-4": {"strategy": "sample", "top_k": 4, "consistent": True},
    "c-nucleus-0.2": {"strategy": "sample", "top_p": 0.2, "consistent": True},
    "c-nucleus-0.4": {"strategy": "sample", "top_p": 0.4, "consistent": True},
}


@dataclass
class StudyConfig:
    """Sizes of the study. The defaults are the "full" run (about 20 minutes on one thread)."""

    data_path: str = field(
        default="../shared/data/squad/du_train.json", metadata={"help": "SQuAD json"}
    )
    output_dir: str = field(default="runs/nontermination", metadata={"help": "results go here"})
    max_train_sentences: int = field(default=3000, metadata={"help": "training sentences"})
    num_valid: int = field(default=500, metadata={"help": "held-out validation sentences"})
    num_test: int = field(
        default=1000, metadata={"help": "held-out test sentences (perplexity, prefixes)"}
    )
    heldout_article_fraction: float = field(default=0.1, metadata={"help": "articles held out"})
    vocab_size: int = field(default=3000, metadata={"help": "vocabulary incl. 4 special tokens"})
    context_length: int = field(default=10, metadata={"help": "prefix words (reference k=10)"})
    max_sentence_tokens: int = field(
        default=60, metadata={"help": "longest training sentence (words)"}
    )
    lstm_hidden: int = field(default=256, metadata={"help": "LSTM hidden = embedding size (tied)"})
    lstm_layers: int = field(default=2, metadata={"help": "LSTM layers"})
    lstm_dropout: float = field(default=0.3, metadata={"help": "LSTM dropout"})
    lstm_lr: float = field(default=2e-3, metadata={"help": "Adam learning rate of the LSTM"})
    gpt_layers: int = field(default=2, metadata={"help": "transformer layers"})
    gpt_hidden: int = field(default=128, metadata={"help": "transformer width"})
    gpt_heads: int = field(default=4, metadata={"help": "attention heads"})
    gpt_lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the transformer"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    epochs: int = field(default=1, metadata={"help": "training epochs"})
    epsilons: list[float] = field(
        default_factory=lambda: [1e-2, 1e-3, 1e-4], metadata={"help": "ST epsilons"}
    )
    architectures: list[str] = field(
        default_factory=lambda: ["lstm", "gpt2"], metadata={"help": "lstm / gpt2"}
    )
    num_prefixes: int = field(default=150, metadata={"help": "prefixes per prefix set"})
    max_new_tokens: int = field(default=100, metadata={"help": "length cap L of a continuation"})
    decoders: list[str] = field(
        default_factory=lambda: list(DECODERS), metadata={"help": "held-out prefixes"}
    )
    random_prefix_decoders: list[str] = field(
        default_factory=lambda: ["greedy", "beam-4", "ancestral", "nucleus-0.4", "c-nucleus-0.4"],
        metadata={"help": "decoders for the random-token prefixes"},
    )
    seed: int = field(default=0, metadata={"help": "seed of data split, init and sampling"})

    def __post_init__(self) -> None:
        for name in (*self.decoders, *self.random_prefix_decoders):
            if name not in DECODERS:
                raise ValueError(f"decoder {name!r} unknown; known: {sorted(DECODERS)}")
        for arch in self.architectures:
            if arch not in ("lstm", "gpt2"):
                raise ValueError(f"architectures: {arch!r} is not 'lstm' or 'gpt2'")
        for eps in self.epsilons:
            if not 0.0 < eps < 1.0:
                raise ValueError(f"epsilons: {eps} is not in (0, 1)")
        if self.vocab_size <= len(SPECIALS):
            raise ValueError(
                f"vocab_size must be > {len(SPECIALS)}, got vocab_size={self.vocab_size}"
            )
        if self.max_new_tokens < 1 or self.num_prefixes < 1:
            raise ValueError(
                f"max_new_tokens={self.max_new_tokens} and num_prefixes={self.num_prefixes} must be >= 1"
            )

    @classmethod
    def quick(cls, **overrides) -> StudyConfig:
        """Tiny models and few prefixes (about a minute): for CI and smoke runs. L = 80 is
        above the greedy bound ceil(ln 0.5 / ln 0.99) = 69 of the eps = 1e-2 ST model."""
        sizes = dict(
            max_train_sentences=400,
            num_valid=50,
            num_test=100,
            vocab_size=400,
            lstm_hidden=32,
            gpt_hidden=32,
            gpt_layers=1,
            gpt_heads=2,
            batch_size=32,
            epsilons=[1e-2],
            num_prefixes=24,
            max_new_tokens=80,
            random_prefix_decoders=["greedy", "c-nucleus-0.4"],
            output_dir="runs/nontermination-quick",
        )
        sizes.update(overrides)
        return cls(**sizes)


# ----------------------------------------------------------------------------- data
_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[^\sa-z0-9]")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``, ``!`` or ``?`` followed by whitespace and a capital
    letter / quote / parenthesis (simple; abbreviations like "U.S. Army" may split)."""
    return [s.strip() for s in _SENT_RE.split(text) if s.strip()]


def tokenize(sentence: str) -> list[str]:
    """Lower-case words (with an attached 's / 't ...) and single punctuation marks."""
    return _TOKEN_RE.findall(sentence.lower())


class Vocab:
    """Word <-> id; ids 0..3 are ``<pad> <unk> <bos> <eos>``."""

    def __init__(self, sentences: list[list[str]], size: int) -> None:
        counts = Counter(w for s in sentences for w in s)
        self.itos = list(SPECIALS) + [w for w, _ in counts.most_common(size - len(SPECIALS))]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str]) -> list[int]:
        return [BOS] + [self.stoi.get(w, UNK) for w in words] + [EOS]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.itos[i] for i in ids)


def load_corpus(cfg: StudyConfig) -> tuple[Vocab, dict[str, list[list[int]]]]:
    """Read, split (by article), tokenise and encode; returns the vocab and id lists."""
    articles = json.loads(Path(cfg.data_path).read_text())["data"]
    rng = random.Random(cfg.seed)
    order = list(range(len(articles)))
    rng.shuffle(order)
    n_held = max(1, int(len(articles) * cfg.heldout_article_fraction))
    pools: dict[str, list[list[str]]] = {"train": [], "heldout": []}
    for rank, a in enumerate(order):
        pool = pools["heldout" if rank < n_held else "train"]
        for p in articles[a]["paragraphs"]:
            for s in split_sentences(p["context"]):
                words = tokenize(s)
                if cfg.context_length < len(words) <= cfg.max_sentence_tokens:
                    pool.append(words)
    for pool in pools.values():
        rng.shuffle(pool)
    train = pools["train"][: cfg.max_train_sentences]
    held = pools["heldout"]
    if len(held) < cfg.num_valid + cfg.num_test:
        raise ValueError(f"only {len(held)} held-out sentences for num_valid + num_test")
    vocab = Vocab(train, cfg.vocab_size)
    splits = {
        "train": train,
        "valid": held[: cfg.num_valid],
        "test": held[cfg.num_valid : cfg.num_valid + cfg.num_test],
    }
    return vocab, {k: [vocab.encode(s) for s in v] for k, v in splits.items()}


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with ``<pad>``; returns ``(input_ids, attention_mask)``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, (ids != PAD).long()


def _length_batches(
    seqs: list[list[int]], batch_size: int, rng: random.Random
) -> list[list[list[int]]]:
    """Batches of similar length (less padding), in random order."""
    ordered = sorted(seqs, key=len)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    rng.shuffle(batches)
    return batches


# ----------------------------------------------------------------------------- models
def model_name(arch: str, epsilon: float | None) -> str:
    return arch if epsilon is None else f"{arch}-st-{epsilon:g}"


def build_model(
    arch: str, epsilon: float | None, vocab_size: int, cfg: StudyConfig
) -> torch.nn.Module:
    """A freshly initialised (seeded) LSTM or GPT-2 LM; ST when ``epsilon`` is set."""
    torch.manual_seed(cfg.seed)
    if arch == "lstm":
        lcfg = LSTMLMConfig(
            vocab_size,
            EOS,
            PAD,
            cfg.lstm_hidden,
            cfg.lstm_layers,
            cfg.lstm_dropout,
            epsilon,
            cfg.context_length,
        )
        return LSTMLanguageModel(lcfg)
    positions = max(cfg.max_sentence_tokens + 2, cfg.context_length + 1 + cfg.max_new_tokens)
    return GPT2LanguageModel.from_sizes(
        vocab_size,
        EOS,
        epsilon,
        n_layer=cfg.gpt_layers,
        n_embd=cfg.gpt_hidden,
        n_head=cfg.gpt_heads,
        n_positions=positions,
        pad_token_id=PAD,
        st_context_length=cfg.context_length,
    )


def _labels(ids: torch.Tensor) -> torch.Tensor:
    return ids.masked_fill(ids == PAD, -100)


def train_lstm(model: LSTMLanguageModel, train: list[list[int]], cfg: StudyConfig) -> list[float]:
    """Plain loop (reference recipe): Adam, NLL on every next token, grad-norm clip 1.0,
    length-bucketed batches. Returns the loss of every 50th step."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lstm_lr)
    rng = random.Random(cfg.seed)
    model.train()
    losses = []
    for _ in range(cfg.epochs):
        for step, batch in enumerate(_length_batches(train, cfg.batch_size, rng)):
            ids, _ = pad_batch(batch)
            nll, n = lm_nll(model(ids), _labels(ids))
            loss = nll / n
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0:
                losses.append(round(loss.item(), 4))
    return losses


def _collate(features: list[dict]) -> dict[str, torch.Tensor]:
    ids, mask = pad_batch([f["input_ids"] for f in features])
    return {"input_ids": ids, "attention_mask": mask, "labels": _labels(ids)}


def train_gpt2(
    model: GPT2LanguageModel, train: list[list[int]], cfg: StudyConfig, out_dir: str
) -> list[float]:
    """HF ``Trainer``: AdamW, linear schedule with 5% warm-up, weight decay 0.01, clip 1.0,
    length-grouped batches. Returns the logged training losses."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    steps = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
    args = TrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.gpt_lr,
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        warmup_steps=max(1, steps // 20),
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=cfg.seed,
        train_sampling_strategy="group_by_length",
    )
    ds = Dataset.from_dict({"input_ids": train})
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=_collate)
    trainer.train()
    return [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]


@torch.no_grad()
def perplexity(model: torch.nn.Module, seqs: list[list[int]], context_length: int) -> float:
    """Perplexity of the continuation tokens (words after the first ``context_length``, and
    ``<eos>``), the tokens the reference scores (its loss masks the context)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs), 64):
        ids, mask = pad_batch(seqs[i : i + 64])
        labels = _labels(ids)
        labels[:, : context_length + 1] = -100  # <bos> and the context words
        lp = (
            model(ids)
            if isinstance(model, LSTMLanguageModel)
            else model(ids, attention_mask=mask).logits
        )
        nll, n = lm_nll(lp, labels)
        total, count = total + nll.item(), count + n.item()
    return math.exp(total / count)


# ----------------------------------------------------------------------------- decoding
def make_prefixes(
    test: list[list[int]], vocab_size: int, cfg: StudyConfig
) -> dict[str, torch.Tensor]:
    """``(N, 1 + k)`` prefixes: ``<bos>`` + the first k words of held-out test sentences, and
    ``<bos>`` + k uniformly random non-special tokens (the paper's random prefixes)."""
    k, n = cfg.context_length, cfg.num_prefixes
    held = torch.tensor([s[: k + 1] for s in test[:n]])
    gen = torch.Generator().manual_seed(cfg.seed)
    rand = torch.randint(len(SPECIALS), vocab_size, (n, k), generator=gen)
    rand = torch.cat([torch.full((n, 1), BOS), rand], dim=1)
    return {"heldout": held, "random": rand}


def decode_continuations(
    model: torch.nn.Module, prefixes: torch.Tensor, decoder: str, cfg: StudyConfig
):
    """Continuations (prompt removed) of one decoder through `decoding.decode`."""
    from .decode import decode

    dcfg = DecodingConfig(
        **DECODERS[decoder],
        max_new_tokens=cfg.max_new_tokens,
        eos_token_id=EOS,
        pad_token_id=PAD,
        seed=cfg.seed,
    )
    out = decode(LMStepModel(model), prefixes, dcfg)
    return out.sequences[:, prefixes.size(1) :]


def continuation_stats(cont: torch.Tensor, cap: int) -> dict[str, float]:
    """r_L, mean / max length (eos included), seq-rep-4 and distinct-2 of continuations."""
    lengths = [len(t) + int(e) for t, e in metrics.split_continuations(cont, EOS, PAD)]
    return {
        "r_L": metrics.non_termination_ratio(cont, EOS, cap, PAD),
        "mean_len": metrics.mean_length(cont, EOS, PAD),
        "max_len": max(lengths),
        "rep4": metrics.repetition_rate(cont, 4, EOS, PAD),
        "distinct2": metrics.distinct_n(cont, 2, EOS, PAD),
    }


# ----------------------------------------------------------------------------- the study
def run_study(cfg: StudyConfig, log=print) -> dict:
    """Train every (architecture, epsilon) model, decode, and write ``results.jsonl``,
    ``summary.json``, ``tables.md`` and ``nontermination.png`` under ``cfg.output_dir``."""
    t0, cpu0 = time.time(), time.process_time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab, data = load_corpus(cfg)
    log(
        f"data: {', '.join(f'{k}={len(v)}' for k, v in data.items())} sentences, vocab={len(vocab)}"
    )
    prefixes = make_prefixes(data["test"], len(vocab), cfg)
    rows, models, samples = [], {}, {}
    for arch in cfg.architectures:
        for eps in (None, *cfg.epsilons):
            name = model_name(arch, eps)
            model = build_model(arch, eps, len(vocab), cfg)
            t_train = time.time()
            if arch == "lstm":
                losses = train_lstm(model, data["train"], cfg)
            else:
                losses = train_gpt2(model, data["train"], cfg, str(out / "trainer" / name))
            ppl = perplexity(model, data["test"], cfg.context_length)
            models[name] = {
                "arch": arch,
                "epsilon": eps,
                "test_ppl": round(ppl, 2),
                "valid_ppl": round(perplexity(model, data["valid"], cfg.context_length), 2),
                "train_s": round(time.time() - t_train, 1),
                "losses": losses,
            }
            log(f"{name}: test ppl {ppl:.1f}, trained in {models[name]['train_s']} s")
            t_dec = time.time()
            for pset, decoders in (
                ("heldout", cfg.decoders),
                ("random", cfg.random_prefix_decoders),
            ):
                for dec in decoders:
                    cont = decode_continuations(model, prefixes[pset], dec, cfg)
                    row = {
                        "model": name,
                        "arch": arch,
                        "epsilon": eps,
                        "prefixes": pset,
                        "decoder": dec,
                        **continuation_stats(cont, cfg.max_new_tokens),
                    }
                    rows.append(row)
                    if pset == "heldout" and dec == "greedy":
                        samples[name] = (
                            vocab.decode(prefixes[pset][0].tolist())
                            + " || "
                            + vocab.decode([t for t in cont[0].tolist() if t != PAD])
                        )
            models[name]["decode_s"] = round(time.time() - t_dec, 1)
            log(f"{name}: decoded in {models[name]['decode_s']} s")
    summary = {
        "config": asdict(cfg),
        "models": models,
        "samples": samples,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1),
        "violations": check_invariants(rows, cfg),
    }
    with open(out / "results.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "tables.md").write_text(format_tables(rows, models, cfg))
    plot_rl(rows, models, out / "nontermination.png")
    log(f"done in {summary['wall_s']} s; invariant violations: {summary['violations'] or 'none'}")
    return {"rows": rows, **summary}


def check_invariants(rows: list[dict], cfg: StudyConfig) -> list[str]:
    """Checks that hold for ANY weights; returns the violations (empty when all hold).

    For an ST model with ``greedy_stop_bound(eps) <= L``:
    * greedy: every continuation ends within the bound, so r_L = 0;
    * consistent top-k / nucleus: the end token is never filtered and renormalising over the
      kept set only raises its probability, so p_t(eos) >= 1 - (1-eps)^(t+1) still holds and a
      row survives L steps with probability <= (1-eps)^(L(L+1)/2) (< 1e-14 for eps=1e-2,
      L=80): r_L = 0 (a violation is a bug, not bad luck).
    Vanilla models have no positive lower bound on p(eos) that we can state for finite L, so
    their consistent sampling is reported, not asserted.
    """
    bad = []
    for r in rows:
        eps = r["epsilon"]
        if eps is None or greedy_stop_bound(eps) > cfg.max_new_tokens:
            continue
        if r["decoder"] == "greedy" and (r["r_L"] > 0 or r["max_len"] > greedy_stop_bound(eps)):
            bad.append(
                f"{r['model']} greedy on {r['prefixes']}: r_L={r['r_L']}, max_len={r['max_len']}"
            )
        if DECODERS[r["decoder"]].get("consistent") and r["r_L"] > 0:
            bad.append(f"{r['model']} {r['decoder']} on {r['prefixes']}: r_L={r['r_L']}")
    return bad


# ----------------------------------------------------------------------------- report
def _matrix(rows: list[dict], models: list[str], pset: str, key: str, fmt: str) -> list[str]:
    cell = {(r["model"], r["decoder"]): r[key] for r in rows if r["prefixes"] == pset}
    decoders = list(dict.fromkeys(r["decoder"] for r in rows if r["prefixes"] == pset))
    lines = ["| decoder | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for d in decoders:
        vals = [format(cell[(m, d)], fmt) if (m, d) in cell else "-" for m in models]
        lines.append(f"| {d} | " + " | ".join(vals) + " |")
    return lines


def format_tables(rows: list[dict], models: dict, cfg: StudyConfig) -> str:
    """Markdown: perplexities, then one decoder x model matrix per metric."""
    names = list(models)
    lines = ["| model | test ppl | valid ppl | train s | decode s |", "|---|---|---|---|---|"]
    for n, m in models.items():
        lines.append(
            f"| {n} | {m['test_ppl']} | {m['valid_ppl']} | {m['train_s']} | {m.get('decode_s', '-')} |"
        )
    sections = [
        (
            "heldout",
            "r_L",
            ".2f",
            f"Non-termination ratio r_L (L = {cfg.max_new_tokens}), held-out prefixes",
        ),
        (
            "heldout",
            "mean_len",
            ".1f",
            "Mean continuation length (tokens, eos included), held-out prefixes",
        ),
        (
            "heldout",
            "rep4",
            ".2f",
            "seq-rep-4 (share of repeated 4-grams per continuation), held-out prefixes",
        ),
        ("heldout", "distinct2", ".2f", "distinct-2 over all continuations, held-out prefixes"),
        (
            "random",
            "r_L",
            ".2f",
            f"Non-termination ratio r_L (L = {cfg.max_new_tokens}), random-token prefixes",
        ),
        ("random", "mean_len", ".1f", "Mean continuation length, random-token prefixes"),
    ]
    for pset, key, fmt, title in sections:
        lines += ["", f"**{title}**", "", *_matrix(rows, names, pset, key, fmt)]
    return "\n".join(lines) + "\n"


def plot_rl(rows: list[dict], models: dict, path: Path) -> None:
    """Grouped bars: r_L per decoder (x) and model (colour), one panel per architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = [r for r in rows if r["prefixes"] == "heldout"]
    archs = list(dict.fromkeys(r["arch"] for r in held))
    decoders = list(dict.fromkeys(r["decoder"] for r in held))
    fig, axes = plt.subplots(len(archs), 1, figsize=(11, 3.2 * len(archs)), squeeze=False)
    for ax, arch in zip(axes[:, 0], archs):
        names = [n for n, m in models.items() if m["arch"] == arch]
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            cell = {r["decoder"]: r["r_L"] for r in held if r["model"] == name}
            xs = [i + j * width for i in range(len(decoders))]
            ax.bar(xs, [cell.get(d, 0.0) for d in decoders], width, label=name)
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(decoders))], decoders, rotation=30, fontsize=8
        )
        ax.set_ylabel("r_L")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{arch}: non-termination ratio by decoder (held-out prefixes)")
        ax.legend(fontsize=7, ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
