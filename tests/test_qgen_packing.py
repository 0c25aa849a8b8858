"""Shared-passage packing: several targets after one copy of their source give exactly the
loss, gradients and hidden states of the unpacked examples."""

import datasets
import pytest
import torch
from qgen_fixtures import (
    tiny_chinese_tokenizer,
    tiny_sentencepiece_tokenizer,
    tiny_unilm_model,
    tiny_wordpiece_tokenizer,
)

from qgen.modeling.inputs import UniLMCollator
from qgen.modeling.unilm import packed_attention_mask, packed_position_ids, unilm_attention_mask
from qgen.training.features import build_features, pack_features

EN = "the cat sat on the mat. paris is the capital of france! what a city."
EN2 = "a dog sat in the city. the river is in paris."
ZH = "世界第二高山峰是乔戈里峰，位于中国境内。"


def _rows(context: str, qas: list[tuple[str, str]], prefix: str) -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "title": "t",
            "context": context,
            "question": q,
            "answers": {"text": [a], "answer_start": [context.index(a)]},
        }
        for i, (q, a) in enumerate(qas)
    ]


def _dataset(kind: str) -> datasets.Dataset:
    if kind == "chinese":
        rows = _rows(ZH, [("世界第二高山峰叫什么名字？", "乔戈里峰"), ("位于哪里？", "中国")], "z")
    else:
        rows = _rows(
            EN,
            [("what sat on the mat?", "the cat"), ("what is paris?", "the capital of france"),
             ("what is the capital?", "paris")],
            "a",
        )  # fmt: skip
        rows += _rows(EN2, [("what sat?", "a dog"), ("where is the river?", "in paris")], "b")
    return datasets.Dataset.from_list(rows)


TOKENIZERS = {
    "wordpiece": tiny_wordpiece_tokenizer,
    "chinese": tiny_chinese_tokenizer,
    "sentencepiece": tiny_sentencepiece_tokenizer,
}


