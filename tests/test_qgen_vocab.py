"""qgen.training.vocab and scripts/prune_vocabulary.py: a pruned model segments text made of
kept pieces as before and gives the same logits on the kept pieces; special tokens stay
consistent; removed pieces fall back to smaller kept ones; the directory loads and generates."""

import json
import sys
from pathlib import Path

import pytest
import torch
from qgen_fixtures import (
    save_tiny_qag_model,
    tiny_chinese_tokenizer,
    tiny_sentencepiece_tokenizer,
    tiny_wordpiece_tokenizer,
)
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from qgen.generation.config import QAGenerationConfig
from qgen.generation.generator import QAGenerator
from qgen.modeling.pretrained import load_model
from qgen.training.vocab import (
    PRUNING_FILE,
    VocabPruningError,
    check_pruned,
    prune_tokenizer,
    prune_vocabulary,
    segmentation_changes,
    select_vocabulary,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import prune_vocabulary as script  # noqa: E402


def unigram_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny XLM-R-style unigram tokenizer with e5's post-processor: ``<s> A </s>``."""
    tok = tiny_sentencepiece_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.bos_token_id), ("</s>", tok.eos_token_id)],
    )
    return tok


TOKENIZERS = {
    "wordpiece": tiny_wordpiece_tokenizer,
    "chinese": tiny_chinese_tokenizer,
    "unigram": unigram_tokenizer,
}
# the corpus that decides what is kept, and a word of each vocabulary that it does not use
CORPUS = {
    "wordpiece": ("the cat sat on a mat.", "what is the cat?", "cat"),
    "chinese": ("中国的第二高山峰位于泰国境内。", "什么山峰位于泰国？", "第二高山峰"),
    "unigram": ("the cat sat on a mat.", "who is the cat?", "cat"),
}
MULTI_PIECE_NOT_IN_CORPUS = {"wordpiece": "was", "unigram": "\u2581was"}


def _squad(path: Path, context: str, question: str, answer: str) -> str:
    qas = [{"id": "q", "question": question,
            "answers": [{"text": answer, "answer_start": context.index(answer)}]}]  # fmt: skip
    data = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _model_dir(tmp_path: Path, kind: str) -> str:
    model = save_tiny_qag_model(tmp_path / "model", TOKENIZERS[kind]())
    QAGenerationConfig().save_pretrained(model)
    (Path(model) / "README.md").write_text("# a tiny model\n", encoding="utf-8")
    (Path(model) / "training_data.json").write_text('{"files": {}}\n', encoding="utf-8")
    return model


@pytest.fixture(params=sorted(TOKENIZERS))
def pruned(request, tmp_path):
    """``(kind, original dir, pruned dir, corpus file, selection)``."""
    kind = request.param
    model = _model_dir(tmp_path, kind)
    corpus = _squad(tmp_path / "corpus.json", *CORPUS[kind])
    selection = select_vocabulary(AutoTokenizer.from_pretrained(model), [corpus])
    out = tmp_path / "pruned"
    prune_vocabulary(model, selection.ids, out, corpus_files=[corpus], selection=selection)
    return kind, model, str(out), corpus, selection


def _new_to_old(directory) -> list[int]:
    return json.loads((Path(directory) / PRUNING_FILE).read_text(encoding="utf-8"))["new_to_old"]


def test_selection_keeps_the_corpus_single_characters_and_special_tokens(pruned):
    kind, model, _, corpus, selection = pruned
    tok = AutoTokenizer.from_pretrained(model)
    kept = set(selection.ids)
    for text in CORPUS[kind]:
        assert set(tok(text, add_special_tokens=False)["input_ids"]) <= kept
    assert set(tok.all_special_ids) <= kept
    prefix = "##" if kind != "unigram" else "\u2581"
    singles = {i for p, i in tok.get_vocab().items() if len(p.removeprefix(prefix)) <= 1}
    assert singles <= kept
    if kind in MULTI_PIECE_NOT_IN_CORPUS:
        assert tok.convert_tokens_to_ids(MULTI_PIECE_NOT_IN_CORPUS[kind]) not in kept
    assert selection.counts["kept"] == len(selection.ids)
    if kind == "chinese":  # every piece is a single character: all stay
        assert len(selection.ids) == len(tok)
    else:
        assert len(selection.ids) < len(tok)
    assert selection.files[corpus]["texts"] == 3


def test_kept_text_gives_the_same_pieces_and_logits(pruned):
    kind, model, out, corpus, _ = pruned
    old, new = AutoTokenizer.from_pretrained(model), AutoTokenizer.from_pretrained(out)
    new_to_old = _new_to_old(out)
    for text in CORPUS[kind]:
        ids = new(text)["input_ids"]
        assert [new_to_old[i] for i in ids] == old(text)["input_ids"]
        assert new.convert_ids_to_tokens(ids) == old.convert_ids_to_tokens(old(text)["input_ids"])
    report = check_pruned(model, out, [corpus])
    assert report["segmentation"]["tokens_changed"] == 0
    assert report["logits"]["rows"] == 1 and report["logits"]["positions"] > 5
    assert report["logits"]["max_abs_diff"] < 1e-5
    assert report["logits"]["argmax_agreement"] == 1.0


