"""Processors: consistency fix, purity, validation, registry, order and HF equivalence."""

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessor,
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from decoding import (
    PROCESSORS,
    STRATEGIES,
    ConsistentTopK,
    ConsistentTopP,
    DecodingConfig,
    MinNewTokensProcessor,
    NoRepeatNGramProcessor,
    RepetitionPenaltyProcessor,
    TemperatureProcessor,
    TopKProcessor,
    TopPProcessor,
    build_processors,
    decode,
    generate_kwargs,
)

EOS = 4
# Hand-built logits: the end token (id 4) is the least likely of 6 tokens in both rows.
LOGITS = torch.tensor([[5.0, 4.0, 3.0, 2.0, -3.0, 1.0], [0.0, 6.0, 2.0, 1.0, -1.0, 3.0]])
IDS = torch.tensor([[0, 1, 2], [3, 1, 1]])


def _kept(scores: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(scores)


@pytest.mark.parametrize(
    "plain, consistent",
    [
        (TopKProcessor(2), ConsistentTopK(2, eos_token_id=EOS)),
        (TopPProcessor(0.5), ConsistentTopP(0.5, eos_token_id=EOS)),
    ],
    ids=["top_k", "top_p"],
)
def test_consistent_keeps_eos_plain_removes_it(plain, consistent):
    plain_kept, cons_kept = _kept(plain(IDS, LOGITS)), _kept(consistent(IDS, LOGITS))
    assert not plain_kept[:, EOS].any()  # the plain filter can remove the end token
    assert cons_kept[:, EOS].all()  # the consistent one never does
    others = torch.ones(LOGITS.shape[-1], dtype=torch.bool)
    others[EOS] = False
    assert torch.equal(plain_kept[:, others], cons_kept[:, others])  # same set otherwise


def test_consistent_keeps_every_eos_of_a_list():
    out = ConsistentTopK(1, eos_token_id=[3, 4])(IDS, LOGITS)
    assert _kept(out)[:, [3, 4]].all()
    assert _kept(out).sum(-1).tolist() == [3, 3]


def test_consistent_sampling_through_decode_keeps_eos():
    # top_k=1 keeps only the argmax; the consistent version also keeps the end token
    # (p = e^2 / (e^3 + e^2) = 0.27 per step), so every row ends.
    row = torch.tensor([[3.0, 0.0, 0.0, 0.0, 2.0, 0.0]])

    class Fixed:
        def start(self, input_ids, **kwargs):
            return None

        def step(self, input_ids, state):
            return row.expand(input_ids.shape[0], -1), state

        def reorder(self, state, index):
            return state

    cfg = dict(strategy="sample", top_k=1, max_new_tokens=30, eos_token_id=EOS, seed=0)
    plain = decode(Fixed(), torch.zeros(64, 1, dtype=torch.long), DecodingConfig(**cfg))
    cons = decode(
        Fixed(), torch.zeros(64, 1, dtype=torch.long), DecodingConfig(consistent=True, **cfg)
    )
    assert not plain.finished.any()
    assert cons.finished.all()


ALL_PROCESSORS = [
    TemperatureProcessor(0.7),
    TopKProcessor(2),
    TopPProcessor(0.6),
    ConsistentTopK(2, eos_token_id=EOS),
    ConsistentTopP(0.6, eos_token_id=EOS),
    RepetitionPenaltyProcessor(1.5),
    RepetitionPenaltyProcessor(1.5, prompt_ignore_length=torch.tensor([1, 0])),
    NoRepeatNGramProcessor(2),
    NoRepeatNGramProcessor(2, prompt_length=1),
    RepetitionPenaltyProcessor(1.5, prompt_length=2),
    MinNewTokensProcessor(prompt_length=2, min_new_tokens=5, eos_token_id=EOS),
]


@pytest.mark.parametrize("proc", ALL_PROCESSORS, ids=lambda p: type(p).__name__)
def test_processor_leaves_input_untouched(proc):
    ids, scores = IDS.clone(), LOGITS.clone()
    out = proc(ids, scores)
    assert torch.equal(ids, IDS) and torch.equal(scores, LOGITS)
    assert out.shape == LOGITS.shape
    assert isinstance(proc, LogitsProcessor)


@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: TopKProcessor(-1), "top_k=-1"),
        (lambda: ConsistentTopK(-3, eos_token_id=EOS), "top_k=-3"),
        (lambda: TopPProcessor(0.0), "top_p=0.0"),
        (lambda: TopPProcessor(1.5), "top_p=1.5"),
        (lambda: ConsistentTopP(-0.1, eos_token_id=EOS), "top_p=-0.1"),
        (lambda: TemperatureProcessor(0.0), "temperature=0.0"),
        (lambda: TemperatureProcessor(-1.0), "temperature=-1.0"),
        (lambda: RepetitionPenaltyProcessor(0.0), "repetition_penalty=0.0"),
        (lambda: NoRepeatNGramProcessor(0), "no_repeat_ngram_size=0"),
        (lambda: MinNewTokensProcessor(0, -1, EOS), "min_new_tokens=-1"),
        (lambda: ConsistentTopK(2, eos_token_id=None), "eos_token_id=None"),
        (lambda: ConsistentTopK(2, eos_token_id=6)(IDS, LOGITS), "eos_token_id=6"),
        (lambda: ConsistentTopP(0.5, eos_token_id=[1, -1])(IDS, LOGITS), "eos_token_id=-1"),
        (lambda: MinNewTokensProcessor(0, 3, 99)(IDS, LOGITS), "eos_token_id=99"),
        (lambda: build_processors(DecodingConfig(eos_token_id=6), 6, 3), "eos_token_id=6"),
        (lambda: DecodingConfig(top_k=-1), "top_k=-1"),
        (lambda: DecodingConfig(top_p=0.0), "top_p=0.0"),
        (lambda: DecodingConfig(top_p=1.01), "top_p=1.01"),
        (lambda: DecodingConfig(temperature=0.0), "temperature=0.0"),
    ],
)
def test_bad_values_raise_naming_parameter_and_value(make, param):
    with pytest.raises(ValueError, match=param.replace("[", r"\[")):
        make()


