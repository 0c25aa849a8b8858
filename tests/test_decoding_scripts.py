"""Smoke runs of the decoding demo and benchmark scripts."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_decode_demo_smoke(capsys):
    shares = _load("scripts/decode_demo.py").main(["--num_rows", "4", "--max_new_tokens", "8"])
    assert set(shares) >= {"greedy", "top-k=2", "consistent top-k=2"}
    assert all(0.0 <= v <= 1.0 for v in shares.values())
    assert "ended" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_decoding_quick(capsys):
    records = _load("benchmarks/bench_decoding.py").main(["--quick"])
    cases = [r for r in records if "case" in r]
    assert len(cases) == 6
    assert all(r["identical_after_hf"] and r["identical_before_hf"] for r in cases)
    assert all(r["ratio_after_vs_hf"] > 0 and r["ratio_after_vs_before"] > 0 for r in cases)
    assert records[-1]["env"] and records[-1]["threads"] == 1


@pytest.mark.slow
def test_bench_decoding_profile_quick():
    records = _load("benchmarks/bench_decoding.py").main(
        ["--quick", "--profile", "--cases", "nucleus", "--batches", "2"]
    )
    assert records[0]["floor_ms_per_step"] > 0
    (profile,) = [r for r in records if "profile" in r]
    for side in ("after", "before", "hf"):
        stages = profile[side]
        assert stages["processors"] > 0 and stages["selection"] > 0 and stages["body"] > 0
        parts = sum(v for k, v in stages.items() if k != "total")
        assert abs(parts - stages["total"]) < 1e-6 + 0.05
