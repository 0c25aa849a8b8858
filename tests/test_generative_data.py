"""Toy distributions and digits as datasets.Dataset."""

import numpy as np
import pytest

from generative.data import (
    TOY_DISTRIBUTIONS,
    ToySpec,
    dataset_array,
    load_digits_dataset,
    sample_toy,
    toy_dataset,
    toy_spec,
)


@pytest.mark.parametrize("name", sorted(TOY_DISTRIBUTIONS))
def test_toy_dataset_shape_and_seed(name):
    ds = toy_dataset(name, n=64, seed=3)
    x = dataset_array(ds)
    assert x.shape == (64, 2) and x.dtype == np.float32
    assert np.array_equal(x, dataset_array(toy_dataset(name, n=64, seed=3)))
    assert np.abs(x).max() < 3.5


@pytest.mark.parametrize("name,k", [("8gaussians", 8), ("25gaussians", 25)])
def test_mixture_samples_sit_near_their_mode(name, k):
    spec = toy_spec(name)
    ds = toy_dataset(name, n=500)
    x, mode = dataset_array(ds), dataset_array(ds, "mode")
    assert len(spec.centers) == k and set(mode.tolist()) == set(range(k))
    dist = np.linalg.norm(x - spec.centers[mode], axis=1)
    assert np.mean(dist < 3 * spec.std) > 0.95


def test_sample_toy_and_registry_errors():
    assert sample_toy("swissroll", 10, seed=0).shape == (10, 2)
    with pytest.raises(ValueError, match="known"):
        toy_spec("moons")
    with pytest.raises(ValueError, match="already registered"):
        TOY_DISTRIBUTIONS.register(
            "8gaussians", ToySpec("8gaussians", lambda n, rng: None, None, None)
        )


def test_digits_dataset_splits():
    full, train, test = (load_digits_dataset(s) for s in ("all", "train", "test"))
    assert len(full) == 1797 and len(train) + len(test) == 1797
    x = dataset_array(full)
    assert x.shape == (1797, 64) and x.min() == 0.0 and x.max() == 1.0
    assert set(dataset_array(test, "label").tolist()) == set(range(10))
    with pytest.raises(ValueError, match="split"):
        load_digits_dataset("valid")
