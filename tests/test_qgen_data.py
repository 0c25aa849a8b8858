"""SQuAD-format input (`qgen.io.squad`), per-task assembly for three vocabulary kinds
(`qgen.training.features`), windowing and the collator (`qgen.modeling.inputs`)."""

import json

import datasets
import pytest
import torch
from qgen_fixtures import (
    tiny_chinese_tokenizer,
    tiny_sentencepiece_tokenizer,
    tiny_wordpiece_tokenizer,
)

from qgen.io.squad import QGenDataError, load_squad
from qgen.modeling.inputs import (
    TASKS,
    UniLMCollator,
    answer_sentence_span,
    encode_source,
    sentence_spans,
    special_token_ids,
    split_passage,
)
from qgen.training.features import build_features

EN_CONTEXT = "The cat sat on the mat. Paris is the capital of France! What a city."
ZH_CONTEXT = "世界第二高山峰叫什么名字？世界第二高山峰是乔戈里峰，位于中国境内。"

TOKENIZERS = {
    "wordpiece": tiny_wordpiece_tokenizer,
    "chinese": tiny_chinese_tokenizer,
    "sentencepiece": tiny_sentencepiece_tokenizer,
}


def _squad_obj():
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Cats",
                "paragraphs": [
                    {
                        "context": EN_CONTEXT,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "What is the capital of France?",
                                "answers": [{"text": "Paris", "answer_start": 24}],
                            },
                            {
                                "id": "q2",
                                "question": "Where did the cat sit?",
                                # wrong offset (as in CMRC 2018): recomputed
                                "answers": [{"text": "on the mat", "answer_start": 3}],
                            },
                        ],
                    }
                ],
            }
        ],
    }


def _row(context, answer, question, rid="x"):
    return {
        "id": rid,
        "title": "",
        "context": context,
        "question": question,
        "answers": {"text": [answer], "answer_start": [context.index(answer)]},
    }


# ----------------------------------------------------------------------------- loading


def test_load_squad_json(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(_squad_obj()))
    ds = load_squad(path)
    assert ds.column_names == ["id", "title", "context", "question", "answers"]
    assert len(ds) == 2
    assert ds[0]["answers"] == {"text": ["Paris"], "answer_start": [24]}
    assert ds[0]["title"] == "Cats"
    fixed = ds[1]["answers"]
    assert EN_CONTEXT[fixed["answer_start"][0] :].startswith("on the mat")


def test_load_squad_jsonl_list_and_dataset(tmp_path):
    rows = [
        _row(EN_CONTEXT, "Paris", "What is the capital?", "a"),
        _row(ZH_CONTEXT, "乔戈里峰", "叫什么？", "b"),
    ]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    listed = tmp_path / "rows.json"
    listed.write_text(json.dumps(rows))
    for source in (jsonl, listed, datasets.Dataset.from_list(rows)):
        ds = load_squad(source)
        assert ds["id"] == ["a", "b"]
        assert ds[1]["answers"]["text"] == ["乔戈里峰"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2: malformed JSON"),
        (
            '{"context": "c", "answers": {"text": ["c"], "answer_start": [0]}}',
            "line 2: missing field 'question'",
        ),
        ('{"question": "q"}', "line 2: missing field 'context'"),
        ('{"context": "  ", "question": "q"}', "line 2: field 'context' is empty"),
        (
            '{"context": "c", "question": "q", "answers": {"text": ["c"]}}',
            "line 2: field 'answers'",
        ),
        (
            '{"context": "c", "question": "q", "answers": {"text": ["c"], "answer_start": ["x"]}}',
            "answer_start",
        ),
    ],
)
def test_load_squad_errors_name_file_line_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_row(EN_CONTEXT, "Paris", "q"))
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(QGenDataError, match="bad.jsonl") as err:
        load_squad(path)
    assert message in str(err.value)


def test_load_squad_nested_error_names_json_path(tmp_path):
    obj = _squad_obj()
    del obj["data"][0]["paragraphs"][0]["qas"][1]["question"]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(
        QGenDataError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[1\]: missing field 'question'"
    ):
        load_squad(path)


def test_load_squad_missing_file_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_squad(tmp_path / "nope.json")
    with pytest.raises(QGenDataError, match="missing column"):
        load_squad(datasets.Dataset.from_dict({"context": ["c"]}))


# ----------------------------------------------------------------------------- text helpers


