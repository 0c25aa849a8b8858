"""Generate with a trained qgen model for a SQuAD-format file and score it (same as `qgen evaluate`).

    python scripts/evaluate_qg.py --model runs/en-qg --input ../shared/data/squad/squad_dev_v1.1.json \
        --task qg --max_samples 300 --sample_seed 0 --output preds.jsonl
"""

import argparse

from qgen.evaluation import add_cli_arguments, cli_main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    add_cli_arguments(parser)
    return cli_main(parser.parse_args(argv))


if __name__ == "__main__":
    main()
