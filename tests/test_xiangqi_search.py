"""The alpha-beta searcher: composed mates, no hanging pieces, always legal, limits and stop."""

import random
import threading
import time

import pytest
import torch

from generative.xiangqi.board import Board, iccs_to_move, move_to_iccs
from generative.xiangqi.match import play_game
from generative.xiangqi.player import RandomPlayer, material
from generative.xiangqi.search import (
    MATE,
    SearchConfig,
    Searcher,
    SearchPlayer,
    evaluate,
    position_hash,
)

# (name, FEN) with Red to move; each is checked to be what it claims before it is searched
MATE_IN_1 = [
    ("two rooks", "4k4/R8/9/9/9/9/9/9/1R7/3K5 w - - 0 1"),
    ("double cannon", "3aka3/9/9/9/9/4C4/9/9/C8/3K5 w - - 0 1"),
]
MATE_IN_2 = [
    ("two rooks, cut off then mate", "4k4/9/9/6p1p/9/9/9/9/1R7/R2K5 w - - 0 1"),
    ("rook and the flying general", "4k4/9/9/9/9/9/9/9/9/R2K1N3 w - - 0 1"),
    ("rook and cannon against advisors", "4ka3/4a4/9/9/9/9/9/9/4C4/R2K5 w - - 0 1"),
]
# a Red piece is attacked and loses material unless Red does something; a safe move exists
HANGING = [
    ("horse on an open file", "5k3/9/2r6/p8/9/9/2N6/9/9/R2K5 w - - 0 1"),
    ("cannon attacked by a horse", "3k5/9/9/5n3/9/6C2/9/9/9/4K3R w - - 0 1"),
    ("rook attacked by a crossed pawn", "4k4/9/9/9/9/4pR3/9/9/9/1N1K5 w - - 0 1"),
    ("horse under a cannon", "1c2k4/9/9/1p7/9/9/9/1N7/9/3K4R w - - 0 1"),
]


def no_legal_move(board: Board) -> bool:
    return not board.has_legal_move()


def mates_in_one(board: Board) -> list[str]:
    out = []
    for m in board.legal_moves():
        board.push(m)
        if no_legal_move(board):
            out.append(move_to_iccs(m))
        board.pop()
    return out


def forces_mate_in_two(board: Board, move: str) -> bool:
    """After ``move``, every reply allows a mate in one (or the reply does not exist)."""
    board.push_iccs(move)
    try:
        if no_legal_move(board):
            return True
        for reply in board.legal_moves():
            board.push(reply)
            ok = bool(mates_in_one(board))
            board.pop()
            if not ok:
                return False
        return True
    finally:
        board.pop()


def loses_material(board: Board, margin: float = 2.0) -> bool:
    """Black to move: some capture wins >= ``margin`` points after Red's best recapture on
    that square (an undefended piece, or one attacked by a cheaper piece)."""
    red_before = material(board)
    for m in board.legal_moves():
        if board.squares[m[1]] <= 0:
            continue
        board.push(m)
        recaptures = [r for r in board.legal_moves() if r[1] == m[1]]
        best = material(board)
        for r in recaptures:
            board.push(r)
            best = max(best, material(board))
            board.pop()
        board.pop()
        if red_before - best >= margin:
            return True
    return False


def searcher(depth=4, **kw) -> Searcher:
    return Searcher(SearchConfig(depth=depth, movetime_ms=None, **kw))


@pytest.mark.parametrize("name,fen", MATE_IN_1)
def test_finds_mate_in_one(name, fen):
    board = Board(fen)
    assert mates_in_one(board), f"composition {name!r} has no mate in one"
    result = searcher(depth=2).search(board)
    assert result.move in mates_in_one(board)
    assert result.score == MATE - 1 and result.mate_in == 1


@pytest.mark.parametrize("name,fen", MATE_IN_2)
def test_finds_mate_in_two(name, fen):
    board = Board(fen)
    assert not mates_in_one(board), f"composition {name!r} already mates in one"
    result = searcher(depth=4).search(board)
    assert forces_mate_in_two(board, result.move), result
    assert result.mate_in == 2 and result.pv[0] == result.move


def test_sees_that_it_is_mated():
    board = Board("4k4/R8/9/9/9/9/9/9/1R7/3K5 b - - 0 1")  # Black to move, mated next move
    result = searcher(depth=3).search(board)
    assert result.mate_in is not None and result.mate_in < 0


