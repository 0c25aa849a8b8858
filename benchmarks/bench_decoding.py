"""Throughput of `decoding.decode` against HF ``model.generate``, measured in the same run.

One JSON line per case (greedy, nucleus sampling, beam 4; batch 1 and 8), then one line with
the environment. Three sides decode the same random GPT-2-shaped model (6 layers, hidden 384,
vocabulary 30k) for exactly ``--new_tokens`` tokens (no end token): ``decode`` ("after"),
``decode`` with the issue-21 shortcuts off (``DecodingConfig.without_shortcuts()``, "before")
and ``model.generate`` ("hf"). Repetitions run back to back, rotating which side goes first;
tokens/s are from the median times, and each ``ratio_*`` is the median of the per-repetition
ratios of times (> 1: the first-named side is faster), which is robust to load drift on a
shared machine. The ``cpu_ratio_*`` are the same ratios of the process's CPU time, which
leaves out the time other processes held the core (a time-shared CPU).

``--profile`` instead prints, per case, where the time of a call goes (ms per decoding step,
i.e. per generated token of every row: model body, HF's or decode's fast one; LM head; cache
handling; processors; token selection; the rest of the loop) for each side, each stage the
median over ``--reps`` calls, and the bandwidth floor (bytes of weights / a large tensor
copy's bandwidth).

    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py            # full
    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py --quick    # smoke run
    OMP_NUM_THREADS=1 python benchmarks/bench_decoding.py --profile  # per-stage breakdown
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
from transformers import Cache, GPT2Config, GPT2LMHeadModel, LogitsProcessorList
from transformers.cache_utils import DynamicLayer

from decoding import DecodingConfig, decode, generate_kwargs, search
from decoding.bodies import GPT2Body
from decoding.cache import PreallocatedLayer
from decoding.lm_head import ExactLMHead

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


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, float, torch.Tensor]:
    """Wall time and this process's CPU time of ``fn()``, and its output."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu_start, out


def _sides(model, name: str, batch: int, args: argparse.Namespace) -> dict[str, Callable]:
    """The three decoders of one case: after, before (shortcuts off) and HF generate."""
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(1, model.config.vocab_size, (batch, args.prompt_len), generator=gen)
    cfg = DecodingConfig(max_new_tokens=args.new_tokens, seed=0, **CASES[name])
    before = cfg.without_shortcuts()
    hf_kwargs = generate_kwargs(cfg)

    def theirs() -> torch.Tensor:
        torch.manual_seed(0)
        return model.generate(ids, **hf_kwargs)

    return {
        "after": lambda: decode(model, ids, cfg).sequences,
        "before": lambda: decode(model, ids, before).sequences,
        "hf": theirs,
    }


def run_case(model, name: str, batch: int, args: argparse.Namespace) -> dict:
    """Time after / before / ``generate`` on one case; return the JSON record."""
    sides = list(_sides(model, name, batch, args).items())
    for _, fn in sides:
        fn()  # warm-up
    times: dict[str, list[float]] = {side: [] for side, _ in sides}
    cpu: dict[str, list[float]] = {side: [] for side, _ in sides}
    outs = {}
    for rep in range(args.reps):
        # Back to back, rotating the order, so that load drift hits every side alike.
        for side, fn in sides[rep % 3 :] + sides[: rep % 3]:
            t, c, outs[side] = _timed(fn)
            times[side].append(t)
            cpu[side].append(c)
    new_tokens = batch * args.new_tokens
    for out in outs.values():
        assert out.shape == (batch, args.prompt_len + args.new_tokens)
    tps = {side: new_tokens / statistics.median(ts) for side, ts in times.items()}

    def ratio(slow: str, fast: str, clock: dict[str, list[float]] = times) -> float:
        return round(statistics.median(s / f for s, f in zip(clock[slow], clock[fast])), 3)

    return {
        "case": name,
        "batch": batch,
        "new_tokens": args.new_tokens,
        "after_tokens_per_s": round(tps["after"], 1),
        "before_tokens_per_s": round(tps["before"], 1),
        "hf_tokens_per_s": round(tps["hf"], 1),
        "ratio_after_vs_hf": ratio("hf", "after"),
        "ratio_before_vs_hf": ratio("hf", "before"),
        "ratio_after_vs_before": ratio("before", "after"),
        "cpu_ratio_after_vs_hf": ratio("hf", "after", cpu),
        "cpu_ratio_before_vs_hf": ratio("hf", "before", cpu),
        "identical_after_hf": bool(torch.equal(outs["after"], outs["hf"])),
        "identical_before_hf": bool(torch.equal(outs["before"], outs["hf"])),
        "reps": args.reps,
    }


