"""Fine-tune an extractive QA reader on SQuAD-format data (human or `qgen generate` output).

    python scripts/train_reader.py --model_name_or_path DIR --train_file qa.jsonl --output_dir runs/reader \
        --num_train_epochs 2 --per_device_train_batch_size 16 --learning_rate 1e-4
    python -c "from qgen.generation.reader import evaluate_reader; print(evaluate_reader('runs/reader', 'dev.json'))"

Every `TrainingArguments` option works. Smoke run: --max_steps 2 --max_train_samples 8.
"""

from transformers import HfArgumentParser, TrainingArguments, set_seed

from qgen.training.reader import ReaderArguments, train_reader


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ReaderArguments, TrainingArguments))
    reader_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    set_seed(training_args.seed)
    return train_reader(reader_args, training_args)


if __name__ == "__main__":
    main()