def test_packed_mask_and_positions_by_hand():
    seg = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 0]])
    am = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 0]])
    allowed = packed_attention_mask(seg, am)[0, 0] == 0
    expected = torch.tensor(
        [
            [1, 1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 1, 0, 0, 0],  # target 2 never sees target 1
            [1, 1, 1, 0, 0, 1, 1, 0, 0],
            [1, 1, 1, 0, 0, 1, 1, 1, 0],
            [1, 1, 1, 0, 0, 0, 0, 0, 0],  # padding query
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)
    assert packed_position_ids(seg).tolist() == [[0, 1, 2, 3, 4, 3, 4, 5, 8]]


def test_one_target_packed_mask_is_the_unilm_mask():
    tt = torch.tensor([[0, 0, 0, 1, 1, 1, 0]])
    am = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
    real = am[0].bool()  # padding queries differ and do not matter: nothing reads them
    packed = packed_attention_mask(tt, am)[0, 0, real]
    assert torch.equal(packed, unilm_attention_mask(tt, am)[0, 0, real])


@pytest.mark.parametrize("kind", list(TOKENIZERS))
@pytest.mark.parametrize("task", ["qag", "sentence-qg"])
def test_packing_groups_targets_and_keeps_every_example(kind, task):
    tok = TOKENIZERS[kind]()
    ds = _dataset(kind)
    plain = build_features(ds, tok, task, max_length=128, shared_windows=True)
    packed = build_features(ds, tok, task, max_length=128, pack=True)
    assert len(packed) < len(plain)
    # unpacking each row gives back exactly the unpacked features
    unpacked = []
    for ids, seg in zip(packed["input_ids"], packed["target_segment_ids"]):
        source_len = seg.index(1)
        for k in range(1, max(seg) + 1):
            target = [t for t, s in zip(ids, seg) if s == k]
            unpacked.append(ids[:source_len] + target)
    assert sorted(unpacked) == sorted(plain["input_ids"])


def _words_tokenizer():
    from qgen_fixtures import _bert_tokenizer

    return _bert_tokenizer([f"w{i}" for i in range(60)] + ["what", "is", "?"])


def _long_passage_rows(n_questions=6):
    words = [f"w{i}" for i in range(60)]
    context = " ".join(words)
    rows = []
    for k in range(n_questions):
        answer = words[10 * k]
        rows.append({
            "id": str(k), "title": "", "context": context, "question": f"what is {answer} ?",
            "answers": {"text": [answer], "answer_start": [context.index(answer + " ")]},
        })  # fmt: skip
    return datasets.Dataset.from_list(rows)


def test_shared_windows_let_a_long_passage_pack():
    """A passage longer than the window budget: centring a window on each answer gives every
    question its own source (no packing); the fixed grid gives a few shared windows, each holding
    its answers, and packing then puts several questions after one source."""
    tok = _words_tokenizer()
    ds = _long_passage_rows()
    own = build_features(ds, tok, "qag", max_length=40, max_answer_length=4,
                         max_question_length=8, pack=True, shared_windows=False)  # fmt: skip
    shared = build_features(ds, tok, "qag", max_length=40, max_answer_length=4,
                            max_question_length=8, pack=True)  # fmt: skip
    assert len(own) == len(ds)  # one row per question
    assert len(shared) < len(own)
    assert sum(max(s) for s in shared["target_segment_ids"]) == len(ds)  # no question lost
    for ids, seg in zip(shared["input_ids"], shared["target_segment_ids"]):
        assert len(ids) <= 40
        source = ids[: seg.index(1)]
        for k in range(1, max(seg) + 1):
            answer = [t for t, s in zip(ids, seg) if s == k][0]  # one-token answers here
            assert answer in source[1:-1]  # the answer lies in the window it is packed after


def test_grid_window_holds_the_answer_farthest_from_the_edges():
    from qgen.modeling.inputs import _grid_window

    assert _grid_window(10, 20, 3, 4) == (0, 10)  # fits: the whole passage
    # grid of 8-wide windows with step 6 over 20 positions: starts 0, 6, 12
    assert _grid_window(20, 8, 7, 8) == (6, 14)
    assert _grid_window(20, 8, 1, 2) == (0, 8)
    assert _grid_window(20, 8, 18, 19) == (12, 20)
    start, end = _grid_window(20, 8, 5, 13)  # wider than any grid window's hold: centred
    assert end - start == 8


def test_packed_rows_respect_max_length():
    tok = tiny_wordpiece_tokenizer()
    plain = build_features(_dataset("wordpiece"), tok, "qag", max_length=128)
    longest = max(len(x) for x in plain["input_ids"])
    packed = pack_features(plain, max_length=longest + 5)
    assert all(len(x) <= longest + 5 for x in packed["input_ids"])
    assert sum(max(s) for s in packed["target_segment_ids"]) == len(plain)
    assert len(packed) > 2  # two passages, but not all targets of the first fit one row


def _loss_and_grads(model, batch, num_items):
    model.zero_grad()
    out = model(**batch, num_items_in_batch=num_items)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.loss.detach(), out.logits.detach(), grads


@pytest.mark.parametrize("kind", list(TOKENIZERS))
def test_packed_loss_and_gradients_equal_unpacked(kind):
    tok = TOKENIZERS[kind]()
    ds = _dataset(kind)
    plain = build_features(ds, tok, "qag", max_length=128, shared_windows=True)
    packed = build_features(ds, tok, "qag", max_length=128, pack=True)
    collate = UniLMCollator(tok)
    plain_batch = collate([plain[i] for i in range(len(plain))])
    packed_batch = collate([packed[i] for i in range(len(packed))])
    assert "target_segment_ids" in packed_batch and "position_ids" in packed_batch
    n_plain = int((plain_batch["labels"] != -100).sum())
    assert n_plain == int((packed_batch["labels"] != -100).sum())

    model = tiny_unilm_model(vocab_size=len(tok), hidden_dropout_prob=0.0).eval()
    loss_p, logits_p, grads_p = _loss_and_grads(model, plain_batch, n_plain)
    loss_k, logits_k, grads_k = _loss_and_grads(model, packed_batch, n_plain)
    assert torch.allclose(loss_p, loss_k, atol=1e-5)
    # the same multiset of per-token logits (packing reorders the targets)
    assert torch.allclose(logits_p.sum(1).sort().values, logits_k.sum(1).sort().values, atol=1e-3)
    assert grads_p.keys() == grads_k.keys()
    for name in grads_p:
        assert torch.allclose(grads_p[name], grads_k[name], atol=1e-5, rtol=1e-4), name
    # mean reduction (no num_items_in_batch) agrees too
    mean_p = model(**plain_batch).loss
    mean_k = model(**packed_batch).loss
    assert torch.allclose(mean_p, mean_k, atol=1e-5)


def test_packed_hidden_states_equal_unpacked_rows():
    tok = tiny_wordpiece_tokenizer()
    ds = _dataset("wordpiece")
    plain = build_features(ds, tok, "qag", max_length=128)
    packed = build_features(ds, tok, "qag", max_length=128, pack=True)
    model = tiny_unilm_model(vocab_size=len(tok))
    collate = UniLMCollator(tok)
    row = collate([packed[0]])
    hidden = model.encode(
        row["input_ids"], row["attention_mask"], row["token_type_ids"],
        row["position_ids"], row["target_segment_ids"],
    ).last_hidden_state[0]  # fmt: skip
    seg = row["target_segment_ids"][0]
    source_len = int((seg == 0).sum())
    for k in range(1, int(seg.max()) + 1):
        example = row["input_ids"][0, :source_len].tolist() + row["input_ids"][0][seg == k].tolist()
        i = plain["input_ids"].index(example)
        one = collate([plain[i]])
        ref = model.encode(
            one["input_ids"], one["attention_mask"], one["token_type_ids"]
        ).last_hidden_state[0]
        assert torch.allclose(hidden[:source_len], ref[:source_len], atol=1e-5)
        assert torch.allclose(hidden[seg == k], ref[source_len:], atol=1e-5)
