"""Xiangqi rules in pure Python: FEN, legal moves, make/undo, check, mate, ICCS.

The board is a 90-square mailbox, ``square = rank * 9 + file``, with rank 0 Red's back rank
and file 0 the ``a`` file (ICCS coordinates). Pieces are small ints, positive for Red and
negative for Black. Every move table (rook rays, horse jumps with their leg square, elephant
steps with their eye, palace steps, pawn steps) is computed once at import, so move generation
is table look-ups; legality is "pseudo-legal move, then is my general attacked?" after making it.
"""

from __future__ import annotations

__all__ = [
    "Board",
    "START_FEN",
    "RED",
    "BLACK",
    "KING",
    "ADVISOR",
    "ELEPHANT",
    "HORSE",
    "ROOK",
    "CANNON",
    "PAWN",
    "move_to_iccs",
    "iccs_to_move",
    "square",
    "perft",
    "split_iccs",
]

START_FEN = "rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w - - 0 1"
RED, BLACK = 1, -1
KING, ADVISOR, ELEPHANT, HORSE, ROOK, CANNON, PAWN = 1, 2, 3, 4, 5, 6, 7
FEN_PIECES = {"k": KING, "a": ADVISOR, "b": ELEPHANT, "n": HORSE, "r": ROOK, "c": CANNON, "p": PAWN}
FEN_PIECES.update({"e": ELEPHANT, "h": HORSE})  # common aliases
PIECE_FEN = {KING: "k", ADVISOR: "a", ELEPHANT: "b", HORSE: "n", ROOK: "r", CANNON: "c", PAWN: "p"}
FILES = "abcdefghi"


def square(file: int, rank: int) -> int:
    """Square index of ``(file, rank)``, both 0-based (file 0 = ``a``, rank 0 = Red's back rank)."""
    return rank * 9 + file


def _on_board(f: int, r: int) -> bool:
    return 0 <= f < 9 and 0 <= r < 10


def _in_palace(f: int, r: int, side: int) -> bool:
    return 3 <= f <= 5 and (0 <= r <= 2 if side == RED else 7 <= r <= 9)


def _own_half(r: int, side: int) -> bool:
    return r <= 4 if side == RED else r >= 5


def _build_tables():
    rays, horse, horse_att, king, advisor, elephant, pawn, pawn_att = {}, [], [], {}, {}, {}, {}, {}
    for side in (RED, BLACK):
        king[side], advisor[side], elephant[side], pawn[side] = [], [], [], []
        for sq in range(90):
            f, r = sq % 9, sq // 9
            king[side].append(
                [
                    square(f + df, r + dr)
                    for df, dr in ((1, 0), (-1, 0), (0, 1), (0, -1))
                    if _in_palace(f + df, r + dr, side)
                ]
            )
            advisor[side].append(
                [
                    square(f + df, r + dr)
                    for df, dr in ((1, 1), (1, -1), (-1, 1), (-1, -1))
                    if _in_palace(f + df, r + dr, side)
                ]
            )
            elephant[side].append(
                [
                    (square(f + 2 * df, r + 2 * dr), square(f + df, r + dr))
                    for df, dr in ((1, 1), (1, -1), (-1, 1), (-1, -1))
                    if _on_board(f + 2 * df, r + 2 * dr) and _own_half(r + 2 * dr, side)
                ]
            )
            steps = [(0, side)] + ([] if _own_half(r, side) else [(1, 0), (-1, 0)])
            pawn[side].append(
                [square(f + df, r + dr) for df, dr in steps if _on_board(f + df, r + dr)]
            )
    ray_list = []
    for sq in range(90):
        f, r = sq % 9, sq // 9
        out = []
        for df, dr in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ray, ff, rr = [], f + df, r + dr
            while _on_board(ff, rr):
                ray.append(square(ff, rr))
                ff, rr = ff + df, rr + dr
            out.append(tuple(ray))
        ray_list.append(tuple(out))
        jumps = []
        for (df, dr), (lf, lr) in (
            ((1, 2), (0, 1)),
            ((-1, 2), (0, 1)),
            ((1, -2), (0, -1)),
            ((-1, -2), (0, -1)),
            ((2, 1), (1, 0)),
            ((2, -1), (1, 0)),
            ((-2, 1), (-1, 0)),
            ((-2, -1), (-1, 0)),
        ):
            if _on_board(f + df, r + dr):
                jumps.append((square(f + df, r + dr), square(f + lf, r + lr)))
        horse.append(tuple(jumps))
    rays = ray_list
    # reverse tables: which squares attack `sq` (for the check test)
    horse_att = [[] for _ in range(90)]
    for src in range(90):
        for dst, leg in horse[src]:
            horse_att[dst].append((src, leg))
    for side in (RED, BLACK):
        pawn_att[side] = [[] for _ in range(90)]
        for src in range(90):
            for dst in pawn[side][src]:
                pawn_att[side][dst].append(src)
    return rays, horse, horse_att, king, advisor, elephant, pawn, pawn_att


