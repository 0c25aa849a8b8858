"""Export a trained Xiangqi LM compactly (float16 safetensors, tokenizer, training record), as
the shipped model was made (docs/xiangqi.md, "The shipped model"):

    python scripts/export_xiangqi_model.py --model_dir /root/xiangqi-run/model \
        --output generative/xiangqi/models/ccpd-move-gpt2-1m \
        --games_path ../shared/data/xiangqi/games.jsonl
"""

import argparse

from generative.xiangqi.training import export_xiangqi_model


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="output_dir of train_xiangqi.py")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument(
        "--games_path", default=None, help="games file to record (default: as trained)"
    )
    args = parser.parse_args(argv)
    out = export_xiangqi_model(args.model_dir, args.output, args.games_path)
    print(out)
    return out


if __name__ == "__main__":
    main()
