"""Prune the vocabulary of a trained qgen model to the pieces a language or a corpus uses.

A multilingual backbone carries pieces that a Chinese model never reads or writes, and each costs
a row of the word embedding (most of a small model's size) and a column of the tied LM head (most
of the cost of a decoded token). `select_vocabulary` picks the pieces worth keeping: those that
tokenizing a corpus uses, every single-character piece (so that any text whose characters were
representable stays representable without ``<unk>``), and the special tokens. `prune_vocabulary`
writes a model directory with only those pieces: the tokenizer (order kept, ids remapped), the
embedding rows, the tied decoder and its bias, the config's token ids and ``vocab_pruning.json``
(what was kept, the map from new to old ids). `check_pruned` measures on held-out text how many
tokens segment differently and whether the logits stay the same where they do not.

Supported tokenizers: ``tokenizer.json`` models ``Unigram`` (SentencePiece, XLM-R / e5) and
``WordPiece`` (BERT).
"""

from __future__ import annotations

import copy
import json
import operator
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qgen.io.squad import load_squad
from qgen.modeling.inputs import special_token_ids
from qgen.modeling.pretrained import check_model_dir, load_model

__all__ = [
    "PRUNING_FILE",
    "SUPPORTED_TOKENIZER_MODELS",
    "VocabPruningError",
    "VocabularySelection",
    "check_pruned",
    "corpus_texts",
    "logit_difference",
    "prune_model",
    "prune_tokenizer",
    "prune_vocabulary",
    "segmentation_changes",
    "select_vocabulary",
]

PRUNING_FILE = "vocab_pruning.json"
SUPPORTED_TOKENIZER_MODELS = ("Unigram", "WordPiece")
# tensors with one row per piece (the decoder weight and bias are tied to the first and third)
_VOCAB_ROWS = (
    "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.weight",
    "cls.predictions.bias",
    "cls.predictions.decoder.bias",
)
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# written anew from the pruned tokenizer; never copied from the source directory
_TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "sentencepiece.bpe.model", "spiece.model",
)  # fmt: skip
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


class VocabPruningError(ValueError):
    """Ids to keep that the model does not have, or a tokenizer this module cannot prune."""


# ----------------------------------------------------------------------------- choosing the pieces
def corpus_texts(path: str | os.PathLike) -> list[str]:
    """The distinct texts of a corpus file, in file order: contexts, questions and answers of a
    SQuAD JSON / JSON-lines file (`load_squad`), or the non-empty lines of a ``.txt`` file."""
    if str(path).endswith(".txt"):
        with open(path, encoding="utf-8") as f:
            return list(dict.fromkeys(line.strip() for line in f if line.strip()))
    texts: dict[str, None] = {}
    for row in load_squad(path):
        texts.update(dict.fromkeys([row["context"], row["question"], *row["answers"]["text"]]))
    return [t for t in texts if t.strip()]


def _tokenizer_json(tokenizer) -> dict:
    if not getattr(tokenizer, "is_fast", False):
        raise VocabPruningError(
            f"{type(tokenizer).__name__}: pruning needs a fast tokenizer (tokenizer.json)"
        )
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = state["model"].get("type")
    if kind not in SUPPORTED_TOKENIZER_MODELS:
        raise VocabPruningError(
            f"tokenizer model type {kind!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_TOKENIZER_MODELS)}"
        )
    return state


def _pieces(state: dict) -> list[str]:
    """The model's pieces by id (``tokenizer.json`` ``model.vocab``)."""
    vocab = state["model"]["vocab"]
    if state["model"]["type"] == "Unigram":
        return [piece for piece, _ in vocab]
    pieces = [""] * len(vocab)
    for piece, i in vocab.items():
        pieces[i] = piece
    return pieces


