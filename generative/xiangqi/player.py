"""Players: the LM (Su's scoring, or constrained generation) and two baselines.

A player is anything with ``choose(board, history) -> str``: it gets the position and the ICCS
moves played so far and returns a legal ICCS move. Every player here only ever picks among
``board.legal_moves()``, so none can play an illegal move.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import PreTrainedModel

from decoding import DecodingConfig
from decoding.registry import Registry

from .board import PAWN, Board, move_to_iccs
from .constraint import generate_move
from .scoring import MoveScorer, window_start
from .tokenizer import XiangqiTokenizerBase

__all__ = [
    "Player",
    "LMPlayerConfig",
    "LMPlayer",
    "RandomPlayer",
    "GreedyMaterialPlayer",
    "PIECE_VALUES",
    "material",
    "PLAYERS",
    "make_player",
]

# name -> baseline player class, built as ``cls(seed=seed)`` by `make_player`; a class joins
# with ``@PLAYERS.register(name)`` (duplicates raise)
PLAYERS: Registry[type] = Registry("player")

# conventional values (pawns count 2 once across the river); generals are not counted
PIECE_VALUES = {1: 0.0, 2: 2.0, 3: 2.0, 4: 4.0, 5: 9.0, 6: 4.5, 7: 1.0}


def material(board: Board) -> float:
    """Red's material minus Black's (a crossed pawn counts 2)."""
    total = 0.0
    for sq, p in enumerate(board.squares):
        if p:
            v = PIECE_VALUES[abs(p)]
            if abs(p) == PAWN and (sq // 9 >= 5 if p > 0 else sq // 9 <= 4):
                v = 2.0
            total += v if p > 0 else -v
    return total


class Player(Protocol):
    name: str

    def choose(self, board: Board, history: list[str]) -> str: ...


@dataclass
class LMPlayerConfig:
    """How the LM picks a move.

    ``method='score'`` is Su's: every legal move scored by its summed token log-probs, then
    ``best`` (argmax) or ``sample`` (softmax of score / temperature, optionally top-k).
    ``method='generate'`` decodes the move token by token through `decoding.decode` with the
    legal-move prefix tree (``strategy`` greedy or sample, with top-k / top-p).
    """

    method: str = field(default="score", metadata={"help": "score | generate"})
    strategy: str = field(
        default="best", metadata={"help": "score: best | sample; generate: greedy | sample"}
    )
    temperature: float = field(default=1.0, metadata={"help": "> 0"})
    top_k: int = field(default=0, metadata={"help": "0: off"})
    top_p: float = field(default=1.0, metadata={"help": "generate only; (0, 1]"})
    seed: int | None = field(default=None, metadata={"help": "seed of the sampling generator"})

    def __post_init__(self) -> None:
        allowed = {"score": ("best", "sample"), "generate": ("greedy", "sample")}
        if self.method not in allowed:
            raise ValueError(f"method={self.method!r} is not one of {sorted(allowed)}")
        if self.strategy not in allowed[self.method]:
            raise ValueError(
                f"strategy={self.strategy!r} is not one of {allowed[self.method]} for method={self.method!r}"
            )
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got temperature={self.temperature}")
        if self.top_k < 0 or not 0.0 < self.top_p <= 1.0:
            raise ValueError(
                f"need top_k >= 0 and top_p in (0, 1], got top_k={self.top_k}, top_p={self.top_p}"
            )


class LMPlayer:
    """The language model as a player.

    Args:
        model: the trained causal LM (put in eval mode here).
        tokenizer: its Xiangqi tokenizer.
        config: how to choose (default: Su's scoring, best move).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: XiangqiTokenizerBase,
        config: LMPlayerConfig | None = None,
    ) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.config = config or LMPlayerConfig()
        self.scorer = MoveScorer(self.model, tokenizer)
        self.generator = torch.Generator().manual_seed(
            self.config.seed if self.config.seed is not None else 0
        )
        self.name = f"lm-{self.config.method}-{self.config.strategy}"

    def move_scores(self, board: Board, history: list[str]) -> tuple[list[str], torch.Tensor]:
        """The legal moves and their summed token log-probabilities."""
        moves = [move_to_iccs(m) for m in board.legal_moves()]
        return moves, self.scorer.score(history, moves)

    def choose(self, board: Board, history: list[str]) -> str:
        if self.config.method == "generate":
            return self._generate(board, history)
        moves, scores = self.move_scores(board, history)
        if self.config.strategy == "best":
            return moves[int(scores.argmax())]
        logits = scores / self.config.temperature
        if 0 < self.config.top_k < len(moves):
            kth = logits.topk(self.config.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        idx = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator)
        return moves[int(idx)]

    def _generate(self, board: Board, history: list[str]) -> str:
        moves = [move_to_iccs(m) for m in board.legal_moves()]
        start = window_start(len(history), self.tokenizer.tokens_per_move, self.scorer.n_positions)
        cfg = DecodingConfig(
            strategy=self.config.strategy,
            temperature=self.config.temperature,
            top_k=self.config.top_k,
            top_p=self.config.top_p,
            generator=self.generator,
        )
        return generate_move(
            self.model, self.tokenizer, self.tokenizer.encode_moves(history[start:]), moves, cfg
        )


@PLAYERS.register("random")
class RandomPlayer:
    """Uniformly random legal move."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.name = "random"

    def choose(self, board: Board, history: list[str]) -> str:
        return move_to_iccs(self.rng.choice(board.legal_moves()))


@PLAYERS.register("greedy")
class GreedyMaterialPlayer:
    """One-ply greedy: the move that maximises its own material balance afterwards (a mate
    wins outright); ties broken at random. It sees captures, not threats."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.name = "greedy-material"

    def choose(self, board: Board, history: list[str]) -> str:
        side, best, best_value = board.side, [], float("-inf")
        for m in board.legal_moves():
            board.push(m)
            value = float("inf") if not board.has_legal_move() else side * material(board)
            board.pop()
            if value > best_value:
                best, best_value = [m], value
            elif value == best_value:
                best.append(m)
        return move_to_iccs(self.rng.choice(best))


def make_player(name: str, seed: int = 0):
    """A baseline player by name (``random``, ``greedy``); an unknown name raises a ValueError
    listing the known ones."""
    return PLAYERS[name](seed=seed)
