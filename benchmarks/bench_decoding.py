"""Throughput of `decoding.decode` against HF ``model.generate``, measured in the same run.

One JSON line per case (greedy, nucleus sampling, beam 4; batch 1 and 8), then one line with
the environment. Both sides decode the same random GPT-2-shaped model (6 layers, hidden 384,
vocabulary 30k) for exactly ``--new_tokens`` tokens (no end token). Repetitions run in
back-to-back pairs (alternating which side goes first); tokens/s are from the median times,
``ratio`` is the median of the paired ratios ``t_hf / t_ours`` (> 1: ours is faster), which
is robust to load drift on a shared machine.

    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py          # full
    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py --quick  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from decoding import DecodingConfig, decode, generate_kwargs

CASES = {
    "greedy": {"strategy": "greedy"},
    "nucleus": {"strategy": "sample", "top_p": 0.9},
    "beam4": {"strategy": "beam", "num_beams": 4},
}


def build_model(layers: int, hidden: int, vocab: int) -> GPT2LMHeadModel:
    """A random GPT-2-shaped model (heads of size 64)."""
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=vocab,
        n_embd=hidden,
        n_layer=layers,
        n_head=hidden // 64,
        n_positions=512,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg).eval()


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run_case(model, name: str, batch: int, args: argparse.Namespace) -> dict:
    """Time ours and ``generate`` on one case; return the JSON record."""
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(1, model.config.vocab_size, (batch, args.prompt_len), generator=gen)
    cfg = DecodingConfig(max_new_tokens=args.new_tokens, seed=0, **CASES[name])
    hf_kwargs = generate_kwargs(cfg)

    def ours() -> torch.Tensor:
        return decode(model, ids, cfg).sequences

    def theirs() -> torch.Tensor:
        torch.manual_seed(0)
        return model.generate(ids, **hf_kwargs)

    ours(), theirs()  # warm-up
    times: dict[str, list[float]] = {"ours": [], "hf": []}
    outs = {}
    with torch.no_grad():
        for rep in range(args.reps):
            # Pairs run back to back, in alternating order, so that load drift on a shared
            # machine hits both sides alike; the ratio is the median of the paired ratios.
            sides = [("ours", ours), ("hf", theirs)]
            for side, fn in sides if rep % 2 == 0 else sides[::-1]:
                t, outs[side] = _timed(fn)
                times[side].append(t)
    new_tokens = batch * args.new_tokens
    assert outs["ours"].shape == outs["hf"].shape == (batch, args.prompt_len + args.new_tokens)
    ours_tps = new_tokens / statistics.median(times["ours"])
    hf_tps = new_tokens / statistics.median(times["hf"])
    paired = [h / o for o, h in zip(times["ours"], times["hf"])]
    return {
        "case": name,
        "batch": batch,
        "new_tokens": args.new_tokens,
        "ours_tokens_per_s": round(ours_tps, 1),
        "hf_tokens_per_s": round(hf_tps, 1),
        "ratio": round(statistics.median(paired), 3),
        "ratio_of_medians": round(ours_tps / hf_tps, 3),
        "identical": bool(torch.equal(outs["ours"], outs["hf"])),
        "reps": args.reps,
    }


def environment(args: argparse.Namespace) -> dict:
    """The environment line: library versions, threads, model shape."""
    return {
        "env": True,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "model": {"layers": args.layers, "hidden": args.hidden, "vocab": args.vocab},
        "prompt_len": args.prompt_len,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--vocab", type=int, default=30000)
    p.add_argument("--prompt_len", type=int, default=16)
    p.add_argument("--new_tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny model, 8 tokens, 1 rep (smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.layers, args.hidden, args.vocab, args.new_tokens, args.reps = 2, 64, 1000, 8, 1
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    model = build_model(args.layers, args.hidden, args.vocab)
    records = []
    for name in CASES:
        for batch in (1, 8):
            record = run_case(model, name, batch, args)
            print(json.dumps(record), flush=True)
            records.append(record)
    env = environment(args)
    print(json.dumps(env), flush=True)
    return records + [env]


if __name__ == "__main__":
    main()
