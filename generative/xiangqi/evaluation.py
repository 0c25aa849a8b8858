"""Evaluation of a trained Xiangqi LM: perplexity, next-move accuracy by phase, and matches.

* **Perplexity / token accuracy** on held-out games (truncated head-first to the context).
* **Next-move accuracy**: at each position of held-out games, does Su's top-scored legal move
  equal the master's move? Split by phase: *opening* = the first 20 plies; *endgame* = at most
  6 of the 12 attacking pieces (rooks, horses, cannons) left; *middle game* = the rest.
  Chance level (mean of 1 / #legal moves) is reported beside it.
* **Matches** against the random and the greedy one-ply material player (`match.py`).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from transformers import PreTrainedModel

from .board import CANNON, HORSE, ROOK, Board, move_to_iccs, split_iccs
from .match import MatchConfig, play_match
from .player import LMPlayer, LMPlayerConfig, make_player
from .pretrained import SHIPPED_MODEL, default_model_dir, load_xiangqi_model
from .scoring import MoveScorer, window_start
from .tokenizer import XiangqiTokenizerBase
from .training import TRAINING_INFO, CurriculumCollator, load_games, split_games

__all__ = [
    "EvaluationConfig",
    "PHASES",
    "game_phase",
    "validation_metrics",
    "move_accuracy_by_phase",
    "load_xiangqi_model",
    "default_model_dir",
    "SHIPPED_MODEL",
    "evaluate_xiangqi",
    "results_markdown",
]

PHASES = ("opening", "middle", "endgame")
OPENING_PLIES = 20
ENDGAME_ATTACKERS = 6


def game_phase(board: Board, ply: int) -> str:
    """``opening`` (ply < 20), ``endgame`` (<= 6 rooks/horses/cannons left) or ``middle``."""
    if ply < OPENING_PLIES:
        return "opening"
    attackers = sum(1 for p in board.squares if abs(p) in (ROOK, HORSE, CANNON))
    return "endgame" if attackers <= ENDGAME_ATTACKERS else "middle"


@torch.no_grad()
def validation_metrics(
    model: PreTrainedModel,
    tokenizer: XiangqiTokenizerBase,
    games: list[str],
    max_length: int = 512,
    batch_size: int = 16,
) -> dict:
    """Token-level loss, perplexity and next-token accuracy on ``games`` (padding excluded)."""
    collator = CurriculumCollator(tokenizer.pad_token_id, max_length)
    total_nll, total_correct, total = 0.0, 0, 0
    for i in range(0, len(games), batch_size):
        batch = collator(
            [{"input_ids": tokenizer.encode_moves(g)} for g in games[i : i + batch_size]]
        )
        logits = (
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            .logits[:, :-1]
            .float()
        )
        labels = batch["labels"][:, 1:]
        valid = labels != -100
        nll = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
        )
        total_nll += float(nll[valid].sum())
        total_correct += int((logits.argmax(-1) == labels)[valid].sum())
        total += int(valid.sum())
    loss = total_nll / total
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "token_accuracy": total_correct / total,
        "tokens": total,
    }


@torch.no_grad()
def move_accuracy_by_phase(
    model: PreTrainedModel, tokenizer: XiangqiTokenizerBase, games: list[str]
) -> dict:
    """How often Su's top-scored legal move is the master's move, overall and by phase.

    Only positions whose whole history fits the context are used (no sliding window).
    """
    scorer = MoveScorer(model.eval(), tokenizer)
    stats = {p: {"positions": 0, "top1": 0, "chance": 0.0, "logp": 0.0} for p in PHASES + ("all",)}
    for game in games:
        board, history = Board(), []
        for move in split_iccs(game):
            if window_start(len(history), tokenizer.tokens_per_move, scorer.n_positions) > 0:
                break
            legal = [move_to_iccs(m) for m in board.legal_moves()]
            scores = scorer.score(history, legal)
            played = legal.index(move)
            logp = float(torch.log_softmax(scores, -1)[played])  # master's move among legal moves
            for key in (game_phase(board, len(history)), "all"):
                s = stats[key]
                s["positions"] += 1
                s["top1"] += int(int(scores.argmax()) == played)
                s["chance"] += 1.0 / len(legal)
                s["logp"] += logp
            board.push_iccs(move)
            history.append(move)
    out = {}
    for key, s in stats.items():
        n = max(s["positions"], 1)
        out[key] = {
            "positions": s["positions"],
            "top1_accuracy": s["top1"] / n,
            "chance_accuracy": s["chance"] / n,
            "mean_legal_logp": s["logp"] / n,
        }
    return out


@dataclass
class EvaluationConfig:
    """Sizes of the evaluation (kept small enough for ~10-15 min on one thread)."""

    model_dir: str = field(
        default="runs/xiangqi_char", metadata={"help": "output_dir of train_xiangqi.py"}
    )
    games_path: str | None = field(
        default=None, metadata={"help": "games file (default: the training one)"}
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "where results go (default: model_dir)"}
    )
    perplexity_games: int = field(default=500, metadata={"help": "held-out games for perplexity"})
    accuracy_games: int = field(
        default=60, metadata={"help": "held-out games for next-move accuracy"}
    )
    match_games: int = field(
        default=100, metadata={"help": "games per opponent (colours alternated)"}
    )
    max_plies: int = field(default=120, metadata={"help": "move cap of match games"})
    adjudication_margin: float = field(
        default=3.0, metadata={"help": "material lead that wins at the cap"}
    )
    opponents: str = field(
        default="random,greedy", metadata={"help": "comma-separated baseline players"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the baseline players"})

    def __post_init__(self) -> None:
        for name in ("perplexity_games", "accuracy_games", "match_games", "max_plies"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {name}={getattr(self, name)}")


def _held_out_games(config: EvaluationConfig) -> list[str]:
    with open(os.path.join(config.model_dir, TRAINING_INFO)) as f:
        data_args = json.load(f)["data_args"]
    games = load_games(config.games_path or data_args["games_path"], data_args["max_games"])
    _, val_idx = split_games(len(games), data_args["val_games"], data_args["split_seed"])
    return [games[i] for i in val_idx]


def evaluate_xiangqi(config: EvaluationConfig) -> dict:
    """Run every evaluation, write ``xiangqi_eval.json`` + ``xiangqi_eval.md``, return the results."""
    model, tokenizer = load_xiangqi_model(config.model_dir)
    games = _held_out_games(config)
    n_positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    results: dict = {"config": asdict(config), "n_held_out": len(games), "timings_s": {}}
    t = time.time()
    results["validation"] = validation_metrics(
        model, tokenizer, games[: config.perplexity_games], n_positions
    )
    results["timings_s"]["validation"] = time.time() - t
    t = time.time()
    results["move_accuracy"] = move_accuracy_by_phase(
        model, tokenizer, games[: config.accuracy_games]
    )
    results["timings_s"]["move_accuracy"] = time.time() - t
    results["matches"] = {}
    match_config = MatchConfig(
        max(config.match_games, 1), config.max_plies, config.adjudication_margin
    )
    for name in [o for o in config.opponents.split(",") if o] if config.match_games else []:
        t = time.time()
        player = LMPlayer(model, tokenizer, LMPlayerConfig())
        results["matches"][name] = play_match(player, make_player(name, config.seed), match_config)
        results["timings_s"][f"match_{name}"] = time.time() - t
    out_dir = config.output_dir or config.model_dir
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "xiangqi_eval.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, "xiangqi_eval.md"), "w") as f:
        f.write(results_markdown(results))
    return results


def results_markdown(results: dict) -> str:
    """The results as markdown tables."""
    v = results["validation"]
    lines = [
        f"Validation ({v['tokens']} tokens of held-out games): loss {v['loss']:.4f}, "
        f"perplexity {v['perplexity']:.3f}, next-token accuracy {v['token_accuracy']:.3f}",
        "",
        "| phase | positions | top-1 = master move | chance (1/#legal) | mean log p(master move among legal) |",
        "|---|---|---|---|---|",
    ]
    for phase in PHASES + ("all",):
        a = results["move_accuracy"][phase]
        lines.append(
            f"| {phase} | {a['positions']} | {a['top1_accuracy']:.3f} | {a['chance_accuracy']:.3f} | {a['mean_legal_logp']:.3f} |"
        )
    if results["matches"]:
        lines += [
            "",
            "| opponent | games | wins | draws | losses | endings |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in results["matches"].items():
            n = m["wins"] + m["draws"] + m["losses"]
            reasons = ", ".join(f"{k} {c}" for k, c in sorted(m["reasons"].items()))
            lines.append(
                f"| {name} | {n} | {m['wins']} | {m['draws']} | {m['losses']} | {reasons} |"
            )
    return "\n".join(lines) + "\n"
