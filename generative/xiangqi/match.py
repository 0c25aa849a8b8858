"""Games and matches between players, with a move cap and adjudication by material.

A game ends when the side to move has no legal move (checkmate or stalemate: a loss for it)
or at ``max_plies``, where it is adjudicated: the side ahead by at least
``adjudication_margin`` points of material (`player.material`) wins, otherwise a draw.
Repetition rules are not adjudicated (the cap ends shuffling games).

A game may start after an *opening* (ICCS moves played first, e.g. the first plies of a master
game); the plies count from the start position. A player is anything with
``choose(board, history) -> str`` (`player.Player`): the LM, the baselines, `search.SearchPlayer`,
or a UCI engine in a subprocess (`uci_client.UCIEnginePlayer`); a player with a ``new_game()``
method is told when a game begins. The time each side spends per move is recorded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from .board import RED, Board
from .player import Player, material

__all__ = ["GameRecord", "MatchConfig", "play_game", "play_match"]


@dataclass
class GameRecord:
    """One finished game. ``winner``: 1 Red, -1 Black, 0 draw; ``reason``: mate | stalemate |
    adjudication."""

    red: str
    black: str
    moves: list[str]
    winner: int
    reason: str
    material: float
    opening_plies: int = 0
    ms_per_move: dict[str, float] = field(default_factory=dict)  # "red" / "black" -> mean ms

    def to_dict(self) -> dict:
        d = asdict(self)
        d["iccs"] = "".join(self.moves)
        d["result"] = {1: "1-0", -1: "0-1", 0: "1/2-1/2"}[self.winner]
        return d


@dataclass
class MatchConfig:
    """A match: ``n_games`` games, colours alternated, capped and adjudicated."""

    n_games: int = field(default=100, metadata={"help": "games (half with each colour)"})
    max_plies: int = field(default=120, metadata={"help": "move cap in plies (half-moves)"})
    adjudication_margin: float = field(
        default=3.0, metadata={"help": "material lead that wins at the cap"}
    )

    def __post_init__(self) -> None:
        if self.n_games < 1:
            raise ValueError(f"n_games must be >= 1, got n_games={self.n_games}")
        if self.max_plies < 1:
            raise ValueError(f"max_plies must be >= 1, got max_plies={self.max_plies}")
        if self.adjudication_margin < 0:
            raise ValueError(
                f"adjudication_margin must be >= 0, got adjudication_margin={self.adjudication_margin}"
            )


def play_game(
    red: Player,
    black: Player,
    max_plies: int = 120,
    adjudication_margin: float = 3.0,
    opening: list[str] | None = None,
) -> GameRecord:
    """Play one game from the start position (after ``opening``, if given).

    Raises:
        ValueError: if a player (or the opening) moves illegally.
    """
    board, moves = Board(), []
    for move in opening or []:
        board.push_iccs(move)
        moves.append(move)
    players = {RED: red, -RED: black}
    for p in (red, black):
        if hasattr(p, "new_game"):
            p.new_game()
    spent, counts = {RED: 0.0, -RED: 0.0}, {RED: 0, -RED: 0}
    while True:
        if not board.has_legal_move():
            reason = "mate" if board.in_check() else "stalemate"
            winner = -board.side
            break
        if len(moves) >= max_plies:
            diff = material(board)
            winner = 1 if diff >= adjudication_margin else -1 if diff <= -adjudication_margin else 0
            reason = "adjudication"
            break
        side, t = board.side, time.perf_counter()
        move = players[side].choose(board, moves)
        spent[side] += time.perf_counter() - t
        counts[side] += 1
        board.push_iccs(move)  # validates: an illegal move raises
        moves.append(move)
    ms = {
        name: round(1000 * spent[s] / counts[s], 1)
        for name, s in (("red", RED), ("black", -RED))
        if counts[s]
    }
    return GameRecord(
        red.name, black.name, moves, winner, reason, material(board), len(opening or []), ms
    )


def play_match(
    player: Player,
    opponent: Player,
    config: MatchConfig | None = None,
    openings: list[list[str]] | None = None,
) -> dict:
    """``player`` vs ``opponent``, ``player`` Red in even games and Black in odd games.

    Args:
        openings: game ``i`` starts after ``openings[(i // 2) % len(openings)]``, so each
            opening is played once with each colour (default: the start position).

    Returns:
        ``{"wins", "draws", "losses"}`` from ``player``'s side, the counts by ``reason`` and
        the game records.
    """
    config = config or MatchConfig()
    summary = {"wins": 0, "draws": 0, "losses": 0, "reasons": {}, "games": []}
    for i in range(config.n_games):
        as_red = i % 2 == 0
        red, black = (player, opponent) if as_red else (opponent, player)
        opening = openings[(i // 2) % len(openings)] if openings else None
        game = play_game(red, black, config.max_plies, config.adjudication_margin, opening)
        score = game.winner if as_red else -game.winner
        summary[{1: "wins", 0: "draws", -1: "losses"}[score]] += 1
        summary["reasons"][game.reason] = summary["reasons"].get(game.reason, 0) + 1
        summary["games"].append(game.to_dict())
    return summary