def _encoder(tokenizer):
    """A copy of the backend tokenizer that neither truncates nor pads."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    return backend


def _encode(tokenizer, texts: Sequence[str], batch: int = 512):
    backend = _encoder(tokenizer)
    for i in range(0, len(texts), batch):
        yield from backend.encode_batch(list(texts[i : i + batch]), add_special_tokens=False)


def _required_ids(tokenizer, state: dict, config=None) -> set[int]:
    """Ids that pruning always keeps: special and added tokens, the post-processor's ids and
    the token ids the model config names."""
    ids = set(tokenizer.all_special_ids) | {t["id"] for t in state.get("added_tokens") or []}
    ids |= set(_processor_ids(state.get("post_processor")))
    if state["model"]["type"] == "Unigram" and state["model"].get("unk_id") is not None:
        ids.add(state["model"]["unk_id"])
    if config is not None:
        ids |= {i for i in _config_token_ids(config).values() if isinstance(i, int) and i >= 0}
    return ids


@dataclass
class VocabularySelection:
    """The pieces `select_vocabulary` keeps, and why.

    Attributes:
        ids: the kept ids, sorted.
        counts: pieces before, used by the corpus, single characters, special, kept.
        files: per corpus file: distinct texts, tokens, distinct pieces.
    """

    ids: list[int]
    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict[str, int]] = field(default_factory=dict)


def _character_pieces(state: dict) -> tuple[set[int], set[int]]:
    """``(single, sole)``: the ids of single-character pieces (and byte pieces with byte fallback),
    and of the longer pieces that hold a character that no single-character piece spells in
    that place (word-initial or continuing)."""
    model = state["model"]
    pieces = _pieces(state)
    if model["type"] == "WordPiece":
        cont = model.get("continuing_subword_prefix") or "##"
        initial = {p for p in pieces if len(p) == 1}
        inner = {p[len(cont) :] for p in pieces if p.startswith(cont) and len(p) == len(cont) + 1}

        def lacks(p: str) -> bool:
            body = p[len(cont) :] if p.startswith(cont) else p[1:]
            return any(c not in inner for c in body) or (
                not p.startswith(cont) and p[:1] not in initial
            )

        single = {i for i, p in enumerate(pieces) if len(p.removeprefix(cont)) <= 1}
    else:  # Unigram: a character anywhere, after the word marker or not
        marker = "\u2581"
        chars = {p.removeprefix(marker) for p in pieces if len(p.removeprefix(marker)) == 1}

        def lacks(p: str) -> bool:
            return any(c not in chars and c != marker for c in p)

        single = {i for i, p in enumerate(pieces) if len(p.removeprefix(marker)) <= 1}
        if model.get("byte_fallback"):
            single |= {i for i, p in enumerate(pieces) if _BYTE_PIECE.fullmatch(p)}
    sole = {i for i, p in enumerate(pieces) if i not in single and lacks(p)}
    return single, sole


def select_vocabulary(tokenizer, corpus_files: Iterable[str | os.PathLike]) -> VocabularySelection:
    """The ids to keep for a corpus: every piece used when tokenizing its texts (`corpus_texts`),
    every single-character piece (bare, after SentencePiece's ``▁`` or after WordPiece's ``##``;
    with byte fallback, the byte pieces), every piece that holds a character no single-character
    piece spells (Katakana ``ッ`` is only in ``トップ`` ...: the sole carriers), and every special
    and added token. So text whose characters the vocabulary could spell still can, without
    ``<unk>``.

    Args:
        tokenizer: a fast tokenizer (``Unigram`` or ``WordPiece``).
        corpus_files: SQuAD JSON / JSON-lines or ``.txt`` files.

    Raises:
        VocabPruningError: an unsupported tokenizer.
    """
    state = _tokenizer_json(tokenizer)
    used: set[int] = set()
    files = {}
    for path in corpus_files:
        texts = corpus_texts(path)
        ids: set[int] = set()
        tokens = 0
        for enc in _encode(tokenizer, texts):
            ids.update(enc.ids)
            tokens += len(enc.ids)
        files[str(path)] = {"texts": len(texts), "tokens": tokens, "distinct_pieces": len(ids)}
        used |= ids
    single, sole = _character_pieces(state)
    special = _required_ids(tokenizer, state)
    sole -= special  # "<pad>" spells characters nothing else does, but stays as a special token
    kept = sorted(used | single | sole | special)
    counts = {
        "pieces_before": len(tokenizer),
        "used_by_corpus": len(used),
        "single_character": len(single),
        "sole_carriers": len(sole),
        "special": len(special),
        "kept": len(kept),
    }
    return VocabularySelection(kept, counts, files)


# ----------------------------------------------------------------------------- the tokenizer
def _processor_ids(proc: dict | None) -> list[int]:
    if not proc:
        return []
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        return [i for token in proc["special_tokens"].values() for i in token["ids"]]
    if kind in ("BertProcessing", "RobertaProcessing"):
        return [proc["sep"][1], proc["cls"][1]]
    if kind == "Sequence":
        return [i for p in proc["processors"] for i in _processor_ids(p)]
    return []


def _remap_processor(proc: dict | None, old_to_new: dict[int, int]) -> None:
    if not proc:
        return
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        for token in proc["special_tokens"].values():
            token["ids"] = [old_to_new[i] for i in token["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for name in ("sep", "cls"):
            proc[name] = [proc[name][0], old_to_new[proc[name][1]]]
    elif kind == "Sequence":
        for p in proc["processors"]:
            _remap_processor(p, old_to_new)


def _pruned_state(state: dict, keep: list[int]) -> dict:
    """``tokenizer.json`` with only the ``keep`` ids (sorted), renumbered in order."""
    state = copy.deepcopy(state)
    old_to_new = {old: new for new, old in enumerate(keep)}
    model = state["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [model["vocab"][i] for i in keep if i < len(model["vocab"])]
        if model.get("unk_id") is not None:
            model["unk_id"] = old_to_new[model["unk_id"]]
    else:  # WordPiece: unk_token is a string, and a kept special token
        pieces = _pieces(state)
        model["vocab"] = {pieces[i]: old_to_new[i] for i in keep if i < len(pieces)}
    for token in state.get("added_tokens") or []:
        token["id"] = old_to_new[token["id"]]
    _remap_processor(state.get("post_processor"), old_to_new)
    return state


def _rewrite_tokenizer_files(directory: Path, state: dict, keep: list[int]) -> None:
    """Prune the tokenizer files that `save_pretrained` wrote into ``directory``."""
    old_to_new = {old: new for new, old in enumerate(keep)}
    pruned = _pruned_state(state, keep)
    (directory / "tokenizer.json").write_text(json.dumps(pruned, ensure_ascii=False), "utf-8")
    config_path = directory / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if "added_tokens_decoder" in config:
            config["added_tokens_decoder"] = {
                str(old_to_new[int(i)]): token
                for i, token in config["added_tokens_decoder"].items()
            }
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if (directory / "vocab.txt").is_file():  # WordPiece's other copy of the vocabulary
        pieces = _pieces(pruned)
        (directory / "vocab.txt").write_text("".join(p + "\n" for p in pieces), "utf-8")
    for name in ("sentencepiece.bpe.model", "spiece.model", "added_tokens.json"):
        (directory / name).unlink(missing_ok=True)  # unpruned copies; tokenizer.json has it all


def _as_id(value) -> int | None:
    """``value`` as an int when it is an integer (Python, numpy, 0-d tensor), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_keep(keep_ids: Iterable[int], size: int) -> list[int]:
    values = list(keep_ids)
    ids = [_as_id(v) for v in values]
    bad = [v for v, i in zip(values, ids) if i is None or not 0 <= i < size]
    if bad:
        raise VocabPruningError(
            f"ids to keep must be integers in [0, {size}) (the vocabulary size); got {bad[:5]}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        )
    return sorted(set(ids))


def _keep_with_required(tokenizer, keep_ids: Iterable[int], config=None) -> list[int]:
    state = _tokenizer_json(tokenizer)
    keep = _check_keep(keep_ids, len(tokenizer))
    return sorted(set(keep) | _required_ids(tokenizer, state, config))


def prune_tokenizer(tokenizer, keep_ids: Iterable[int]):
    """A copy of ``tokenizer`` with only the ``keep_ids`` pieces (plus every special and added
    token), in their original order, renumbered ``0 .. n-1``.

    Args:
        tokenizer: a fast tokenizer whose ``tokenizer.json`` model is ``Unigram`` or ``WordPiece``.
        keep_ids: ids of ``tokenizer`` to keep.

    Returns:
        ``(pruned_tokenizer, new_to_old)``: ``new_to_old[i]`` is the old id of new id ``i``.

    Raises:
        VocabPruningError: ids out of range, or an unsupported tokenizer.
    """
    from transformers import AutoTokenizer

    keep = _keep_with_required(tokenizer, keep_ids)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        _rewrite_tokenizer_files(Path(tmp), _tokenizer_json(tokenizer), keep)
        pruned = AutoTokenizer.from_pretrained(tmp)
    _check_tokenizer(tokenizer, pruned, keep)
    return pruned, keep


def _check_tokenizer(tokenizer, pruned, keep: list[int]) -> None:
    """The pruned tokenizer has exactly the kept pieces, in order, and the same special tokens."""
    problems = []
    if len(pruned) != len(keep):
        problems.append(f"{len(pruned)} pieces, expected {len(keep)}")
    elif pruned.convert_ids_to_tokens(range(len(keep))) != tokenizer.convert_ids_to_tokens(keep):
        problems.append("the pieces differ from the kept ones")
    for name in ("pad", "bos", "eos", "sep", "cls", "unk", "mask"):
        old, new = getattr(tokenizer, f"{name}_token_id"), getattr(pruned, f"{name}_token_id")
        if (old is None) != (new is None) or (old is not None and keep[new] != old):
            problems.append(f"{name}_token_id {new} (was {old})")
    if problems:
        raise VocabPruningError(f"pruned tokenizer is inconsistent: {'; '.join(problems)}")


# ----------------------------------------------------------------------------- the model
def _config_token_ids(config) -> dict[str, int | None]:
    names = [n for n in config.to_dict() if n.endswith("_token_id")]
    return {n: getattr(config, n) for n in names}


def prune_model(model, keep_ids: Sequence[int]):
    """A copy of a `UniLMForQAGeneration` whose word embeddings, tied decoder and decoder bias
    keep only the rows ``keep_ids`` (sorted, in range), and whose config's ``vocab_size`` and
    ``*_token_id`` fields follow.

    Raises:
        VocabPruningError: ids out of range, or a config token id that is not kept.
    """
    import torch

    from qgen.modeling.unilm import UniLMForQAGeneration

    keep = _check_keep(keep_ids, model.config.vocab_size)
    old_to_new = {old: new for new, old in enumerate(keep)}
    config = copy.deepcopy(model.config)
    config.vocab_size = len(keep)
    for name, old in _config_token_ids(model.config).items():
        if isinstance(old, int) and old >= 0:
            if old not in old_to_new:
                raise VocabPruningError(f"config field {name!r} is id {old}, which is not kept")
            setattr(config, name, old_to_new[old])
    rows = torch.tensor(keep, device=model.device)
    state = {
        k: v.index_select(0, rows) if k in _VOCAB_ROWS else v for k, v in model.state_dict().items()
    }
    with torch.random.fork_rng(devices=[]):  # the initial values are overwritten below
        pruned = UniLMForQAGeneration(config).to(device=model.device, dtype=model.dtype)
    pruned.load_state_dict(state, strict=True)
    return pruned.train(model.training)


# ----------------------------------------------------------------------------- the directory
def _weights_bytes(directory: Path) -> int:
    return sum(
        p.stat().st_size
        for p in directory.iterdir()
        if p.name in _WEIGHT_FILES or p.name.startswith("model-")
    )


def _parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())  # tied tensors count once


