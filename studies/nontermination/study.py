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

The settings are in `studies.nontermination.config`, the corpus in `.corpus`, the language models
in `.lm`, their training in `.training`, the tables and plot in `.report`; this module decodes,
checks the invariants and runs the study. Run it with ``scripts/nontermination_study.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from decoding import metrics
from decoding.config import DecodingConfig
from decoding.decode import decode
from decoding.self_terminating import greedy_stop_bound

from .config import BOS, DECODERS, EOS, PAD, SPECIALS, NonterminationConfig
from .corpus import check_data_path, load_corpus
from .lm import LMStepModel
from .report import format_tables, plot_rl
from .training import build_model, model_name, perplexity, train_gpt2, train_lstm

__all__ = [
    "check_invariants",
    "continuation_stats",
    "decode_continuations",
    "make_prefixes",
    "run_study",
]


# ----------------------------------------------------------------------------- decoding
def make_prefixes(
    test: list[list[int]], vocab_size: int, cfg: NonterminationConfig
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
    model: torch.nn.Module, prefixes: torch.Tensor, decoder: str, cfg: NonterminationConfig
):
    """Continuations (prompt removed) of one decoder through `decoding.decode`."""
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
def run_study(cfg: NonterminationConfig, log=print) -> dict:
    """Train every (architecture, epsilon) model, decode, and write ``results.jsonl``,
    ``summary.json``, ``tables.md`` and ``nontermination.png`` under ``cfg.output_dir``."""
    check_data_path(cfg.data_path)  # before any output: a missing file names --data_path
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


def check_invariants(rows: list[dict], cfg: NonterminationConfig) -> list[str]:
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
