"""The non-termination study: data prep, config checks, the invariant checker, and the
``--quick`` end-to-end run whose invariants must hold for any weights."""

import json
import sys
from pathlib import Path

import pytest

from studies.nontermination.config import DECODERS, NonterminationConfig
from studies.nontermination.corpus import load_corpus, split_into_sentences, tokenize
from studies.nontermination.study import check_invariants, run_study

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def test_split_and_tokenize():
    text = 'It rained. "Then" it stopped! Did it? yes.'
    assert split_into_sentences(text) == ["It rained.", '"Then" it stopped!', "Did it? yes."]
    assert tokenize("The Dog's ball, 1990.") == ["the", "dog's", "ball", ",", "1990", "."]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"decoders": ["beam-3"]}, "decoder"),
        ({"epsilons": [0.0]}, "epsilons"),
        ({"architectures": ["rnn"]}, "architectures"),
    ],
)
def test_bad_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NonterminationConfig(**kwargs)


def test_check_invariants_flags_only_guaranteed_cases():
    cfg = NonterminationConfig.quick()  # L = 80 > greedy bound 69 of eps = 1e-2
    row = {"model": "m", "prefixes": "heldout", "max_len": 80, "r_L": 0.5}
    rows = [
        {**row, "epsilon": 1e-2, "decoder": "greedy"},  # violation
        {**row, "epsilon": 1e-2, "decoder": "c-top-k-2"},  # violation
        {**row, "epsilon": 1e-2, "decoder": "top-k-2"},  # no guarantee for plain top-k
        {**row, "epsilon": 1e-4, "decoder": "greedy"},  # bound 6932 > L: no guarantee
        {**row, "epsilon": None, "decoder": "c-nucleus-0.2"},  # vanilla: no guarantee
    ]
    assert len(check_invariants(rows, cfg)) == 2
    assert set(DECODERS) >= set(cfg.decoders)


def test_missing_data_path_names_the_path_and_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data_path"):
        load_corpus(NonterminationConfig.quick())  # no data path given
    missing = tmp_path / "nowhere" / "du_train.json"
    cfg = NonterminationConfig.quick(data_path=str(missing), output_dir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="--data_path") as err:
        run_study(cfg)
    assert str(missing) in str(err.value)
    assert not (tmp_path / "out").exists()  # checked before any output is written


def test_script_exits_with_the_message_when_data_is_missing(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "nontermination_study.py"
    missing = tmp_path / "du_train.json"
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--data_path", str(missing)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the script finds studies/ from its own location, not the cwd
    )
    assert run.returncode == 1
    assert "--data_path" in run.stderr and str(missing) in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_quick_study_end_to_end(shared_data, tmp_path):
    from nontermination_study import main

    data = shared_data / "squad" / "du_train.json"
    rc = main(["--quick", "--data_path", str(data), "--output_dir", str(tmp_path)])
    assert rc == 0  # no invariant violation
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["violations"] == []
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["r_L"] <= 1.0 for r in rows)
    st_greedy = [r for r in rows if r["epsilon"] == 1e-2 and r["decoder"] == "greedy"]
    assert len(st_greedy) == 4 and all(r["r_L"] == 0.0 and r["max_len"] <= 69 for r in st_greedy)
    assert (tmp_path / "tables.md").exists() and (tmp_path / "nontermination.png").exists()
    assert all(m["test_ppl"] > 1 for m in summary["models"].values())
