"""Pictures shared by every pipeline: matplotlib figures as RGB arrays and GAN loss curves (the detection
pipeline's own pictures are in ``pipeline.detection.plots``)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image



def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_rgb(fig, dpi: int = 90) -> np.ndarray:
    """A matplotlib figure as an (H, W, 3) uint8 array (for save_rgb and MLflow); closes the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def loss_curves(histories: dict[str, list[dict[str, float]]],
                keys: tuple[str, ...] = ("loss_G", "loss_D")) -> np.ndarray:
    """Per-epoch losses (``keys`` that the history has), one panel per run, e.g. per GAN variant."""
    plt = pyplot()
    n = max(1, len(histories))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 2.8), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items(), strict=False):
        epochs = np.arange(1, len(hist) + 1)
        for key in keys:
            if any(key in h for h in hist):
                ax.plot(epochs, [h.get(key, np.nan) for h in hist], label=key, marker="." if len(hist) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
    return figure_rgb(fig)
