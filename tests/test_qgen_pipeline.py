"""The "qa-generation" pipeline: loads from a directory after `import qgen`, batched, schema."""

import pytest
import torch
import transformers
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer

import qgen

PASSAGES = ["the cat sat on the mat.", "paris is the capital of france.", "a b c d e f g."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    tok = tiny_wordpiece_tokenizer()
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 4.0  # end targets early (fast tests)
    path = tmp_path_factory.mktemp("qag-model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _check(pairs, passage):
    assert isinstance(pairs, list)
    for p in pairs:
        assert set(p) == {"question", "answer", "answer_start", "score"}
        if p["answer_start"] >= 0:
            assert passage[p["answer_start"] :].startswith(p["answer"])


def test_task_is_registered():
    assert "qa-generation" in transformers.pipelines.PIPELINE_REGISTRY.get_supported_tasks()
    assert qgen.QAGenerationPipeline.__name__ == "QAGenerationPipeline"


def test_pipeline_from_directory(model_dir):
    qa = transformers.pipeline("qa-generation", model=model_dir, seed=0, keep_non_span_answers=True)
    assert isinstance(qa, qgen.QAGenerationPipeline)
    assert isinstance(qa.model, qgen.UniLMForQAGeneration)
    single = qa(PASSAGES[0], num_pairs=2)
    _check(single, PASSAGES[0])
    assert len(single) <= 2
    batched = qa(PASSAGES, batch_size=2)
    assert len(batched) == 3
    for pairs, passage in zip(batched, PASSAGES):
        _check(pairs, passage)
        assert len(pairs) <= 3
    assert any(batched)


def test_batched_equals_generator(model_dir):
    """The pipeline is QAGenerator underneath: same seed, same output."""
    qa = transformers.pipeline("qa-generation", model=model_dir)
    kwargs = dict(seed=1, preset="su-2020-11", keep_non_span_answers=True)
    via_pipeline = qa(PASSAGES, batch_size=3, **kwargs)
    generator = qgen.QAGenerator(qa.model, qa.tokenizer, preset="su-2020-11", seed=1)
    assert via_pipeline == generator.generate(PASSAGES, batch_size=3, keep_non_span_answers=True)


def test_bad_arguments(model_dir):
    qa = transformers.pipeline("qa-generation", model=model_dir)
    with pytest.raises(ValueError, match=r"passages\[1\] is an empty passage"):
        qa(["ok passage.", " "])
    with pytest.raises(ValueError, match=r"passages\[0\] must be a string, got int"):
        qa([3])
    with pytest.raises(TypeError, match="unknown qa-generation argument"):
        qa("ok passage.", top_p=0.5)
    assert qa([]) == []


def test_pipeline_without_a_model_uses_the_shipped_one(model_dir, tmp_path, monkeypatch):
    import shutil

    import qgen.modeling.pretrained

    shipped = tmp_path / "models"
    shutil.copytree(model_dir, shipped / qgen.modeling.pretrained.DEFAULT_MODEL)
    monkeypatch.setattr(qgen.modeling.pretrained, "MODELS_DIR", shipped)
    qa = transformers.pipeline("qa-generation", seed=0)
    assert qa.model.name_or_path == str(shipped / qgen.modeling.pretrained.DEFAULT_MODEL)
    _check(qa(PASSAGES[0]), PASSAGES[0])
    (shipped / qgen.modeling.pretrained.DEFAULT_MODEL / "config.json").unlink()
    with pytest.raises(qgen.QGenModelError, match="no config.json.*reinstall"):
        transformers.pipeline("qa-generation")


def test_pipeline_uses_the_saved_settings(model_dir, tmp_path):
    import shutil

    saved = tmp_path / "saved"
    shutil.copytree(model_dir, saved)
    qgen.QAGenerationConfig(num_pairs=1).save_pretrained(saved)
    qa = transformers.pipeline("qa-generation", model=str(saved), seed=0)
    assert len(qa(PASSAGES[0])) <= 1
    assert len(qa(PASSAGES[0], num_pairs=3)) > 1  # a call argument overrides the saved one
