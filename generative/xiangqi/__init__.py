"""A GPT that plays Chinese chess (Xiangqi) from game records, with legal-move decoding
(docs/xiangqi.md): rules, ICCS tokenizers, training with a length curriculum, Su's move scoring
and constrained generation through `decoding`, matches and evaluation, an alpha-beta search with
the LM as policy prior, a UCI engine and a ladder against Fairy-Stockfish. Tokenizers, model
builders and baseline players are looked up by name in the registries ``TOKENIZERS``,
``MODEL_BUILDERS`` and ``PLAYERS`` (`decoding.registry.Registry`)."""

from .board import START_FEN, Board, iccs_to_move, move_to_iccs, perft, split_iccs
from .constraint import LegalMovesLogitsProcessor, generate_move
from .evaluation import EvaluationConfig, default_model_dir, evaluate_xiangqi, load_xiangqi_model
from .ladder import LadderConfig, run_ladder
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
from .search import SearchConfig, Searcher, SearchPlayer, SearchResult
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
    export_xiangqi_model,
    train_xiangqi,
)
from .uci import UCIEngine
from .uci_client import UCIEnginePlayer, fairy_stockfish_player

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
    "LadderConfig",
    "LegalMovesLogitsProcessor",
    "MatchConfig",
    "MoveScorer",
    "RandomPlayer",
    "SearchConfig",
    "SearchPlayer",
    "SearchResult",
    "Searcher",
    "UCIEngine",
    "UCIEnginePlayer",
    "XiangqiCharTokenizer",
    "XiangqiDataArguments",
    "XiangqiModelArguments",
    "XiangqiMoveTokenizer",
    "XiangqiTrainingArguments",
    "build_model",
    "default_model_dir",
    "evaluate_xiangqi",
    "export_xiangqi_model",
    "fairy_stockfish_player",
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
    "run_ladder",
    "score_moves",
    "split_iccs",
    "train_xiangqi",
]
