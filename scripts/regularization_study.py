"""Fine-tune all-MiniLM-L6-v2 on small-label TREC / SST-2 with each regularizer; table + plot.

Full run (about 25 min of one uncontended thread; 80 min on the shared machine):
    OMP_NUM_THREADS=1 python scripts/regularization_study.py --data_dir PATH/classification \
        --output_dir runs/regularization_study \
        --table docs/regularization_table.md --plot docs/img/regularization.png
Smoke run: ``--quick``. ``--data_dir`` is the folder with ``trec/`` and ``sst2/``.

The study's code is in `studies/regularization` (not installed with the package): this script
puts the repository root on ``sys.path``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/ is not installed

from studies.regularization.study import (  # noqa: E402
    RegularizationStudyConfig,
    run_study,
    summarize,
    write_report,
)


@dataclass
class ScriptArgs:
    quick: bool = field(
        default=False, metadata={"help": "Tiny smoke run (a few steps, 1 seed, few examples)."}
    )
    table: str | None = field(default=None, metadata={"help": "Write the markdown table here."})
    plot: str | None = field(default=None, metadata={"help": "Write the bar plot (PNG) here."})
    report_only: bool = field(
        default=False, metadata={"help": "Only summarise output_dir/results.jsonl."}
    )


def main(argv: list[str] | None = None) -> list[dict]:
    script, cfg = HfArgumentParser(
        (ScriptArgs, RegularizationStudyConfig)
    ).parse_args_into_dataclasses(args=argv)
    if script.quick:
        cfg.seeds, cfg.max_steps, cfg.trec_n_train, cfg.sst2_pool = "0", 2, 16, 800
        cfg.eval_size, cfg.max_length = 16, 16
        cfg.trec_methods, cfg.sst2_methods = "baseline,fgm", "baseline,vat"
    set_seed(0)
    if script.report_only:
        path = Path(cfg.output_dir) / "results.jsonl"
        results = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        results = run_study(cfg)
    rows = summarize(results)
    table = write_report(
        rows,
        Path(script.table) if script.table else None,
        Path(script.plot) if script.plot else None,
    )
    print(table)
    return rows


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as err:  # missing data: the message names --data_dir
        sys.exit(f"regularization_study: error: {err}")
