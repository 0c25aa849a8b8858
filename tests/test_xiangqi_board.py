"""Xiangqi rules: perft, piece rules, check/mate, ICCS, and replaying the data set."""

import json
import os
import random
import time

import pytest

from generative.xiangqi.board import (
    BLACK,
    RED,
    START_FEN,
    Board,
    iccs_to_move,
    move_to_iccs,
    perft,
    split_iccs,
)


@pytest.mark.parametrize("depth,expected", [(1, 44), (2, 1920), (3, 79666)])
def test_perft_start_position(depth, expected):
    assert perft(Board(), depth) == expected


@pytest.mark.slow
def test_perft_depth_4():
    # measured ~7.5 s on one idle core
    assert perft(Board(), 4) == 3290240


def test_fen_round_trip_and_start():
    b = Board()
    assert b.fen() == START_FEN
    assert Board(b.fen()).squares == b.squares
    with pytest.raises(ValueError, match="10 ranks"):
        Board("9/9 w")
    with pytest.raises(ValueError, match="both generals"):
        Board("9/9/9/9/9/9/9/9/9/9 w")


@pytest.mark.parametrize(
    "text,move", [("h2e2", (2 * 9 + 7, 2 * 9 + 4)), ("a0a1", (0, 9)), ("i9i8", (89, 80))]
)
def test_iccs_round_trip(text, move):
    assert iccs_to_move(text) == move
    assert move_to_iccs(move) == text
    assert iccs_to_move(text.upper()) == move


@pytest.mark.parametrize("bad", ["h2e", "z2e2", "h2ex", "", "h2e2e"])
def test_iccs_rejects_malformed(bad):
    with pytest.raises(ValueError, match="ICCS"):
        iccs_to_move(bad)


def moves_of(fen, sq_text):
    b = Board(fen)
    sq = iccs_to_move(sq_text + "a0")[0]
    return sorted(move_to_iccs(m)[2:] for m in b.legal_moves() if m[0] == sq)


# a table of single-rule positions: (fen, piece square, expected destinations)
RULE_CASES = [
    # horse: legs b1 (towards a2, c2) and c0 (towards d1) are free
    ("3k5/9/9/9/9/9/9/9/9/RN2K4 w - - 0 1", "b0", ["a2", "c2", "d1"]),
    # horse with the leg at b1 blocked cannot jump to a2 / c2
    ("3k5/9/9/9/9/9/9/9/1P7/1N2K4 w - - 0 1", "b0", ["d1"]),
    # elephant eye blocked (d1 occupied) and the river: c0 elephant
    ("3k5/9/9/9/9/9/9/9/3P5/2B1K4 w - - 0 1", "c0", ["a2"]),
    # elephant cannot cross the river: from c4 only back to a2 / e2
    ("3k5/9/9/9/9/2B6/9/9/9/4K4 w - - 0 1", "c4", ["a2", "e2"]),
    # advisor stays in the palace
    ("3k5/9/9/9/9/9/9/9/9/3AK4 w - - 0 1", "d0", ["e1"]),
    # general stays in the palace, cannot step onto the open file facing the other general
    ("3k5/9/9/9/9/9/9/9/9/4K4 w - - 0 1", "e0", ["e1", "f0"]),
    # pawn before the river: forward only; after it: forward and sideways
    ("4k4/9/9/9/9/9/4P4/9/9/3K5 w - - 0 1", "e3", ["e4"]),
    ("4k4/9/9/9/4P4/9/9/9/9/3K5 w - - 0 1", "e5", ["d5", "e6", "f5"]),
    # cannon: slides like a rook, captures only over exactly one screen
    ("3k5/9/9/9/p8/9/P8/9/9/C3K4 w - - 0 1", "a0", ["a1", "a2", "a5", "b0", "c0", "d0"]),
]


@pytest.mark.parametrize("fen,sq,expected", RULE_CASES)
def test_piece_rules(fen, sq, expected):
    assert moves_of(fen, sq) == sorted(expected)


def test_flying_general_and_pins():
    # the e-file rook is the only piece between the generals: it cannot leave the file
    b = Board("4k4/9/9/9/9/9/9/9/9/4KR3 w - - 0 1")
    assert b.in_check()  # nothing between the generals: the generals "see" each other
    b = Board("4k4/9/9/9/9/4R4/9/9/9/4K4 w - - 0 1")
    assert {move_to_iccs(m)[2] for m in b.legal_moves() if move_to_iccs(m)[:2] == "e4"} == {"e"}


def test_checkmate_stalemate_and_outcome():
    # double-rook mate: the black general on e9 is in check and cannot move
    mate = Board("3Rk4/3R5/9/9/9/9/9/9/9/5K3 b - - 0 1")
    assert mate.in_check() and mate.is_checkmate() and mate.outcome() == RED
    # stalemate (no legal move, not in check) is also a loss for the side to move
    stale = Board("3k5/R8/4R4/9/9/9/9/9/9/5K3 b - - 0 1")
    assert not stale.in_check() and stale.is_stalemate() and stale.outcome() == RED
    assert Board().outcome() is None


def test_push_pop_restores_position():
    b = Board()
    fen = b.fen()
    rng = random.Random(0)
    for _ in range(60):
        moves = b.legal_moves()
        if not moves:
            break
        b.push(rng.choice(moves))
    while b.move_stack:
        b.pop()
    assert b.fen() == fen and b.side == RED


def test_push_iccs_rejects_illegal():
    b = Board()
    with pytest.raises(ValueError, match="illegal"):
        b.push_iccs("h2h8")  # a cannon cannot land on an empty square beyond a screen
    with pytest.raises(ValueError, match="illegal"):
        b.push_iccs("h9h7")  # a black piece on Red's turn
    assert b.side == RED and b.fen() == START_FEN
    b.push_iccs("h2e2")
    assert b.side == BLACK


def _games(shared_data, n=None):
    with open(os.path.join(shared_data, "xiangqi", "games.jsonl")) as f:
        for i, line in enumerate(f):
            if n is not None and i >= n:
                return
            yield json.loads(line)


def test_replay_games_and_111_bound(shared_data):
    """The first 120 games replay legally (their moves are among the generated legal moves);
    no position has more than 111 legal moves; a game that ends in mate/stalemate carries
    the result of that position."""
    most = 0
    for game in _games(shared_data, 120):
        b = Board()
        for mv in split_iccs(game["iccs"]):
            legal = b.legal_moves()
            assert iccs_to_move(mv) in legal
            most = max(most, len(legal))
            b.push(iccs_to_move(mv))
        if b.outcome() is not None:
            assert game["result"] == ("1-0" if b.outcome() == RED else "0-1")
    assert 44 <= most <= 111


@pytest.mark.slow
def test_replay_every_game(shared_data):
    """All 26,063 games (~2.3M moves) replay without an illegal move (~16 s idle)."""
    t, n_games, n_moves = time.time(), 0, 0
    for game in _games(shared_data):
        b = Board()
        for mv in split_iccs(game["iccs"]):
            b.push_iccs(mv)
        n_games += 1
        n_moves += len(game["iccs"]) // 4
    assert n_games == 26063 and n_moves > 2_000_000, (n_games, n_moves, time.time() - t)
