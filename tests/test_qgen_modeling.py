"""UniLMForQAGeneration: the seq2seq mask, the target-only loss and head, loading and saving."""

import pytest
import torch
import torch.nn.functional as F
from qgen_fixtures import tiny_unilm_model
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, BertConfig, BertModel

import qgen  # noqa: F401  (registers the Auto classes)
from qgen.modeling.unilm import (
    UniLMConfig,
    UniLMForQAGeneration,
    prediction_mask,
    unilm_attention_mask,
)

TINY = dict(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
)


def _batch():
    """Two rows: 6 source + 4 target tokens; 5 source + 3 target + 2 padding."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 99, (2, 10), generator=g)
    token_type_ids = torch.tensor([[0] * 6 + [1] * 4, [0] * 5 + [1] * 3 + [0, 0]])
    attention_mask = torch.tensor([[1] * 10, [1] * 8 + [0, 0]])
    input_ids[1, 8:] = 0
    labels = input_ids.masked_fill((token_type_ids == 0) | (attention_mask == 0), -100)
    return input_ids, token_type_ids, attention_mask, labels


def test_mask_pattern():
    tt = torch.tensor([[0, 0, 0, 1, 1, 1]])
    am = torch.tensor([[1, 1, 1, 1, 1, 0]])
    allowed = unilm_attention_mask(tt, am)[0, 0] == 0
    expected = torch.tensor(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1, 0],  # the padded query; the padded key is masked for everyone
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)


def test_source_never_sees_target_and_target_is_causal():
    model = tiny_unilm_model()
    ids, tt, am, _ = _batch()
    base = model.encode(ids, am, tt).last_hidden_state
    changed = ids.clone()
    changed[0, 8] = (changed[0, 8] + 1) % 99  # a target token of row 0
    out = model.encode(changed, am, tt).last_hidden_state
    assert torch.allclose(out[0, :8], base[0, :8], atol=1e-6)  # source + earlier targets unchanged
    assert not torch.allclose(out[0, 8:], base[0, 8:], atol=1e-4)  # this and later targets change
    assert torch.allclose(out[1], base[1], atol=1e-6)  # other rows untouched


def test_source_is_bidirectional():
    model = tiny_unilm_model()
    ids, tt, am, _ = _batch()
    base = model.encode(ids, am, tt).last_hidden_state
    changed = ids.clone()
    changed[0, 4] = (changed[0, 4] + 1) % 99  # a late source token
    out = model.encode(changed, am, tt).last_hidden_state
    assert not torch.allclose(out[0, :4], base[0, :4], atol=1e-4)  # earlier source positions see it


def test_padding_does_not_change_real_tokens():
    model = tiny_unilm_model()
    ids, tt, am, _ = _batch()
    short = model.encode(ids[1:, :8], am[1:, :8], tt[1:, :8]).last_hidden_state
    padded = model.encode(ids[1:], am[1:], tt[1:]).last_hidden_state
    assert torch.allclose(short, padded[:, :8], atol=1e-5)


def test_loss_is_next_token_ce_on_targets_only():
    model = tiny_unilm_model()
    ids, tt, am, labels = _batch()
    out = model(ids, am, tt, labels=labels, full_logits=True)
    logits = out.logits  # (B, L, V)
    rows, cols = [], []
    for b in range(2):
        for t in range(1, 10):
            if tt[b, t] == 1 and am[b, t] == 1:
                rows.append(logits[b, t - 1])
                cols.append(ids[b, t])
    manual = F.cross_entropy(torch.stack(rows), torch.stack(cols))
    assert len(cols) == 7
    assert torch.allclose(out.loss, manual, atol=1e-6)


def test_head_only_at_predicting_positions():
    model = tiny_unilm_model()
    ids, tt, am, labels = _batch()
    sparse = model(ids, am, tt, labels=labels)
    full = model(ids, am, tt, labels=labels, full_logits=True)
    assert sparse.logits.shape == (7, 99)
    assert full.logits.shape == (2, 10, 99)
    assert torch.allclose(sparse.logits, full.logits[sparse.prediction_mask], atol=1e-6)
    assert torch.allclose(sparse.loss, full.loss, atol=1e-6)
    # without labels the targets come from token_type_ids and the padding mask
    no_labels = model(ids, am, tt)
    assert no_labels.loss is None
    assert torch.equal(no_labels.prediction_mask, prediction_mask(tt, am, labels))


def test_num_items_in_batch_sums_the_loss():
    model = tiny_unilm_model()
    ids, tt, am, labels = _batch()
    mean = model(ids, am, tt, labels=labels).loss
    summed = model(ids, am, tt, labels=labels, num_items_in_batch=14).loss
    assert torch.allclose(summed, mean * 7 / 14, atol=1e-6)


def test_token_type_ids_required():
    model = tiny_unilm_model()
    with pytest.raises(ValueError, match="token_type_ids"):
        model(torch.tensor([[1, 2, 3]]))


def test_word_embeddings_tied_to_head():
    model = tiny_unilm_model()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_attention_implementations_agree(attn):
    ids, tt, am, labels = _batch()
    ref = tiny_unilm_model()
    ref.config._attn_implementation = "eager"
    expected = ref(ids, am, tt, labels=labels).logits
    model = tiny_unilm_model()
    model.config._attn_implementation = attn
    assert torch.allclose(model(ids, am, tt, labels=labels).logits, expected, atol=1e-5)


def test_from_plain_bert_checkpoint(tmp_path):
    torch.manual_seed(0)
    bert = BertModel(BertConfig(**TINY))
    bert.save_pretrained(tmp_path)
    model = UniLMForQAGeneration.from_pretrained(tmp_path)
    assert isinstance(model.config, UniLMConfig)
    assert model.config.model_type == "qgen-unilm"
    for name, param in bert.named_parameters():
        if name.startswith("pooler"):
            continue
        assert torch.equal(model.bert.get_parameter(name), param), name
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.count_nonzero(model.cls.predictions.bias) == 0  # head initialised, bias zero
    assert torch.isfinite(model.cls.predictions.transform.dense.weight).all()


def test_save_reload_and_auto_classes(tmp_path):
    model = tiny_unilm_model()
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    ids, tt, am, labels = _batch()
    expected = model(ids, am, tt, labels=labels)
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "qgen-unilm"
    for auto in (UniLMForQAGeneration, AutoModelForCausalLM, AutoModel):
        loaded = auto.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, UniLMForQAGeneration)
        got = loaded(ids, am, tt, labels=labels)
        assert torch.allclose(got.logits, expected.logits, atol=1e-6)
        assert torch.allclose(got.loss, expected.loss, atol=1e-6)


def test_a_few_steps_fit_one_example():
    model = tiny_unilm_model().train()
    ids, tt, am, labels = _batch()
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(ids, am, tt, labels=labels).loss
        first = loss.item() if first is None else first
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < first * 0.5


def test_mixed_precision_autocast():
    """Under autocast the mask follows the compute dtype; the loss stays close to float32."""
    model = tiny_unilm_model()
    ids, tt, am, labels = _batch()
    ref = model(ids, am, tt, labels=labels).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(ids, am, tt, labels=labels).loss
    assert torch.isfinite(loss) and abs(loss.item() - ref.item()) < 0.05
