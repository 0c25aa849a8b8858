"""The copy baseline of answer-aware question generation on a SQuAD-format file: questions made
of the text around the answer, scored like a model's (`qgen.evaluation.metrics.score_copy_baseline`).
Character-level BLEU flatters copying; read a model's scores against these.

    python scripts/copy_baseline.py --input ../shared/data/cmrc2018/cmrc2018_dev.json

Chinese (more than half of the letters CJK): the clause around the answer (between ，。！？；：、 or
newlines), the answer removed, + 是什么？, scored on characters; other data: the sentence around
the answer, the answer removed, + ``?``, scored on words. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

from qgen.evaluation.metrics import TOKENIZE_MODES, score_copy_baseline


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="SQuAD-format JSON/JSONL")
    parser.add_argument("--max_samples", type=int, default=None, help="score the first N sources")
    parser.add_argument(
        "--sample_seed", type=int, default=None, help="a random subset (seeded) of sources"
    )
    parser.add_argument("--tokenize", default="auto", choices=("auto", *TOKENIZE_MODES))
    parser.add_argument("--no_meteor", action="store_true", help="skip METEOR (needs Java)")
    args = parser.parse_args(argv)
    if args.max_samples is not None and args.max_samples < 1:
        parser.error(f"--max_samples must be >= 1, got {args.max_samples}")
    return args


def main(argv: list[str] | None = None) -> dict:
    from transformers import set_seed

    args = parse_args(argv)
    set_seed(0)  # nothing here samples; the subset is fixed by --sample_seed
    scores = score_copy_baseline(
        args.input,
        max_samples=args.max_samples,
        sample_seed=args.sample_seed,
        tokenize=args.tokenize,
        meteor=not args.no_meteor,
    )
    print(json.dumps(scores, ensure_ascii=False))
    return scores


if __name__ == "__main__":
    main()
