"""The shipped model and checked loading: damaged or missing checkpoints get clear errors; the
decoding settings saved beside a model round-trip and are the defaults."""

import json
import shutil

import pytest
import torch
from qgen_fixtures import save_tiny_reader, tiny_unilm_model, tiny_wordpiece_tokenizer

import qgen.modeling.pretrained
from decoding import DecodingConfig
from qgen.generation.config import CONFIG_NAME, QAGenerationConfig
from qgen.generation.generator import QAGenerator
from qgen.generation.presets import default_answer_config, default_question_config
from qgen.modeling.pretrained import QGenModelError, check_model_dir, default_model_path, load_model


@pytest.fixture
def model_dir(tmp_path):
    tok = tiny_wordpiece_tokenizer()
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 4.0
    path = tmp_path / "model"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_generation_config_round_trip(tmp_path):
    config = QAGenerationConfig(
        answer=default_answer_config(top_p=1.0, top_k=5, consistent=False, eos_token_id=3),
        question=default_question_config(no_repeat_ngram_size=3, num_beams=4),
        constrain_answers=False,
        answer_candidates=1.5,
        num_pairs=5,
        max_source_length=256,
        window_stride=32,
    )
    path = config.save_pretrained(tmp_path)
    assert path.endswith(CONFIG_NAME)
    assert QAGenerationConfig.from_pretrained(tmp_path) == config
    assert QAGenerationConfig.from_pretrained(tmp_path / "nothing-here") == QAGenerationConfig()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"num_pairs": 0}, "num_pairs must be >= 1"),
        ({"nucleus": 0.9}, r"unknown field\(s\) \['nucleus'\]"),
        ({"answer": {"top_p": 2.0}}, "field 'answer': top_p must be in"),
        ({"question": {"beams": 5}}, r"field 'question': unknown field\(s\) \['beams'\]"),
        ({"answer": [1]}, "field 'answer': expected an object"),
    ],
)
def test_bad_generation_config_names_file_and_field(tmp_path, raw, message):
    (tmp_path / CONFIG_NAME).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message) as err:
        QAGenerationConfig.from_pretrained(tmp_path)
    assert CONFIG_NAME in str(err.value)
    (tmp_path / CONFIG_NAME).write_text("{")
    with pytest.raises(ValueError, match="line 1: malformed JSON"):
        QAGenerationConfig.from_pretrained(tmp_path)


def test_from_pretrained_uses_saved_settings_and_arguments_override(model_dir):
    QAGenerationConfig(
        question=default_question_config(strategy="greedy", num_beams=1), num_pairs=2,
        constrain_answers=False,
    ).save_pretrained(model_dir)  # fmt: skip
    gen = QAGenerator.from_pretrained(model_dir, device="cpu")
    assert gen.num_pairs == 2 and gen.question_config.strategy == "greedy"
    assert not gen.constrain_answers
    gen = QAGenerator.from_pretrained(model_dir, device="cpu", num_pairs=4, preset="su-2020-07")
    assert gen.num_pairs == 4 and gen.question_config.num_beams == 5
    assert gen.answer_config.top_k == 5
    assert gen.generation_config.num_pairs == 4


def test_save_pretrained_writes_a_loadable_directory(model_dir, tmp_path):
    gen = QAGenerator.from_pretrained(model_dir, device="cpu", num_pairs=1)
    gen.save_pretrained(tmp_path / "copy")
    again = QAGenerator.from_pretrained(tmp_path / "copy", device="cpu")
    assert again.generation_config == gen.generation_config


def test_fp16_weights_load_as_float32(model_dir, tmp_path):
    """The shipped checkpoint stores fp16 tensors and says float32 in its config."""
    model, tok = load_model(model_dir, "cpu")
    half = tmp_path / "half"
    model.half().save_pretrained(half)
    tok.save_pretrained(half)
    config = json.loads((half / "config.json").read_text())
    config["dtype"] = "float32"
    (half / "config.json").write_text(json.dumps(config))
    loaded, _ = load_model(half, "cpu")
    assert loaded.bert.embeddings.word_embeddings.weight.dtype == torch.float32
    import transformers

    assert transformers.AutoModelForCausalLM.from_pretrained(half).dtype == torch.float32


def _damage(path, kind):
    weights = path / "model.safetensors"
    if kind == "missing":
        weights.unlink()
    elif kind == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif kind == "lfs":
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 45\n")
    elif kind == "no_tokenizer":
        for name in ("tokenizer.json", "vocab.txt"):
            (path / name).unlink(missing_ok=True)
    elif kind == "no_config":
        (path / "config.json").unlink()


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "no weights file"),
        ("truncated", "damaged weights file: .* bytes, the header says"),
        ("lfs", "damaged weights file: a Git LFS pointer"),
        ("no_tokenizer", "no tokenizer files"),
        ("no_config", r"not a model directory \(no config.json\)"),
    ],
)
def test_damaged_checkpoints_get_clear_errors(model_dir, kind, message):
    check_model_dir(model_dir)  # intact
    _damage(model_dir, kind)
    with pytest.raises(QGenModelError, match=message):
        check_model_dir(model_dir)
    with pytest.raises(QGenModelError, match=message):
        QAGenerator.from_pretrained(model_dir)


