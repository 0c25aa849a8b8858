"""Plots for the generative experiments (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generative.data import sample_toy

__all__ = [
    "pyplot",
    "image_grid",
    "ellipse_plot",
    "curve_plot",
    "plot_toy_samples",
    "OBJECTIVE_ORDER",
]

OBJECTIVE_ORDER = ("clip", "gp", "gp0", "sn", "ctransform")


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: np.ndarray, ncol: int, side: int = 8, pad: int = 1) -> np.ndarray:
    """Tile (N, side*side) images into rows of `ncol`, with `pad` blank pixels between them."""
    n_rows = -(-len(images) // ncol)
    out = np.zeros((n_rows * (side + pad) - pad, ncol * (side + pad) - pad), dtype=np.float32)
    for k, img in enumerate(images.reshape(-1, side, side)):
        r, c = divmod(k, ncol)
        out[
            r * (side + pad) : r * (side + pad) + side, c * (side + pad) : c * (side + pad) + side
        ] = img
    return out


def ellipse_plot(ax, mu, sigma, labels, title: str) -> None:
    """Each input's ellipse mu +- sigma in a 2-D latent space, with the unit and radius-2 circles."""
    from matplotlib.patches import Circle, Ellipse

    cmap = pyplot().get_cmap("tab10")
    for m, s, y in zip(mu, sigma, labels):
        ax.add_patch(Ellipse(m, 2 * s[0], 2 * s[1], color=cmap(int(y)), alpha=0.15, lw=0))
    ax.scatter(mu[:, 0], mu[:, 1], c=[cmap(int(y)) for y in labels], s=3)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, ls="--", color="k"))
    ax.add_patch(Circle((0, 0), 2.0, fill=False, ls=":", color="k"))
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


def curve_plot(histories: dict, title: str):
    """One panel per objective: exact batch W1 and the critic's estimate against the step."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(histories), figsize=(2.6 * len(histories), 2.4), squeeze=False)
    for ax, (obj, hist) in zip(axes[0], histories.items()):
        steps = [h["step"] for h in hist]
        ax.plot(steps, [h["exact_w1"] for h in hist], "k-", label="exact batch W1")
        ax.plot(steps, [h["critic_estimate"] for h in hist], "r--", label="critic estimate")
        ax.set_title(obj, fontsize=9)
        ax.set_xlabel("critic step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_toy_samples(run_dirs: list[str], img_path: str, seed: int = 0) -> None:
    """Redraw the toy sample grid (rows: toys, columns: objectives) from saved samples.

    Reads ``wgan_{toy}_{objective}_samples.npy`` written by `run_wgan_toy` in `run_dirs`.
    """
    plt = pyplot()
    found = {}
    for d in run_dirs:
        for f in sorted(Path(d).glob("wgan_*_samples.npy")):
            _, toy, obj, _ = f.name.split("_", 3)
            if toy != "digits":
                found[(toy, obj)] = np.load(f)
    toys = sorted({t for t, _ in found})
    objs = [o for o in OBJECTIVE_ORDER if any(k[1] == o for k in found)]
    fig, axes = plt.subplots(
        len(toys), len(objs), figsize=(2.2 * len(objs), 2.2 * len(toys)), squeeze=False
    )
    for r, toy in enumerate(toys):
        ref = sample_toy(toy, 500, seed=seed + 2)
        for c, obj in enumerate(objs):
            ax = axes[r][c]
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.scatter(ref[:, 0], ref[:, 1], s=1, c="0.7")
            if (toy, obj) in found:
                s = found[(toy, obj)][:500]
                ax.scatter(s[:, 0], s[:, 1], s=1, c="C3")
                ax.set_title(f"{toy} / {obj}", fontsize=8)
            else:
                ax.set_title(f"{toy} / {obj}: not run", fontsize=8)
    fig.savefig(img_path, dpi=72, bbox_inches="tight")
    plt.close(fig)
