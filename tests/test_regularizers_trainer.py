"""RegularizedTrainer / RegularizedTrainingArguments on a tiny BERT classifier (and a tiny GPT-2)."""

import math

import pytest
import torch
from datasets import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    HfArgumentParser,
    Trainer,
)

import regularizers as R

VOCAB, SEQ = 99, 8


def tiny_bert(num_labels=3):
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(cfg)


def tiny_dataset(n=16, labels=True):
    g = torch.Generator().manual_seed(0)
    data = {
        "input_ids": torch.randint(1, VOCAB, (n, SEQ), generator=g).tolist(),
        "attention_mask": [[1] * SEQ] * n,
    }
    if labels:
        data["labels"] = torch.randint(0, 3, (n,), generator=g).tolist()
    return Dataset.from_dict(data)


def make_args(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=1e-2,
        optim="sgd",
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    base.update(kw)
    return R.RegularizedTrainingArguments(**base)


def batch(n=4):
    ds = tiny_dataset(n)
    return {k: torch.tensor(ds[k]) for k in ds.column_names}


def trainer_for(tmp_path, regs, model=None, **kw):
    t = R.RegularizedTrainer(
        model=model or tiny_bert(),
        args=make_args(tmp_path, **kw),
        train_dataset=tiny_dataset(),
        regularizers=regs,
    )
    t.current_gradient_accumulation_steps = 1  # set by the training loop; tests call steps directly
    return t


def one_step_state(tmp_path, regs, **kw):
    t = trainer_for(tmp_path, regs, **kw)
    t.train()
    return {k: v.detach().clone() for k, v in t.model.state_dict().items()}


# ---- one interface, registry, arguments ---------------------------------------------------
def test_registry_lists_every_regularizer_and_rejects_unknown_and_duplicates():
    assert R.REGULARIZERS.names() == [
        "clip",
        "fgm",
        "gp",
        "noise",
        "pgd",
        "rp_gp",
        "vat",
        "weissi",
    ]
    with pytest.raises(KeyError, match="known: clip, fgm"):
        R.REGULARIZERS["nope"]
    with pytest.raises(KeyError, match="unknown regularizer 'nope'; known: clip, fgm"):
        R.build_regularizer("nope")
    with pytest.raises(ValueError, match="already registered"):
        R.REGULARIZERS.register("fgm")(type("X", (R.Regularizer,), {}))
    assert isinstance(R.build_regularizer("fgm", epsilon=0.5), R.FGM)
    # registering stamps the name on the class
    assert all(cls.name == name for name, cls in R.REGULARIZERS.items())


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (R.FGM, {"epsilon": 0}, "epsilon"),
        (R.FGM, {"scope": "rows"}, "scope"),
        (R.PGD, {"steps": 0}, "steps"),
        (R.VAT, {"iters": -1}, "iters"),
        (R.WEISSI, {"mode": "adam"}, "mode"),
        (R.GradientClipping, {"mode": "x"}, "mode"),
        (R.GaussianNoise, {"sigma": -1}, "sigma"),
        (R.EmbeddingGradientPenalty, {"epsilon": -1}, "epsilon"),
    ],
)
def test_invalid_config_raises_value_error_naming_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_arguments_parse_from_command_line_and_build_regularizers(tmp_path):
    (args,) = HfArgumentParser(R.RegularizedTrainingArguments).parse_args_into_dataclasses(
        args=[
            "--output_dir",
            str(tmp_path),
            "--fgm_epsilon",
            "0.5",
            "--vat_epsilon",
            "1",
            "--gp_epsilon",
            "1",
            "--clip_mode",
            "soft",
            "--clip_gamma",
            "2",
            "--use_cpu",
            "True",
        ]
    )
    regs = R.from_training_args(args)
    assert [type(r).__name__ for r in regs] == [
        "GradientClipping",
        "FGM",
        "EmbeddingGradientPenalty",
        "VAT",
    ]
    assert regs[1].epsilon == 0.5 and regs[0].gamma == 2.0 and regs[0].mode == "soft"
    assert args.max_grad_norm == 0.0  # the Trainer's own clipping is replaced
    with pytest.raises(ValueError, match="fgm_scope"):
        R.RegularizedTrainingArguments(output_dir=str(tmp_path), fgm_scope="bad")
    with pytest.raises(ValueError, match="vat_epsilon"):
        R.RegularizedTrainingArguments(output_dir=str(tmp_path), vat_epsilon=-1)
    assert R.from_training_args(R.RegularizedTrainingArguments(output_dir=str(tmp_path))) == []


