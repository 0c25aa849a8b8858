"""Sample-quality measures for the generative experiments.

- Toy mixtures: a sample is *high quality* when it lies within `k_std` standard deviations of
  its nearest mode centre; a mode is *covered* when it receives at least `min_share` of its fair
  share (N / K) of high-quality samples.
- Digits: a small classifier (multinomial logistic regression, scikit-learn) trained on real
  training digits scores generated digits by its confidence (mean max-probability) and class
  coverage (classes that receive at least `min_share` of their fair share of predictions).
- The mini-batch finding of Stanczuk et al.: exact W1 between two real batches versus W1
  between a real batch and the mean image repeated, or k-means centroids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generative.ot import batch_w1

__all__ = ["mode_metrics", "DigitClassifier", "minibatch_w1_comparison"]


def mode_metrics(
    samples: np.ndarray, centers: np.ndarray, std: float, k_std: float = 3.0, min_share: float = 0.2
) -> dict[str, float]:
    """Share of high-quality samples and share of covered modes.

    Args:
        samples: (N, 2) generated points. centers: (K, 2) mode centres. std: mode std.
        k_std: a sample within k_std * std of its nearest centre is high quality.
        min_share: a mode is covered with >= min_share * N / K high-quality samples.
    """
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)  # (N, K)
    nearest, dist = d.argmin(1), d.min(1)
    good = dist <= k_std * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    covered = counts >= min_share * len(samples) / len(centers)
    return {"high_quality": float(good.mean()), "modes_covered": float(covered.mean())}


@dataclass
class DigitClassifier:
    """Logistic-regression digit classifier on 64 pixels in [0, 1]."""

    model: object
    test_accuracy: float
    test_confidence: float

    @classmethod
    def fit(cls, x_train, y_train, x_test, y_test, seed: int = 0) -> DigitClassifier:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_train, y_train)
        proba = clf.predict_proba(x_test)
        return cls(clf, float((proba.argmax(1) == y_test).mean()), float(proba.max(1).mean()))

    def score_samples(self, x: np.ndarray, min_share: float = 0.2) -> dict[str, float]:
        """Confidence, class coverage and the predicted-class histogram of generated digits."""
        proba = self.model.predict_proba(np.clip(x, 0.0, 1.0))
        counts = np.bincount(proba.argmax(1), minlength=10)
        return {
            "confidence": float(proba.max(1).mean()),
            "class_coverage": float((counts >= min_share * len(x) / 10).mean()),
            "class_counts": counts.tolist(),
        }


def minibatch_w1_comparison(
    data: np.ndarray, batch_size: int, repeats: int, seed: int = 0
) -> dict[str, float]:
    """Mean and std over `repeats` of W1(A, B), W1(A, mean image) and W1(A, k-means centroids).

    A and B are disjoint random real batches of `batch_size`; the mean image is the data mean
    repeated `batch_size` times; the centroids come from k-means with k = batch_size on `data`.
    """
    from sklearn.cluster import KMeans

    if 2 * batch_size > len(data):
        raise ValueError(f"batch_size {batch_size} too large for {len(data)} samples")
    rng = np.random.default_rng(seed)
    mean = np.repeat(data.mean(0, keepdims=True), batch_size, axis=0)
    centroids = (
        KMeans(n_clusters=batch_size, n_init=1, random_state=seed).fit(data).cluster_centers_
    )
    rows = {"real_vs_real": [], "real_vs_mean": [], "real_vs_centroids": []}
    for _ in range(repeats):
        idx = rng.permutation(len(data))
        a, b = data[idx[:batch_size]], data[idx[batch_size : 2 * batch_size]]
        rows["real_vs_real"].append(batch_w1(a, b))
        rows["real_vs_mean"].append(batch_w1(a, mean))
        rows["real_vs_centroids"].append(batch_w1(a, centroids))
    out: dict[str, float] = {"batch_size": batch_size, "repeats": repeats}
    for k, v in rows.items():
        out[k] = float(np.mean(v))
        out[f"{k}_std"] = float(np.std(v))
    return out
