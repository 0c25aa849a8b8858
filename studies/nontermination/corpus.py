"""The corpus of the non-termination study (`studies.nontermination.study`): SQuAD contexts
split into sentences, tokenised into lower-case words and punctuation marks, split by article
into train and held-out, encoded with a `Vocab` of the most frequent training words, and padded
into batches. The SQuAD json is an argument (``--data_path``); `check_data_path` says what to
pass when it is missing.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import torch

from .config import BOS, EOS, PAD, SPECIALS, UNK, NonterminationConfig

__all__ = [
    "Vocab",
    "check_data_path",
    "load_corpus",
    "pad_batch",
    "split_into_sentences",
    "tokenize",
]

_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[^\sa-z0-9]")


def split_into_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``, ``!`` or ``?`` followed by whitespace and a capital
    letter / quote / parenthesis (simple; abbreviations like "U.S. Army" may split)."""
    return [s.strip() for s in _SENT_RE.split(text) if s.strip()]


def tokenize(sentence: str) -> list[str]:
    """Lower-case words (with an attached 's / 't ...) and single punctuation marks."""
    return _TOKEN_RE.findall(sentence.lower())


class Vocab:
    """Word <-> id; ids 0..3 are ``<pad> <unk> <bos> <eos>``."""

    def __init__(self, sentences: list[list[str]], size: int) -> None:
        counts = Counter(w for s in sentences for w in s)
        self.itos = list(SPECIALS) + [w for w, _ in counts.most_common(size - len(SPECIALS))]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str]) -> list[int]:
        return [BOS] + [self.stoi.get(w, UNK) for w in words] + [EOS]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.itos[i] for i in ids)


def check_data_path(data_path: str | None) -> Path:
    """The SQuAD json of the corpus; a `FileNotFoundError` naming the path and ``--data_path``
    when it is not given or not a file."""
    if not data_path:
        raise FileNotFoundError(
            "the non-termination study needs a SQuAD json (e.g. squad/du_train.json): "
            "pass --data_path PATH"
        )
    path = Path(data_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"SQuAD json not found: {str(path)!r}; pass --data_path PATH to an existing file "
            "(e.g. squad/du_train.json)"
        )
    return path


def load_corpus(cfg: NonterminationConfig) -> tuple[Vocab, dict[str, list[list[int]]]]:
    """Read, split (by article), tokenise and encode; returns the vocab and id lists."""
    articles = json.loads(check_data_path(cfg.data_path).read_text())["data"]
    rng = random.Random(cfg.seed)
    order = list(range(len(articles)))
    rng.shuffle(order)
    n_held = max(1, int(len(articles) * cfg.heldout_article_fraction))
    pools: dict[str, list[list[str]]] = {"train": [], "heldout": []}
    for rank, a in enumerate(order):
        pool = pools["heldout" if rank < n_held else "train"]
        for p in articles[a]["paragraphs"]:
            for s in split_into_sentences(p["context"]):
                words = tokenize(s)
                if cfg.context_length < len(words) <= cfg.max_sentence_tokens:
                    pool.append(words)
    for pool in pools.values():
        rng.shuffle(pool)
    train = pools["train"][: cfg.max_train_sentences]
    held = pools["heldout"]
    if len(held) < cfg.num_valid + cfg.num_test:
        raise ValueError(f"only {len(held)} held-out sentences for num_valid + num_test")
    vocab = Vocab(train, cfg.vocab_size)
    splits = {
        "train": train,
        "valid": held[: cfg.num_valid],
        "test": held[cfg.num_valid : cfg.num_valid + cfg.num_test],
    }
    return vocab, {k: [vocab.encode(s) for s in v] for k, v in splits.items()}


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with ``<pad>``; returns ``(input_ids, attention_mask)``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    return ids, (ids != PAD).long()


def _length_batches(
    seqs: list[list[int]], batch_size: int, rng: random.Random
) -> list[list[list[int]]]:
    """Batches of similar length (less padding), in random order."""
    ordered = sorted(seqs, key=len)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    rng.shuffle(batches)
    return batches
