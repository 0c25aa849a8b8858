"""A UCI engine in a subprocess as a `match.play_game` player (Fairy-Stockfish, or our own).

Coordinates differ between engines: Pikafish and our engine speak ICCS (ranks 0-9,
``h2e2``); Fairy-Stockfish's xiangqi counts ranks 1-10 (``h3e3``; Black's first horse move
``b10c8`` is ICCS ``b9c7``). ``coordinates="fairy"`` converts both ways. Every move an engine
sends is checked against the board before it is played, so an engine cannot make an illegal
move in our games.
"""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Callable

from .board import Board

__all__ = [
    "UCIEnginePlayer",
    "fairy_to_iccs",
    "iccs_to_fairy",
    "fairy_stockfish_path",
    "fairy_stockfish_player",
    "FAIRY_STOCKFISH",
]

FAIRY_STOCKFISH = "/usr/games/fairy-stockfish"
_FAIRY_MOVE = re.compile(r"^([a-i])(10|[1-9])([a-i])(10|[1-9])$")


def fairy_to_iccs(move: str) -> str:
    """Fairy-Stockfish xiangqi move (ranks 1-10, ``b10c8``) -> ICCS (ranks 0-9, ``b9c7``).

    Raises:
        ValueError: when ``move`` is not a Fairy-Stockfish xiangqi move.
    """
    m = _FAIRY_MOVE.match(move.strip().lower())
    if m is None:
        raise ValueError(f"not a Fairy-Stockfish xiangqi move (e.g. 'h3e3'): {move!r}")
    f1, r1, f2, r2 = m.groups()
    return f"{f1}{int(r1) - 1}{f2}{int(r2) - 1}"


def iccs_to_fairy(move: str) -> str:
    """ICCS (``b9c7``) -> Fairy-Stockfish xiangqi (``b10c8``)."""
    m = move.strip().lower()
    return f"{m[0]}{int(m[1]) + 1}{m[2]}{int(m[3]) + 1}"


_CONVERTERS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "iccs": (str.lower, str.lower),
    "fairy": (iccs_to_fairy, fairy_to_iccs),
}


def fairy_stockfish_path() -> str | None:
    """The Fairy-Stockfish binary (``/usr/games/fairy-stockfish`` or on PATH), else None."""
    return shutil.which("fairy-stockfish") or shutil.which(FAIRY_STOCKFISH)


class UCIEnginePlayer:
    """Play moves of a UCI engine run as a subprocess.

    Args:
        command: the engine's command line, e.g. ``["/usr/games/fairy-stockfish"]``.
        go: what follows ``go`` for every move (``"depth 1"``, ``"movetime 200"``).
        options: ``setoption`` name -> value, sent once after ``uci``.
        coordinates: ``"iccs"`` (our engine, Pikafish) or ``"fairy"`` (Fairy-Stockfish).
        name: the player's name in game records (default: the engine's ``id name``).
        timeout_s: the longest wait for an answer before the engine is declared dead.
    """

    def __init__(
        self,
        command: list[str],
        go: str = "depth 1",
        options: dict[str, str] | None = None,
        coordinates: str = "iccs",
        name: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if coordinates not in _CONVERTERS:
            raise ValueError(f"coordinates={coordinates!r} is not one of {sorted(_CONVERTERS)}")
        self.to_engine, self.from_engine = _CONVERTERS[coordinates]
        self.go, self.timeout_s = go, timeout_s
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.send("uci")
        engine_id = self.wait_for("uciok", collect="id name ")
        for key, value in (options or {}).items():
            self.send(f"setoption name {key} value {value}")
        self.send("isready")
        self.wait_for("readyok")
        self.name = name or (engine_id[0][len("id name ") :] if engine_id else command[0])

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # the engine exited

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, prefix: str, collect: str | None = None) -> list[str]:
        """Read lines until one starts with ``prefix``; return it last, after the lines that
        start with ``collect``.

        Raises:
            RuntimeError: when the engine exits or is silent for ``timeout_s``.
        """
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=self.timeout_s)
            except queue.Empty:
                raise RuntimeError(
                    f"engine silent for {self.timeout_s} s (waiting for {prefix!r})"
                ) from None
            if line is None:
                raise RuntimeError(f"engine exited while we waited for {prefix!r}")
            if collect is not None and line.startswith(collect):
                seen.append(line)
            if line.startswith(prefix):
                return seen + [line]

    def new_game(self) -> None:
        self.send("ucinewgame")
        self.send("isready")
        self.wait_for("readyok")

    def choose(self, board: Board, history: list[str]) -> str:
        """The engine's move after ``history`` (from the start position).

        Raises:
            ValueError: when the engine answers a move that is illegal in ``board``.
        """
        moves = " ".join(self.to_engine(m) for m in history)
        self.send("position startpos" + (f" moves {moves}" if moves else ""))
        self.send(f"go {self.go}")
        answer = self.wait_for("bestmove")[-1].split()
        move = self.from_engine(answer[1]) if len(answer) > 1 else "(none)"
        trial = board.copy()
        try:
            trial.push_iccs(move)
        except ValueError as err:
            raise ValueError(f"engine {self.name!r} played {answer[1:2]}: {err}") from None
        return move

    def close(self) -> None:
        """Send ``quit`` and wait for the process (killed after 5 s)."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(5.0)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> UCIEnginePlayer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fairy_stockfish_player(depth: int, path: str | None = None) -> UCIEnginePlayer:
    """Fairy-Stockfish playing xiangqi at a fixed search ``depth``, one thread.

    Raises:
        FileNotFoundError: when the binary is absent (naming where it was looked for).
    """
    path = path or fairy_stockfish_path()
    if path is None:
        raise FileNotFoundError(
            f"Fairy-Stockfish not found (looked for 'fairy-stockfish' on PATH and {FAIRY_STOCKFISH});"
            " install it (apt-get install fairy-stockfish)"
        )
    options = {"UCI_Variant": "xiangqi", "Threads": "1", "Hash": "16"}
    return UCIEnginePlayer(
        [path], go=f"depth {depth}", options=options, coordinates="fairy",
        name=f"fairy-stockfish-d{depth}",
    )  # fmt: skip