@pytest.mark.parametrize("quiescence", [True, False])
@pytest.mark.parametrize("name,fen", HANGING)
def test_does_not_leave_a_piece_hanging(name, fen, quiescence):
    board = Board(fen)
    threatened = Board(fen.replace(" w ", " b "))
    assert loses_material(threatened), f"composition {name!r} has no threat"
    safe = []
    for m in board.legal_moves():
        board.push(m)
        if not loses_material(board):
            safe.append(move_to_iccs(m))
        board.pop()
    assert safe, f"composition {name!r} has no safe move"
    for depth in (2, 3):
        move = searcher(depth=depth, quiescence=quiescence).search(board).move
        assert move in safe, (name, depth, move)


def test_never_plays_an_illegal_move_from_random_positions():
    rng = random.Random(0)
    s = Searcher(SearchConfig(depth=2, movetime_ms=30, nodes=400))
    checked = 0
    while checked < 220:
        board = Board()
        for _ in range(rng.randrange(0, 90)):
            legal = board.legal_moves()
            if not legal:
                break
            board.push(rng.choice(legal))
        if not board.has_legal_move():
            continue
        fen = board.fen()
        result = s.search(board)
        assert board.fen() == fen  # the board is not modified
        assert board.is_legal(iccs_to_move(result.move)), (fen, result.move)
        assert s.hash == position_hash(s.board)  # the incremental hash is back at the root
        assert s.score * board.side == evaluate(board)  # and so is the incremental evaluation
        checked += 1


def test_games_against_random_are_legal_and_won():
    game = play_game(SearchPlayer(SearchConfig(depth=2, movetime_ms=50)), RandomPlayer(1), 120)
    assert game.winner == 1  # (play_game validates every move)


def test_node_limit_and_depth_limit():
    result = Searcher(SearchConfig(depth=20, movetime_ms=None, nodes=2000)).search(Board())
    assert result.nodes <= 2000 + 200 and result.depth < 20
    assert Searcher(SearchConfig(depth=1, movetime_ms=None)).search(Board()).depth == 1


def test_movetime_is_respected_and_no_time_plays_at_once():
    t = time.perf_counter()
    result = Searcher(SearchConfig(depth=30, movetime_ms=150)).search(Board())
    assert time.perf_counter() - t < 1.0 and result.depth >= 1
    quick = Searcher(SearchConfig(depth=30, movetime_ms=1)).search(Board())
    assert quick.move == move_to_iccs(Board().legal_moves()[0]) and quick.nodes == 0


def test_stop_from_another_thread():
    s = Searcher(SearchConfig(depth=60, movetime_ms=None))
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", s.search(Board())))
    worker.start()
    time.sleep(0.3)
    t = time.perf_counter()
    s.stop()
    worker.join(5.0)
    assert not worker.is_alive() and time.perf_counter() - t < 1.0
    assert Board().is_legal(iccs_to_move(box["r"].move))


class FakeScorer:
    """A 'language model' that puts all its probability on one move."""

    def __init__(self, favourite: str) -> None:
        self.favourite = favourite

    def score(self, history, candidates):
        return torch.tensor([0.0 if c == self.favourite else -10.0 for c in candidates])


def test_prior_picks_the_favourite_among_quiet_moves_but_not_over_a_mate():
    cfg = SearchConfig(depth=3, movetime_ms=None, prior_weight=20.0, prior_clip=200.0)
    assert Searcher(cfg, FakeScorer("h2e2")).search(Board()).move == "h2e2"
    no_prior = SearchConfig(depth=3, movetime_ms=None, use_prior=False)
    assert Searcher(no_prior, FakeScorer("h2e2")).search(Board()).move != "h2e2"
    board = Board(MATE_IN_1[0][1])
    decoy = next(m for m in map(move_to_iccs, board.legal_moves()) if m not in mates_in_one(board))
    assert Searcher(cfg, FakeScorer(decoy)).search(board).move in mates_in_one(board)


@pytest.mark.parametrize(
    "bad",
    [dict(depth=0), dict(movetime_ms=0), dict(nodes=0), dict(prior_weight=-1), dict(tt_size=0)],
)
def test_config_validates(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SearchConfig(**bad)


def test_no_legal_move_raises_naming_the_position():
    board = Board("4k4/R8/9/9/9/9/9/9/1R7/3K5 w - - 0 1")
    board.push_iccs("b1b9")
    with pytest.raises(ValueError, match="no legal move"):
        searcher().search(board)
