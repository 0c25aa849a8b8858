"""The non-termination study (issue 4): train LSTM / GPT-2 LMs, vanilla and self-terminating,
on SQuAD Wikipedia sentences and measure r_L, length, repetition and diversity per decoder.

    python scripts/nontermination_study.py            # full run (~20 min, one thread)
    python scripts/nontermination_study.py --quick    # tiny models, ~1 min, checks invariants
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields

import torch
from transformers import HfArgumentParser, set_seed

from decoding.study import StudyConfig, run_study


@dataclass
class ScriptArgs:
    quick: bool = field(
        default=False, metadata={"help": "tiny models, few prefixes (CI smoke run)"}
    )
    threads: int = field(default=1, metadata={"help": "torch threads"})


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ScriptArgs, StudyConfig))
    script, cfg = parser.parse_args_into_dataclasses(args=argv)
    if script.quick:
        defaults = StudyConfig()
        given = {
            f.name: getattr(cfg, f.name)
            for f in fields(StudyConfig)
            if getattr(cfg, f.name) != getattr(defaults, f.name)
        }
        cfg = StudyConfig.quick(**given)
    torch.set_num_threads(script.threads)
    set_seed(cfg.seed)
    result = run_study(cfg)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
