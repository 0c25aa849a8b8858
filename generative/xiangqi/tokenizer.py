"""Transformers tokenizers for ICCS game strings: one token per character, or one per move.

Both read a game as its concatenated ICCS string (``"h2e2h9g7..."``, whitespace ignored), put
a dedicated ``[BOS]`` first (Su reused ``[PAD]`` as the start token; we do not, see
docs/xiangqi.md, "Choices and caveats") and add no end token, so a sequence is ``[BOS] m1 m2 ...``. Their vocabularies
are fixed by the rules, not learned, so ``save_pretrained`` / ``from_pretrained`` need no
vocabulary file (one is still written for inspection).
"""

from __future__ import annotations

import json
import os

from transformers import PreTrainedTokenizer

from decoding.registry import Registry

from .board import (
    ADVISOR_MOVES,
    BLACK,
    ELEPHANT_MOVES,
    HORSE_MOVES,
    KING_MOVES,
    RAYS,
    RED,
    move_to_iccs,
)

__all__ = [
    "XiangqiTokenizerBase",
    "XiangqiCharTokenizer",
    "XiangqiMoveTokenizer",
    "TOKENIZERS",
    "geometric_moves",
    "load_xiangqi_tokenizer",
]

SPECIALS = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]

# kind -> tokenizer class (``"char"``, ``"move"``); a class joins with
# ``@TOKENIZERS.register(kind)`` (duplicates raise)
TOKENIZERS: Registry[type[XiangqiTokenizerBase]] = Registry("Xiangqi tokenizer")


def geometric_moves() -> list[str]:
    """Every from-to pair some piece could ever make (rook lines, horse jumps, elephant and
    advisor steps), in ICCS, sorted: 2,086 moves. Every legal move is among them."""
    moves = set()
    for sq in range(90):
        for ray in RAYS[sq]:
            moves.update((sq, t) for t in ray)
        moves.update((sq, t) for t, _ in HORSE_MOVES[sq])
        for side in (RED, BLACK):
            moves.update((sq, t) for t, _ in ELEPHANT_MOVES[side][sq])
            moves.update((sq, t) for t in ADVISOR_MOVES[side][sq])
            moves.update((sq, t) for t in KING_MOVES[side][sq])
    return sorted(move_to_iccs(m) for m in moves)


class XiangqiTokenizerBase(PreTrainedTokenizer):
    """Shared machinery: a fixed symbol list after the four specials, ``[BOS]`` prepended.

    Subclasses set ``symbols`` (the non-special tokens) and ``chars_per_token``.
    """

    model_input_names = ["input_ids", "attention_mask"]
    vocab_files_names: dict[str, str] = {}
    chars_per_token = 1

    def __init__(self, model_max_length: int = 512, **kwargs) -> None:
        self.vocab = {tok: i for i, tok in enumerate(SPECIALS + self.symbols())}
        self.ids_to_tokens = {i: tok for tok, i in self.vocab.items()}
        for name, tok in zip(("pad_token", "bos_token", "eos_token", "unk_token"), SPECIALS):
            kwargs.setdefault(name, tok)
        kwargs.setdefault("special_tokens_pattern", "bos")
        kwargs.setdefault("token_type_ids_pattern", "all_zeros")
        super().__init__(model_max_length=model_max_length, **kwargs)

    @classmethod
    def symbols(cls) -> list[str]:
        raise NotImplementedError

    @property
    def tokens_per_move(self) -> int:
        """How many tokens one ICCS move takes (4 for characters, 1 for moves)."""
        return 4 // self.chars_per_token

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        text = "".join(text.split()).lower()
        n = self.chars_per_token
        return [text[i : i + n] for i in range(0, len(text), n)]

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab["[UNK]"])

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, "[UNK]")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(t for t in tokens if t not in SPECIALS)

    def move_ids(self, move: str) -> list[int]:
        """Token ids of one ICCS move (``tokens_per_move`` ids, no special token)."""
        n = self.chars_per_token
        return [self.vocab[move[i : i + n]] for i in range(0, 4, n)]

    def encode_moves(self, moves: list[str] | str, add_bos: bool = True) -> list[int]:
        """Fast path (no regex/trie): ``[BOS]`` + the ids of the moves (list, or ICCS string)."""
        if isinstance(moves, str):
            moves = [moves[i : i + 4] for i in range(0, len(moves), 4)]
        ids = [self.bos_token_id] if add_bos else []
        for m in moves:
            ids.extend(self.move_ids(m))
        return ids

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str]:
        path = os.path.join(
            save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.json"
        )
        with open(path, "w") as f:
            json.dump(self.vocab, f)
        return (path,)


@TOKENIZERS.register("char")
class XiangqiCharTokenizer(XiangqiTokenizerBase):
    """One token per ICCS character: ``[PAD] [BOS] [EOS] [UNK]``, ``a``-``i``, ``0``-``9`` (23 ids)."""

    chars_per_token = 1

    @classmethod
    def symbols(cls) -> list[str]:
        return list("abcdefghi0123456789")


@TOKENIZERS.register("move")
class XiangqiMoveTokenizer(XiangqiTokenizerBase):
    """One token per move: the specials plus the 2,086 geometrically possible moves."""

    chars_per_token = 4

    @classmethod
    def symbols(cls) -> list[str]:
        return geometric_moves()


def load_xiangqi_tokenizer(path_or_kind: str) -> XiangqiTokenizerBase:
    """A tokenizer by kind (``"char"`` / ``"move"``) or from a saved directory."""
    if path_or_kind in TOKENIZERS:
        return TOKENIZERS[path_or_kind]()
    with open(os.path.join(path_or_kind, "tokenizer_config.json")) as f:
        cls_name = json.load(f).get("tokenizer_class", "")
    for cls in TOKENIZERS.values():
        if cls.__name__ in (cls_name, cls_name + "Tokenizer") or cls.__name__.startswith(cls_name):
            return cls.from_pretrained(path_or_kind)
    raise ValueError(
        f"unknown tokenizer_class={cls_name!r} in {path_or_kind}; known kinds: {TOKENIZERS.names()}"
    )