def test_sentence_spans_english_and_chinese():
    spans = sentence_spans(EN_CONTEXT)
    assert [EN_CONTEXT[s:e].strip() for s, e in spans] == [
        "The cat sat on the mat.",
        "Paris is the capital of France!",
        "What a city.",
    ]
    zh = [ZH_CONTEXT[s:e] for s, e in sentence_spans(ZH_CONTEXT)]
    assert zh == ["世界第二高山峰叫什么名字？", "世界第二高山峰是乔戈里峰，位于中国境内。"]


def test_answer_sentence_span():
    start = EN_CONTEXT.index("capital")
    s, e = answer_sentence_span(EN_CONTEXT, start, start + 7)
    assert EN_CONTEXT[s:e] == "Paris is the capital of France!"
    # an answer across a sentence boundary takes both sentences
    start = EN_CONTEXT.index("mat.")
    s, e = answer_sentence_span(EN_CONTEXT, start, EN_CONTEXT.index("is the"))
    assert EN_CONTEXT[s:e] == "The cat sat on the mat. Paris is the capital of France!"


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("kind", TOKENIZERS)
@pytest.mark.parametrize("task", TASKS)
def test_build_features_layout(kind, task):
    tok = TOKENIZERS[kind]()
    cls_id, sep_id = special_token_ids(tok)
    if kind == "chinese":
        row = _row(ZH_CONTEXT, "乔戈里峰", "世界第二高山峰叫什么名字？")
    else:
        row = _row(EN_CONTEXT, "Paris", "What is the capital of France?")
    answer = row["answers"]["text"][0]
    ds = datasets.Dataset.from_list([row])
    feats = build_features(ds, tok, task, max_length=128)
    assert feats.column_names == ["input_ids", "token_type_ids"]
    ids, tt = feats[0]["input_ids"], feats[0]["token_type_ids"]
    n_src = tt.index(1)
    assert all(t == 0 for t in tt[:n_src]) and all(t == 1 for t in tt[n_src:])
    src, tgt = ids[:n_src], ids[n_src:]
    a_ids = tok(answer, add_special_tokens=False)["input_ids"]
    q_ids = tok(row["question"], add_special_tokens=False)["input_ids"]
    assert src[0] == cls_id and src[-1] == sep_id
    if task == "qag":
        assert tgt == a_ids + [sep_id] + q_ids + [sep_id]
    else:
        assert tgt == q_ids + [sep_id]
    if task == "qg":
        assert src[-1 - len(a_ids) - 1] == sep_id and src[-1 - len(a_ids) : -1] == a_ids
    if task == "sentence-qg":
        sentence = (
            "Paris is the capital of France!"
            if kind != "chinese"
            else "世界第二高山峰是乔戈里峰，位于中国境内。"
        )
        assert src[1:-1] == tok(sentence, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_long_passage_is_cut_to_a_window_holding_the_answer(kind):
    tok = TOKENIZERS[kind]()
    filler = "世界第二高山峰。" if kind == "chinese" else "The cat sat on the mat. "
    answer = "中国" if kind == "chinese" else "Paris"
    context = filler * 40 + answer + filler * 40
    row = _row(context, answer, "什么？" if kind == "chinese" else "What city?")
    feats = build_features(
        datasets.Dataset.from_list([row]),
        tok,
        "qag",
        max_length=48,
        max_answer_length=8,
        max_question_length=8,
    )
    ids, tt = feats[0]["input_ids"], feats[0]["token_type_ids"]
    assert len(ids) == 48
    src = ids[: tt.index(1)]
    a_ids = tok(answer, add_special_tokens=False)["input_ids"]
    assert any(src[k : k + len(a_ids)] == a_ids for k in range(len(src)))


def test_answer_and_question_are_capped():
    tok = tiny_wordpiece_tokenizer()
    row = _row(EN_CONTEXT, "Paris is the capital of France", "What is the capital of France?")
    f = build_features(
        datasets.Dataset.from_list([row]), tok, "qag", max_answer_length=3, max_question_length=4
    )[0]
    tgt = f["input_ids"][f["token_type_ids"].index(1) :]
    assert len(tgt) == 3 + 1 + 4 + 1


def test_training_false_gives_source_only_and_keeps_columns():
    tok = tiny_wordpiece_tokenizer()
    rows = [
        _row(EN_CONTEXT, "Paris", "What?", "a"),
        {**_row(EN_CONTEXT, "Paris", "q", "b"), "answers": {"text": [], "answer_start": []}},
    ]
    feats = build_features(datasets.Dataset.from_list(rows), tok, "qg", training=False)
    assert len(feats) == 1  # the row without an answer is skipped
    assert set(feats.column_names) >= {
        "input_ids",
        "token_type_ids",
        "id",
        "question",
        "context",
        "answers",
    }
    assert set(feats[0]["token_type_ids"]) == {0}
    assert feats[0]["id"] == "a"


def test_build_features_rejects_unknown_task():
    with pytest.raises(ValueError, match="task='mlm'"):
        build_features(
            datasets.Dataset.from_list([_row(EN_CONTEXT, "Paris", "q")]),
            tiny_wordpiece_tokenizer(),
            "mlm",
        )


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_split_passage_windows_overlap_and_cover(kind):
    tok = TOKENIZERS[kind]()
    text = (ZH_CONTEXT if kind == "chinese" else EN_CONTEXT + " ") * 6
    spans = split_passage(text, tok, max_tokens=20, stride=5)
    assert len(spans) > 2
    assert spans[0][0] == 0 and spans[-1][1] >= len(text.rstrip())
    for (_, e0), (s1, _) in zip(spans, spans[1:]):
        assert s1 < e0  # consecutive windows overlap
    for s, e in spans:
        assert len(tok(text[s:e], add_special_tokens=False)["input_ids"]) <= 20 + 1
    assert split_passage("short", tok, max_tokens=20) == [(0, 5)]
    with pytest.raises(ValueError, match="stride"):
        split_passage(text, tok, max_tokens=10, stride=10)


def test_encode_source_budget():
    tok = tiny_wordpiece_tokenizer()
    ids, span = encode_source(tok, EN_CONTEXT * 5, max_length=30, reserve=10)
    assert len(ids) == 20 and span[0] == 0
    with pytest.raises(ValueError, match="no room"):
        encode_source(tok, EN_CONTEXT, max_length=5, reserve=4)


def test_a_very_long_answer_does_not_crowd_out_the_passage():
    # DRCD has answers of 250+ tokens: the answer in the source is capped, the passage stays.
    tok = tiny_wordpiece_tokenizer()
    long_answer = "paris is the capital " * 60
    ids, _ = encode_source(tok, EN_CONTEXT, long_answer, max_length=64, max_answer_length=8)
    _, sep_id = special_token_ids(tok)
    first_sep = ids.index(sep_id)
    assert len(ids) - first_sep - 2 == 8  # 8 answer tokens between the two separators
    assert first_sep > 1  # the passage is there


def test_tiny_wordpiece_vocabulary_has_no_duplicate_tokens():
    tok = tiny_wordpiece_tokenizer()
    assert len(tok) == max(tok.get_vocab().values()) + 1


# ----------------------------------------------------------------------------- collator


@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_collator_pads_and_masks_labels(kind):
    tok = TOKENIZERS[kind]()
    rows = [
        _row(EN_CONTEXT, "Paris", "What is the capital?"),
        _row("The cat sat.", "cat", "Who sat?"),
    ]
    feats = build_features(datasets.Dataset.from_list(rows), tok, "qag")
    batch = UniLMCollator(tok, pad_to_multiple_of=8)([feats[0], feats[1]])
    n0, n1 = len(feats[0]["input_ids"]), len(feats[1]["input_ids"])
    length = batch["input_ids"].shape[1]
    assert length % 8 == 0 and length >= max(n0, n1)
    assert batch["attention_mask"].sum(1).tolist() == [n0, n1]
    assert (batch["input_ids"][1, n1:] == tok.pad_token_id).all()
    assert (batch["token_type_ids"][1, n1:] == 0).all()
    target = (batch["token_type_ids"] == 1) & (batch["attention_mask"] == 1)
    assert torch.equal(batch["labels"][target], batch["input_ids"][target])
    assert (batch["labels"][~target] == -100).all()


def test_real_multilingual_tokenizer(shared_models):
    """The shared multilingual backbone's SentencePiece tokenizer: <s>/</s> framing, Chinese windows."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(shared_models / "multilingual-e5-small-zh-en")
    assert special_token_ids(tok) == (0, 2)
    row = _row(ZH_CONTEXT * 20, "乔戈里峰", "世界第二高山峰叫什么名字？")
    for task in TASKS:
        f = build_features(datasets.Dataset.from_list([row]), tok, task, max_length=64)[0]
        ids, tt = f["input_ids"], f["token_type_ids"]
        assert len(ids) <= 64 and ids[0] == 0 and ids[-1] == 2
        assert tok.decode(ids[tt.index(1) :]).endswith("</s>")
        if task == "qag":
            assert "乔戈里峰" in tok.decode(ids[: tt.index(1)]).replace(" ", "")
