"""Start-up: ``generative`` and ``generative.xiangqi`` load their names on first use (PEP 562),
so that the UCI engine answers ``uci`` before torch / transformers are imported, and loads the
model on ``isready`` (or the first ``go``). Import checks run in a fresh interpreter (this one
has torch already); none of them is timed."""

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import generative
import generative.xiangqi as gx
from generative.xiangqi.pretrained import default_model_dir
from generative.xiangqi.uci import UCIEngine

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
HEAVY = ("torch", "transformers", "datasets", "decoding", "numpy")


def fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300
    )


def loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = fresh_python(probe)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import generative",
        "import generative.xiangqi",
        "import generative.xiangqi.uci, generative.xiangqi.cli, generative.xiangqi.pretrained",
        "from generative.xiangqi import Board, SearchPlayer, UCIEngine, default_model_dir",
    ],
)
def test_imports_on_the_engine_path_load_neither_torch_nor_transformers(code):
    assert loaded_after(code) == []


def test_the_uci_command_answers_before_the_model_loads():
    """The whole ``python -m generative.xiangqi uci`` path with the shipped model (or none):
    ``uci`` then ``quit`` prints ``uciok`` and never imports torch or transformers."""
    code = (
        "import io, sys\n"
        "from generative.xiangqi.cli import main\n"
        "sys.stdin = io.StringIO('uci\\nquit\\n')\n"
        "main(['uci'])"
    )
    done = fresh_python(code + f"\nprint('LOADED', [m for m in {HEAVY!r} if m in sys.modules])")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "uciok" in lines
    assert lines[-1] == "LOADED []"


@pytest.mark.skipif(default_model_dir() is None, reason="no model shipped")
def test_isready_loads_the_model_that_uci_did_not():
    out = io.StringIO()
    engine = UCIEngine(out, default_model_dir())
    engine.handle("uci")
    assert out.getvalue().splitlines()[-1] == "uciok"
    assert engine.scorer is None  # `uci` is answered without the model
    engine.handle("isready")
    assert out.getvalue().splitlines()[-1] == "readyok"
    assert engine.scorer is not None


@pytest.mark.parametrize("package", [generative, gx])
def test_every_public_name_resolves_to_its_module_attribute(package):
    for name in package.__all__:
        value = getattr(package, name)
        module = importlib.import_module(f"{package.__name__}.{package._MODULE_OF[name]}")
        assert value is getattr(module, name), name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_star_import_gives_every_name():
    namespace: dict = {}
    exec("from generative.xiangqi import *", namespace)
    assert {"UCIEngine", "LMPlayer", "train_xiangqi", "load_xiangqi_model"} <= set(namespace)


def test_startup_benchmark_smoke_run():
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_xiangqi_uci_startup import main as bench_main

    (row,) = bench_main(["--launches", "1", "--model", "none", "--movetime", "50"])
    assert 0 < row["uciok_s"] <= row["readyok_s"] <= row["bestmove_s"]
