"""Generated pairs against human pairs at equal count, on a domain the generator never saw
(issue 22): train the same reader on N pairs of each variant and on N human pairs, score on
held-out human questions, several seeds. The code is in `studies/generated_data/downstream.py`.

    python scripts/downstream_pairs.py --domain tydi --output_dir runs/downstream/tydi \\
        --variants "unchecked=--no_round_trip;default=" --reader_seeds 0,1,2
    python scripts/downstream_pairs.py --domain covid --output_dir runs/downstream/covid

Smoke run: ``--quick``. Steps resume from ``--output_dir``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.generated_data.downstream import DownstreamConfig, run_downstream  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    try:
        (cfg,) = HfArgumentParser((DownstreamConfig,)).parse_args_into_dataclasses(args=argv)
        set_seed(cfg.seed)
        results = run_downstream(cfg)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise SystemExit(f"downstream_pairs.py: error: {err}") from None
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