def test_register_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        PROCESSORS.register("top_k")(TopKProcessor)
    assert {"temperature", "top_k", "top_p", "consistent_top_k", "consistent_top_p"} <= set(
        PROCESSORS
    )


def test_strategies_registry_holds_the_three_loops_and_names_them_on_error():
    assert STRATEGIES.names() == ["beam", "greedy", "sample"]
    with pytest.raises(
        ValueError, match=r"strategy='contrastive' is not one of \['beam', 'greedy'"
    ):
        DecodingConfig(strategy="contrastive")
    with pytest.raises(ValueError, match="already registered"):
        STRATEGIES.register("greedy", STRATEGIES["sample"])


def test_build_processors_fixed_order():
    cfg = DecodingConfig(
        strategy="sample",
        temperature=0.5,
        top_k=5,
        top_p=0.9,
        consistent=True,
        eos_token_id=EOS,
        min_new_tokens=2,
        repetition_penalty=1.2,
        no_repeat_ngram_size=3,
    )
    names = [type(p).__name__ for p in build_processors(cfg, vocab_size=6, prompt_length=3)]
    assert names == [
        "RepetitionPenaltyProcessor",
        "NoRepeatNGramProcessor",
        "MinNewTokensProcessor",
        "TemperatureProcessor",
        "ConsistentTopK",
        "ConsistentTopP",
    ]
    greedy = DecodingConfig(top_k=5, top_p=0.9, temperature=0.5)  # warpers: sampling only
    assert len(build_processors(greedy, vocab_size=6, prompt_length=3)) == 0


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (TemperatureProcessor(0.7), TemperatureLogitsWarper(0.7)),
        (TopKProcessor(3), TopKLogitsWarper(3)),
        (TopPProcessor(0.7), TopPLogitsWarper(0.7)),
        (RepetitionPenaltyProcessor(1.3), RepetitionPenaltyLogitsProcessor(1.3)),
        (NoRepeatNGramProcessor(2), NoRepeatNGramLogitsProcessor(2)),
        (MinNewTokensProcessor(3, 4, EOS), MinNewTokensLengthLogitsProcessor(3, 4, EOS)),
    ],
    ids=lambda p: type(p).__name__,
)
def test_plain_processors_equal_hf(ours, theirs):
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 20, generator=gen) * 3
    ids = torch.randint(0, 20, (4, 7), generator=gen)
    ids[:, -2:] = ids[:, :2]  # a repeated bigram for the n-gram ban
    assert torch.equal(ours(ids, scores), theirs(ids, scores))


def _tiny_gpt2(vocab: int = 120) -> GPT2LMHeadModel:
    cfg = GPT2Config(
        vocab_size=vocab,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=2,
    )
    return GPT2LMHeadModel(cfg).eval()  # default init: near-uniform next-token distributions


def test_consistent_processor_is_the_only_filter_in_generate():
    """With top_k=0, top_p=1, temperature=1 HF adds no warper of its own: generate samples
    exactly what decode samples with the same seed (and HF's default top_k=50 would not)."""
    model = _tiny_gpt2()
    ids = torch.randint(5, 120, (4, 5))
    cfg = DecodingConfig(
        strategy="sample",
        top_p=0.99,
        consistent=True,
        eos_token_id=EOS,
        pad_token_id=1,
        max_new_tokens=12,
        seed=3,
    )
    ours = decode(model, ids, cfg)
    kwargs = generate_kwargs(cfg)
    assert kwargs["top_k"] == 0 and kwargs["top_p"] == 1.0 and kwargs["temperature"] == 1.0
    assert [type(p) for p in kwargs["logits_processor"]] == [ConsistentTopP]
    torch.manual_seed(3)
    theirs = model.generate(ids, **kwargs)
    assert torch.equal(ours.sequences, theirs)

    defaults = {k: v for k, v in kwargs.items() if k not in ("top_k", "top_p", "temperature")}
    torch.manual_seed(3)
    with_hf_top50 = model.generate(ids, **defaults)  # HF silently adds top_k=50 here
    assert not torch.equal(ours.sequences, with_hf_top50)


