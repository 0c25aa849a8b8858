"""Precision, recall and cost of the round-trip filter, per reader and F1 threshold, on human
pairs made right and wrong (see studies/generated_data/round_trip.py).

    python scripts/round_trip_check.py --squad_file ../shared/data/squad/squad_dev_v1.1.json \
        [--reader DIR] [--passages 200] [--output runs/round_trip_check.json]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.generated_data.round_trip import RoundTripCheckConfig, run_check  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    (cfg,) = HfArgumentParser((RoundTripCheckConfig,)).parse_args_into_dataclasses(args=argv)
    for path in (cfg.squad_file,):
        if not os.path.isfile(path):
            raise SystemExit(f"round_trip_check.py: error: {path}: no such file (--squad_file)")
    if cfg.reader and not os.path.isfile(os.path.join(cfg.reader, "config.json")):
        raise SystemExit(f"round_trip_check.py: error: {cfg.reader}: no config.json (--reader)")
    results = run_check(cfg)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
