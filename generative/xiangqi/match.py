"""Games and matches between players, with a move cap and adjudication by material.

A game ends when the side to move has no legal move (checkmate or stalemate: a loss for it)
or at ``max_plies``, where it is adjudicated: the side ahead by at least
``adjudication_margin`` points of material (`player.material`) wins, otherwise a draw.
Repetition rules are not adjudicated (the cap ends shuffling games).
"""

from __future__ import annotations

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
    red: Player, black: Player, max_plies: int = 120, adjudication_margin: float = 3.0
) -> GameRecord:
    """Play one game from the start position. Raises ValueError if a player moves illegally."""
    board, moves = Board(), []
    players = {RED: red, -RED: black}
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
        move = players[board.side].choose(board, moves)
        board.push_iccs(move)  # validates: an illegal move raises
        moves.append(move)
    return GameRecord(red.name, black.name, moves, winner, reason, material(board))


def play_match(player: Player, opponent: Player, config: MatchConfig | None = None) -> dict:
    """``player`` vs ``opponent``, ``player`` Red in even games and Black in odd games.

    Returns:
        ``{"wins", "draws", "losses"}`` from ``player``'s side, the counts by ``reason`` and
        the game records.
    """
    config = config or MatchConfig()
    summary = {"wins": 0, "draws": 0, "losses": 0, "reasons": {}, "games": []}
    for i in range(config.n_games):
        as_red = i % 2 == 0
        red, black = (player, opponent) if as_red else (opponent, player)
        game = play_game(red, black, config.max_plies, config.adjudication_margin)
        score = game.winner if as_red else -game.winner
        summary[{1: "wins", 0: "draws", -1: "losses"}[score]] += 1
        summary["reasons"][game.reason] = summary["reasons"].get(game.reason, 0) + 1
        summary["games"].append(game.to_dict())
    return summary
