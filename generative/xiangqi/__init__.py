"""A GPT that plays Chinese chess (Xiangqi) from game records, with legal-move decoding
(docs/xiangqi.md): rules, ICCS tokenizers, training with a length curriculum, Su's move scoring
and constrained generation through `decoding`, matches and evaluation. Tokenizers, model
builders and baseline players are looked up by name in the registries ``TOKENIZERS``,
``MODEL_BUILDERS`` and ``PLAYERS`` (`decoding.registry.Registry`)."""

from .board import START_FEN, Board, iccs_to_move, move_to_iccs, perft, split_iccs
from .constraint import LegalMovesLogitsProcessor, generate_move
from .evaluation import EvaluationConfig, evaluate_xiangqi, load_xiangqi_model
from .match import GameRecord, MatchConfig, play_game, play_match
from .model import MODEL_BUILDERS, XiangqiModelArguments, build_model
from .player import (
    PLAYERS,
    GreedyMaterialPlayer,
    LMPlayer,
    LMPlayerConfig,
    RandomPlayer,
    make_player,
    material,
)
from .scoring import MoveScorer, score_moves
from .tokenizer import (
    TOKENIZERS,
    XiangqiCharTokenizer,
    XiangqiMoveTokenizer,
    load_xiangqi_tokenizer,
)
from .training import (
    CurriculumCallback,
    CurriculumCollator,
    XiangqiDataArguments,
    XiangqiTrainingArguments,
    train_xiangqi,
)

__all__ = [
    "MODEL_BUILDERS",
    "PLAYERS",
    "START_FEN",
    "TOKENIZERS",
    "Board",
    "CurriculumCallback",
    "CurriculumCollator",
    "EvaluationConfig",
    "GameRecord",
    "GreedyMaterialPlayer",
    "LMPlayer",
    "LMPlayerConfig",
    "LegalMovesLogitsProcessor",
    "MatchConfig",
    "MoveScorer",
    "RandomPlayer",
    "XiangqiCharTokenizer",
    "XiangqiDataArguments",
    "XiangqiModelArguments",
    "XiangqiMoveTokenizer",
    "XiangqiTrainingArguments",
    "build_model",
    "evaluate_xiangqi",
    "generate_move",
    "iccs_to_move",
    "load_xiangqi_model",
    "load_xiangqi_tokenizer",
    "make_player",
    "material",
    "move_to_iccs",
    "perft",
    "play_game",
    "play_match",
    "score_moves",
    "split_iccs",
    "train_xiangqi",
]