(
    RAYS,
    HORSE_MOVES,
    HORSE_ATTACKERS,
    KING_MOVES,
    ADVISOR_MOVES,
    ELEPHANT_MOVES,
    PAWN_MOVES,
    PAWN_ATTACKERS,
) = _build_tables()


def move_to_iccs(move: tuple[int, int]) -> str:
    """``(from_sq, to_sq)`` -> ICCS string such as ``"h2e2"``."""
    a, b = move
    return f"{FILES[a % 9]}{a // 9}{FILES[b % 9]}{b // 9}"


def iccs_to_move(text: str) -> tuple[int, int]:
    """ICCS string (``"h2e2"``, case-insensitive, ``"h2-e2"`` also accepted) -> ``(from_sq, to_sq)``.

    Raises:
        ValueError: when the text is not four ICCS characters.
    """
    t = text.strip().lower().replace("-", "")
    if (
        len(t) != 4
        or t[0] not in FILES
        or t[2] not in FILES
        or not t[1].isdigit()
        or not t[3].isdigit()
    ):
        raise ValueError(f"not an ICCS move (expected e.g. 'h2e2'): {text!r}")
    return square(FILES.index(t[0]), int(t[1])), square(FILES.index(t[2]), int(t[3]))


def split_iccs(moves: str) -> list[str]:
    """Split a concatenated ICCS game string (``"h2e2h9g7..."``) into 4-character moves."""
    if len(moves) % 4:
        raise ValueError(f"ICCS game string length {len(moves)} is not a multiple of 4")
    return [moves[i : i + 4] for i in range(0, len(moves), 4)]


