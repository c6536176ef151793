"""Pictures of the sensor domain: traces per class (real next to generated) and loss curves."""

from __future__ import annotations

import numpy as np

from pipeline.viz import figure_rgb, pyplot


def traces(sets: dict[str, tuple[np.ndarray, np.ndarray]], classes: list[str], channels: list[str],
           per_class: int = 3, rate_hz: float = 50.0) -> np.ndarray:
    """One row per class, one column per set (e.g. real, generated): ``per_class`` windows overlaid per channel."""
    plt = pyplot()
    names = list(sets)
    fig, axes = plt.subplots(len(classes), len(names), figsize=(4.2 * len(names), 2.2 * len(classes)),
                             squeeze=False, sharey="row")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(names):
        x, y = sets[name]
        for i, cls in enumerate(classes):
            ax = axes[i][j]
            picked = x[y == i][:per_class]
            t = np.arange(x.shape[-1]) / rate_hz
            for n, w in enumerate(picked):
                for c in range(x.shape[1]):
                    ax.plot(t, w[c], color=colours[c % len(colours)], lw=0.7, alpha=0.8,
                            label=channels[c] if n == 0 else None)
            ax.set_title(f"{name}: {cls}" + ("" if len(picked) else " (none)"), fontsize=8)
            ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    for ax in axes[-1]:
        ax.set_xlabel("s", fontsize=7)
    return figure_rgb(fig)
