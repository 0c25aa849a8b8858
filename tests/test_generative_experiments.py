"""End-to-end smoke run of scripts/generative_experiments.py --quick (every part, tiny sizes)."""

import importlib.util
import json
from pathlib import Path

import pytest

from studies.generative.experiments import ExperimentConfig

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generative_experiments.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("generative_experiments_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_writes_every_result_and_plot(tmp_path):
    out, img = tmp_path / "out", tmp_path / "img"
    _load_script().main(["--quick", "--out_dir", str(out), "--img_dir", str(img)])
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    parts = {r["part"] for r in rows}
    assert {"minibatch", "vae", "wgan_toy", "wgan_digits", "digits_classifier", "timing"} <= parts
    for r in rows:
        if r["part"] in ("wgan_toy", "wgan_digits"):
            assert r["final_exact_w1"] > 0 and "final_critic_estimate" in r
        if r["part"] == "minibatch":
            assert r["real_vs_real"] > 0 and r["real_vs_centroids"] > 0
    assert {p.name for p in img.glob("*.png")} >= {
        "generative_vae_curves.png",
        "generative_vae_samples.png",
        "generative_vae_interpolation.png",
        "generative_vae_latent2.png",
        "generative_wgan_toy_samples.png",
        "generative_wgan_digits_samples.png",
        "generative_wgan_digits_w1.png",
    }


@pytest.mark.parametrize(
    "kwargs,field", [({"parts": ["gan"]}, "parts"), ({"toy_steps": 0}, "toy_steps")]
)
def test_experiment_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ExperimentConfig(**kwargs)