class Board:
    """A Xiangqi position with make/undo.

    Attributes:
        squares: 90 ints, 0 empty, ``side * piece`` otherwise.
        side: side to move, ``RED`` (1) or ``BLACK`` (-1).
        kings: ``{RED: sq, BLACK: sq}``.
    """

    def __init__(self, fen: str = START_FEN) -> None:
        self.squares = [0] * 90
        self.kings = {RED: -1, BLACK: -1}
        self._history: list[tuple[int, int, int]] = []
        fields = fen.split()
        rows = fields[0].split("/")
        if len(rows) != 10:
            raise ValueError(f"FEN must have 10 ranks, got {len(rows)}: {fen!r}")
        for i, row in enumerate(rows):
            rank, f = 9 - i, 0
            for ch in row:
                if ch.isdigit():
                    f += int(ch)
                    continue
                if ch.lower() not in FEN_PIECES or f >= 9:
                    raise ValueError(f"bad FEN rank {row!r} in {fen!r}")
                side = RED if ch.isupper() else BLACK
                piece = FEN_PIECES[ch.lower()]
                self.squares[square(f, rank)] = side * piece
                if piece == KING:
                    self.kings[side] = square(f, rank)
                f += 1
            if f != 9:
                raise ValueError(f"FEN rank {row!r} does not have 9 files: {fen!r}")
        if -1 in self.kings.values():
            raise ValueError(f"FEN must contain both generals: {fen!r}")
        self.side = BLACK if len(fields) > 1 and fields[1] == "b" else RED

    # -- output ---------------------------------------------------------------------------
    def fen(self) -> str:
        """The position as FEN (move counters are not tracked: ``- - 0 1``)."""
        rows = []
        for rank in range(9, -1, -1):
            row, empty = "", 0
            for f in range(9):
                p = self.squares[square(f, rank)]
                if p == 0:
                    empty += 1
                    continue
                row += (str(empty) if empty else "") + (
                    PIECE_FEN[abs(p)].upper() if p > 0 else PIECE_FEN[-p]
                )
                empty = 0
            rows.append(row + (str(empty) if empty else ""))
        return "/".join(rows) + (" w" if self.side == RED else " b") + " - - 0 1"

    def copy(self) -> Board:
        other = Board.__new__(Board)
        other.squares = list(self.squares)
        other.kings = dict(self.kings)
        other.side = self.side
        other._history = list(self._history)
        return other

    # -- attacks --------------------------------------------------------------------------
    def is_attacked(self, sq: int, by: int) -> bool:
        """Whether side ``by`` attacks square ``sq`` (rook, cannon, horse, pawn, facing general)."""
        b = self.squares
        rook, cannon, king = by * ROOK, by * CANNON, by * KING
        for d, ray in enumerate(RAYS[sq]):
            screen = False
            for t in ray:
                p = b[t]
                if p == 0:
                    continue
                if screen:
                    if p == cannon:
                        return True
                    break
                # the flying-general rule: a facing general "attacks" along the file
                if p == rook or (p == king and d >= 2):
                    return True
                screen = True
        horse = by * HORSE
        for src, leg in HORSE_ATTACKERS[sq]:
            if b[src] == horse and b[leg] == 0:
                return True
        pawn = by * PAWN
        for src in PAWN_ATTACKERS[by][sq]:
            if b[src] == pawn:
                return True
        return False

    def in_check(self, side: int | None = None) -> bool:
        """Whether ``side`` (default: the side to move) has its general attacked."""
        side = self.side if side is None else side
        return self.is_attacked(self.kings[side], -side)

    # -- move generation ------------------------------------------------------------------
    def pseudo_moves_from(self, sq: int) -> list[tuple[int, int]]:
        """Moves of the piece on ``sq`` by piece rules alone (may leave its general in check)."""
        b = self.squares
        p = b[sq]
        side = 1 if p > 0 else -1
        kind = p * side
        out = []
        if kind == ROOK or kind == CANNON:
            for ray in RAYS[sq]:
                screen = False
                for t in ray:
                    q = b[t]
                    if not screen:
                        if q == 0:
                            out.append((sq, t))
                            continue
                        if kind == ROOK:
                            if q * side < 0:
                                out.append((sq, t))
                            break
                        screen = True
                    elif q != 0:
                        if q * side < 0:
                            out.append((sq, t))
                        break
        elif kind == HORSE:
            for t, leg in HORSE_MOVES[sq]:
                if b[leg] == 0 and b[t] * side <= 0:
                    out.append((sq, t))
        elif kind == PAWN:
            for t in PAWN_MOVES[side][sq]:
                if b[t] * side <= 0:
                    out.append((sq, t))
        elif kind == ELEPHANT:
            for t, eye in ELEPHANT_MOVES[side][sq]:
                if b[eye] == 0 and b[t] * side <= 0:
                    out.append((sq, t))
        elif kind == ADVISOR:
            for t in ADVISOR_MOVES[side][sq]:
                if b[t] * side <= 0:
                    out.append((sq, t))
        else:
            for t in KING_MOVES[side][sq]:
                if b[t] * side <= 0:
                    out.append((sq, t))
        return out

    def pseudo_moves(self) -> list[tuple[int, int]]:
        """All pseudo-legal moves of the side to move."""
        side, b, out = self.side, self.squares, []
        for sq in range(90):
            if b[sq] * side > 0:
                out.extend(self.pseudo_moves_from(sq))
        return out

    def _leaves_king_safe(self, move: tuple[int, int]) -> bool:
        a, t = move
        b, side = self.squares, self.side
        piece, captured = b[a], b[t]
        b[t], b[a] = piece, 0
        king_sq = t if piece == side * KING else self.kings[side]
        safe = not self.is_attacked(king_sq, -side)
        b[a], b[t] = piece, captured
        return safe

    def legal_moves(self) -> list[tuple[int, int]]:
        """All legal moves of the side to move as ``(from_sq, to_sq)`` pairs."""
        return [m for m in self.pseudo_moves() if self._leaves_king_safe(m)]

    def is_legal(self, move: tuple[int, int]) -> bool:
        """Whether ``move`` is legal here (checks only the moving piece: cheap)."""
        a, t = move
        if not (0 <= a < 90 and 0 <= t < 90) or self.squares[a] * self.side <= 0:
            return False
        return move in self.pseudo_moves_from(a) and self._leaves_king_safe(move)

    # -- make / undo ----------------------------------------------------------------------
    def push(self, move: tuple[int, int]) -> None:
        """Make ``move`` (assumed legal; use :meth:`push_iccs` to validate)."""
        a, t = move
        b = self.squares
        piece, captured = b[a], b[t]
        b[t], b[a] = piece, 0
        if piece == KING or piece == -KING:
            self.kings[self.side] = t
        self._history.append((a, t, captured))
        self.side = -self.side

    def pop(self) -> tuple[int, int]:
        """Undo the last move and return it."""
        a, t, captured = self._history.pop()
        b = self.squares
        piece = b[t]
        b[a], b[t] = piece, captured
        self.side = -self.side
        if piece == KING or piece == -KING:
            self.kings[self.side] = a
        return a, t

    def push_iccs(self, text: str) -> tuple[int, int]:
        """Validate and make an ICCS move.

        Raises:
            ValueError: when the text is not ICCS or the move is illegal here.
        """
        move = iccs_to_move(text)
        if not self.is_legal(move):
            raise ValueError(f"illegal move {text!r} in position {self.fen()}")
        self.push(move)
        return move

    @property
    def move_stack(self) -> list[tuple[int, int]]:
        return [(a, t) for a, t, _ in self._history]

    # -- game end -------------------------------------------------------------------------
    def has_legal_move(self) -> bool:
        side, b = self.side, self.squares
        for sq in range(90):
            if b[sq] * side > 0:
                for m in self.pseudo_moves_from(sq):
                    if self._leaves_king_safe(m):
                        return True
        return False

    def outcome(self) -> int | None:
        """``None`` while the side to move has a legal move; otherwise the winner (``-side``):
        checkmate and stalemate are both a loss for the side to move."""
        return None if self.has_legal_move() else -self.side

    def is_checkmate(self) -> bool:
        return self.in_check() and not self.has_legal_move()

    def is_stalemate(self) -> bool:
        return not self.in_check() and not self.has_legal_move()


def perft(board: Board, depth: int) -> int:
    """Number of leaf nodes of the legal-move tree of ``depth`` plies (bulk-counted at depth 1)."""
    moves = board.legal_moves()
    if depth <= 1:
        return len(moves) if depth == 1 else 1
    total = 0
    for m in moves:
        board.push(m)
        total += perft(board, depth - 1)
        board.pop()
    return total