# ---- exact behaviour ------------------------------------------------------------------------
def test_empty_regularizer_list_is_exactly_trainer(tmp_path):
    args = make_args(tmp_path, max_steps=2)
    plain = Trainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    plain.train()
    reg = R.RegularizedTrainer(
        model=tiny_bert(), args=args, train_dataset=tiny_dataset(), regularizers=[]
    )
    reg.train()
    for (name, a), b in zip(plain.model.state_dict().items(), reg.model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "reg",
    [
        R.FGM(epsilon=0.5),
        R.FGM(epsilon=0.5, scope="output"),
        R.PGD(epsilon=0.5, alpha=0.4, steps=3),
        R.PGD(epsilon=0.5, alpha=0.4, steps=3, scope="output"),
    ],
    ids=["fgm-matrix", "fgm-output", "pgd-matrix", "pgd-output"],
)
def test_adversarial_keeps_embeddings_bit_identical_and_respects_epsilon(tmp_path, reg):
    t = trainer_for(tmp_path, [reg])
    t.create_optimizer()
    before = t.model.get_input_embeddings().weight.detach().clone()
    t.training_step(t.model, batch())
    assert torch.equal(t.model.get_input_embeddings().weight, before)  # before the optimizer step
    if isinstance(reg, R.FGM):
        assert reg.last_perturbation_norm == pytest.approx(0.5, rel=1e-5)
    else:
        assert all(n <= 0.5 + 1e-5 for n in reg.perturbation_norms)
        assert reg.perturbation_norms[-1] == pytest.approx(
            0.5, rel=1e-4
        )  # 3 * 0.4 > 0.5: projected


def test_fgm_perturbation_increases_the_loss(tmp_path):
    reg = R.FGM(epsilon=1.0)
    t = trainer_for(tmp_path, [reg])
    t.create_optimizer()
    t.model.train()
    clean = float(t.compute_loss(t.model, batch()).detach())
    t.training_step(t.model, batch())
    assert float(t._reg_sums["adv/loss"]) > clean


def test_embedding_gradient_penalty_matches_hand_computation(tmp_path):
    t = trainer_for(tmp_path, [R.EmbeddingGradientPenalty(epsilon=0.7)])
    model, inputs = t.model, batch()
    model.train()
    total = t.compute_loss(model, inputs)
    term = float(t._reg_sums["reg/gp"])

    captured = {}
    handle = model.get_input_embeddings().register_forward_hook(
        lambda m, a, out: captured.update(e=out)
    )
    loss = model(**inputs).loss
    handle.remove()
    (g,) = torch.autograd.grad(loss, captured["e"], create_graph=True)
    hand = 0.5 * 0.7 * (g**2).sum()
    assert term == pytest.approx(float(hand.detach()), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float((loss + hand).detach()), rel=1e-6)


def test_vat_on_unlabelled_batches_and_perturbation_norm(tmp_path):
    reg = R.VAT(epsilon=2.0, xi=1.0, iters=1)
    t = R.RegularizedTrainer(
        model=tiny_bert(),
        args=make_args(tmp_path, max_steps=2),
        train_dataset=tiny_dataset(),
        regularizers=[reg],
        unlabeled_dataset=tiny_dataset(8, labels=False),
    )
    t.train()
    assert reg.last_perturbation.shape == t.model.get_input_embeddings().weight.shape
    assert float(reg.last_perturbation.norm()) == pytest.approx(2.0, rel=1e-4)
    assert any("vat/loss" in h for h in t.state.log_history)


REGULARIZERS = {
    "noise": lambda: [R.GaussianNoise(sigma=0.1)],
    "gp": lambda: [R.EmbeddingGradientPenalty(epsilon=10.0)],
    "rp_gp": lambda: [R.RandomProjectionGradientPenalty(epsilon=10.0)],
    "fgm": lambda: [R.FGM(epsilon=1.0)],
    "fgm_output": lambda: [R.FGM(epsilon=1.0, scope="output")],
    "pgd": lambda: [R.PGD(epsilon=1.0)],
    "vat": lambda: [R.VAT(epsilon=5.0)],
    "vat_output": lambda: [R.VAT(epsilon=5.0, xi=1e-2, scope="output")],
    "weissi_loss": lambda: [R.WEISSI(lambda1=0.1, lambda2=1e-3)],
    "weissi_decoupled": lambda: [R.WEISSI(lambda1=0.1, mode="decoupled")],
    "clip_hard": lambda: [R.GradientClipping(mode="hard", gamma=1e-3)],
    "clip_soft": lambda: [R.GradientClipping(mode="soft", gamma=1e-3)],
}


