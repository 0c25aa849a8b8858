"""Start-up of the UCI engine: seconds from launch to ``uciok``, to ``readyok`` and to the first
``bestmove`` of ``python -m generative.xiangqi uci`` (docs/xiangqi.md, "UCI engine"), timed over
the pipes as a GUI sees them. One JSON line per launch, then the environment:

    OMP_NUM_THREADS=1 taskset -c 1 python scripts/bench_xiangqi_uci_startup.py --launches 3

Smoke run: ``--launches 1 --model none``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def launch(model: str | None, movetime: int) -> dict:
    """One engine: ``uci``, then ``isready`` after ``uciok``, then a ``go`` after ``readyok``."""
    command = [sys.executable, "-m", "generative.xiangqi", "uci"]
    if model is not None:
        command += ["--model", model]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    engine = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    follow_up = {
        "uciok": "isready\n",
        "readyok": f"position startpos moves h2e2\ngo movetime {movetime}\n",
        "bestmove": "quit\n",
    }
    times: dict[str, float] = {}
    engine.stdin.write("uci\n")
    engine.stdin.flush()
    for line in engine.stdout:
        word = line.split()[0] if line.split() else ""
        if word in follow_up and word not in times:
            times[word] = round(time.perf_counter() - start, 3)
            engine.stdin.write(follow_up[word])
            engine.stdin.flush()
            if word == "bestmove":
                break
    engine.wait(timeout=60)
    return {f"{k}_s": v for k, v in times.items()}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=3, help="engine launches")
    parser.add_argument("--model", default=None, help="--model of the engine (default: shipped)")
    parser.add_argument("--movetime", type=int, default=250, help="ms of the first 'go'")
    args = parser.parse_args(argv)
    rows = []
    for i in range(args.launches):
        row = {"launch": i, **launch(args.model, args.movetime)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    env = {
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpus": sorted(os.sched_getaffinity(0)),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(env))
    return rows


if __name__ == "__main__":
    main()
