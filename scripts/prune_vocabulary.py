"""Prune a trained qgen model's vocabulary to the pieces its corpus uses (plus every
single-character piece and the special tokens), and check the result on held-out text:

    python scripts/prune_vocabulary.py --model runs/zh-qag --corpus zh_train.json \
        --output runs/zh-qag-pruned --check cmrc2018_dev.json

Prints one JSON line: pieces, parameters and weight bytes before and after; with ``--check``, the
share of held-out tokens whose segmentation changed and the largest logit difference (over the
kept pieces) on held-out inputs whose segmentation did not change.
"""

import argparse
import json

from transformers import AutoTokenizer, set_seed

from qgen.training.vocab import check_pruned, prune_vocabulary, select_vocabulary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a qgen model directory")
    parser.add_argument(
        "--corpus", nargs="+", required=True, help="SQuAD JSON / JSON lines / .txt: what to keep"
    )
    parser.add_argument("--output", required=True, help="the directory to write")
    parser.add_argument("--check", nargs="*", default=[], help="held-out files to measure on")
    parser.add_argument(
        "--max_check_rows", type=int, default=16, help="inputs for the logit comparison"
    )
    args = parser.parse_args(argv)
    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    selection = select_vocabulary(tokenizer, args.corpus)
    record = prune_vocabulary(
        args.model, selection.ids, args.output, corpus_files=args.corpus, selection=selection
    )
    summary = {
        k: record[k]
        for k in (
            "pieces_before", "pieces_after", "parameters_before", "parameters_after",
            "weights_bytes_before", "weights_bytes_after",
        )
    }  # fmt: skip
    summary["selection"] = selection.counts
    if args.check:
        summary["check"] = check_pruned(
            args.model, args.output, args.check, max_rows=args.max_check_rows
        )
    print(json.dumps(summary, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
