"""The ladder, matches from openings, the pure-LM and search+LM contenders, the export and the
shipped model."""

import io
import json
import random
import sys
from pathlib import Path

import pytest

from generative.xiangqi.board import Board, move_to_iccs, split_iccs
from generative.xiangqi.cli import main
from generative.xiangqi.evaluation import default_model_dir, load_xiangqi_model
from generative.xiangqi.ladder import LadderConfig, held_out_openings, ladder_table, run_ladder
from generative.xiangqi.match import MatchConfig, play_match
from generative.xiangqi.model import XiangqiModelArguments, build_model
from generative.xiangqi.player import RandomPlayer
from generative.xiangqi.tokenizer import TOKENIZERS
from generative.xiangqi.training import TRAINING_INFO, export_xiangqi_model
from generative.xiangqi.uci_client import fairy_stockfish_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from export_xiangqi_model import main as export_main  # noqa: E402


@pytest.fixture(scope="module")
def games_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ladder") / "games.jsonl"
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(30):
            b, moves = Board(), []
            for _ in range(20):
                m = rng.choice(b.legal_moves())
                b.push(m)
                moves.append(move_to_iccs(m))
            f.write(json.dumps({"iccs": "".join(moves)}) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, games_file):
    """A tiny move-level GPT-2, saved like `train_xiangqi` does (with a training record)."""
    out = tmp_path_factory.mktemp("tiny_lm")
    tok = TOKENIZERS["move"]()
    args = XiangqiModelArguments(tokenizer="move", n_layer=1, n_embd=16, n_head=2, n_positions=64)
    build_model(args, tok).save_pretrained(out)
    tok.save_pretrained(out)
    record = {"data_args": {"games_path": games_file, "val_games": 6, "split_seed": 0}}
    (out / TRAINING_INFO).write_text(json.dumps(record))
    return str(out)


def quick(**kw) -> LadderConfig:
    base = dict(games=2, rungs="random", depth=1, movetime_ms=None, max_plies=30, opening_plies=4)
    return LadderConfig(**{**base, **kw})


def test_openings_are_held_out_and_cut(games_file, tiny_model_dir):
    openings = held_out_openings(games_file, 3, 4, tiny_model_dir)
    assert len(openings) == 3 and all(len(o) == 4 for o in openings)
    games = [split_iccs(json.loads(line)["iccs"]) for line in open(games_file)]
    assert all(any(g[:4] == o for g in games) for o in openings)


def test_match_from_openings_plays_each_with_both_colours(games_file):
    openings = held_out_openings(games_file, 2, 6)
    res = play_match(RandomPlayer(0), RandomPlayer(1), MatchConfig(4, 20), openings)
    first = [g["moves"][:6] for g in res["games"]]
    assert first[0] == first[1] == openings[0] and first[2] == first[3] == openings[1]
    assert all(g["opening_plies"] == 6 and g["ms_per_move"]["red"] >= 0 for g in res["games"])


def test_ladder_search_against_random_prints_a_json_line_per_rung(games_file):
    out = io.StringIO()
    rows = run_ladder(quick(games_path=games_file, rungs="random,greedy"), out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["rung"] for r in lines] == ["random", "greedy"] and lines == rows
    for r in rows:
        assert r["games"] == 2 and r["wins"] + r["draws"] + r["losses"] == 2
        assert r["score"] == (r["wins"] + r["draws"] / 2) / 2 and sum(r["ended"].values()) == 2
    assert "| search | random | 2 |" in ladder_table(rows)


@pytest.mark.parametrize("player", ["lm", "search+lm"])
def test_ladder_with_the_lm(games_file, tiny_model_dir, player):
    rows = run_ladder(quick(player=player, model_dir=tiny_model_dir), io.StringIO())
    assert rows[0]["player"] in ("pure-lm", "search+lm") and rows[0]["games"] == 2


def test_fairy_rungs_are_skipped_with_a_message_when_absent(games_file, monkeypatch):
    monkeypatch.setattr("generative.xiangqi.ladder.fairy_stockfish_path", lambda: None)
    out = io.StringIO()
    rows = run_ladder(quick(games_path=games_file, rungs="fairy-1,random"), out)
    assert out.getvalue().startswith("# skipping fairy-1: Fairy-Stockfish not found")
    assert [r["rung"] for r in rows] == ["random"]


@pytest.mark.skipif(fairy_stockfish_path() is None, reason="Fairy-Stockfish not installed")
def test_ladder_against_fairy_stockfish_depth_1(games_file):
    rows = run_ladder(quick(games_path=games_file, rungs="fairy-1"), io.StringIO())
    assert rows[0]["rung"] == "fairy-1" and rows[0]["games"] == 2


@pytest.mark.parametrize(
    "bad,needle",
    [
        (dict(player="alphazero"), "player='alphazero'"),
        (dict(rungs="random,kasparov"), "unknown rung 'kasparov'"),
        (dict(games=0), "games must be >= 1"),
        (dict(opening_plies=40), "opening_plies"),
    ],
)
def test_ladder_config_validates(bad, needle):
    with pytest.raises(ValueError, match=needle):
        quick(**bad)


def test_cli_ladder(games_file, capsys):
    rows = main(
        f"ladder --games 2 --player search --rungs random --depth 1 --max_plies 24 "
        f"--games_path {games_file}".split()
    )
    text = capsys.readouterr().out
    assert rows[0]["rung"] == "random" and "| player | rung |" in text


def test_export_is_float16_and_loads_as_float32(tiny_model_dir, tmp_path):
    out = export_main(
        ["--model_dir", tiny_model_dir, "--output", str(tmp_path / "m"), "--games_path", "x.jsonl"]
    )
    model, tok = load_xiangqi_model(out)
    assert next(model.parameters()).dtype.is_floating_point
    assert str(next(model.parameters()).dtype) == "torch.float32" and len(tok) > 2000
    from safetensors import safe_open

    with safe_open(str(Path(out) / "model.safetensors"), "pt") as f:
        assert all(str(f.get_tensor(k).dtype) == "torch.float16" for k in f.keys())
    assert (
        json.loads((Path(out) / TRAINING_INFO).read_text())["data_args"]["games_path"] == "x.jsonl"
    )
    assert export_xiangqi_model(tiny_model_dir, str(tmp_path / "again")).endswith("again")


def test_loading_a_directory_without_a_model_names_it(tmp_path):
    with pytest.raises(OSError, match="no Xiangqi model in"):
        load_xiangqi_model(str(tmp_path))


@pytest.mark.skipif(default_model_dir() is None, reason="no model shipped")
def test_shipped_model_is_small_and_plays():
    path = Path(default_model_dir())
    assert sum(f.stat().st_size for f in path.iterdir()) < 8_000_000
    assert (path / "README.md").read_text().count("CC BY 4.0") >= 1
    rows = run_ladder(quick(player="search+lm", rungs="random", opening_plies=0), io.StringIO())
    assert rows[0]["games"] == 2
