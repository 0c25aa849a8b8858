"""The arithmetic of inference: bf16 autocast by default where the hardware computes bf16
natively, fp32 one flag away (issue 21), and autocast's weight copies kept across decoding steps."""

import dataclasses

import pytest
import torch
from qgen_fixtures import save_tiny_qag_model

import qgen.modeling.precision as precision
from qgen.cli.main import main as qgen_main
from qgen.generation.generator import QAGenerator
from qgen.modeling.pretrained import quantize_int8

PASSAGES = ["the cat sat on the mat. the dog sat in paris."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_qag_model(tmp_path_factory.mktemp("qag-model"))


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_computes_it_natively(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    expected = torch.bfloat16 if native else None
    assert precision.resolve_autocast_dtype("auto", "cpu") == expected
    assert precision.resolve_autocast_dtype("bf16", "cpu") == torch.bfloat16
    assert precision.resolve_autocast_dtype("fp32", "cpu") is None
    assert precision.resolve_autocast_dtype(None, "cpu") is None
    assert precision.resolve_autocast_dtype(torch.float16, "cpu") == torch.float16
    assert precision.resolve_autocast_dtype("auto", "meta") is None  # no native bf16 known


def test_a_bad_precision_is_refused_at_construction(model_dir):
    with pytest.raises(ValueError, match="autocast_dtype must be .*'fp16x'"):
        precision.resolve_autocast_dtype("fp16x", "cpu")
    with pytest.raises(ValueError, match="autocast_dtype"):
        QAGenerator.from_pretrained(model_dir, device="cpu", autocast_dtype="half")


def test_the_generator_runs_under_the_resolved_dtype(model_dir, monkeypatch):
    seen = []
    import qgen.generation.generator as generator_module

    real = generator_module.decode

    def spy(model, ids, config, **kwargs):
        seen.append((torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None,
                     config.inference_mode))  # fmt: skip
        return real(model, ids, config, **kwargs)

    monkeypatch.setattr(generator_module, "decode", spy)
    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        generator = QAGenerator.from_pretrained(model_dir, device="cpu", seed=0)
        assert generator.autocast_dtype == "auto"
        assert generator.compute_dtype == (torch.bfloat16 if native else None)
        seen.clear()
        generator.generate(PASSAGES)
        # under autocast, decoding runs under no_grad, where autocast keeps its bf16 weights
        # (inference mode would cast every weight again at every step)
        expected = (torch.bfloat16, False) if native else (None, True)
        assert seen and set(seen) == {expected}
    fp32 = QAGenerator.from_pretrained(model_dir, device="cpu", seed=0, autocast_dtype="fp32")
    assert fp32.compute_dtype is None


def test_an_int8_model_is_never_autocast(model_dir, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    generator = QAGenerator.from_pretrained(model_dir, device="cpu")
    generator.model = quantize_int8(generator.model)
    assert generator.compute_dtype is None


def test_bf16_and_fp32_write_the_same_kind_of_pairs(model_dir):
    bf16 = QAGenerator.from_pretrained(model_dir, device="cpu", seed=0, autocast_dtype="bf16")
    fp32 = QAGenerator.from_pretrained(model_dir, device="cpu", seed=0, autocast_dtype="fp32")
    for generator in (bf16, fp32):
        [pairs] = generator.generate(PASSAGES)
        assert pairs and all(
            PASSAGES[0][p["answer_start"] :].startswith(p["answer"]) for p in pairs
        )


@pytest.mark.parametrize(
    "flags, expected", [([], "auto"), (["--bf16"], "bf16"), (["--fp32"], "fp32"),
                        (["--precision", "fp32"], "fp32")],
)  # fmt: skip
def test_cli_precision_flags(model_dir, tmp_path, monkeypatch, flags, expected):
    import qgen.generation.generator as generator_module

    seen = []

    original = generator_module.QAGenerator.__init__

    def init(self, *args, **kwargs):
        seen.append(kwargs.get("autocast_dtype"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(generator_module.QAGenerator, "__init__", init)
    src = tmp_path / "in.txt"
    src.write_text(PASSAGES[0] + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    qgen_main(["generate", "--model", str(model_dir), "--input", str(src), "--output", str(out),
               "--quiet", "--no_round_trip", *flags])  # fmt: skip
    assert seen and set(seen) == {expected}


def test_cli_refuses_bf16_with_int8(model_dir, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text(PASSAGES[0] + "\n", encoding="utf-8")
    status = qgen_main(
        ["generate", "--model", str(model_dir), "--input", str(src), "--bf16", "--int8"]
    )
    assert status == 2
    assert "--bf16 and --int8 are alternatives" in capsys.readouterr().err


def test_decoding_configs_are_left_as_saved(model_dir):
    # the no_grad switch is made per call, not written into the generator's settings
    generator = QAGenerator.from_pretrained(model_dir, device="cpu", seed=0, autocast_dtype="bf16")
    generator.generate(PASSAGES)
    assert generator.answer_config.inference_mode and generator.question_config.inference_mode
    assert dataclasses.asdict(generator.generation_config.question)["inference_mode"] is True
