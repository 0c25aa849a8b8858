"""Fine-tune a BERT checkpoint as a UniLM QA-pair / question generator: an alias of ``qgen train``
(`qgen.cli.train`), kept for the commands written with it.

    accelerate launch scripts/train_qag.py --model_name_or_path DIR --train_file F \
        [--validation_file F | --validation_split 0.05] --task qag --output_dir D

Every `TrainingArguments` option works (--per_device_train_batch_size, --gradient_accumulation_steps,
--max_steps, --save_steps, --eval_strategy, --resume_from_checkpoint latest, ...), plus the regularizer
options; ``qgen train --help`` lists them. Smoke run: --max_steps 2 --max_train_samples 8.
"""

import sys

from qgen.cli.train import train_command


def main(argv: list[str] | None = None) -> dict:
    """Train with ``argv`` (default: the command line); returns the metrics."""
    return train_command(sys.argv[1:] if argv is None else argv, prog="scripts/train_qag.py")


if __name__ == "__main__":
    from qgen.cli.main import main as qgen_main

    sys.exit(qgen_main(["train", *sys.argv[1:]]))
