"""Evaluate a trained Chinese-chess GPT: perplexity, next-move accuracy by phase, matches.

    python scripts/evaluate_xiangqi.py --model_dir runs/xiangqi_char

Smoke run: ``--perplexity_games 4 --accuracy_games 1 --match_games 2 --max_plies 6``.
"""

from transformers import HfArgumentParser, set_seed

from generative.xiangqi.evaluation import EvaluationConfig, evaluate_xiangqi, results_markdown


def main(argv: list[str] | None = None) -> dict:
    (config,) = HfArgumentParser((EvaluationConfig,)).parse_args_into_dataclasses(args=argv)
    set_seed(config.seed)
    results = evaluate_xiangqi(config)
    print(results_markdown(results))
    return results


if __name__ == "__main__":
    main()
