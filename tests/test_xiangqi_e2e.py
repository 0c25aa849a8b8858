"""End to end on tiny models: the training script, the evaluation script and the terminal game."""

import io
import json
import random
import sys
from pathlib import Path

import pytest

from generative.xiangqi.board import Board, move_to_iccs
from generative.xiangqi.cli import draw_board, main, play_terminal
from generative.xiangqi.evaluation import game_phase, load_xiangqi_model
from generative.xiangqi.player import LMPlayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from evaluate_xiangqi import main as evaluate_main  # noqa: E402
from train_xiangqi import main as train_main  # noqa: E402


def write_random_games(path, n=24, plies=30, seed=0):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            b, moves = Board(), []
            for _ in range(plies):
                legal = b.legal_moves()
                if not legal:
                    break
                m = rng.choice(legal)
                b.push(m)
                moves.append(move_to_iccs(m))
            f.write(json.dumps({"iccs": "".join(moves), "result": "*"}) + "\n")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("xiangqi")
    games = root / "games.jsonl"
    write_random_games(games)
    out = root / "model"
    info = train_main(
        f"--games_path {games} --val_games 4 --output_dir {out} --max_steps 2 "
        "--per_device_train_batch_size 4 --n_layer 1 --n_embd 32 --n_head 2 --n_positions 128 "
        "--curriculum_steps 1 --curriculum_lengths 16,128 --report_to none --save_strategy no "
        "--use_cpu --disable_tqdm true".split()
    )
    return out, info


@pytest.mark.slow
def test_training_smoke_run(tiny_run):
    out, info = tiny_run
    assert info["global_step"] == 2 and info["final_length"] == 128
    assert info["n_train_games"] == 20 and info["n_val_games"] == 4
    model, tok = load_xiangqi_model(str(out))
    assert model.config.vocab_size == len(tok) == 23


@pytest.mark.slow
def test_evaluation_smoke_run(tiny_run):
    out, _ = tiny_run
    res = evaluate_main(
        f"--model_dir {out} --perplexity_games 4 --accuracy_games 1 --match_games 2 --max_plies 6".split()
    )
    assert res["validation"]["perplexity"] > 1
    assert res["move_accuracy"]["all"]["positions"] == 30
    for name in ("random", "greedy"):
        m = res["matches"][name]
        assert m["wins"] + m["draws"] + m["losses"] == 2
    assert (out / "xiangqi_eval.md").read_text().startswith("Validation")


@pytest.mark.slow
def test_terminal_game_from_stdin(tiny_run, tmp_path):
    out, _ = tiny_run
    model, tok = load_xiangqi_model(str(out))
    stdin = io.StringIO("h2e9\nhello\nmoves\nh2e2\nquit\n")
    stdout = io.StringIO()
    record = play_terminal(
        LMPlayer(model, tok), stdin=stdin, stdout=stdout, record_path=str(tmp_path / "g.json")
    )
    text = stdout.getvalue()
    assert text.count("illegal or malformed move") == 2
    assert (
        "h2e2" in text.split("moves\n")[0] or "a0a1" in text
    )  # the legal-move listing was printed
    assert record["moves"][0] == "h2e2" and len(record["moves"]) == 2 and record["result"] == "0-1"
    assert json.loads((tmp_path / "g.json").read_text())["iccs"] == "".join(record["moves"])
    assert "帥" in text and "将" in text and "a b c d e f g h i" in text


@pytest.mark.slow
def test_module_entry_point_plays_black(tiny_run, tmp_path, monkeypatch):
    out, _ = tiny_run
    monkeypatch.setattr("sys.stdin", io.StringIO("quit\n"))
    record = main(
        ["play", "--model", str(out), "--human", "black", "--record", str(tmp_path / "r.json")]
    )
    assert len(record["moves"]) == 1 and record["result"] == "1-0"


def test_board_drawing_and_phases():
    text = draw_board(Board())
    lines = text.splitlines()
    assert lines[1].startswith("9 车马象士将士象马车") and lines[-3].startswith(
        "0 車馬相仕帥仕相馬車"
    )
    assert "楚河" in text and "Red" in lines[-1]
    assert game_phase(Board(), 0) == "opening" and game_phase(Board(), 30) == "middle"
    assert game_phase(Board("3k5/9/9/9/9/9/9/9/9/R3K4 w - - 0 1"), 40) == "endgame"
