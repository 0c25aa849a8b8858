"""Train the Chinese-chess GPT on game records (docs/xiangqi.md, "Training run").

    python scripts/train_xiangqi.py --games_path PATH/xiangqi/games.jsonl --output_dir runs/xiangqi \
        --max_steps 2000 --curriculum_steps 600,1200,1800 --per_device_train_batch_size 32

Runs under ``accelerate launch`` too. Smoke run: ``--max_games 40 --val_games 8 --max_steps 2``.
"""

import sys

from transformers import HfArgumentParser, set_seed

from generative.xiangqi.model import XiangqiModelArguments
from generative.xiangqi.training import (
    XiangqiDataArguments,
    XiangqiTrainingArguments,
    train_xiangqi,
)


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser(
        (XiangqiModelArguments, XiangqiDataArguments, XiangqiTrainingArguments)
    )
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    set_seed(training_args.seed)
    return train_xiangqi(model_args, data_args, training_args)


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as err:  # no games file: the message names --games_path
        sys.exit(f"train_xiangqi: error: {err}")
