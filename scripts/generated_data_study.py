"""Train the same extractive reader on human, generated and filtered generated TyDi QA pairs and
score each on the human dev questions; also the QA-aligned F1 of the generated pairs.

    python scripts/generated_data_study.py --data_dir PATH/tydiqa_en --output_dir runs/generated_data
Smoke run: ``--quick``. Steps resume from ``output_dir``. The code is in `studies/generated_data`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.generated_data.study import GeneratedDataConfig, run_study  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    (cfg,) = HfArgumentParser((GeneratedDataConfig,)).parse_args_into_dataclasses(args=argv)
    set_seed(cfg.seed)
    try:
        results = run_study(cfg)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"generated_data_study.py: error: {err}") from None
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
