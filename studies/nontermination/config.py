"""Settings of the non-termination study (`studies.nontermination.study`): the special token ids
of its word vocabulary, the registry of decoders it compares (``DECODERS``), and
`NonterminationConfig`, the data path and the sizes of the data, the models, their training and
the decoding (with a ``quick`` variant for CI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decoding.registry import Registry

__all__ = ["BOS", "DECODERS", "EOS", "PAD", "SPECIALS", "UNK", "NonterminationConfig"]

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

# name -> DecodingConfig fields (eos / cap filled in at decode time), in report order
DECODERS: Registry[dict] = Registry(
    "decoder",
    {
        "greedy": {"strategy": "greedy"},
        "beam-2": {"strategy": "beam", "num_beams": 2, "early_stopping": True},
        "beam-4": {"strategy": "beam", "num_beams": 4, "early_stopping": True},
        "ancestral": {"strategy": "sample"},
        "top-k-2": {"strategy": "sample", "top_k": 2},
        "top-k-4": {"strategy": "sample", "top_k": 4},
        "nucleus-0.2": {"strategy": "sample", "top_p": 0.2},
        "nucleus-0.4": {"strategy": "sample", "top_p": 0.4},
        "c-top-k-2": {"strategy": "sample", "top_k": 2, "consistent": True},
        "c-top-k-4": {"strategy": "sample", "top_k": 4, "consistent": True},
        "c-nucleus-0.2": {"strategy": "sample", "top_p": 0.2, "consistent": True},
        "c-nucleus-0.4": {"strategy": "sample", "top_p": 0.4, "consistent": True},
    },
)


@dataclass
class NonterminationConfig:
    """Sizes of the study. The defaults are the "full" run (about 20 minutes on one thread)."""

    data_path: str | None = field(
        default=None,
        metadata={"help": "SQuAD json whose contexts are the corpus (e.g. squad/du_train.json)"},
    )
    output_dir: str = field(default="runs/nontermination", metadata={"help": "results go here"})
    max_train_sentences: int = field(default=3000, metadata={"help": "training sentences"})
    num_valid: int = field(default=500, metadata={"help": "held-out validation sentences"})
    num_test: int = field(
        default=1000, metadata={"help": "held-out test sentences (perplexity, prefixes)"}
    )
    heldout_article_fraction: float = field(default=0.1, metadata={"help": "articles held out"})
    vocab_size: int = field(default=3000, metadata={"help": "vocabulary incl. 4 special tokens"})
    context_length: int = field(default=10, metadata={"help": "prefix words (reference k=10)"})
    max_sentence_tokens: int = field(
        default=60, metadata={"help": "longest training sentence (words)"}
    )
    lstm_hidden: int = field(default=256, metadata={"help": "LSTM hidden = embedding size (tied)"})
    lstm_layers: int = field(default=2, metadata={"help": "LSTM layers"})
    lstm_dropout: float = field(default=0.3, metadata={"help": "LSTM dropout"})
    lstm_lr: float = field(default=2e-3, metadata={"help": "Adam learning rate of the LSTM"})
    gpt_layers: int = field(default=2, metadata={"help": "transformer layers"})
    gpt_hidden: int = field(default=128, metadata={"help": "transformer width"})
    gpt_heads: int = field(default=4, metadata={"help": "attention heads"})
    gpt_lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the transformer"})
    batch_size: int = field(default=32, metadata={"help": "training batch size"})
    epochs: int = field(default=1, metadata={"help": "training epochs"})
    epsilons: list[float] = field(
        default_factory=lambda: [1e-2, 1e-3, 1e-4], metadata={"help": "ST epsilons"}
    )
    architectures: list[str] = field(
        default_factory=lambda: ["lstm", "gpt2"], metadata={"help": "lstm / gpt2"}
    )
    num_prefixes: int = field(default=150, metadata={"help": "prefixes per prefix set"})
    max_new_tokens: int = field(default=100, metadata={"help": "length cap L of a continuation"})
    decoders: list[str] = field(
        default_factory=lambda: list(DECODERS), metadata={"help": "held-out prefixes"}
    )
    random_prefix_decoders: list[str] = field(
        default_factory=lambda: ["greedy", "beam-4", "ancestral", "nucleus-0.4", "c-nucleus-0.4"],
        metadata={"help": "decoders for the random-token prefixes"},
    )
    seed: int = field(default=0, metadata={"help": "seed of data split, init and sampling"})

    def __post_init__(self) -> None:
        for name in (*self.decoders, *self.random_prefix_decoders):
            if name not in DECODERS:
                raise ValueError(f"decoder {name!r} unknown; known: {DECODERS.names()}")
        for arch in self.architectures:
            if arch not in ("lstm", "gpt2"):
                raise ValueError(f"architectures: {arch!r} is not 'lstm' or 'gpt2'")
        for eps in self.epsilons:
            if not 0.0 < eps < 1.0:
                raise ValueError(f"epsilons: {eps} is not in (0, 1)")
        if self.vocab_size <= len(SPECIALS):
            raise ValueError(
                f"vocab_size must be > {len(SPECIALS)}, got vocab_size={self.vocab_size}"
            )
        if self.max_new_tokens < 1 or self.num_prefixes < 1:
            raise ValueError(
                f"max_new_tokens={self.max_new_tokens} and num_prefixes={self.num_prefixes} must be >= 1"
            )

    @classmethod
    def quick(cls, **overrides) -> NonterminationConfig:
        """Tiny models and few prefixes (about a minute): for CI and smoke runs. L = 80 is
        above the greedy bound ceil(ln 0.5 / ln 0.99) = 69 of the eps = 1e-2 ST model."""
        sizes = dict(
            max_train_sentences=400,
            num_valid=50,
            num_test=100,
            vocab_size=400,
            lstm_hidden=32,
            gpt_hidden=32,
            gpt_layers=1,
            gpt_heads=2,
            batch_size=32,
            epsilons=[1e-2],
            num_prefixes=24,
            max_new_tokens=80,
            random_prefix_decoders=["greedy", "c-nucleus-0.4"],
            output_dir="runs/nontermination-quick",
        )
        sizes.update(overrides)
        return cls(**sizes)
