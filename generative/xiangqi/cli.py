"""``python -m generative.xiangqi play|uci|ladder``: a terminal game, a UCI engine, the ladder.

``play`` is a terminal game against the engine (the search with the LM prior by default; Su's
pure-LM player with ``--player lm``); ``uci`` speaks UCI on stdin/stdout (`uci.UCIEngine`);
``ladder`` plays a player against random, greedy and Fairy-Stockfish (`ladder.run_ladder`).
All three use the model shipped in the package unless ``--model DIR`` names another.

Red is drawn with traditional characters (車馬相仕帥炮兵), Black with simplified ones
(车马象士将炮卒), Red at the bottom; files a-i and ranks 0-9 are labelled (ICCS). Type moves
in ICCS (``h2e2``); ``moves`` lists the legal moves, ``quit`` resigns. The game record is saved
as JSON (moves, ICCS string, result).

Start-up is cheap: this module imports only the rules, and each command imports what it needs
when it runs (``uci`` answers ``uciok`` before torch and transformers are imported; the model
loads on ``isready`` or the first ``go``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

from .board import RED, Board, move_to_iccs
from .pretrained import default_model_dir, load_xiangqi_model
from .search import SearchConfig, SearchPlayer

if TYPE_CHECKING:
    from .player import Player

__all__ = ["draw_board", "play_terminal", "main", "RED_GLYPHS", "BLACK_GLYPHS"]

RED_GLYPHS = {1: "帥", 2: "仕", 3: "相", 4: "馬", 5: "車", 6: "炮", 7: "兵"}
BLACK_GLYPHS = {1: "将", 2: "士", 3: "象", 4: "马", 5: "车", 6: "炮", 7: "卒"}
EMPTY = "＋"  # full-width, so every point is two columns wide like the piece characters
RED_ON, OFF = "\033[31m", "\033[0m"


def draw_board(board: Board, color: bool = False) -> str:
    """The board as text: rank 9 (Black's back rank) on top, files a-i below and above."""
    files = "  " + "".join(f"{c} " for c in "abcdefghi") + "\n"
    rows = [files]
    for rank in range(9, -1, -1):
        cells = []
        for f in range(9):
            p = board.squares[rank * 9 + f]
            if p > 0:
                cells.append(f"{RED_ON}{RED_GLYPHS[p]}{OFF}" if color else RED_GLYPHS[p])
            else:
                cells.append(BLACK_GLYPHS[-p] if p else EMPTY)
        rows.append(f"{rank} {''.join(cells)} {rank}\n")
        if rank == 5:
            rows.append("  ～～～楚河　　漢界～～～\n")
    rows.append(files)
    side = "Red (紅)" if board.side == RED else "Black (黑)"
    return "".join(rows) + f"{side} to move\n"


def _read(stream: TextIO) -> str | None:
    line = stream.readline()
    return None if line == "" else line.strip()


def play_terminal(
    player: Player,
    human_side: int = RED,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    record_path: str | None = None,
    max_plies: int = 300,
    color: bool = False,
) -> dict:
    """Play one game, human (``human_side``) against ``player``; returns and saves the record."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    board, moves, result, reason = Board(), [], "*", "unfinished"
    say = stdout.write
    while len(moves) < max_plies:
        say(draw_board(board, color))
        if not board.has_legal_move():
            winner = -board.side
            result = "1-0" if winner == RED else "0-1"
            reason = "checkmate" if board.in_check() else "stalemate"
            say(f"{reason}: {'Red' if winner == RED else 'Black'} wins ({result})\n")
            break
        if board.in_check():
            say("check!\n")
        if board.side == human_side:
            text = _read(stdin)
            if text is None or text in ("quit", "resign"):
                result = "0-1" if human_side == RED else "1-0"
                reason = "resigned"
                say(f"you resign ({result})\n")
                break
            if text == "moves":
                say(" ".join(sorted(move_to_iccs(m) for m in board.legal_moves())) + "\n")
                continue
            try:
                board.push_iccs(text)
            except ValueError as err:
                say(f"illegal or malformed move {text!r}: {err}. Type e.g. h2e2, or 'moves'.\n")
                continue
            moves.append(text.strip().lower().replace("-", ""))
        else:
            move = player.choose(board, moves)
            board.push_iccs(move)
            moves.append(move)
            say(f"model plays {move}\n")
    record = {"moves": moves, "iccs": "".join(moves), "result": result, "reason": reason,
              "human": "red" if human_side == RED else "black", "model": player.name}  # fmt: skip
    if record_path:
        os.makedirs(os.path.dirname(os.path.abspath(record_path)), exist_ok=True)
        with open(record_path, "w") as f:
            json.dump(record, f, indent=1)
        say(f"game record saved to {record_path}\n")
    return record


def _model_dir(arg: str | None, parser: argparse.ArgumentParser) -> str | None:
    """``--model`` if given, else the shipped model; ``--model none`` means no model."""
    if arg is not None:
        return None if arg.lower() == "none" else arg
    return default_model_dir()


def _play(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    model_dir = _model_dir(args.model, parser)
    if model_dir is None and args.player != "search":
        parser.error(f"--player {args.player} needs a model: pass --model DIR (none shipped)")
    search = SearchConfig(depth=args.depth, movetime_ms=args.movetime)
    if args.player == "search":
        player = SearchPlayer(search)
    else:
        from .player import LMPlayer, LMPlayerConfig  # torch, transformers, decoding
        from .scoring import MoveScorer

        model, tokenizer = load_xiangqi_model(model_dir)
        if args.player == "lm":
            config = LMPlayerConfig(
                args.method, args.strategy, args.temperature, args.top_k, args.top_p, args.seed
            )
            player = LMPlayer(model, tokenizer, config)
        else:
            player = SearchPlayer(search, MoveScorer(model, tokenizer))
    record = args.record or os.path.join(
        "runs", "xiangqi_games", time.strftime("%Y%m%d-%H%M%S") + ".json"
    )
    human = RED if args.human == "red" else -RED
    return play_terminal(player, human, record_path=record, color=args.color)


def _uci(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .uci import UCIEngine

    config = SearchConfig(depth=args.depth, movetime_ms=args.movetime)
    UCIEngine(model_dir=_model_dir(args.model, parser), config=config).run()


def _ladder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[dict]:
    from transformers import HfArgumentParser

    from .ladder import LadderConfig, ladder_table, run_ladder

    hf = HfArgumentParser(LadderConfig, prog=f"{parser.prog} ladder")
    (config,) = hf.parse_args_into_dataclasses(args=args.args)
    rows = run_ladder(config)
    print(ladder_table(rows))
    return rows


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(
        prog="python -m generative.xiangqi", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    model_help = "model directory (default: the shipped model; 'none': no model)"
    play = sub.add_parser("play", help="play against the engine in the terminal")
    play.add_argument("--model", default=None, help=model_help)
    play.add_argument(
        "--player", choices=("search+lm", "search", "lm"), default="search+lm",
        help="search with the LM prior (default), search alone, or Su's pure-LM player",
    )  # fmt: skip
    play.add_argument(
        "--human", choices=("red", "black"), default="red", help="your colour (Red moves first)"
    )
    play.add_argument("--depth", type=int, default=6, help="search: maximum depth")
    play.add_argument("--movetime", type=float, default=1000.0, help="search: ms per move")
    play.add_argument("--method", choices=("score", "generate"), default="score", help="lm only")
    play.add_argument(
        "--strategy", default="best", help="lm: score: best|sample; generate: greedy|sample"
    )
    play.add_argument("--temperature", type=float, default=1.0)
    play.add_argument("--top_k", type=int, default=0)
    play.add_argument("--top_p", type=float, default=1.0)
    play.add_argument("--seed", type=int, default=None)
    play.add_argument(
        "--record", default=None, help="JSON game record (default runs/xiangqi_games/<time>.json)"
    )
    play.add_argument("--color", action="store_true", help="draw Red pieces in red (ANSI)")
    uci = sub.add_parser("uci", help="a UCI engine on stdin/stdout (ICCS moves, Xiangqi FEN)")
    uci.add_argument("--model", default=None, help=model_help)
    uci.add_argument("--depth", type=int, default=SearchConfig.depth, help="default depth")
    uci.add_argument(
        "--movetime", type=float, default=SearchConfig.movetime_ms,
        help="ms per move when 'go' gives no limit",
    )  # fmt: skip
    sub.add_parser(
        "ladder", add_help=False, help="a player against random, greedy, Fairy-Stockfish "
        "(flags: the LadderConfig fields, see 'ladder --help')",
    )  # fmt: skip
    args, rest = parser.parse_known_args(argv)
    if args.command != "ladder" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.args = rest
    handlers = {"play": _play, "uci": _uci, "ladder": _ladder}
    return handlers[args.command](args, parser)
