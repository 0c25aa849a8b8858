"""The static side of the Xiangqi search: evaluation, Zobrist hashing, capture generation.

* **Evaluation**: material in centipawns (`player.PIECE_VALUES` x 100) plus small
  piece-square bonuses (a pawn across the river is worth 2, more when advanced and central;
  horses like the centre; a central cannon, a rook across the river), as one table
  ``PST[piece + 7][square]`` from Red's side, so that a move updates the score by look-ups.
* **Zobrist hashing**: a fixed random 64-bit key per (piece, square) and one for the side to
  move; a move updates the hash by three XORs.
* **Captures** for the quiescence search, most valuable victim first, least valuable attacker
  first among equals (MVV-LVA).
"""

from __future__ import annotations

import random

from .board import (
    ADVISOR_MOVES,
    CANNON,
    ELEPHANT,
    HORSE,
    HORSE_MOVES,
    KING,
    KING_MOVES,
    PAWN,
    PAWN_MOVES,
    RAYS,
    ROOK,
    Board,
)

__all__ = [
    "PIECE_CP",
    "VICTIM",
    "ATTACKER",
    "PST",
    "ZOBRIST",
    "ZOBRIST_SIDE",
    "evaluate",
    "position_hash",
    "has_attackers",
    "captures",
]

# centipawns (player.PIECE_VALUES x 100); the king's value only orders captures (LVA)
PIECE_CP = {KING: 0, 2: 200, ELEPHANT: 200, HORSE: 400, ROOK: 900, CANNON: 450, PAWN: 100}
VICTIM = [0, 10_000, 200, 200, 400, 900, 450, 100]  # by piece kind; capturing a king = mate
ATTACKER = [0, 300, 200, 200, 400, 900, 450, 100]


def _red_square_bonus(kind: int, f: int, r: int) -> int:
    """Centipawns on top of the piece value, for a Red piece on file ``f``, rank ``r``."""
    centre = 4 - abs(f - 4)  # 0 on the edge files, 4 on the e file
    if kind == PAWN:
        if r <= 4:
            return 10 if r == 4 else 0
        advance = (0, 0, 0, 0, 0, 0, 25, 35, 25, -40)[r]
        return 100 + advance + 5 * min(centre, 3)  # crossed: worth 2 pawns
    if kind == HORSE:
        return (-10, 0, 10, 15, 20, 20, 20, 20, 10, -10)[r] + (-25, -5, 5, 10, 10)[centre]
    if kind == CANNON:
        return (10 if f == 4 and r <= 4 else 0) + (5 if r in (2, 3) else 0)
    if kind == ROOK:
        return (-10 if r == 0 else 0) + (10 if 5 <= r <= 8 else 0) + (5 if f in (3, 5) else 0)
    if kind == KING:
        return 0 if r == 0 else -10
    return 0


def _build_tables() -> tuple[list[list[int]], list[list[int]], int]:
    """``PST[p + 7][sq]``: Red-perspective value of piece ``p`` on ``sq`` (Black's negated and
    mirrored), the Zobrist keys ``ZOBRIST[p + 7][sq]`` and the side-to-move key."""
    rng = random.Random(20_260_316)  # fixed: hashes are reproducible across runs
    pst = [[0] * 90 for _ in range(15)]
    zob = [[0] * 90 for _ in range(15)]
    for kind in range(1, 8):
        for sq in range(90):
            f, r = sq % 9, sq // 9
            pst[7 + kind][sq] = PIECE_CP[kind] + _red_square_bonus(kind, f, r)
            pst[7 - kind][sq] = -(PIECE_CP[kind] + _red_square_bonus(kind, f, 9 - r))
            zob[7 + kind][sq] = rng.getrandbits(64)
            zob[7 - kind][sq] = rng.getrandbits(64)
    return pst, zob, rng.getrandbits(64)


PST, ZOBRIST, ZOBRIST_SIDE = _build_tables()


def evaluate(board: Board) -> int:
    """Static evaluation in centipawns from the side to move's point of view (material +
    piece-square bonuses; see the module docstring)."""
    red = sum(PST[p + 7][sq] for sq, p in enumerate(board.squares) if p)
    return red * board.side


def position_hash(board: Board) -> int:
    """The 64-bit Zobrist hash of the position (pieces and side to move)."""
    h = 0
    for sq, p in enumerate(board.squares):
        if p:
            h ^= ZOBRIST[p + 7][sq]
    return h ^ ZOBRIST_SIDE if board.side < 0 else h


def has_attackers(b: list[int], side: int) -> bool:
    """Whether ``side`` has a rook, horse or cannon (else a null move risks zugzwang)."""
    return any(p * side in (ROOK, HORSE, CANNON) for p in b)


def captures(b: list[int], side: int) -> list[tuple[int, tuple[int, int]]]:
    """Pseudo-legal captures of ``side`` as ``(victim value, move)``, MVV-LVA order."""
    out = []
    for sq in range(90):
        p = b[sq] * side
        if p <= 0:
            continue
        att = ATTACKER[p]
        if p == ROOK or p == CANNON:
            for ray in RAYS[sq]:
                screen = False
                for t in ray:
                    q = b[t]
                    if q == 0:
                        continue
                    if p == ROOK or screen:
                        if q * side < 0:
                            out.append((VICTIM[-q * side], -att, sq, t))
                        break
                    screen = True
            continue
        if p == HORSE:
            targets = [t for t, leg in HORSE_MOVES[sq] if b[leg] == 0]
        elif p == PAWN:
            targets = PAWN_MOVES[side][sq]
        elif p == KING:
            targets = KING_MOVES[side][sq]
        elif p == ELEPHANT:
            continue  # rarely captures; quiet for the quiescence search
        else:
            targets = ADVISOR_MOVES[side][sq]
        for t in targets:
            q = b[t]
            if q * side < 0:
                out.append((VICTIM[-q * side], -att, sq, t))
    out.sort(reverse=True)
    return [(victim, (a, t)) for victim, _, a, t in out]