def test_special_token_ids_are_consistent(pruned):
    kind, model, out, _, _ = pruned
    old, new = AutoTokenizer.from_pretrained(model), AutoTokenizer.from_pretrained(out)
    new_to_old = _new_to_old(out)
    for name in ("pad", "unk", "cls", "sep", "mask", "bos", "eos"):
        old_id, new_id = getattr(old, f"{name}_token_id"), getattr(new, f"{name}_token_id")
        assert (old_id is None) == (new_id is None), name
        if old_id is not None:
            assert new_to_old[new_id] == old_id, name
            assert new.convert_ids_to_tokens(new_id) == old.convert_ids_to_tokens(old_id)
    ids = new(CORPUS[kind][1])["input_ids"]
    first, last = ("<s>", "</s>") if kind == "unigram" else ("[CLS]", "[SEP]")
    assert new.convert_ids_to_tokens([ids[0], ids[-1]]) == [first, last]
    assert (ids[0], ids[-1]) == (new.cls_token_id, new.sep_token_id)

    state = json.loads((Path(out) / "tokenizer.json").read_text(encoding="utf-8"))
    for token in state["added_tokens"]:
        assert new_to_old[token["id"]] == old.convert_tokens_to_ids(token["content"])
    for token in state["post_processor"]["special_tokens"].values():
        assert new.convert_ids_to_tokens(token["ids"]) == token["tokens"]
    if kind == "unigram":
        assert state["model"]["vocab"][state["model"]["unk_id"]][0] == "<unk>"
        assert new("\u00e9", add_special_tokens=False)["input_ids"][-1] == new.unk_token_id
    else:
        assert state["model"]["unk_token"] == "[UNK]"
    config = json.loads((Path(out) / "config.json").read_text(encoding="utf-8"))
    old_config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    assert config["vocab_size"] == len(new) == len(new_to_old)
    assert new_to_old[config["pad_token_id"]] == old_config["pad_token_id"]
    assert config["dtype"] == "float32"


