"""Speed of the Xiangqi search: nodes per second and ms per move on positions of held-out
games (docs/xiangqi.md, "Search player"). One JSON line per case, then the environment:

    OMP_NUM_THREADS=1 python scripts/bench_xiangqi_search.py \
        --games_path ../shared/data/xiangqi/games.jsonl --positions 20

Smoke run: ``--positions 2 --depth 2``.
"""

import argparse
import json
import os
import platform
import time

import torch

from generative.xiangqi.board import Board
from generative.xiangqi.ladder import held_out_openings
from generative.xiangqi.search import SearchConfig, Searcher


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games_path", required=True, help="JSON lines with an 'iccs' field")
    parser.add_argument("--positions", type=int, default=20, help="held-out games used")
    parser.add_argument("--plies", default="10,30,50", help="positions after these plies")
    parser.add_argument("--depth", type=int, default=3, help="fixed-depth case")
    parser.add_argument("--movetime", type=float, default=250.0, help="fixed-time case (ms)")
    args = parser.parse_args(argv)
    plies = [int(p) for p in args.plies.split(",")]
    lines = held_out_openings(args.games_path, args.positions, max(plies) + 1)
    rows = []
    for label, cfg in (
        (f"depth {args.depth}", SearchConfig(depth=args.depth, movetime_ms=None)),
        (f"movetime {args.movetime:g} ms", SearchConfig(depth=64, movetime_ms=args.movetime)),
    ):
        for ply in plies:
            nodes = ms = depth = 0.0
            for moves in lines:
                board = Board()
                for m in moves[:ply]:
                    board.push_iccs(m)
                t = time.perf_counter()
                r = Searcher(cfg).search(board)
                ms += (time.perf_counter() - t) * 1000
                nodes, depth = nodes + r.nodes, depth + r.depth
            n = len(lines)
            row = {
                "case": label,
                "ply": ply,
                "positions": n,
                "ms_per_move": round(ms / n, 1),
                "nodes": round(nodes / n),
                "nps": round(nodes / ms * 1000),
                "mean_depth": round(depth / n, 2),
            }
            rows.append(row)
            print(json.dumps(row))
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
                "load_average": os.getloadavg()[0],
            }
        )
    )
    return rows


if __name__ == "__main__":
    main()
