"""Test setup: offline, seeded, and a `shared_data` fixture that skips when ../shared is absent."""

import os
import random
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QGEN_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture
def shared_models() -> Path:
    """Path of ../shared/models; the test is skipped when it is absent."""
    path = SHARED / "models"
    if not path.is_dir():
        pytest.skip(f"shared models not found at {path}")
    return path
