"""qgen generate as real processes: killed with SIGKILL twice and rerun, it writes exactly what an
uninterrupted run writes; two processes write exactly what one writes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from qgen_fixtures import tiny_unilm_model, tiny_wordpiece_tokenizer

from qgen.io.journal import read_journal

REPO = Path(__file__).resolve().parents[1]
WORDS = "the cat sat on mat in paris is capital of france a dog city river".split()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    tok = tiny_wordpiece_tokenizer()
    torch.manual_seed(0)
    model = tiny_unilm_model(vocab_size=len(tok))
    with torch.no_grad():
        model.cls.predictions.bias[tok.sep_token_id] += 3.0
    model.save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    gen = torch.Generator().manual_seed(1)
    lines = []
    for _ in range(90):
        idx = torch.randint(
            len(WORDS), (int(torch.randint(8, 30, (1,), generator=gen)),), generator=gen
        )
        lines.append(" ".join(WORDS[i] for i in idx.tolist()) + ".")
    (tmp / "corpus.txt").write_text("\n".join(lines) + "\n")
    return tmp


def _cmd(setup, output, *launcher):
    return [
        *launcher, "generate", "--model", str(setup / "model"), "--input",
        str(setup / "corpus.txt"), "--output", str(output), "--seed", "0", "--batch_size", "3",
        "--block_size", "3", "--num_pairs", "2", "--quiet",
    ]  # fmt: skip


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    return env


def _run(cmd, timeout=300):
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _reference(setup) -> bytes:
    ref = setup / "reference.jsonl"
    if not ref.exists():
        _run(_cmd(setup, ref, sys.executable, "-m", "qgen"))
    return ref.read_bytes()


def _journaled_blocks(output) -> int:
    journal = read_journal(str(output))
    return 0 if journal is None else len(journal.blocks)


@pytest.mark.slow
def test_killed_twice_then_rerun_equals_an_uninterrupted_run(setup):
    reference = _reference(setup)
    out = setup / "killed.jsonl"
    cmd = _cmd(setup, out, sys.executable, "-m", "qgen")
    seen = 0
    for _ in range(2):
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _journaled_blocks(out) < seen + 4 and proc.poll() is None:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # at whatever point of the next block it is
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        seen = _journaled_blocks(out)
        assert 0 < seen < 30
    _run(cmd)
    assert out.read_bytes() == reference
    assert read_journal(str(out)).complete
    lines = out.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids))  # none twice
    # the same command once more: nothing to do, nothing changes
    again = _run(cmd)
    assert json.loads(again.stdout.splitlines()[-1])["generated_this_run"] == 0
    assert out.read_bytes() == reference


@pytest.mark.slow
def test_two_processes_write_what_one_writes(setup):
    reference = _reference(setup)
    out = setup / "two.jsonl"
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2", "-m", "qgen")  # fmt: skip
    proc = _run(_cmd(setup, out, *launcher))
    assert out.read_bytes() == reference
    assert not list(setup.glob("two.jsonl.rank*"))  # the shards were merged and removed
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["processes"] == 2 and summary["passages"] == 90


@pytest.mark.slow
def test_accelerate_launch_writes_what_one_process_writes(setup):
    """``accelerate launch --multi_gpu`` (torchrun underneath; on CPUs here) splits the corpus
    the same way. (``accelerate launch --cpu`` starts a single process: several CPU processes
    go through torchrun.)"""
    reference = _reference(setup)
    out = setup / "accelerate.jsonl"
    launcher = (sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no", "-m", "qgen")  # fmt: skip
    proc = _run(_cmd(setup, out, *launcher))
    assert out.read_bytes() == reference
    assert json.loads(proc.stdout.strip().splitlines()[-1])["processes"] == 2


def test_a_different_command_does_not_resume(setup, tmp_path):
    out = tmp_path / "qa.jsonl"
    code = subprocess.run(
        _cmd(setup, out, sys.executable, "-m", "qgen")[:-1] + ["--num_pairs", "1", "--quiet"],
        env=_env(), capture_output=True, text=True, timeout=300,
    ).returncode  # fmt: skip
    assert code == 0
    proc = subprocess.run(
        _cmd(setup, out, sys.executable, "-m", "qgen"), env=_env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "made by a different command (it differs in settings)" in proc.stderr


def test_resume_cuts_a_half_written_block_and_a_torn_journal_line(tmp_path):
    """What a kill between writing records and journaling them leaves behind is undone."""
    from qgen.io.journal import JournaledOutput

    out = tmp_path / "qa.jsonl"
    fp = {"input": "x", "seed": 0}
    writer = JournaledOutput(str(out), fp, overwrite=False, append=False)
    writer.write_block(0, [{"id": "a-0"}, {"id": "a-1"}], passages=2, empty=0)
    writer.write_block(1, [{"id": "b-0"}], passages=1, empty=0)
    writer.close()  # killed: no "complete"
    good = out.read_bytes()
    with open(out, "ab") as f:
        f.write(b'{"id": "c-0"}\n{"id": "c-')  # block 2 half written
    with open(str(out) + ".progress", "a") as f:
        f.write('{"block": 2, "sta')  # its journal line torn
    again = JournaledOutput(str(out), fp, overwrite=False, append=False)
    assert out.read_bytes() == good and sorted(again.done) == [0, 1]
    again.write_block(2, [{"id": "c-0"}], passages=1, empty=0)
    again.finish()
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [
        "a-0",
        "a-1",
        "b-0",
        "c-0",
    ]
    assert JournaledOutput(str(out), fp, overwrite=False, append=False).complete
    with pytest.raises(Exception, match="differs in seed"):
        JournaledOutput(str(out), {**fp, "seed": 1}, overwrite=False, append=False)


def test_resume_before_the_first_block_was_journaled(tmp_path):
    from qgen.io.journal import JournaledOutput

    out = tmp_path / "qa.jsonl"
    JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=False).close()
    out.write_bytes(b'{"id": "a-0"}\n{"id"')  # killed inside block 0
    again = JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=False)
    assert out.read_bytes() == b"" and not again.done


def test_an_output_changed_after_the_run_is_not_resumed(tmp_path):
    from qgen.io.journal import JournaledOutput, OutputError

    out = tmp_path / "qa.jsonl"
    writer = JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=False)
    writer.write_block(0, [{"id": "a-0"}, {"id": "a-1"}], passages=2, empty=0)
    writer.finish()
    out.write_bytes(out.read_bytes()[:5])  # cut by hand
    with pytest.raises(OutputError, match="does not match its journal"):
        JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=False)
    out.unlink()
    with pytest.raises(OutputError, match="missing"):
        JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=False)


def test_append_reads_back_only_its_own_records(tmp_path):
    from qgen.io.journal import JournaledOutput

    out = tmp_path / "qa.jsonl"
    out.write_text('{"id": "old-0"}\n{"id": "old-1"')  # someone else's file, torn at the end
    writer = JournaledOutput(str(out), {"seed": 0}, overwrite=False, append=True)
    writer.write_block(0, [{"id": "new-0"}], passages=1, empty=0)
    assert [r["id"] for r in writer.records()] == ["new-0"]
    writer.finish()
    assert out.read_text().splitlines()[-1] == '{"id": "new-0"}'


def _in_process(monkeypatch, setup, out, rank, world):
    from qgen.cli import main

    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    # the reference ran with OMP_NUM_THREADS=1; this process's torch already chose its thread
    # count, and another count can change the sums in the last bits, hence the samples
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(_cmd(setup, out))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_merge_cut_short_is_redone(setup, tmp_path, monkeypatch, capsys):
    """Two processes run one after the other in this process; the merge dies half way; the
    same command again redoes the merge and writes what one process writes."""
    from qgen.io.journal import JournaledOutput

    reference = _reference(setup)
    out = tmp_path / "qa.jsonl"
    assert _in_process(monkeypatch, setup, out, 1, 2) == 0  # rank 1: its shard only
    real, calls = JournaledOutput.write_block, []

    def dying(self, *args, **kwargs):
        if self.path == str(out):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt("killed during the merge")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(JournaledOutput, "write_block", dying)
    with pytest.raises(KeyboardInterrupt):
        _in_process(monkeypatch, setup, out, 0, 2)
    monkeypatch.setattr(JournaledOutput, "write_block", real)
    assert _in_process(monkeypatch, setup, out, 0, 2) == 0
    assert out.read_bytes() == reference


def test_repeated_passage_ids_are_refused(setup, tmp_path):
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"id": "a", "context": "the cat sat."}\n{"id": "a", "context": "a dog."}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "qgen", "generate", "--model", str(setup / "model"), "--input",
         str(inp), "--output", str(tmp_path / "qa.jsonl")],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "passage id 'a' is used twice" in proc.stderr


def test_a_shard_of_another_command_is_refused_at_merge(tmp_path):
    from qgen.cli.generate import _merge_shards, _shard
    from qgen.cli.options import CLIError
    from qgen.io.journal import JournaledOutput

    out = str(tmp_path / "qa.jsonl")
    shard = JournaledOutput(_shard(out, 0, 1), {"seed": 1, "rank": 0}, overwrite=True, append=False)
    shard.finish()
    with pytest.raises(CLIError, match="a shard of a different command"):
        _merge_shards(out, 1, {"seed": 0}, 0)