def test_consistent_processors_plug_into_generate_explicitly():
    model = _tiny_gpt2()
    ids = torch.randint(5, 120, (2, 4))
    procs = LogitsProcessorList([ConsistentTopK(1, eos_token_id=EOS)])
    torch.manual_seed(0)
    out = model.generate(
        ids,
        do_sample=True,
        top_k=0,
        top_p=1.0,
        max_new_tokens=6,
        eos_token_id=EOS,
        pad_token_id=1,
        logits_processor=procs,
    )
    assert out.shape[0] == 2 and out.shape[1] <= 10


def test_repetition_scope_generated_lets_an_output_copy_its_prompt_but_not_repeat_itself():
    scores = torch.zeros(1, 8)
    # prompt [5 6 7 5 6 | generated 1 2 1]: the next token would close (5, 6, x) / (2, 1, x)
    ids = torch.tensor([[5, 6, 7, 5, 6]])
    whole = NoRepeatNGramProcessor(3)(ids, scores)
    assert whole[0, 7] == -float("inf")  # (5, 6, 7) is in the prompt: banned for the sequence
    assert torch.isfinite(NoRepeatNGramProcessor(3, prompt_length=5)(ids, scores)).all()
    ids = torch.tensor([[5, 6, 7, 5, 6, 1, 2, 1, 2]])
    own = NoRepeatNGramProcessor(3, prompt_length=5)(ids, scores)
    assert own[0, 1] == -float("inf") and torch.isfinite(own[0, [0, 2, 3, 4, 5, 6, 7]]).all()
    # the CTRL penalty: prompt tokens (5, 6, 7) are left alone, generated ones (1, 2) penalised
    logits = torch.ones(1, 8)
    out = RepetitionPenaltyProcessor(2.0, prompt_length=5)(ids, logits)
    assert out[0].tolist() == [1, 0.5, 0.5, 1, 1, 1, 1, 1]
    assert RepetitionPenaltyProcessor(2.0)(ids, logits)[0, 5] == 0.5  # sequence scope: penalised


def test_build_processors_passes_the_scope():
    cfg = DecodingConfig(no_repeat_ngram_size=2, repetition_penalty=1.2)
    procs = build_processors(cfg, vocab_size=6, prompt_length=3)
    assert [p.prompt_length for p in procs] == [0, 0]
    cfg = DecodingConfig(
        no_repeat_ngram_size=2, repetition_penalty=1.2, repetition_scope="generated"
    )
    procs = build_processors(cfg, vocab_size=6, prompt_length=3)
    assert [p.prompt_length for p in procs] == [3, 3]
    with pytest.raises(ValueError, match="repetition_scope='everything'"):
        DecodingConfig(repetition_scope="everything")
    with pytest.raises(ValueError, match="no HF generate equivalent"):
        generate_kwargs(cfg)
    assert (
        generate_kwargs(DecodingConfig(repetition_scope="generated"))["no_repeat_ngram_size"] == 0
    )


def _repeats_a_bigram(seq: list[int], start: int) -> bool:
    """Whether a bigram ending at position >= ``start`` occurred earlier in ``seq``."""
    seen = set()
    for i in range(1, len(seq)):
        if i >= start and (seq[i - 1], seq[i]) in seen:
            return True
        seen.add((seq[i - 1], seq[i]))
    return False


def test_each_scope_holds_in_decoding():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=12, n_embd=16, n_layer=1, n_head=2,
                                       n_positions=64, bos_token_id=0, eos_token_id=11))  # fmt: skip
    prompt = torch.tensor([[1, 2, 3, 1, 2, 3, 1, 2]])  # repeats bigrams itself
    n = prompt.shape[1]
    outs = {}
    for scope in ("sequence", "generated"):
        cfg = DecodingConfig(max_new_tokens=20, no_repeat_ngram_size=2, repetition_scope=scope,
                             eos_token_id=11)  # fmt: skip
        seq = decode(model, prompt, cfg).sequences[0].tolist()
        outs[scope] = seq[: seq.index(11, n) + 1] if 11 in seq[n:] else seq
    assert not _repeats_a_bigram(outs["sequence"], n)  # nothing of the prompt, nothing twice
    assert not _repeats_a_bigram(outs["generated"][n:], 1)  # nothing twice in the output
    assert _repeats_a_bigram(outs["sequence"][:n], 1)  # (the prompt's own repeats are allowed)