def test_missing_shipped_model_says_what_to_do(tmp_path, monkeypatch, model_dir):
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", tmp_path / "models")
    with pytest.raises(QGenModelError, match="no such model directory.*reinstall"):
        default_model_path()
    with pytest.raises(QGenModelError, match="reinstall"):
        QAGenerator.from_pretrained()
    shutil.copytree(model_dir, tmp_path / "models" / qgen.modeling.pretrained.DEFAULT_MODEL)
    assert QAGenerator.from_pretrained(device="cpu").generate(["the cat sat."])


def test_decoding_config_fields_are_all_saved():
    saved = QAGenerationConfig().to_dict()["answer"]
    assert set(saved) == {f for f in DecodingConfig.__dataclass_fields__} - {"generator", "seed"}


def test_export_model_writes_compact_fp16_that_loads_as_float32(model_dir, tmp_path):
    import sys
    from pathlib import Path

    from safetensors import safe_open

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import export_model

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"num_pairs": 2}))
    out = export_model.main(
        ["--checkpoint", str(model_dir), "--output", str(tmp_path / "exported"), "--task", "qag",
         "--generation_config", str(settings)]
    )  # fmt: skip
    with safe_open(f"{out}/model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    model, _ = load_model(out, "cpu")
    assert model.dtype == torch.float32 and model.config.qgen_task == "qag"
    gen = QAGenerator.from_pretrained(out, device="cpu")
    assert gen.num_pairs == 2 and gen.task == "qag"
    original, _ = load_model(model_dir, "cpu")
    for (name, a), b in zip(original.state_dict().items(), model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-3), name


@pytest.mark.slow
def test_the_shipped_model_writes_span_pairs():
    """The real checkpoint inside the package: it loads with its card and settings, and every
    pair it writes for the bundled example passages has an answer that is a passage span."""
    from importlib.resources import files

    path = default_model_path()
    assert (
        qgen.modeling.pretrained.MODELS_DIR / qgen.modeling.pretrained.DEFAULT_MODEL / "README.md"
    ).is_file()
    assert QAGenerationConfig.from_pretrained(path).constrain_answers
    gen = QAGenerator.from_pretrained(device="cpu", seed=0)
    assert gen.task == "qag" and gen.model.dtype == torch.float32
    text = files("qgen").joinpath("resources/sample_passages.txt").read_text(encoding="utf-8")
    passages = [line for line in text.splitlines() if line.strip()][:3]
    out = gen.generate(passages, num_pairs=3)
    assert sum(len(pairs) for pairs in out) >= 6
    for passage, pairs in zip(passages, out):
        for pair in pairs:
            start = pair["answer_start"]
            assert passage[start : start + len(pair["answer"])] == pair["answer"]
            assert pair["question"].endswith("?")
    # the example: three distinct pairs, not one (the answer "1889" is very likely)
    eiffel = (
        "The Eiffel Tower is in Paris. It was built in 1889 by Gustave Eiffel for the World Fair."
    )
    pairs = gen.generate([eiffel], num_pairs=3)[0]
    assert len(pairs) == 3 and len({p["answer"] for p in pairs}) == 3


def test_int8_model_quantizes_linear_layers_and_keeps_the_original(model_dir):
    from qgen.modeling.pretrained import quantize_int8

    model, tok = load_model(model_dir, "cpu")
    int8 = quantize_int8(model)
    kinds = {type(m).__module__ for m in int8.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in k for k in kinds)
    assert isinstance(model.bert.encoder.layer[0].attention.self.query, torch.nn.Linear)
    ids = tok("the cat sat on the mat.", return_tensors="pt")
    with torch.no_grad():
        a = model.bert(**ids).last_hidden_state
        b = int8.bert(**ids).last_hidden_state
    # int8 weights: close to the float32 scores, not equal
    assert torch.allclose(a, b, atol=0.2) and not torch.equal(a, b)
    loaded, _ = load_model(model_dir, "cpu", int8=True)
    assert type(loaded.bert.encoder.layer[0].attention.self.query) is not torch.nn.Linear


@pytest.mark.slow
def test_the_shipped_reader_answers_questions():
    """The real extractive reader inside the package (the default of ``qgen generate
    --round_trip``): it loads with its card and finds the answers of plain questions."""
    from qgen.generation.reader import ExtractiveReader
    from qgen.modeling.pretrained import DEFAULT_READER, MODELS_DIR, default_reader_path

    path = default_reader_path()
    assert (MODELS_DIR / DEFAULT_READER / "README.md").is_file()
    reader = ExtractiveReader(path, "cpu")
    passage = (
        "The Eiffel Tower is in Paris. It was built in 1889 by Gustave Eiffel for the World Fair."
    )
    questions = ["When was the Eiffel Tower built?", "Who built the Eiffel Tower?",
                 "In which city is the Eiffel Tower?"]  # fmt: skip
    answers = [a["answer"] for a in reader.answer([passage] * 3, questions)]
    assert answers == ["1889", "Gustave Eiffel", "Paris"]


def test_reader_directories_are_checked(model_dir, tmp_path, monkeypatch):

    from qgen.modeling.pretrained import default_reader_path

    reader = tmp_path / "reader"
    save_tiny_reader(reader)
    check_model_dir(reader, reader=True)
    with pytest.raises(QGenModelError, match="not an extractive QA model"):
        check_model_dir(model_dir, reader=True)  # a qgen model is no reader
    with pytest.raises(QGenModelError, match="not a qgen model"):
        check_model_dir(reader)
    weights = reader / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(QGenModelError, match="truncated"):
        check_model_dir(reader, reader=True)
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", tmp_path / "models")
    with pytest.raises(QGenModelError, match="shipped reader is missing.*--round_trip_reader"):
        default_reader_path()