def test_pruned_directory_loads_generates_and_keeps_the_other_files(pruned):
    kind, model, out, corpus, selection = pruned
    loaded, tok = load_model(out, device="cpu")
    assert loaded.config.vocab_size == len(tok) == len(selection.ids)
    emb, dec = loaded.bert.embeddings.word_embeddings.weight, loaded.cls.predictions.decoder.weight
    assert emb.data_ptr() == dec.data_ptr() and loaded.cls.predictions.bias.shape == (len(tok),)
    from safetensors import safe_open

    with safe_open(str(Path(out) / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    pairs = QAGenerator.from_pretrained(out, device="cpu").generate([CORPUS[kind][0]], num_pairs=1)
    assert len(pairs) == 1
    for name in ("README.md", "training_data.json", "qa_generation_config.json"):
        assert (Path(out) / name).read_bytes() == (Path(model) / name).read_bytes()
    record = json.loads((Path(out) / PRUNING_FILE).read_text(encoding="utf-8"))
    assert record["new_to_old"] == selection.ids and record["corpus_files"] == [corpus]
    assert record["pieces_after"] == len(selection.ids) <= record["pieces_before"]
    assert record["parameters_after"] <= record["parameters_before"]


def test_removed_pieces_fall_back_to_smaller_pieces_not_unk(pruned):
    kind, model, out, _, _ = pruned
    if kind not in MULTI_PIECE_NOT_IN_CORPUS:
        pytest.skip("a character-level vocabulary has no multi-character pieces")
    old, new = AutoTokenizer.from_pretrained(model), AutoTokenizer.from_pretrained(out)
    text = "the dog was in paris"  # words the tiny corpus did not use
    report = segmentation_changes(old, new, [text], _new_to_old(out))
    assert report.texts_changed == 1 and report.tokens_changed >= 1
    assert report.unk_before == report.unk_after == 0
    pieces = new.tokenize(text)
    assert len(pieces) > len(old.tokenize(text))
    assert new.decode(new(text, add_special_tokens=False)["input_ids"]).strip() == text


def test_prune_vocabulary_takes_a_model_object_and_its_tokenizer(tmp_path):
    model_dir = _model_dir(tmp_path, "unigram")
    model, tok = load_model(model_dir, device="cpu")
    record = prune_vocabulary(model, range(10, 40), tmp_path / "out", tokenizer=tok)
    assert record["source"] is None and record["weights_bytes_before"] is None
    loaded, new = load_model(tmp_path / "out", device="cpu")
    assert len(new) == record["pieces_after"] == 30 + 5  # and <s> <pad> </s> <unk> <mask>
    assert loaded.config.vocab_size == 35
    with pytest.raises(VocabPruningError, match="needs tokenizer="):
        prune_vocabulary(model, range(10), tmp_path / "out2")


@pytest.mark.parametrize("bad", [[-1], [85], [3, "7"], [2.0]])
def test_ids_out_of_range_are_an_error(tmp_path, bad):
    model = save_tiny_qag_model(tmp_path / "model", tiny_wordpiece_tokenizer())  # 85 pieces
    with pytest.raises(VocabPruningError, match=r"integers in \[0, 85\)"):
        prune_vocabulary(model, bad, tmp_path / "out")
    with pytest.raises(VocabPruningError, match=r"integers in \[0, 85\)"):
        prune_tokenizer(tiny_wordpiece_tokenizer(), bad)
    assert not (tmp_path / "out").exists()


def test_unsupported_tokenizer_model_is_an_error():
    vocab = {"<unk>": 0, "a": 1, "b": 2, "ab": 3}
    bpe = Tokenizer(models.BPE(vocab, [("a", "b")], unk_token="<unk>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>")
    with pytest.raises(VocabPruningError, match="'BPE' is not supported; supported: Unigram"):
        prune_tokenizer(tok, [0, 1])
    with pytest.raises(VocabPruningError, match="'BPE' is not supported"):
        select_vocabulary(tok, [])


def test_output_must_not_be_the_source(tmp_path):
    model = save_tiny_qag_model(tmp_path / "model")
    with pytest.raises(VocabPruningError, match="must not be the source"):
        prune_vocabulary(model, range(50), model)


def test_script_prints_counts_and_the_check(tmp_path, capsys):
    model = _model_dir(tmp_path, "unigram")
    corpus = _squad(tmp_path / "corpus.json", *CORPUS["unigram"])
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("the cat was in paris.\nwho sat on the mat?\nthe dog sat.\n", "utf-8")
    out = tmp_path / "pruned"
    argv = ["--model", model, "--corpus", corpus, "--output", str(out), "--check", str(held_out)]
    summary = script.main(argv)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary
    assert summary["pieces_after"] < summary["pieces_before"] == 125
    assert summary["weights_bytes_after"] < summary["weights_bytes_before"]
    check = summary["check"]
    assert check["segmentation"]["texts"] == 3 and check["segmentation"]["texts_changed"] >= 1
    assert 0 < check["segmentation"]["share_tokens_changed"] < 1
    assert check["logits"]["rows"] == 1 and check["logits"]["max_abs_diff"] < 1e-5


def test_e5_tokenizer_prunes_to_a_corpus(shared_models, tmp_path):
    path = shared_models / "multilingual-e5-small-zh-en"
    if not (path / "tokenizer.json").is_file():
        pytest.skip(f"{path} not found")
    tok = AutoTokenizer.from_pretrained(path)
    texts = ["长城是中国古代的军事防御工程，修筑历史可上溯到西周时期。", "明朝修筑了哪一段长城？"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    selection = select_vocabulary(tok, [corpus])
    new, new_to_old = prune_tokenizer(tok, selection.ids)
    assert len(new) == len(selection.ids) < len(tok) // 2
    for text in texts:
        assert [new_to_old[i] for i in new(text)["input_ids"]] == tok(text)["input_ids"]
    assert (new.cls_token_id, new.pad_token_id, new.sep_token_id, new.unk_token_id) == (0, 1, 2, 3)
    assert new.mask_token_id == len(new) - 1
    report = segmentation_changes(tok, new, ["萬里長城 Great Wall 1644"], new_to_old)
    assert report.unk_after == report.unk_before


def test_pieces_that_alone_spell_a_character_are_kept(tmp_path):
    """``c`` and ``d`` have no single-character piece, only ``▁cd``: it stays, ``▁ab`` goes."""
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces = [("\u2581", -2.0), ("a", -3.0), ("b", -3.0), ("\u2581ab", -1.0), ("\u2581cd", -1.0)]
    backend = Tokenizer(models.Unigram(specials + pieces, unk_id=3))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    names = dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **names)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b\n", encoding="utf-8")
    selection = select_vocabulary(tok, [corpus])
    assert selection.counts["sole_carriers"] == 1
    assert tok.convert_ids_to_tokens(selection.ids) == [
        "<s>", "<pad>", "</s>", "<unk>", "\u2581", "a", "b", "\u2581cd"
    ]  # fmt: skip
    new, new_to_old = prune_tokenizer(tok, selection.ids)
    report = segmentation_changes(tok, new, ["ab cd", "cd ab"], new_to_old)
    assert report.unk_before == report.unk_after == 0 and report.tokens_changed == 2


def test_token_ids_in_the_decoding_settings_follow(tmp_path):
    model = _model_dir(tmp_path, "unigram")
    path = Path(model) / "qa_generation_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["question"]["eos_token_id"] = [2, 124]  # </s> and <mask>, the last piece
    path.write_text(json.dumps(settings), encoding="utf-8")
    prune_vocabulary(model, range(40), tmp_path / "out")
    pruned = json.loads((tmp_path / "out" / "qa_generation_config.json").read_text("utf-8"))
    assert pruned["question"]["eos_token_id"] == [2, 40]
    assert pruned["answer"] == settings["answer"]
    QAGenerationConfig.from_pretrained(tmp_path / "out")
