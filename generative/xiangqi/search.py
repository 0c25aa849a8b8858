"""An alpha-beta searcher for Xiangqi, with the language model as an optional policy prior.

The search is the textbook one (sunfish-sized, pure Python on top of `board.Board`):

* **negamax alpha-beta** with principal-variation (null-window) re-searches, **iterative
  deepening** (depth 1, 2, ... until a depth, node or time limit, or `Searcher.stop`);
* a **transposition table** keyed by an incrementally updated Zobrist hash of the position;
* **quiescence search** on captures at the leaves (stand pat, delta pruning), ordered by
  **MVV-LVA** (most valuable victim, least valuable attacker); the main search orders the
  table move, then captures (MVV-LVA), then two killer moves per ply, then the history heuristic;
* a **check extension** (a side in check at depth 0 searches one more ply), so that a mate is
  seen as "no legal move" instead of being hidden in the quiescence search;
* an evaluation of **material + piece-square bonuses** (values as `player.PIECE_VALUES`, in
  centipawns; a pawn across the river is worth 2, more near the palace), updated incrementally;
  having no legal move (checkmate *or* stalemate, both lose in Xiangqi) scores ``-MATE + ply``;
  a position repeated on the path or in the game scores 0.

The **policy prior**: with a `MoveScorer`, the legal root moves are scored by the LM (Su's log
p(move | game)), searched in that order (so among equal search scores the LM's favourite wins)
and, with ``prior_weight > 0``, shifted by ``prior_weight * (log p - max log p)`` centipawns,
clipped at ``-prior_clip``. Without a scorer the search is pure material.

Always a legal move: the root moves come from ``board.legal_moves()``; the best move of the
last finished iteration (or of the running one, once it beats it) is returned, and the first
legal move at once when the time left is too short to search.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .board import Board, move_to_iccs
from .heuristics import (
    ATTACKER,
    PST,
    VICTIM,
    ZOBRIST,
    ZOBRIST_SIDE,
    captures,
    evaluate,
    has_attackers,
    position_hash,
)

if TYPE_CHECKING:  # torch + transformers: the UCI engine answers `uci` without them
    from .scoring import MoveScorer

__all__ = [
    "MATE",
    "SearchConfig",
    "SearchResult",
    "Searcher",
    "SearchPlayer",
    "evaluate",
    "position_hash",
]

MATE = 100_000
MATE_BOUND = MATE - 1_000  # |score| above this is a mate score
INF = 10 * MATE
_EXACT, _LOWER, _UPPER = 0, 1, 2


@dataclass
class SearchConfig:
    """Limits and switches of the search. A move costs at most ``movetime_ms`` (plus the LM's
    one forward); whichever of depth, nodes and time runs out first ends the search."""

    depth: int = field(default=6, metadata={"help": "maximum iterative-deepening depth (plies)"})
    movetime_ms: float | None = field(
        default=250.0, metadata={"help": "time per move in milliseconds (None: no time limit)"}
    )
    nodes: int | None = field(default=None, metadata={"help": "node budget (None: no limit)"})
    quiescence: bool = field(default=True, metadata={"help": "capture search at the leaves"})
    null_move: bool = field(default=False, metadata={"help": "null-move pruning (R = 2)"})
    reductions: bool = field(
        default=False, metadata={"help": "late-move reductions of quiet moves (1 ply)"}
    )
    use_prior: bool = field(
        default=True, metadata={"help": "order root moves by the LM (when a scorer is given)"}
    )
    prior_weight: float = field(
        default=0.0, metadata={"help": "root bonus in centipawns per nat of LM log-prob"}
    )
    prior_clip: float = field(default=100.0, metadata={"help": "largest root malus (cp)"})
    tt_size: int = field(default=300_000, metadata={"help": "transposition-table entries"})

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got depth={self.depth}")
        if self.movetime_ms is not None and self.movetime_ms <= 0:
            raise ValueError(f"movetime_ms must be > 0 or None, got movetime_ms={self.movetime_ms}")
        if self.nodes is not None and self.nodes < 1:
            raise ValueError(f"nodes must be >= 1 or None, got nodes={self.nodes}")
        if self.prior_weight < 0 or self.prior_clip < 0:
            raise ValueError(
                f"prior_weight and prior_clip must be >= 0, got prior_weight={self.prior_weight}, "
                f"prior_clip={self.prior_clip}"
            )
        if self.tt_size < 1:
            raise ValueError(f"tt_size must be >= 1, got tt_size={self.tt_size}")


@dataclass
class SearchResult:
    """The outcome of one search. ``score``: centipawns for the side to move (mates are
    ``+-(MATE - plies)``); ``depth``: the last finished iteration (0: none finished)."""

    move: str
    score: int
    depth: int
    nodes: int
    time_ms: float
    pv: list[str]

    @property
    def mate_in(self) -> int | None:
        """Moves to mate (positive: the side to move mates; negative: it is mated), else None."""
        if abs(self.score) < MATE_BOUND:
            return None
        plies = MATE - abs(self.score)
        return (plies + 1) // 2 if self.score > 0 else -(plies // 2)


class _Stop(Exception):
    """Raised inside the tree when a limit is hit; unwinds to the root."""


class Searcher:
    """Iterative-deepening alpha-beta over a `Board`.

    Args:
        config: limits and switches (default `SearchConfig()`).
        scorer: a `MoveScorer` for the root policy prior (None: pure material search).
        on_iteration: called with a `SearchResult` after every finished iteration (UCI ``info``).
    """

    def __init__(
        self,
        config: SearchConfig | None = None,
        scorer: MoveScorer | None = None,
        on_iteration: Callable[[SearchResult], None] | None = None,
    ) -> None:
        self.config = config or SearchConfig()
        self.scorer = scorer
        self.on_iteration = on_iteration
        self.tt: dict[int, tuple[int, int, int, tuple[int, int] | None]] = {}
        self.stopped = False
        self.nodes = 0

    def stop(self) -> None:
        """Ask a running search to return as soon as possible (safe from another thread)."""
        self.stopped = True

    def clear(self) -> None:
        """Forget the transposition table (a new game)."""
        self.tt.clear()

    # -- the root ---------------------------------------------------------------------------
    def search(
        self,
        board: Board,
        history: list[str] | None = None,
        *,
        depth: int | None = None,
        movetime_ms: float | None = -1.0,
        nodes: int | None = -1,
    ) -> SearchResult:
        """Search ``board`` (not modified) and return the best move found.

        Args:
            board: the position; its move stack gives the game's earlier positions (repetition).
            history: the ICCS moves from the start position, for the LM prior (default: the
                board's move stack).
            depth, movetime_ms, nodes: override the config's limits for this search (``-1``:
                keep the config's; ``None``: no limit).

        Raises:
            ValueError: when the side to move has no legal move.
        """
        start = time.perf_counter()
        self.stopped, self.nodes = False, 0
        cfg = self.config
        max_depth = cfg.depth if depth is None else depth
        movetime = cfg.movetime_ms if movetime_ms == -1.0 else movetime_ms
        self._max_nodes = cfg.nodes if nodes == -1 else nodes
        self._deadline = None if movetime is None else start + movetime / 1000.0
        self.board = board.copy()
        moves = self.board.legal_moves()
        if not moves:
            raise ValueError(f"no legal move in position {board.fen()}")
        history = [move_to_iccs(m) for m in board.move_stack] if history is None else history
        if movetime is not None and movetime < 15.0:  # no time: the first legal move at once
            return self._result(moves[0], 0, 0, start, [moves[0]])
        bonus = self._root_prior(moves, history)
        self._setup_position()
        root_state = (
            len(self.board.move_stack),
            self.board.side,
            self.hash,
            self.score,
            dict(self.seen),
        )
        best, best_score, done = moves[0], -INF, 0
        for d in range(1, max_depth + 1):
            try:
                score, move = self._root(d, moves, bonus)
            except _Stop:
                self._restore_root(root_state)
                if self._root_best is not None:  # beats (or is) the last iteration's move
                    best_score, best = self._root_best
                break
            best, best_score, done = move, score, d
            moves.remove(move)
            moves.insert(0, move)
            if self.on_iteration is not None:
                self.on_iteration(self._result(best, best_score, d, start, self.pv(best, d)))
            if abs(score) >= MATE_BOUND or self._soft_time_up(start):
                break
        return self._result(best, best_score, done, start, self.pv(best, max(done, 1)))

    def _result(self, move, score, depth, start, pv) -> SearchResult:
        return SearchResult(
            move_to_iccs(move),
            int(score),
            depth,
            self.nodes,
            (time.perf_counter() - start) * 1000.0,
            [move_to_iccs(m) for m in pv],
        )

    def _soft_time_up(self, start: float) -> bool:
        """Whether the next iteration is unlikely to finish (it costs several times the last)."""
        if self._deadline is None:
            return False
        now = time.perf_counter()
        return now - start > 0.4 * (self._deadline - start)

    def _root_prior(self, moves: list[tuple[int, int]], history: list[str]) -> dict:
        """Sort ``moves`` in place by the LM's log-prob (best first); return the root bonuses."""
        if self.scorer is None or not self.config.use_prior:
            return {}
        iccs = [move_to_iccs(m) for m in moves]
        logp = self.scorer.score(history, iccs).tolist()
        order = sorted(range(len(moves)), key=lambda i: -logp[i])
        moves[:] = [moves[i] for i in order]
        if self.config.prior_weight <= 0:
            return {}
        top = max(logp)
        w, clip = self.config.prior_weight, self.config.prior_clip
        return {moves[j]: int(max(w * (logp[i] - top), -clip)) for j, i in enumerate(order)}

    def _setup_position(self) -> None:
        b = self.board
        self.hash = position_hash(b)
        self.score = sum(PST[p + 7][sq] for sq, p in enumerate(b.squares) if p)
        self.killers = [[None, None] for _ in range(2 * self.config.depth + 16)]
        self.history_table: dict[tuple[int, int], int] = {}
        # earlier positions of the game (since the last capture) and of the current path
        self.seen: dict[int, int] = {}
        replay = b.copy()
        for _ in range(len(replay.move_stack)):
            _, t = replay.pop()
            if replay.squares[t]:  # undid a capture: nothing earlier can repeat
                break
            h = position_hash(replay)
            self.seen[h] = self.seen.get(h, 0) + 1
        self.seen[self.hash] = self.seen.get(self.hash, 0) + 1
        if len(self.tt) > self.config.tt_size:
            self.tt.clear()

    def _root(self, depth: int, moves: list, bonus: dict) -> tuple[int, tuple[int, int]]:
        """One iteration at the root: (score, best move). PVS with per-move prior shifts."""
        alpha, beta = -INF, INF
        self._root_best = None
        best = moves[0]
        for i, m in enumerate(moves):
            shift = bonus.get(m, 0)
            self._make(m)
            self.seen[self.hash] = self.seen.get(self.hash, 0) + 1
            if i == 0:
                score = -self._negamax(depth - 1, -beta, -(alpha - shift), 1) + shift
            else:
                a = alpha - shift
                score = -self._negamax(depth - 1, -a - 1, -a, 1) + shift
                if score > alpha:
                    score = -self._negamax(depth - 1, -beta, -(alpha - shift), 1) + shift
            self._unseen()
            self._unmake(m)
            if score > alpha:
                alpha, best = score, m
                self._root_best = (score, m)
        self._store(depth, _EXACT, alpha, best, 0)
        return alpha, best

    def _restore_root(self, state: tuple) -> None:
        """After a stop deep in the tree (no unmake on the way out): back to the root."""
        n, side, self.hash, self.score, seen = state
        extra = len(self.board.move_stack) - n
        self.board.side = side if extra % 2 == 0 else -side  # undo a null move under way
        for _ in range(extra):
            self.board.pop()
        self.seen = seen

    # -- make / unmake with hash and evaluation -----------------------------------------------
    def _make(self, m: tuple[int, int]) -> int:
        """Make ``m`` on the board, updating hash and evaluation; return the captured piece."""
        a, t = m
        b = self.board.squares
        p, c = b[a], b[t]
        z = ZOBRIST[p + 7]
        h = self.hash ^ z[a] ^ z[t] ^ ZOBRIST_SIDE
        pst = PST[p + 7]
        s = self.score + pst[t] - pst[a]
        if c:
            h ^= ZOBRIST[c + 7][t]
            s -= PST[c + 7][t]
        self.hash, self.score = h, s
        self.board.push(m)
        return c

    def _unmake(self, m: tuple[int, int]) -> None:
        a, t = self.board.pop()
        b = self.board.squares
        p, c = b[a], b[t]
        z = ZOBRIST[p + 7]
        h = self.hash ^ z[a] ^ z[t] ^ ZOBRIST_SIDE
        pst = PST[p + 7]
        s = self.score - pst[t] + pst[a]
        if c:
            h ^= ZOBRIST[c + 7][t]
            s += PST[c + 7][t]
        self.hash, self.score = h, s

    def _unseen(self) -> None:
        n = self.seen[self.hash] - 1
        if n:
            self.seen[self.hash] = n
        else:
            del self.seen[self.hash]

    def _illegal(self) -> bool:
        """After a move: whether the mover's general is attacked (the move was illegal)."""
        board = self.board
        mover = -board.side
        return board.is_attacked(board.kings[mover], board.side)

    def _check_limits(self) -> None:
        if self.stopped:
            raise _Stop
        if self._max_nodes is not None and self.nodes >= self._max_nodes:
            raise _Stop
        if self._deadline is not None and time.perf_counter() >= self._deadline:
            raise _Stop

    # -- the tree ---------------------------------------------------------------------------
    def _store(self, depth: int, flag: int, score: int, move, ply: int) -> None:
        if score >= MATE_BOUND:  # store mates relative to this node, not the root
            score += ply
        elif score <= -MATE_BOUND:
            score -= ply
        self.tt[self.hash] = (depth, flag, score, move)

    def _negamax(self, depth: int, alpha: int, beta: int, ply: int, null_ok: bool = True) -> int:
        """Score of the position for the side to move, within ``(alpha, beta)``."""
        self.nodes += 1
        if not self.nodes & 127:
            self._check_limits()
        if self.seen.get(self.hash, 0) > 1:
            return 0  # a repetition
        board = self.board
        in_check = board.is_attacked(board.kings[board.side], -board.side)
        if depth <= 0:
            if not in_check or ply >= 2 * self.config.depth + 8:
                return (
                    self._quiesce(alpha, beta, ply)
                    if self.config.quiescence
                    else (self.score * board.side)
                )
            depth = 1  # check extension: a mate is "no legal move", seen only by a full node
        entry = self.tt.get(self.hash)
        tt_move = None
        if entry is not None:
            e_depth, flag, score, tt_move = entry
            if e_depth >= depth:
                if score >= MATE_BOUND:
                    score -= ply
                elif score <= -MATE_BOUND:
                    score += ply
                if (
                    flag == _EXACT
                    or (flag == _LOWER and score >= beta)
                    or (flag == _UPPER and score <= alpha)
                ):
                    return score
        cfg = self.config
        if (
            cfg.null_move
            and null_ok
            and depth >= 3
            and not in_check
            and beta < MATE_BOUND
            and has_attackers(board.squares, board.side)
        ):  # null move: if passing still reaches beta, a real move will (no zugzwang assumed)
            board.side, self.hash = -board.side, self.hash ^ ZOBRIST_SIDE
            score = -self._negamax(depth - 3, -beta, -beta + 1, ply + 1, False)
            board.side, self.hash = -board.side, self.hash ^ ZOBRIST_SIDE
            if score >= beta:
                return beta
        killers = self.killers[ply] if ply < len(self.killers) else (None, None)
        alpha0, best, best_move, legal = alpha, -INF, None, 0
        for m in self._ordered_moves(tt_move, ply):
            captured = self._make(m)
            if self._illegal():
                self._unmake(m)
                continue
            legal += 1
            self.seen[self.hash] = self.seen.get(self.hash, 0) + 1
            if legal == 1:
                score = -self._negamax(depth - 1, -beta, -alpha, ply + 1)
            else:
                reduce = (
                    cfg.reductions
                    and depth >= 3
                    and legal > 3
                    and not in_check
                    and not captured
                    and m not in killers
                    and not board.is_attacked(board.kings[board.side], -board.side)
                )  # a late quiet move that gives no check: first searched one ply shallower
                score = alpha + 1
                if reduce:
                    score = -self._negamax(depth - 2, -alpha - 1, -alpha, ply + 1)
                if score > alpha:
                    score = -self._negamax(depth - 1, -alpha - 1, -alpha, ply + 1)
                if alpha < score < beta:
                    score = -self._negamax(depth - 1, -beta, -alpha, ply + 1)
            self._unseen()
            self._unmake(m)
            if score > best:
                best, best_move = score, m
                if score > alpha:
                    alpha = score
                    if score >= beta:
                        if not board.squares[m[1]] and ply < len(self.killers):  # quiet move
                            k = self.killers[ply]
                            if k[0] != m:
                                k[1], k[0] = k[0], m
                            self.history_table[m] = self.history_table.get(m, 0) + depth * depth
                        break
        if legal == 0:
            return -MATE + ply  # checkmate or stalemate: both lose
        flag = _LOWER if best >= beta else _EXACT if best > alpha0 else _UPPER
        self._store(depth, flag, best, best_move, ply)
        return best

    def _ordered_moves(self, tt_move, ply: int) -> list[tuple[int, int]]:
        """Pseudo-legal moves: table move, captures by MVV-LVA, killers, history."""
        b = self.board.squares
        killers = self.killers[ply] if ply < len(self.killers) else (None, None)
        hist = self.history_table
        keyed = []
        for m in self.board.pseudo_moves():
            c = b[m[1]]
            if m == tt_move:
                key = 1 << 30
            elif c:
                key = (1 << 20) + VICTIM[abs(c)] * 16 - ATTACKER[abs(b[m[0]])] // 10
            elif m == killers[0]:
                key = 1 << 19
            elif m == killers[1]:
                key = (1 << 19) - 1
            else:
                key = hist.get(m, 0)
            keyed.append((key, m))
        keyed.sort(reverse=True)
        return [m for _, m in keyed]

    def _quiesce(self, alpha: int, beta: int, ply: int) -> int:
        """Captures only, with stand pat and delta pruning."""
        self.nodes += 1
        if not self.nodes & 127:
            self._check_limits()
        side = self.board.side
        stand = self.score * side
        if stand >= beta:
            return stand
        if stand > alpha:
            alpha = stand
        for victim, m in captures(self.board.squares, side):
            if stand + victim + 200 < alpha and victim < 10_000:
                continue  # delta pruning: even winning this piece cannot reach alpha
            self._make(m)
            if self._illegal():
                self._unmake(m)
                continue
            score = -self._quiesce(-beta, -alpha, ply + 1)
            self._unmake(m)
            if score > alpha:
                if score >= beta:
                    return score
                alpha = score
        return alpha

    def pv(self, first: tuple[int, int], max_len: int = 12) -> list[tuple[int, int]]:
        """The principal variation: ``first``, then the table moves, while they are legal."""
        board = self.board.copy()
        line, seen = [], set()
        move = first
        while move is not None and len(line) < max_len and board.is_legal(move):
            line.append(move)
            board.push(move)
            h = position_hash(board)
            if h in seen:
                break
            seen.add(h)
            entry = self.tt.get(h)
            move = entry[3] if entry is not None else None
        return line


class SearchPlayer:
    """A `match.play_game` player: the move of a `Searcher` (optionally with the LM prior).

    Args:
        config: the search's limits (default `SearchConfig()`).
        scorer: a `MoveScorer` for the root prior (None: pure material search).
        name: the player's name in game records.
    """

    def __init__(
        self,
        config: SearchConfig | None = None,
        scorer: MoveScorer | None = None,
        name: str | None = None,
    ) -> None:
        self.searcher = Searcher(config, scorer)
        self.name = name or ("search+lm" if scorer is not None else "search")
        self.last: SearchResult | None = None

    def new_game(self) -> None:
        """Forget the transposition table, so that games do not depend on earlier ones."""
        self.searcher.clear()

    def choose(self, board: Board, history: list[str]) -> str:
        self.last = self.searcher.search(board, history)
        return self.last.move
