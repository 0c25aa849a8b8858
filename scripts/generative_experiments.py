"""VAE / WGAN / exact-W1 experiments of docs/generative.md.

    python scripts/generative_experiments.py --quick          # seconds, for CI
    OMP_NUM_THREADS=1 python scripts/generative_experiments.py --out_dir runs/generative \
        --img_dir docs/img                                     # the full run (see the doc)

The experiments' code is in `studies/generative` (not installed with the package): this script
puts the repository root on ``sys.path``.
"""

import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.generative.experiments import ExperimentConfig, run_experiments  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict]:
    (cfg,) = HfArgumentParser(ExperimentConfig).parse_args_into_dataclasses(args=argv)
    set_seed(cfg.seed)
    rows = run_experiments(cfg)
    for row in rows:
        if row["part"] == "timing":
            print(f"{row['name']}: {row['seconds']} s wall, {row['cpu_seconds']} s CPU")
    return rows


if __name__ == "__main__":
    main()
