"""The UCI engine: in-process commands, a scripted session over pipes, self-play by protocol,
and the Fairy-Stockfish client (skipped when the binary is absent)."""

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from generative.xiangqi.board import Board, iccs_to_move
from generative.xiangqi.match import play_game
from generative.xiangqi.search import SearchConfig
from generative.xiangqi.uci import UCIEngine, parse_go, time_budget_ms
from generative.xiangqi.uci_client import (
    UCIEnginePlayer,
    fairy_stockfish_path,
    fairy_stockfish_player,
    fairy_to_iccs,
    iccs_to_fairy,
)

ROOT = Path(__file__).resolve().parents[1]
ENGINE = [sys.executable, "-m", "generative.xiangqi", "uci", "--model", "none"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
needs_fairy = pytest.mark.skipif(
    fairy_stockfish_path() is None, reason="Fairy-Stockfish not installed"
)


class Lines(io.StringIO):
    """An output stream whose lines can be waited for from another thread."""

    def lines(self) -> list[str]:
        return self.getvalue().splitlines()

    def wait_for(self, prefix: str, timeout: float = 10.0) -> str:
        end = time.time() + timeout
        while time.time() < end:
            hits = [line for line in self.lines() if line.startswith(prefix)]
            if hits:
                return hits[-1]
            time.sleep(0.01)
        raise AssertionError(f"no {prefix!r} in {self.lines()}")


def engine(**config) -> tuple[UCIEngine, Lines]:
    out = Lines()
    return UCIEngine(out, None, SearchConfig(**config)), out


def test_uci_handshake_lists_the_options():
    eng, out = engine()
    eng.handle("uci")
    lines = out.lines()
    assert lines[0].startswith("id name ") and lines[1].startswith("id author ")
    assert lines[-1] == "uciok"
    names = {line.split()[2] for line in lines if line.startswith("option name")}
    assert {"ModelDir", "Depth", "Nodes", "PureLM"} <= names
    eng.handle("isready")
    assert out.lines()[-1] == "readyok"


def test_go_depth_answers_a_legal_bestmove_with_info():
    eng, out = engine()
    eng.handle("position startpos moves h2e2 h9g7")
    eng.handle("go depth 2")
    move = out.wait_for("bestmove").split()[1]
    board = Board()
    board.push_iccs("h2e2")
    board.push_iccs("h9g7")
    assert board.is_legal(iccs_to_move(move))
    info = [line for line in out.lines() if line.startswith("info depth")]
    assert info and all(" score " in i and " nodes " in i and " pv " in i for i in info)
    eng.handle("quit")


def test_position_fen_and_mate_score():
    eng, out = engine()
    eng.handle("position fen 4k4/R8/9/9/9/9/9/9/1R7/3K5 w - - 0 1")
    eng.handle("go depth 3")
    assert out.wait_for("bestmove") == "bestmove b1b9"
    assert any(" score mate 1 " in line for line in out.lines())


def test_go_infinite_waits_for_stop_and_isready_is_answered_meanwhile():
    eng, out = engine()
    eng.handle("position startpos")
    eng.handle("go infinite")
    time.sleep(0.3)
    eng.handle("isready")
    assert "readyok" in out.lines() and not any(x.startswith("bestmove") for x in out.lines())
    t = time.time()
    eng.handle("stop")
    assert time.time() - t < 2.0
    assert Board().is_legal(iccs_to_move(out.wait_for("bestmove").split()[1]))


def test_go_with_clock_answers_within_the_time():
    eng, out = engine(depth=30)
    eng.handle("position startpos")
    t = time.time()
    eng.handle("go wtime 3000 btime 3000 winc 0 binc 0")
    out.wait_for("bestmove", timeout=5)
    assert time.time() - t < 0.5  # 3000 / 30 = 100 ms
    assert time_budget_ms({"wtime": 3000}, True, 250) == pytest.approx(75.0)
    assert time_budget_ms({"movetime": 200}, True, 250) == pytest.approx(170.0)
    assert time_budget_ms({"infinite": True}, True, 250) is None
    assert time_budget_ms({"depth": 3}, True, 250) is None
    assert time_budget_ms({}, True, 250) == 250


def test_setoption_and_errors_are_reported_not_fatal():
    eng, out = engine()
    eng.handle("setoption name Depth value 3")
    eng.handle("setoption name Nodes value 500")
    eng.handle("setoption name PureLM value true")
    assert eng.config.depth == 3 and eng.config.nodes == 500 and eng.pure_lm
    for bad, needle in [
        ("setoption name Depth value three", "Depth needs an integer"),
        ("setoption name Colour value red", "unknown option 'Colour'"),
        ("position startpos moves h2e9", "illegal move 'h2e9'"),
        ("position fen rnbakabnr/9 w", "FEN must have 10 ranks"),
        ("go depth x", "depth must be an integer"),
        ("hello", "unknown command"),
    ]:
        eng.handle(bad)
        assert needle in out.lines()[-1], (bad, out.lines()[-1])
    eng.handle("position startpos")
    eng.handle("go")  # PureLM without a model: says so and searches (Nodes 500)
    assert Board().is_legal(iccs_to_move(out.wait_for("bestmove").split()[1]))
    assert any("PureLM needs a model" in line for line in out.lines())


def test_parse_go():
    assert parse_go("wtime 100 btime 200 infinite".split()) == {
        "wtime": 100,
        "btime": 200,
        "infinite": True,
    }
    with pytest.raises(ValueError, match="needs a value"):
        parse_go(["movetime"])


def test_fairy_coordinates_round_trip():
    assert fairy_to_iccs("h3e3") == "h2e2" and fairy_to_iccs("b10c8") == "b9c7"
    assert iccs_to_fairy("b9c7") == "b10c8" and iccs_to_fairy("h2e2") == "h3e3"
    with pytest.raises(ValueError, match="not a Fairy-Stockfish"):
        fairy_to_iccs("h0e0")


@pytest.mark.slow
def test_scripted_session_over_pipes_with_stop_during_infinite():
    proc = subprocess.Popen(
        ENGINE, cwd=ROOT, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in proc.stdout))
    reader.start()

    def send(text):
        proc.stdin.write(text + "\n")
        proc.stdin.flush()

    def wait_for(prefix, timeout=120.0):
        end = time.time() + timeout
        while time.time() < end:
            if any(x.startswith(prefix) for x in lines):
                return [x for x in lines if x.startswith(prefix)][-1]
            time.sleep(0.02)
        raise AssertionError(f"no {prefix!r} in {lines}")

    send("uci")
    wait_for("uciok")  # the first answer waits for the imports (slow on a loaded machine)
    send("isready")
    wait_for("readyok")
    send("position startpos moves h2e2")
    send("go infinite")
    wait_for("info depth 2")
    send("isready")  # answered while the search runs
    end = time.time() + 10
    while sum(x == "readyok" for x in lines) < 2 and time.time() < end:
        time.sleep(0.02)
    assert sum(x == "readyok" for x in lines) == 2
    assert not any(x.startswith("bestmove") for x in lines)
    send("stop")
    move = wait_for("bestmove", timeout=10).split()[1]
    board = Board()
    board.push_iccs("h2e2")
    assert board.is_legal(iccs_to_move(move))
    send("quit")
    assert proc.wait(30) == 0
    reader.join(5)


@pytest.mark.slow
def test_a_game_against_itself_through_the_protocol():
    red = UCIEnginePlayer(ENGINE, go="movetime 60", timeout_s=180)
    black = UCIEnginePlayer(ENGINE, go="depth 1", options={"Depth": "1"}, timeout_s=180)
    try:
        game = play_game(red, black, max_plies=40)  # validates every move
    finally:
        red.close()
        black.close()
    assert red.name.startswith("qgen-xiangqi") and len(game.moves) >= 1
    assert game.reason in ("mate", "stalemate", "adjudication")
    assert red.proc.returncode == 0 and black.proc.returncode == 0


@needs_fairy
def test_fairy_stockfish_plays_legal_moves_in_our_coordinates():
    with fairy_stockfish_player(1) as fsf:
        game = play_game(fsf, fsf, max_plies=12, opening=["h2e2", "h9g7"])
    assert len(game.moves) == 12 and game.opening_plies == 2
