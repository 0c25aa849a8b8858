"""Fine-tune a BERT checkpoint as a UniLM QA-pair / question generator.

    accelerate launch scripts/train_qag.py --model_name_or_path DIR --train_file F \
        [--validation_file F | --validation_split 0.05] --task qag --output_dir D

Every `TrainingArguments` option works (--per_device_train_batch_size, --gradient_accumulation_steps,
--max_steps, --save_steps, --eval_strategy, --resume_from_checkpoint latest, ...), plus the regularizer
options when the `regularizers` package provides them. Smoke run: --max_steps 2 --max_train_samples 8.
"""

from transformers import HfArgumentParser, set_seed

from qgen.training.trainer import DataArguments, ModelArguments, QGTrainingArguments, train


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, QGTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    set_seed(training_args.seed)
    return train(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
