"""Smoke runs of the training script on a tiny model: train, checkpoint, resume, reload."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer

from qgen.modeling.unilm import UniLMForQAGeneration
from qgen.training.trainer import DataArguments, QGTrainingArguments, split_by_context

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "qgen" / "resources" / "sample_squad.json"
sys.path.insert(0, str(REPO / "scripts"))


@pytest.fixture
def tiny_checkpoint(tmp_path) -> str:
    """A tiny random BERT-shaped checkpoint with its tokenizer, saved like a downloaded model."""
    path = tmp_path / "tiny-bert"
    tokenizer = tiny_wordpiece_tokenizer()
    vocab_size = max(tokenizer.get_vocab().values()) + 1  # robust to duplicate vocab lines
    tiny_unilm_model(vocab_size=vocab_size).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _argv(model, out, *extra):
    return [
        "--model_name_or_path", model, "--train_file", str(SAMPLE), "--output_dir", str(out),
        "--per_device_train_batch_size", "4", "--max_train_samples", "8", "--max_length", "96",
        "--save_steps", "2", "--logging_steps", "1", "--use_cpu", "--seed", "0",
        "--dataloader_num_workers", "0", "--report_to", "none", *extra,
    ]  # fmt: skip


def test_train_then_resume_and_reload(tiny_checkpoint, tmp_path):
    import train_qag

    out = tmp_path / "run"
    metrics = train_qag.main(
        _argv(
            tiny_checkpoint, out, "--max_steps", "2", "--validation_split", "0.2", "--task", "qag"
        )
    )
    assert metrics["train_samples"] > 0 and metrics["eval_loss"] > 0
    # the model in out, the Trainer's checkpoints in out/checkpoints (qgen.training.trainer)
    assert (out / "checkpoints" / "checkpoint-2").is_dir() and (out / "heldout.jsonl").is_file()
    held = [json.loads(line) for line in open(out / "heldout.jsonl")]
    assert held and {"context", "question", "answers"} <= set(held[0])

    metrics = train_qag.main(
        _argv(tiny_checkpoint, out, "--max_steps", "4", "--resume_from_checkpoint", "latest")
    )
    state = json.loads((out / "checkpoints" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    model = UniLMForQAGeneration.from_pretrained(out)  # a qgen model directory
    assert model.config.model_type == "qgen-unilm"
    assert os.path.isfile(out / "tokenizer_config.json")


@pytest.mark.parametrize(
    "task, extra",
    # sentence-qg also passes a regularizer option (docs/qgen.md, "Training")
    [("qg", ()), ("sentence-qg", ("--fgm_epsilon", "0.5"))],
)
def test_other_tasks_smoke(tiny_checkpoint, tmp_path, task, extra):
    import train_qag

    metrics = train_qag.main(
        _argv(tiny_checkpoint, tmp_path / task, "--max_steps", "1", "--task", task, *extra)
    )
    assert metrics["train_loss"] > 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"task": "summarise"}, "task"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"max_length": 0}, "max_length"),
        ({"max_train_samples": 0}, "max_train_samples"),
    ],
)
def test_data_arguments_validate(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DataArguments(train_file="x.json", **kwargs)


def test_mixed_precision_validated(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision"):
        QGTrainingArguments(output_dir=str(tmp_path), mixed_precision="fp8")
    with pytest.raises(ValueError, match="fp16.*GPU"):
        QGTrainingArguments(output_dir=str(tmp_path), use_cpu=True, mixed_precision="fp16")
    args = QGTrainingArguments(output_dir=str(tmp_path), use_cpu=True, mixed_precision="no")
    assert not args.bf16 and not args.fp16


@pytest.mark.parametrize("native", [True, False])
def test_auto_mixed_precision_on_cpu_follows_native_bf16(tmp_path, monkeypatch, native):
    """auto: bf16 autocast on a CPU that computes bf16 natively (faster there), fp32 elsewhere
    (emulated bf16 is slower); the Trainer takes bf16 on CPU only with use_cpu."""
    import qgen.training.trainer

    monkeypatch.setattr(qgen.training.trainer, "cpu_has_native_bf16", lambda: native)
    args = QGTrainingArguments(output_dir=str(tmp_path), use_cpu=True)
    assert args.bf16 is native and not args.fp16 and args.use_cpu


def test_split_by_context_keeps_passages_apart():
    from qgen.io.squad import load_squad

    ds = load_squad(str(SAMPLE))
    train, held = split_by_context(ds, 0.25, seed=1)
    assert len(train) + len(held) == len(ds)
    assert not set(train["context"]) & set(held["context"])
    assert len(set(held["context"])) == round(0.25 * len(set(ds["context"])))


def test_drop_long_answers():
    import datasets

    from qgen.io.squad import drop_long_answers

    ds = datasets.Dataset.from_list(
        [
            {
                "context": "c",
                "question": "q",
                "answers": {"text": ["the cat"], "answer_start": [0]},
            },
            {
                "context": "c",
                "question": "q",
                "answers": {"text": ["the " * 40], "answer_start": [0]},
            },
        ]
    )
    kept = drop_long_answers(ds, tiny_wordpiece_tokenizer(), 8)
    assert len(kept) == 1 and kept[0]["answers"]["text"] == ["the cat"]
    assert drop_long_answers(None, None, 8) is None


@pytest.mark.slow
def test_two_process_distributed_run(tiny_checkpoint, tmp_path):
    """The script runs unchanged under a multi-process launcher (DDP over gloo on CPU, as over
    NCCL on GPUs): the processes form one data-parallel job, and a wall-clock budget stops all of
    them at the same step instead of leaving one waiting forever for the other's gradients."""
    out = tmp_path / "ddp"
    # max_steps far beyond what 3 s allow, so that the budget, not max_steps, always stops it (an
    # idle machine can run 200 steps of the tiny model within the 3 s: 146 in one run here)
    argv = _argv(tiny_checkpoint, out, "--max_steps", "100000", "--task", "qag")
    argv = [a for a in argv if a != "--use_cpu"]  # the script must pick gloo/CPU by itself
    argv += ["--max_train_samples", "32", "--max_train_minutes", "0.05", "--save_strategy", "no"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(REPO / "scripts" / "train_qag.py"), *argv,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "all_results.json").read_text())
    steps = metrics["global_step"]
    assert 0 < steps < 100000  # stopped by the budget, not by max_steps
    # one job of two processes: each optimizer step consumed 2 x 4 examples
    assert metrics["examples_seen"] == steps * 2 * 4
    assert UniLMForQAGeneration.from_pretrained(out).config.model_type == "qgen-unilm"