def _remap_generation_config(path: Path, old_to_new: dict[int, int]) -> dict | None:
    """``qa_generation_config.json`` with its token ids (``eos_token_id``, ``pad_token_id`` of each
    stage; usually null) renumbered; None when it names none."""
    config = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for stage in config.values():
        for name in ("eos_token_id", "pad_token_id"):
            value = stage.get(name) if isinstance(stage, dict) else None
            if isinstance(value, list):
                stage[name] = [old_to_new[i] for i in value]
            elif isinstance(value, int):
                stage[name] = old_to_new[value]
            changed = changed or value is not None
    return config if changed else None


def _write_model(out: Path, pruned, pruned_tokenizer) -> None:
    """fp16 safetensors whose config says float32 (as `qgen.training.export` writes), and the
    tokenizer."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    pruned.to(torch.float16).save_pretrained(out, max_shard_size="2GB")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "float32"  # compute dtype; the tensors on disk are fp16
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")
    pruned_tokenizer.save_pretrained(out)


def _copy_other_files(source: Path, out: Path, keep: list[int]) -> tuple[list[str], list[str]]:
    """Copy the files of ``source`` that pruning did not write (model card, decoding settings,
    training records); returns ``(copied, skipped)``."""
    old_to_new = {old: new for new, old in enumerate(keep)}
    written = set(os.listdir(out))
    copied, skipped = [], []
    for path in sorted(source.iterdir()):
        if path.name in written or path.name in _TOKENIZER_FILES or path.name in _WEIGHT_FILES:
            continue
        if not path.is_file() or path.name.startswith("model-"):
            skipped.append(path.name)
            continue
        config = None
        if path.name == "qa_generation_config.json":
            config = _remap_generation_config(path, old_to_new)
        if config is None:
            shutil.copy2(path, out / path.name)
        else:
            (out / path.name).write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        copied.append(path.name)
    return copied, skipped


def prune_vocabulary(
    model: str | os.PathLike,
    keep_ids: Iterable[int],
    output: str | os.PathLike,
    tokenizer=None,
    corpus_files: Sequence[str | os.PathLike] = (),
    selection: VocabularySelection | None = None,
) -> dict:
    """Write a qgen model directory whose vocabulary holds only ``keep_ids`` (plus every special
    and added token and every token id of the config), original order kept, ids renumbered.

    The tokenizer (``tokenizer.json``: vocabulary, ``unk_id``, added tokens, the post-processor's
    ids; ``tokenizer_config.json``), the word embeddings with the tied decoder and its bias
    (fp16 on disk, float32 when loaded, as `qgen.training.export.export_model` writes them) and
    the config (``vocab_size``, ``*_token_id``) are pruned; the directory's other files are
    copied (``qa_generation_config.json`` with its token ids renumbered, if it has any), and
    ``vocab_pruning.json`` records the counts, the sizes and ``new_to_old``.

    Args:
        model: a qgen model directory, or a `UniLMForQAGeneration` (then ``tokenizer`` is needed).
        keep_ids: ids of the model's vocabulary to keep (e.g. `select_vocabulary`'s ``ids``).
        output: the directory to write (not the source directory).
        tokenizer: the model's tokenizer when ``model`` is a model object.
        corpus_files: the files the ids were chosen from, for the record.
        selection: the `VocabularySelection` the ids come from, for the record.

    Returns:
        The contents of ``vocab_pruning.json`` without ``new_to_old``.

    Raises:
        VocabPruningError: ids out of range, an unsupported tokenizer, or output == source.
        QGenModelError: ``model`` is not a complete qgen model directory.
    """
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = Path(model)
        check_model_dir(source)
        if Path(output).resolve() == source.resolve():
            raise VocabPruningError(f"{output}: the output must not be the source directory")
        model, tokenizer = load_model(source, device="cpu")
    elif tokenizer is None:
        raise VocabPruningError("prune_vocabulary(model, ...) with a model object needs tokenizer=")
    if len(tokenizer) > model.config.vocab_size:
        raise VocabPruningError(
            f"the tokenizer has {len(tokenizer)} pieces but the model only "
            f"{model.config.vocab_size} embedding rows"
        )
    keep = _keep_with_required(tokenizer, keep_ids, model.config)
    pruned_tokenizer, keep = prune_tokenizer(tokenizer, keep)
    pruned = prune_model(model, keep)

    out = Path(output)
    _write_model(out, pruned, pruned_tokenizer)
    copied, skipped = _copy_other_files(source, out, keep) if source else ([], [])
    record = {
        "source": str(source) if source else None,
        "tokenizer_model": _tokenizer_json(tokenizer)["model"]["type"],
        "pieces_before": len(tokenizer),
        "pieces_after": len(keep),
        "embedding_rows_before": model.config.vocab_size,
        "parameters_before": _parameters(model),
        "parameters_after": _parameters(pruned),
        "weights_bytes_before": _weights_bytes(source) if source else None,
        "weights_bytes_after": _weights_bytes(out),
        "corpus_files": [str(f) for f in corpus_files],
        "selection": {"counts": selection.counts, "files": selection.files} if selection else None,
        "copied": copied,
        "not_copied": skipped,  # sub-directories (checkpoints/) and stray weight shards
    }
    text = json.dumps({**record, "new_to_old": keep}, indent=1, ensure_ascii=False)
    (out / PRUNING_FILE).write_text(text + "\n", "utf-8")
    check_model_dir(out)
    return record


# ----------------------------------------------------------------------------- checks
@dataclass
class SegmentationReport:
    """How the pruned tokenizer segments texts compared with the original.

    Attributes:
        texts / texts_changed: texts, and those whose pieces differ.
        tokens / tokens_changed: tokens of the original segmentation, and those that the pruned
            one does not have at the same characters.
        unk_before / unk_after: ``<unk>`` tokens in each segmentation.
        unchanged: indices of the texts that segment the same.
    """

    texts: int = 0
    texts_changed: int = 0
    tokens: int = 0
    tokens_changed: int = 0
    unk_before: int = 0
    unk_after: int = 0
    unchanged: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        share = self.tokens_changed / self.tokens if self.tokens else 0.0
        return {
            "texts": self.texts,
            "texts_changed": self.texts_changed,
            "tokens": self.tokens,
            "tokens_changed": self.tokens_changed,
            "share_tokens_changed": round(share, 6),
            "unk_before": self.unk_before,
            "unk_after": self.unk_after,
        }


def segmentation_changes(
    tokenizer, pruned_tokenizer, texts: Sequence[str], new_to_old: Sequence[int]
) -> SegmentationReport:
    """Compare how the two tokenizers segment ``texts`` (without special tokens)."""
    report = SegmentationReport(texts=len(texts))
    unk, pruned_unk = tokenizer.unk_token_id, pruned_tokenizer.unk_token_id
    pairs = zip(_encode(tokenizer, texts), _encode(pruned_tokenizer, texts))
    for k, (old, new) in enumerate(pairs):
        report.tokens += len(old.ids)
        report.unk_before += old.ids.count(unk)
        report.unk_after += new.ids.count(pruned_unk)
        if [new_to_old[i] for i in new.ids] == old.ids:
            report.unchanged.append(k)
            continue
        report.texts_changed += 1
        kept = {(o, t) for o, t in zip(new.offsets, new.tokens)}
        report.tokens_changed += sum((o, t) not in kept for o, t in zip(old.offsets, old.tokens))
    return report


def logit_difference(
    model,
    pruned_model,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    new_to_old: Sequence[int],
    cls_sep: tuple[int, int],
) -> dict:
    """Largest difference between the two models' logits, over the kept pieces.

    Args:
        model, pruned_model: the original and pruned `UniLMForQAGeneration`, on one device.
        rows: ``(source_ids, target_ids)`` in the original ids, each built as
            ``[CLS] source [SEP] target [SEP]``.
        new_to_old: the kept ids (``vocab_pruning.json``'s ``new_to_old``).
        cls_sep: the original ``(cls_id, sep_id)``.

    Returns:
        ``{"rows", "positions", "max_abs_diff", "argmax_agreement"}`` over every real position.
    """
    import torch

    if not rows:
        return {"rows": 0, "positions": 0, "max_abs_diff": None, "argmax_agreement": None}
    cls_id, sep_id = cls_sep
    seqs = [[cls_id, *src, sep_id, *tgt, sep_id] for src, tgt in rows]
    width = max(map(len, seqs))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for r, ((src, _), seq) in enumerate(zip(rows, seqs)):
        ids[r, : len(seq)] = torch.tensor(seq)
        types[r, len(src) + 2 : len(seq)] = 1
        mask[r, : len(seq)] = 1
    old_to_new = torch.full((max(new_to_old) + 1,), -1, dtype=torch.long)
    kept = torch.tensor(new_to_old)
    old_to_new[kept] = torch.arange(len(kept))
    device = next(model.parameters()).device
    with torch.inference_mode():
        args = dict(attention_mask=mask.to(device), token_type_ids=types.to(device))
        old = model(ids.to(device), full_logits=True, **args).logits  # (B, L, V)
        new = pruned_model(old_to_new[ids].to(device), full_logits=True, **args).logits  # (B, L, n)
    real = mask.bool().to(device)
    old, new = old[real][:, kept.to(device)].float(), new[real].float()  # (P, n)
    return {
        "rows": len(rows),
        "positions": int(real.sum()),
        "max_abs_diff": float((old - new).abs().max()),
        "argmax_agreement": float((old.argmax(-1) == new.argmax(-1)).float().mean()),
    }


def check_pruned(
    original: str | os.PathLike,
    pruned: str | os.PathLike,
    check_files: Sequence[str | os.PathLike],
    max_rows: int = 16,
    max_source_tokens: int = 96,
    max_target_tokens: int = 32,
) -> dict:
    """Measure a pruned model directory against its original on held-out text: the share of
    tokens that segment differently (`segmentation_changes`), and the logits' largest difference
    (`logit_difference`) on up to ``max_rows`` inputs made of consecutive held-out texts whose
    segmentation did not change (source, then target). The original's weights are rounded to
    fp16 first, as the pruned model's are stored, so that the difference is the pruning's only.
    """
    import torch

    record = json.loads((Path(pruned) / PRUNING_FILE).read_text(encoding="utf-8"))
    new_to_old = record["new_to_old"]
    model, tokenizer = load_model(original, device="cpu")
    pruned_model, pruned_tokenizer = load_model(pruned, device="cpu")
    model.to(torch.float16).to(torch.float32)
    texts = [t for f in check_files for t in corpus_texts(f)]
    report = segmentation_changes(tokenizer, pruned_tokenizer, texts, new_to_old)
    unchanged = [texts[k] for k in report.unchanged]
    ids = [tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"] for t in unchanged]
    rows = [
        (ids[k][:max_source_tokens], ids[k + 1][:max_target_tokens])
        for k in range(0, len(ids) - 1, 2)
    ][:max_rows]
    logits = logit_difference(model, pruned_model, rows, new_to_old, special_token_ids(tokenizer))
    return {"segmentation": report.to_dict(), "logits": logits}
