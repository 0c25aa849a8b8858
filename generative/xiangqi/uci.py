"""``python -m generative.xiangqi uci``: the searcher (and the LM) as a UCI engine.

The dialect is Pikafish's: moves in lowercase ICCS (files a-i, ranks 0-9 from Red's side,
``h2e2``), positions as standard Xiangqi FEN (`board.START_FEN`). Commands:

* ``uci`` -> ``id name``, ``id author``, the ``option`` lines, ``uciok``;
* ``isready`` -> ``readyok`` (loads the model first if it is not loaded; answered while a
  search runs, too); ``ucinewgame`` clears the transposition table;
* ``setoption name ModelDir|Depth|Nodes|MoveTime|PureLM|LMPrior|PriorWeight value V``;
* ``position startpos|fen FEN [moves m1 m2 ...]``;
* ``go [movetime T] [depth D] [nodes N] [wtime T btime T winc T binc T movestogo M]
  [infinite]`` -> ``info depth D score cp S|mate M nodes N nps X time T pv ...`` per finished
  iteration, then ``bestmove M``; the search runs in a thread, so ``stop``, ``isready`` and
  ``quit`` are answered while it runs; after ``go infinite`` the best move waits for ``stop``;
* ``stop``, ``quit``.

The LM prior needs the game from the start position: after ``position fen`` (other than the
start) the search runs without it (an ``info string`` says so). ``PureLM`` is Su's player:
every legal move scored by the LM, the best one played, no search.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from .board import START_FEN, Board, move_to_iccs
from .search import MATE_BOUND, SearchConfig, Searcher, SearchResult

if TYPE_CHECKING:  # torch + transformers load with the model, not before `uciok`
    from .scoring import MoveScorer

__all__ = ["UCIEngine", "parse_go", "time_budget_ms", "ENGINE_NAME"]

ENGINE_NAME = "qgen-xiangqi 0.1"
AUTHOR = "qgen-toolkit (search + Su's Xiangqi GPT)"
MOVE_OVERHEAD_MS = 30.0  # kept back from the clock for the pipe and the LM forward


def parse_go(tokens: list[str]) -> dict:
    """``go`` arguments -> a dict (numbers as ints, ``infinite`` as True).

    Raises:
        ValueError: naming the argument whose value is not an integer.
    """
    out: dict = {}
    i = 0
    while i < len(tokens):
        key = tokens[i]
        if key in ("infinite", "ponder"):
            out[key] = True
            i += 1
            continue
        if i + 1 >= len(tokens):
            raise ValueError(f"go: {key!r} needs a value")
        try:
            out[key] = int(tokens[i + 1])
        except ValueError:
            raise ValueError(f"go: {key} must be an integer, got {tokens[i + 1]!r}") from None
        i += 2
    return out


def time_budget_ms(go: dict, side_is_red: bool, default_ms: float) -> float | None:
    """Milliseconds for this move: ``movetime``, or a share of the clock
    (``time / movestogo`` (default 30) ``+ 0.8 inc``, at most ``time / 3``), minus an
    overhead (30 ms, or a quarter of a shorter budget); ``None`` for ``infinite`` or when only depth / nodes are given."""
    if go.get("infinite"):
        return None
    if "movetime" in go:
        return max(1.0, go["movetime"] - min(MOVE_OVERHEAD_MS, go["movetime"] / 4))
    left = go.get("wtime" if side_is_red else "btime")
    if left is None:
        return None if ("depth" in go or "nodes" in go) else default_ms
    inc = go.get("winc" if side_is_red else "binc", 0)
    share = min(left / max(1, go.get("movestogo", 30)) + 0.8 * inc, left / 3.0)
    return max(1.0, share - min(MOVE_OVERHEAD_MS, share / 4))


class UCIEngine:
    """The protocol loop. Reads commands with `run` (or one at a time with `handle`) and writes
    answers to ``out``.

    Args:
        out: where answers go (default stdout).
        model_dir: the LM directory (None: no model; the ``ModelDir`` option changes it).
        config: the search's default limits.
    """

    def __init__(
        self,
        out: TextIO | None = None,
        model_dir: str | None = None,
        config: SearchConfig | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()
        self.model_dir = model_dir
        self.config = config or SearchConfig()
        self.pure_lm = False
        self.scorer: MoveScorer | None = None
        self._loaded_dir: str | None = None
        self.searcher = Searcher(self.config, on_iteration=self._info)
        self.board, self.history, self.from_start = Board(), [], True
        self._thread: threading.Thread | None = None
        self._release = threading.Event()  # set by ``stop``: lets ``go infinite`` answer

    # -- output -----------------------------------------------------------------------------
    def send(self, line: str) -> None:
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def _info(self, r: SearchResult) -> None:
        if abs(r.score) >= MATE_BOUND:
            score = f"mate {r.mate_in}"
        else:
            score = f"cp {r.score}"
        nps = int(r.nodes * 1000 / r.time_ms) if r.time_ms > 0 else 0
        self.send(
            f"info depth {r.depth} score {score} nodes {r.nodes} nps {nps} "
            f"time {int(r.time_ms)} pv {' '.join(r.pv)}"
        )

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stdin: TextIO | None = None) -> None:
        """Answer commands until ``quit`` or the end of the input."""
        stdin = stdin or sys.stdin
        for line in stdin:
            if not self.handle(line):
                return
        self.handle("quit")

    def handle(self, line: str) -> bool:
        """Answer one command line; False after ``quit``."""
        tokens = line.split()
        if not tokens:
            return True
        cmd, args = tokens[0], tokens[1:]
        try:
            if cmd == "quit":
                self._stop_search()
                return False
            handler = {
                "uci": self._uci,
                "isready": self._isready,
                "ucinewgame": self._newgame,
                "setoption": self._setoption,
                "position": self._position,
                "go": self._go,
                "stop": lambda _args: self._stop_search(),
            }.get(cmd)
            if handler is None:
                self.send(f"info string unknown command: {line.strip()!r}")
            else:
                handler(args)
        except ValueError as err:  # bad input: say why and carry on (engines do not die)
            self.send(f"info string error: {err}")
        return True

    def _uci(self, _args: list[str]) -> None:
        self.send(f"id name {ENGINE_NAME}")
        self.send(f"id author {AUTHOR}")
        model = self.model_dir or "<none>"
        cfg = self.config
        self.send(f"option name ModelDir type string default {model}")
        self.send(f"option name Depth type spin default {cfg.depth} min 1 max 64")
        self.send(f"option name Nodes type spin default {cfg.nodes or 0} min 0 max 100000000")
        movetime = int(cfg.movetime_ms or 0)
        self.send(f"option name MoveTime type spin default {movetime} min 0 max 3600000")
        self.send("option name PureLM type check default false")
        self.send(f"option name LMPrior type check default {str(cfg.use_prior).lower()}")
        weight = int(cfg.prior_weight)
        self.send(f"option name PriorWeight type spin default {weight} min 0 max 1000")
        self.send("uciok")

    def _isready(self, _args: list[str]) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._ensure_model()
        self.send("readyok")

    def _newgame(self, _args: list[str]) -> None:
        self._stop_search()
        self.searcher.clear()

    def _setoption(self, args: list[str]) -> None:
        if "name" not in args:
            raise ValueError(f"setoption needs 'name': {' '.join(args)!r}")
        rest = args[args.index("name") + 1 :]
        if "value" in rest:
            k = rest.index("value")
            name, value = " ".join(rest[:k]), " ".join(rest[k + 1 :])
        else:
            name, value = " ".join(rest), ""
        key, cfg = name.lower(), self.config
        if key == "modeldir":
            self.model_dir = None if value.lower() in ("", "<none>", "none") else value
        elif key in ("depth", "nodes", "movetime", "priorweight"):
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"option {name} needs an integer, got {value!r}") from None
            if key == "depth":
                cfg.depth = max(1, number)
            elif key == "nodes":
                cfg.nodes = number if number > 0 else None
            elif key == "movetime":
                cfg.movetime_ms = float(number) if number > 0 else None
            else:
                cfg.prior_weight = float(max(0, number))
        elif key in ("purelm", "lmprior"):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"option {name} needs true or false, got {value!r}")
            if key == "purelm":
                self.pure_lm = value.lower() == "true"
            else:
                cfg.use_prior = value.lower() == "true"
        else:
            raise ValueError(
                f"unknown option {name!r}; known: ModelDir, Depth, Nodes, MoveTime, PureLM, "
                "LMPrior, PriorWeight"
            )

    def _position(self, args: list[str]) -> None:
        self._stop_search()
        if not args or args[0] not in ("startpos", "fen"):
            raise ValueError(f"position needs 'startpos' or 'fen': {' '.join(args)!r}")
        if args[0] == "startpos":
            fen, rest = START_FEN, args[1:]
        else:
            k = args.index("moves") if "moves" in args else len(args)
            fen, rest = " ".join(args[1:k]), args[k:]
        board = Board(fen)  # raises ValueError naming the FEN
        self.board, self.history = board, []
        self.from_start = board.fen().split()[:2] == START_FEN.split()[:2]
        for move in rest[1:] if rest and rest[0] == "moves" else []:
            board.push_iccs(move)  # raises ValueError naming the move and the position
            self.history.append(move.lower())

    # -- searching --------------------------------------------------------------------------
    def _ensure_model(self) -> None:
        """Load the LM of ``model_dir`` once (the scorer is None without a model)."""
        if self.model_dir == self._loaded_dir:
            return
        self.scorer, self._loaded_dir = None, self.model_dir
        if self.model_dir is None:
            return
        from .pretrained import load_xiangqi_model  # torch + transformers: only now
        from .scoring import MoveScorer

        try:
            model, tokenizer = load_xiangqi_model(self.model_dir)
        except (OSError, ValueError) as err:
            self.send(f"info string cannot load ModelDir {self.model_dir!r}: {err}")
            return
        self.scorer = MoveScorer(model, tokenizer)

    def _go(self, args: list[str]) -> None:
        self._stop_search()
        go = parse_go(args)
        self._ensure_model()
        if not self.board.has_legal_move():
            self.send("info string no legal move (mated or stalemated)")
            self.send("bestmove (none)")
            return
        movetime = time_budget_ms(go, self.board.side > 0, self.config.movetime_ms or 1e9)
        limits = {
            "depth": go.get("depth", 64 if go.get("infinite") else self.config.depth),
            "movetime_ms": movetime,
            "nodes": go.get("nodes", None if go.get("infinite") else self.config.nodes),
        }
        self._release.clear()
        board, history = self.board.copy(), list(self.history)
        self._thread = threading.Thread(
            target=self._think, args=(board, history, limits, bool(go.get("infinite"))),
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    def _think(self, board: Board, history: list[str], limits: dict, infinite: bool) -> None:
        start = time.perf_counter()
        try:
            if self.pure_lm and self.scorer is not None:
                move = self._pure_lm_move(board, history)
            else:
                if self.pure_lm:
                    self.send("info string PureLM needs a model (ModelDir); searching instead")
                use_lm = self.scorer is not None and self.from_start
                if self.scorer is not None and not self.from_start:
                    self.send("info string LM prior off: the game did not start from startpos")
                self.searcher.scorer = self.scorer if use_lm else None
                move = self.searcher.search(board, history, **limits).move
        except Exception as err:  # never leave the GUI without a move
            self.send(f"info string search failed ({err!r}); playing the first legal move")
            move = move_to_iccs(board.legal_moves()[0])
        if infinite:
            self._release.wait()
        self.send(f"info string {int((time.perf_counter() - start) * 1000)} ms")
        self.send(f"bestmove {move}")

    def _pure_lm_move(self, board: Board, history: list[str]) -> str:
        moves = [move_to_iccs(m) for m in board.legal_moves()]
        if not self.from_start:
            self.send("info string PureLM without the game from startpos: LM sees no history")
        scores = self.scorer.score(history if self.from_start else [], moves)
        return moves[int(scores.argmax())]

    def _stop_search(self) -> None:
        """Stop a running search and wait for its ``bestmove``."""
        if self._thread is not None:
            self._release.set()
            while self._thread.is_alive():  # again and again: the search may not have begun
                self.searcher.stop()
                self._thread.join(0.02)
            self._thread = None
