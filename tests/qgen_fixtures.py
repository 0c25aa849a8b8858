"""Tiny in-memory tokenizers and models for tests and smoke runs (no files, no downloads).

Three kinds of vocabulary, the three that `qgen` supports:

* `tiny_wordpiece_tokenizer`: English BERT WordPiece (``[CLS]``/``[SEP]``, lower-cased);
* `tiny_chinese_tokenizer`: Chinese character-level BERT vocabulary;
* `tiny_sentencepiece_tokenizer`: an XLM-R-style SentencePiece unigram vocabulary
  (``<s>``/``</s>``, pad id 1), like the multilingual backbone.
"""

from __future__ import annotations

import os
import string
import tempfile

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import BertTokenizer, PreTrainedTokenizerFast

from qgen.modeling.unilm import UniLMConfig, UniLMForQAGeneration

__all__ = [
    "tiny_wordpiece_tokenizer",
    "tiny_chinese_tokenizer",
    "tiny_sentencepiece_tokenizer",
    "tiny_unilm_config",
    "tiny_unilm_model",
    "save_tiny_qag_model",
    "save_tiny_reader",
]

_WORDS = [
    "the", "a", "of", "in", "is", "was", "what", "who", "when", "where", "which",
    "cat", "dog", "sat", "on", "mat", "paris", "france", "capital", "city", "river",
]  # fmt: skip
_PUNCT = list(".,?!'\"()-:;")
_CHINESE = list("中国的是什么哪里谁世界第二高山峰叫名字位于境内泰王年月日历史节") + list(
    "，。？！、"
)


def _bert_tokenizer(tokens: list[str]) -> BertTokenizer:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(specials + tokens) + "\n")
        return BertTokenizer(path)


def tiny_wordpiece_tokenizer() -> BertTokenizer:
    """English WordPiece: letters, ``##`` letters, digits, punctuation and a few words (85 ids)."""
    letters = list(string.ascii_lowercase)
    return _bert_tokenizer(
        letters
        + ["##" + c for c in letters]
        + list("0123456789")
        + _PUNCT
        + [w for w in _WORDS[:8] if w not in letters]
    )


def tiny_chinese_tokenizer() -> BertTokenizer:
    """Chinese character-level BERT vocabulary (each CJK character a token)."""
    return _bert_tokenizer(_CHINESE + list("0123456789"))


def tiny_sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """SentencePiece unigram with XLM-R special tokens: ``<s>``=0, ``<pad>``=1, ``</s>``=2,
    ``<unk>``=3, pieces, ``<mask>`` last."""
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = (
        ["\u2581"] + list(string.ascii_lowercase) + ["\u2581" + c for c in string.ascii_lowercase]
    )
    pieces += ["\u2581" + w for w in _WORDS[:10]] + _PUNCT + list("0123456789") + _CHINESE
    vocab = [(t, 0.0) for t in specials] + [(p, -float(len(p) < 2) - 1.0) for p in pieces]
    vocab.append(("<mask>", 0.0))
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


def tiny_unilm_config(vocab_size: int = 99, **overrides) -> UniLMConfig:
    """The project's tiny test shape: hidden 32, 2 layers, 4 heads, FF 37."""
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    kwargs.update(overrides)
    return UniLMConfig(**kwargs)


def tiny_unilm_model(vocab_size: int = 99, seed: int = 0, **overrides) -> UniLMForQAGeneration:
    """A randomly initialised tiny `UniLMForQAGeneration` in eval mode."""
    import torch

    torch.manual_seed(seed)
    return UniLMForQAGeneration(tiny_unilm_config(vocab_size, **overrides)).eval()


def save_tiny_qag_model(path, tokenizer=None, sep_bias: float = 4.0, **config) -> str:
    """Save a tiny random qag model and its tokenizer (default: `tiny_wordpiece_tokenizer`) to
    ``path``; ``sep_bias`` raises the end token's logit so that targets end early (fast tests),
    ``config`` sets config attributes (``qgen_task``, ``qgen_language``, ...)."""
    import torch

    tokenizer = tokenizer or tiny_wordpiece_tokenizer()
    model = tiny_unilm_model(vocab_size=len(tokenizer))
    with torch.no_grad():
        model.cls.predictions.bias[tokenizer.sep_token_id] += sep_bias
    for name, value in config.items():
        setattr(model.config, name, value)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_tiny_reader(path, tokenizer=None) -> str:
    """Save a tiny random extractive reader (`BertForQuestionAnswering`, one layer) and its
    tokenizer (default: `tiny_wordpiece_tokenizer`) to ``path``."""
    from transformers import BertConfig, BertForQuestionAnswering

    tokenizer = tokenizer or tiny_wordpiece_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=4, intermediate_size=37)  # fmt: skip
    BertForQuestionAnswering(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def step_prompt():
    """A step-model prompt of three rows: full, right-padded, and one with a 2-token target
    prefix: ``(input_ids, attention_mask, token_type_ids)``."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, 99, (3, 12), generator=g)
    am = torch.ones_like(ids)
    am[1, 9:] = 0
    ids[1, 9:] = 0
    tt = torch.zeros_like(ids)
    tt[2, 10:] = 1
    return ids, am, tt


class LogitsRecorder:
    """Wrap a step model and keep every logits tensor it returns."""

    def __init__(self, inner):
        self.inner, self.logits = inner, []

    def start(self, input_ids, **kw):
        return self.inner.start(input_ids, **kw)

    def step(self, input_ids, state):
        logits, state = self.inner.step(input_ids, state)
        self.logits.append(logits)
        return logits, state

    def reorder(self, state, index):
        return self.inner.reorder(state, index)
