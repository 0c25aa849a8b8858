"""The report of the non-termination study (`studies.nontermination.study`): markdown tables
(perplexities, then one decoder x model matrix per metric) and the bar plot of the
non-termination ratio r_L.
"""

from __future__ import annotations

from pathlib import Path

from .config import NonterminationConfig

__all__ = ["format_tables", "plot_rl"]


def _matrix(rows: list[dict], models: list[str], pset: str, key: str, fmt: str) -> list[str]:
    cell = {(r["model"], r["decoder"]): r[key] for r in rows if r["prefixes"] == pset}
    decoders = list(dict.fromkeys(r["decoder"] for r in rows if r["prefixes"] == pset))
    lines = ["| decoder | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for d in decoders:
        vals = [format(cell[(m, d)], fmt) if (m, d) in cell else "-" for m in models]
        lines.append(f"| {d} | " + " | ".join(vals) + " |")
    return lines


def format_tables(rows: list[dict], models: dict, cfg: NonterminationConfig) -> str:
    """Markdown: perplexities, then one decoder x model matrix per metric."""
    names = list(models)
    lines = ["| model | test ppl | valid ppl | train s | decode s |", "|---|---|---|---|---|"]
    for n, m in models.items():
        lines.append(
            f"| {n} | {m['test_ppl']} | {m['valid_ppl']} | {m['train_s']} | {m.get('decode_s', '-')} |"
        )
    sections = [
        (
            "heldout",
            "r_L",
            ".2f",
            f"Non-termination ratio r_L (L = {cfg.max_new_tokens}), held-out prefixes",
        ),
        (
            "heldout",
            "mean_len",
            ".1f",
            "Mean continuation length (tokens, eos included), held-out prefixes",
        ),
        (
            "heldout",
            "rep4",
            ".2f",
            "seq-rep-4 (share of repeated 4-grams per continuation), held-out prefixes",
        ),
        ("heldout", "distinct2", ".2f", "distinct-2 over all continuations, held-out prefixes"),
        (
            "random",
            "r_L",
            ".2f",
            f"Non-termination ratio r_L (L = {cfg.max_new_tokens}), random-token prefixes",
        ),
        ("random", "mean_len", ".1f", "Mean continuation length, random-token prefixes"),
    ]
    for pset, key, fmt, title in sections:
        lines += ["", f"**{title}**", "", *_matrix(rows, names, pset, key, fmt)]
    return "\n".join(lines) + "\n"


def plot_rl(rows: list[dict], models: dict, path: Path) -> None:
    """Grouped bars: r_L per decoder (x) and model (colour), one panel per architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = [r for r in rows if r["prefixes"] == "heldout"]
    archs = list(dict.fromkeys(r["arch"] for r in held))
    decoders = list(dict.fromkeys(r["decoder"] for r in held))
    fig, axes = plt.subplots(len(archs), 1, figsize=(11, 3.2 * len(archs)), squeeze=False)
    for ax, arch in zip(axes[:, 0], archs):
        names = [n for n, m in models.items() if m["arch"] == arch]
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            cell = {r["decoder"]: r["r_L"] for r in held if r["model"] == name}
            xs = [i + j * width for i in range(len(decoders))]
            ax.bar(xs, [cell.get(d, 0.0) for d in decoders], width, label=name)
        ax.set_xticks(
            [i + 0.4 - width / 2 for i in range(len(decoders))], decoders, rotation=30, fontsize=8
        )
        ax.set_ylabel("r_L")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{arch}: non-termination ratio by decoder (held-out prefixes)")
        ax.legend(fontsize=7, ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
