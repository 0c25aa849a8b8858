"""Write a trained checkpoint as a compact qgen model directory (fp16 weights, tokenizer,
decoding settings), as the shipped model was made:

    python scripts/export_model.py --checkpoint runs/en-qag-default --output qgen/models/en-qag-minilm-l6 \
        --task qag [--generation_config settings.json]
"""

import argparse
import json

from qgen.generation.config import QAGenerationConfig
from qgen.training.export import export_model


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="training output or checkpoint dir")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--task", default=None, help="task it was trained for (qag, qg, ...)")
    parser.add_argument(
        "--generation_config", default=None, help="a qa_generation_config.json to ship beside it"
    )
    args = parser.parse_args(argv)
    config = None
    if args.generation_config:
        with open(args.generation_config, encoding="utf-8") as f:
            config = QAGenerationConfig.from_dict(json.load(f), where=args.generation_config)
    out = export_model(args.checkpoint, args.output, config, task=args.task)
    print(out)
    return out


if __name__ == "__main__":
    main()
