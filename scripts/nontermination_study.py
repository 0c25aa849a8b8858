"""The non-termination study (docs/nontermination.md): train LSTM / GPT-2 LMs, vanilla and
self-terminating, on SQuAD Wikipedia sentences and measure r_L, length, repetition and diversity
per decoder.

    python scripts/nontermination_study.py --data_path PATH/squad/du_train.json          # full run
    python scripts/nontermination_study.py --data_path PATH/squad/du_train.json --quick  # ~1 min

The study's code is in `studies/nontermination` (not installed with the package): this script
puts the repository root on ``sys.path``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from transformers import HfArgumentParser, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.nontermination.config import NonterminationConfig  # noqa: E402
from studies.nontermination.study import run_study  # noqa: E402


@dataclass
class ScriptArgs:
    quick: bool = field(
        default=False, metadata={"help": "tiny models, few prefixes (CI smoke run)"}
    )
    threads: int = field(default=1, metadata={"help": "torch threads"})


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ScriptArgs, NonterminationConfig))
    script, cfg = parser.parse_args_into_dataclasses(args=argv)
    if script.quick:
        defaults = NonterminationConfig()
        given = {
            f.name: getattr(cfg, f.name)
            for f in fields(NonterminationConfig)
            if getattr(cfg, f.name) != getattr(defaults, f.name)
        }
        cfg = NonterminationConfig.quick(**given)
    torch.set_num_threads(script.threads)
    set_seed(cfg.seed)
    result = run_study(cfg)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FileNotFoundError as err:  # a missing data file: the message names --data_path
        sys.exit(f"nontermination_study: error: {err}")
