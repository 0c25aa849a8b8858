"""Data that needs no download: 2-D toy distributions and the scikit-learn 8x8 digits.

Every loader returns a `datasets.Dataset` with a float column ``"x"`` (the flattened sample)
so that the VAE and WGAN trainers read the same format. The toy distributions follow the
WGAN-GP toy code (Gulrajani et al. 2017): mixtures of tight Gaussians whose modes are known,
which makes "share of modes covered" and "share of high-quality samples" measurable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from decoding.registry import Registry

__all__ = [
    "ToySpec",
    "TOY_DISTRIBUTIONS",
    "toy_spec",
    "sample_toy",
    "toy_dataset",
    "load_digits_dataset",
    "dataset_array",
]


@dataclass(frozen=True)
class ToySpec:
    """A 2-D toy distribution: a sampler and, for Gaussian mixtures, its mode centres and std."""

    name: str
    sampler: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    centers: np.ndarray | None  # (K, 2) mode centres, None for continuous shapes
    std: float | None  # per-mode standard deviation


def _mixture(centers: np.ndarray, std: float):
    def sampler(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        mode = rng.integers(0, len(centers), size=n)
        x = centers[mode] + std * rng.standard_normal((n, 2))
        return x.astype(np.float32), mode

    return sampler


def _swiss_roll(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # sklearn.datasets.make_swiss_roll's parametrisation, (x, z) plane, scaled to about [-2, 2]
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + 0.25 * rng.standard_normal((n, 2))
    return (x / 7.5).astype(np.float32), np.full(n, -1)


_RING = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1)
_GRID = np.array([(i, j) for i in (-4, -2, 0, 2, 4) for j in (-4, -2, 0, 2, 4)], dtype=np.float64)
_GRID = _GRID / 2.0  # modes 1 apart, in [-2, 2]^2 like the ring

# name -> ToySpec; add one with ``TOY_DISTRIBUTIONS.register(spec.name, spec)`` (duplicates raise)
TOY_DISTRIBUTIONS: Registry[ToySpec] = Registry(
    "toy distribution",
    {
        spec.name: spec
        for spec in (
            ToySpec("8gaussians", _mixture(_RING, 0.05), _RING, 0.05),
            ToySpec("25gaussians", _mixture(_GRID, 0.05), _GRID, 0.05),
            ToySpec("swissroll", _swiss_roll, None, None),
        )
    },
)


def toy_spec(name: str) -> ToySpec:
    """Look up a toy distribution by name; an unknown name raises a ValueError (and KeyError)
    listing the known ones."""
    return TOY_DISTRIBUTIONS[name]


def sample_toy(name: str, n: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Draw `n` points of toy distribution `name` as an (n, 2) float32 array."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return toy_spec(name).sampler(n, rng)[0]


def toy_dataset(name: str, n: int = 10_000, seed: int = 0) -> Dataset:
    """A toy distribution as a `datasets.Dataset` with columns ``x`` (2 floats) and ``mode``.

    Args:
        name: one of `TOY_DISTRIBUTIONS` ("8gaussians", "25gaussians", "swissroll").
        n: number of samples.
        seed: numpy seed.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    x, mode = toy_spec(name).sampler(n, np.random.default_rng(seed))
    return Dataset.from_dict({"x": x.tolist(), "mode": mode.tolist()}).with_format("torch")


def load_digits_dataset(split: str = "all", test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The 1,797 8x8 scikit-learn digits as ``x`` (64 floats in [0, 1]) and ``label`` (0-9).

    Args:
        split: "all", "train" or "test" (a fixed stratified split).
        test_fraction: share of the test split.
        seed: seed of the split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel values 0..16 -> [0, 1]
    y = digits.target.astype(np.int64)
    if split != "all":
        idx = np.arange(len(y))
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, random_state=seed, stratify=y
        )
        keep = train_idx if split == "train" else test_idx
        x, y = x[keep], y[keep]
    return Dataset.from_dict({"x": x.tolist(), "label": y.tolist()}).with_format("torch")


def dataset_array(ds: Dataset, column: str = "x") -> np.ndarray:
    """A whole column as one numpy array, e.g. (N, D) for ``x``."""
    return np.asarray(ds.with_format("numpy")[:][column])
