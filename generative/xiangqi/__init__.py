"""A GPT that plays Chinese chess (Xiangqi) from game records, with legal-move decoding
(docs/xiangqi.md): rules, ICCS tokenizers, training with a length curriculum, Su's move scoring
and constrained generation through `decoding`, matches and evaluation, an alpha-beta search with
the LM as policy prior, a UCI engine and a ladder against Fairy-Stockfish. Tokenizers, model
builders and baseline players are looked up by name in the registries ``TOKENIZERS``,
``MODEL_BUILDERS`` and ``PLAYERS`` (`decoding.registry.Registry`).

The names below load on first use (PEP 562 ``__getattr__``), so that ``python -m
generative.xiangqi uci`` answers ``uciok`` before torch, transformers and ``decoding`` are
imported; ``from generative.xiangqi import LMPlayer`` works as before."""

from __future__ import annotations

import importlib

# public name -> the module that defines it
_EXPORTS = {
    "board": ("START_FEN", "Board", "iccs_to_move", "move_to_iccs", "perft", "split_iccs"),
    "constraint": ("LegalMovesLogitsProcessor", "generate_move"),
    "evaluation": ("EvaluationConfig", "evaluate_xiangqi"),
    "ladder": ("LadderConfig", "run_ladder"),
    "match": ("GameRecord", "MatchConfig", "play_game", "play_match"),
    "model": ("MODEL_BUILDERS", "XiangqiModelArguments", "build_model"),
    "player": (
        "PLAYERS",
        "GreedyMaterialPlayer",
        "LMPlayer",
        "LMPlayerConfig",
        "RandomPlayer",
        "make_player",
        "material",
    ),
    "pretrained": ("default_model_dir", "load_xiangqi_model"),
    "scoring": ("MoveScorer", "score_moves"),
    "search": ("SearchConfig", "Searcher", "SearchPlayer", "SearchResult"),
    "tokenizer": (
        "TOKENIZERS",
        "XiangqiCharTokenizer",
        "XiangqiMoveTokenizer",
        "load_xiangqi_tokenizer",
    ),
    "training": (
        "CurriculumCallback",
        "CurriculumCollator",
        "XiangqiDataArguments",
        "XiangqiTrainingArguments",
        "export_xiangqi_model",
        "train_xiangqi",
    ),
    "uci": ("UCIEngine",),
    "uci_client": ("UCIEnginePlayer", "fairy_stockfish_player"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