@pytest.fixture(scope="module")
def baseline_state(tmp_path_factory):
    return one_step_state(tmp_path_factory.mktemp("base"), [])


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_every_regularizer_changes_the_update(tmp_path, baseline_state, name):
    state = one_step_state(tmp_path, REGULARIZERS[name]())
    diff = max(float((state[k] - baseline_state[k]).abs().max()) for k in state)
    assert diff > 1e-7, name


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_combined_regularizers_with_gradient_accumulation_log_every_term(tmp_path, bf16):
    regs = [
        R.GaussianNoise(0.01),
        R.EmbeddingGradientPenalty(1.0),
        R.RandomProjectionGradientPenalty(0.01),
        R.FGM(0.5),
        R.PGD(0.5, steps=2),
        R.VAT(1.0),
        R.WEISSI(1e-3, 1e-4),
        R.GradientClipping("soft", 1.0),
    ]
    t = R.RegularizedTrainer(
        model=tiny_bert(),
        args=make_args(
            tmp_path, max_steps=2, gradient_accumulation_steps=2, max_grad_norm=1.0, bf16=bf16
        ),
        train_dataset=tiny_dataset(),
        regularizers=regs,
        unlabeled_dataset=tiny_dataset(8, labels=False),
    )
    assert t.args.max_grad_norm == 0.0
    counts = {}
    record = t._record

    def counting_record(terms):
        for name in terms:
            counts[name] = counts.get(name, 0) + 1
        record(terms)

    t._record = counting_record
    t.train()
    logs = [h for h in t.state.log_history if "loss" in h]
    assert len(logs) == 2
    for name in (
        "reg/gp",
        "reg/rp_gp",
        "reg/weissi",
        "adv/loss",
        "vat/loss",
        "grad/norm",
        "grad/clip_coef",
    ):
        assert all(name in h and math.isfinite(h[name]) for h in logs), name
    # clipping ran once per optimizer step, the others once per micro-batch (2 steps x 2)
    assert counts["grad/norm"] == 2
    assert counts["reg/gp"] == counts["adv/loss"] / 2 == counts["vat/loss"] == 4


def test_clip_hook_bounds_the_update_in_the_trainer(tmp_path):
    gamma, lr = 1e-3, 1e-2
    t = trainer_for(tmp_path, [R.GradientClipping("hard", gamma)], learning_rate=lr)
    before = [p.detach().clone() for p in t.model.parameters()]
    t.train()
    step = math.sqrt(
        sum(float(((p.detach() - b) ** 2).sum()) for p, b in zip(t.model.parameters(), before))
    )
    assert step <= lr * gamma * (1 + 1e-2)  # float32 rounding of p - b
    assert step > 0.5 * lr * gamma


def test_works_on_a_causal_lm(tmp_path):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    )
    ids = torch.randint(1, VOCAB, (8, SEQ)).tolist()
    ds = Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * SEQ] * 8, "labels": ids})
    regs = [R.FGM(0.5), R.EmbeddingGradientPenalty(1.0), R.VAT(1.0, scope="output", xi=1e-2)]
    t = R.RegularizedTrainer(
        model=model, args=make_args(tmp_path, max_steps=1), train_dataset=ds, regularizers=regs
    )
    t.train()
    logs = t.state.log_history[0]
    assert {"adv/loss", "reg/gp", "vat/loss"} <= set(logs)


def test_plain_module_without_input_ids_fails_loudly():
    emb = torch.nn.Embedding(5, 3)
    with pytest.raises(RuntimeError, match="not called"):
        with R.EmbeddingTap(emb, output="zeros"):
            pass


def test_works_on_the_unilm_question_generator(tmp_path):
    modeling = pytest.importorskip("qgen.modeling.unilm")
    if not hasattr(modeling, "UniLMForQAGeneration"):
        pytest.skip("qgen.modeling.unilm.UniLMForQAGeneration not available")
    torch.manual_seed(0)
    cfg = modeling.UniLMConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=37,
    )
    model = modeling.UniLMForQAGeneration(cfg)
    ids = torch.randint(1, VOCAB, (8, 10))
    token_types = torch.tensor([[0] * 5 + [1] * 5] * 8)
    ds = Dataset.from_dict(
        {
            "input_ids": ids.tolist(),
            "attention_mask": [[1] * 10] * 8,
            "token_type_ids": token_types.tolist(),
            "labels": ids.masked_fill(token_types == 0, -100).tolist(),
        }
    )
    args = make_args(
        tmp_path,
        max_steps=1,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=2,
        gp_epsilon=1.0,
        fgm_epsilon=0.5,
        vat_epsilon=1.0,
        clip_mode="soft",
    )
    t = R.RegularizedTrainer(model=model, args=args, train_dataset=ds)
    t.train()
    assert {"reg/gp", "adv/loss", "vat/loss", "grad/norm"} <= set(t.state.log_history[0])
