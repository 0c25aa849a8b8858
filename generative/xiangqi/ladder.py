"""The ladder: one player against rungs of growing strength, from held-out openings.

Rungs: ``random``, ``greedy`` (one-ply material), and Fairy-Stockfish at a fixed depth
(``fairy-1``, ``fairy-2``, ...; skipped with a message when the binary is absent). Every game
starts after the first ``opening_plies`` plies of a held-out game (the training split's
validation games), each opening played once with each colour; games are capped and
adjudicated by material as in `match.py`. One JSON line per rung (score = (W + D/2) / N, W/D/L,
how the games ended, ms per move), then a table.

Contenders (``--player``): ``search`` (alpha-beta on material, no LM), ``search+lm`` (the same
with the LM ordering, and optionally shifting, the root moves) and ``lm`` (Su's pure-LM player:
every legal move scored by the LM, the best one played).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO

from decoding.registry import Registry

from .board import split_iccs
from .match import MatchConfig, play_match
from .player import LMPlayer, make_player
from .pretrained import default_model_dir, load_xiangqi_model
from .scoring import MoveScorer
from .search import SearchConfig, SearchPlayer
from .training import TRAINING_INFO, load_games, split_games
from .uci_client import fairy_stockfish_path, fairy_stockfish_player

__all__ = [
    "LadderConfig",
    "CONTENDERS",
    "held_out_openings",
    "run_ladder",
    "ladder_table",
]

# name -> builder ``(config, model, tokenizer) -> player``
CONTENDERS: Registry[Callable] = Registry("ladder player")
SKIP_HINT = "apt-get install fairy-stockfish, or --fairy_path"


@dataclass
class LadderConfig:
    """What plays whom, how long, from which openings."""

    player: str = field(default="search", metadata={"help": "search | search+lm | lm"})
    games: int = field(default=10, metadata={"help": "games per rung (both colours per opening)"})
    rungs: str = field(
        default="random,greedy,fairy-1,fairy-2,fairy-3",
        metadata={"help": "comma-separated: random, greedy, fairy-D (Fairy-Stockfish depth D)"},
    )
    opening_plies: int = field(default=8, metadata={"help": "plies of a held-out game first"})
    max_plies: int = field(default=150, metadata={"help": "move cap (plies, opening included)"})
    adjudication_margin: float = field(default=3.0, metadata={"help": "material lead at the cap"})
    depth: int = field(default=6, metadata={"help": "search: maximum depth"})
    movetime_ms: float | None = field(
        default=250.0, metadata={"help": "search: ms per move", "aliases": ["--movetime"]}
    )
    nodes: int | None = field(default=None, metadata={"help": "search: node budget per move"})
    quiescence: bool = field(default=True, metadata={"help": "search: capture quiescence"})
    prior_weight: float = field(default=0.0, metadata={"help": "search+lm: root cp per nat"})
    model_dir: str | None = field(
        default=None,
        metadata={
            "help": "the LM (default: the shipped model; 'none': no model)",
            "aliases": ["--model"],
        },
    )
    games_path: str | None = field(
        default=None,
        metadata={"help": "games file of the openings (default: the model's training file)"},
    )
    fairy_path: str | None = field(default=None, metadata={"help": "Fairy-Stockfish binary"})
    seed: int = field(default=0, metadata={"help": "seed of the random / greedy rungs"})

    def __post_init__(self) -> None:
        if self.player not in CONTENDERS:
            raise ValueError(f"player={self.player!r} is not one of {CONTENDERS.names()}")
        if self.games < 1:
            raise ValueError(f"games must be >= 1, got games={self.games}")
        if self.opening_plies < 0 or self.opening_plies >= self.max_plies:
            raise ValueError(
                f"need 0 <= opening_plies < max_plies, got opening_plies={self.opening_plies}, "
                f"max_plies={self.max_plies}"
            )
        for rung in self.rung_list():
            if rung not in ("random", "greedy") and not _fairy_depth(rung):
                raise ValueError(f"unknown rung {rung!r} in rungs={self.rungs!r}")
        if self.model_dir is not None and self.model_dir.lower() == "none":
            self.model_dir = ""  # explicitly no model
        elif self.model_dir is None:
            self.model_dir = default_model_dir()
        if self.player != "search" and not self.model_dir:
            raise ValueError(f"player={self.player!r} needs model_dir (the LM); none is shipped")
        if self.games_path is None and self.model_dir:
            self.games_path = _training_record(self.model_dir).get("games_path")

    def rung_list(self) -> list[str]:
        return [r.strip() for r in self.rungs.split(",") if r.strip()]

    def search_config(self) -> SearchConfig:
        return SearchConfig(
            depth=self.depth, movetime_ms=self.movetime_ms, nodes=self.nodes,
            quiescence=self.quiescence, prior_weight=self.prior_weight,
        )  # fmt: skip


def _fairy_depth(rung: str) -> int | None:
    head, _, tail = rung.partition("-")
    return int(tail) if head == "fairy" and tail.isdigit() and int(tail) >= 1 else None


@CONTENDERS.register("search")
def _search(config: LadderConfig, model, tokenizer):
    return SearchPlayer(config.search_config(), None, name="search")


@CONTENDERS.register("search+lm")
def _search_lm(config: LadderConfig, model, tokenizer):
    return SearchPlayer(config.search_config(), MoveScorer(model, tokenizer), name="search+lm")


@CONTENDERS.register("lm")
def _lm(config: LadderConfig, model, tokenizer):
    player = LMPlayer(model, tokenizer)
    player.name = "pure-lm"
    return player


def _training_record(model_dir: str) -> dict:
    """The ``data_args`` that trained the model in ``model_dir`` ({} when not recorded)."""
    path = os.path.join(model_dir, TRAINING_INFO)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f).get("data_args", {})


def held_out_openings(
    games_path: str, n: int, plies: int, model_dir: str | None = None
) -> list[list[str]]:
    """The first ``plies`` plies of the first ``n`` validation games of the training split
    (its ``val_games`` / ``split_seed`` are read from the model's training record when
    present, else the defaults 500 / 0), skipping games shorter than ``plies``."""
    data_args = _training_record(model_dir) if model_dir else {}
    val_games, seed = data_args.get("val_games", 500), data_args.get("split_seed", 0)
    games = load_games(games_path)
    _, val_idx = split_games(len(games), val_games, seed)
    out = []
    for i in val_idx:
        moves = split_iccs(games[i])
        if len(moves) > plies:
            out.append(moves[:plies])
        if len(out) == n:
            break
    return out


def _rung_opponent(rung: str, config: LadderConfig):
    depth = _fairy_depth(rung)
    if depth is None:
        return make_player(rung, seed=config.seed)
    return fairy_stockfish_player(depth, config.fairy_path)


def run_ladder(config: LadderConfig, out: TextIO | None = None) -> list[dict]:
    """Play every rung; print one JSON line per rung (and skip messages) to ``out``."""
    out = out or sys.stdout
    model = tokenizer = None
    if config.player != "search":
        model, tokenizer = load_xiangqi_model(config.model_dir)
    openings = None
    if config.opening_plies:
        if not config.games_path:
            raise FileNotFoundError("the ladder's openings need --games_path (held-out games)")
        n = (config.games + 1) // 2
        openings = held_out_openings(config.games_path, n, config.opening_plies, config.model_dir)
    player = CONTENDERS[config.player](config, model, tokenizer)
    match = MatchConfig(config.games, config.max_plies, config.adjudication_margin)
    rows = []
    for rung in config.rung_list():
        if _fairy_depth(rung) and not (config.fairy_path or fairy_stockfish_path()):
            out.write(f"# skipping {rung}: Fairy-Stockfish not found ({SKIP_HINT})\n")
            continue
        opponent = _rung_opponent(rung, config)
        try:
            result = play_match(player, opponent, match, openings)
        finally:
            if hasattr(opponent, "close"):
                opponent.close()
        row = _summarise(rung, player.name, result, config)
        rows.append(row)
        out.write(json.dumps(row) + "\n")
        out.flush()
    return rows


_OUTCOME = {1: "win", 0: "draw", -1: "loss"}


def _summarise(rung: str, name: str, result: dict, config: LadderConfig) -> dict:
    n = result["wins"] + result["draws"] + result["losses"]
    ended: dict[str, int] = {}
    mine, theirs, plies = [], [], []
    for i, g in enumerate(result["games"]):
        as_red = i % 2 == 0
        outcome = g["winner"] if as_red else -g["winner"]
        key = f"{_OUTCOME[outcome]} by {g['reason']}"
        ended[key] = ended.get(key, 0) + 1
        ms = g["ms_per_move"]
        mine.append(ms.get("red" if as_red else "black", 0.0))
        theirs.append(ms.get("black" if as_red else "red", 0.0))
        plies.append(len(g["moves"]))
    return {
        "rung": rung,
        "player": name,
        "games": n,
        "score": round((result["wins"] + result["draws"] / 2) / n, 3),
        "wins": result["wins"],
        "draws": result["draws"],
        "losses": result["losses"],
        "ended": dict(sorted(ended.items())),
        "ms_per_move": round(sum(mine) / n, 1),
        "opponent_ms_per_move": round(sum(theirs) / n, 1),
        "mean_plies": round(sum(plies) / n, 1),
        "config": {k: v for k, v in asdict(config).items() if k not in ("rungs", "fairy_path")},
    }


def ladder_table(rows: list[dict]) -> str:
    """The rungs as a Markdown table."""
    lines = [
        "| player | rung | games | score | W / D / L | how games ended | ms/move |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ended = ", ".join(f"{v} {k}" for k, v in r["ended"].items())
        lines.append(
            f"| {r['player']} | {r['rung']} | {r['games']} | {r['score']:.2f} | "
            f"{r['wins']} / {r['draws']} / {r['losses']} | {ended} | {r['ms_per_move']:.0f} |"
        )
    return "\n".join(lines)
