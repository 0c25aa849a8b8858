"""Markdown tables from the experiments' results.jsonl rows."""

from __future__ import annotations

__all__ = ["results_markdown"]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _table(rows: list[dict], cols: list[str]) -> list[str]:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return lines + [""]


def results_markdown(rows: list[dict]) -> str:
    """Markdown tables of every part present in `rows` (the lines of results.jsonl)."""
    by = {}
    for r in rows:
        by.setdefault(r["part"], []).append(r)
    out: list[str] = []
    if "minibatch" in by:
        out += ["### Mini-batch finding (exact W1, mean over repeats)", ""]
        out += _table(
            by["minibatch"],
            [
                "data",
                "batch_size",
                "real_vs_real",
                "real_vs_mean",
                "real_vs_centroids",
                "real_vs_real_std",
            ],
        )
    if "vae" in by:
        out += ["### VAE on digits (held-out test split, sampled z)", ""]
        out += _table(
            [{"regularizer": "kl", **r} for r in by["vae"]],
            [
                "run",
                "latent_dim",
                "likelihood",
                "regularizer",
                "test_reconstruction",
                "test_kl",
                "prior_covered_by_ellipses",
                "aggregate_var",
                "mean_sigma",
                "seconds",
            ],
        )
    if "wgan_toy" in by:
        out += ["### WGAN on toy distributions", ""]
        out += _table(
            by["wgan_toy"],
            [
                "data",
                "objective",
                "final_exact_w1",
                "final_critic_estimate",
                "estimate_exact_corr",
                "sample_w1",
                "real_real_w1",
                "modes_covered",
                "high_quality",
                "seconds",
            ],
        )
    if "wgan_digits" in by:
        clf = by.get("digits_classifier", [{}])[0]
        out += ["### WGAN on digits", ""]
        out += [
            f"Classifier on real test digits: accuracy {_fmt(clf.get('test_accuracy'))}, confidence {_fmt(clf.get('confidence'))}.",
            "",
        ]
        out += _table(
            by["wgan_digits"],
            [
                "objective",
                "final_exact_w1",
                "final_critic_estimate",
                "estimate_exact_corr",
                "sample_w1",
                "real_real_w1",
                "confidence",
                "class_coverage",
                "class_counts",
                "seconds",
            ],
        )
    if "timing" in by:
        out += ["### Time per part", ""]
        out += _table(by["timing"], ["name", "seconds", "cpu_seconds"])
    return "\n".join(out)