class _StageClock:
    """Exclusive wall time per stage: a stage entered inside another is not counted twice."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stack: list[list] = []  # [stage, start, time spent in nested stages]

    def enter(self, stage: str) -> None:
        self._stack.append([stage, time.perf_counter(), 0.0])

    def leave(self) -> None:
        stage, start, nested = self._stack.pop()
        spent = time.perf_counter() - start
        self.totals[stage] = self.totals.get(stage, 0.0) + spent - nested
        if self._stack:
            self._stack[-1][2] += spent

    def wrap(self, stage: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            self.enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        return timed


def _instrument(clock: _StageClock, model) -> Callable[[], None]:
    """Time the stages of both loops; returns the function that undoes it."""
    undo = []

    def patch(owner, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        setattr(owner, attr, clock.wrap(stage, original))
        undo.append(lambda: setattr(owner, attr, original))

    for owner, attr in ((DynamicLayer, "update"), (PreallocatedLayer, "update")):
        patch(owner, attr, "cache")
    patch(Cache, "reorder_cache", "cache")
    patch(LogitsProcessorList, "__call__", "processors")
    patch(ExactLMHead, "__call__", "lm_head")
    for name in ("_choose_argmax", "_choose_multinomial", "_choose_multinomial_fast"):
        patch(search, name, "selection")
    # generate's selection is inline: its softmax / multinomial / argmax calls.
    patch(torch, "multinomial", "selection")
    patch(torch, "argmax", "selection")
    patch(torch.nn.functional, "softmax", "selection")
    # Class attributes, not hooks: a hook on the model would switch decode's fast body off.
    patch(type(model.base_model), "forward", "body")
    patch(GPT2Body, "__call__", "body")
    patch(type(model.lm_head), "forward", "lm_head")
    return lambda: [u() for u in reversed(undo)]


def profile_case(
    sides: dict[str, Callable], name: str, batch: int, new_tokens: int, model, reps: int = 1
) -> dict:
    """ms per decoding step in each stage, for each side: the median over ``reps`` calls per
    side (after a warm-up), run back to back rotating which side goes first.

    ``body`` is the model without its LM head (the cache writes excluded), ``other`` the rest
    of the loop (inputs, masks, bookkeeping; for beam search also the beam selection).
    """
    order = list(sides.items())
    for _, fn in order:
        fn()  # warm-up
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for rep in range(reps):
        for side, fn in order[rep % len(order) :] + order[: rep % len(order)]:
            clock = _StageClock()
            undo = _instrument(clock, model)
            try:
                start = time.perf_counter()
                fn()
                total = time.perf_counter() - start
            finally:
                undo()
            per_token = {k: v * 1e3 / new_tokens for k, v in clock.totals.items()}
            per_token["other"] = total * 1e3 / new_tokens - sum(per_token.values())
            per_token["total"] = total * 1e3 / new_tokens
            runs[side].append(per_token)
    record: dict = {"profile": name, "batch": batch, "new_tokens": new_tokens, "reps": reps}
    for side, per_call in runs.items():
        stages = sorted({stage for run in per_call for stage in run})
        record[side] = {
            stage: round(statistics.median(run.get(stage, 0.0) for run in per_call), 2)
            for stage in stages
        }
    return record


def copy_bandwidth() -> float:
    """Bytes per second of a 256 MiB tensor copy (read + write), the median of 5."""
    src = torch.ones(64 * 2**20)
    dst = torch.empty_like(src)
    dst.copy_(src)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return 2 * src.numel() * 4 / statistics.median(times)


def bandwidth_floor(model) -> dict:
    """Bytes of weights read per step / memory bandwidth of a 256 MiB tensor copy."""
    bandwidth = copy_bandwidth()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return {
        "bandwidth_GB_per_s": round(bandwidth / 1e9, 2),
        "weights_MB": round(weights / 1e6, 1),
        "floor_ms_per_step": round(weights / bandwidth * 1e3, 2),
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
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--profile", action="store_true", help="per-stage ms per token, no ratios")
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
    if args.profile:
        records.append(bandwidth_floor(model))
        print(json.dumps(records[-1]), flush=True)
    for name in args.cases:
        for batch in args.batches:
            if args.profile:
                sides = _sides(model, name, batch, args)
                record = profile_case(sides, name, batch, args.new_tokens, model, args.reps)
            else:
                record = run_case(model, name, batch, args)
            print(json.dumps(record), flush=True)
            records.append(record)
    env = environment(args)
    print(json.dumps(env), flush=True)
    return records + [env]


if __name__ == "__main__":
    main()
