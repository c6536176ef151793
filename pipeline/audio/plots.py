"""Pictures of the audio → image domain: clips as spectrograms, class → image grids, volume grids, losses."""

from __future__ import annotations

import numpy as np

from pipeline.io.images import grid
from pipeline.viz import figure_rgb, pyplot


def _rgb(im: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 → (H, W, 3)."""
    return np.repeat(im[0][..., None], 3, axis=2) if im.shape[0] == 1 else im.transpose(1, 2, 0)


def labelled_grid(rows: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str] | None = None,
                  title: str = "") -> np.ndarray:
    """Rows of (C, H, W) uint8 images tiled into one picture with a label per row (and per column)."""
    plt = pyplot()
    cols = max(len(r) for r in rows)
    h, w = rows[0][0].shape[1:]
    blank = np.full((h, w, 3), 255, np.uint8)
    tiles = [(_rgb(im) if im is not None else blank) for r in rows for im in (r + [None] * (cols - len(r)))]
    pad = 2
    pic = grid(tiles, cols, pad)
    fig, ax = plt.subplots(figsize=(0.5 + 0.42 * cols * w / 32, 0.3 + 0.42 * len(rows) * h / 32))
    ax.imshow(pic, interpolation="nearest")
    ax.set_yticks([pad + i * (h + pad) + h / 2 for i in range(len(rows))], row_labels, fontsize=7)
    if col_labels:
        ax.set_xticks([pad + j * (w + pad) + w / 2 for j in range(len(col_labels))], col_labels, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_title(title, fontsize=8)
    return figure_rgb(fig)


def class_grid(images: np.ndarray, labels: np.ndarray, classes: list[str], per_class: int, title: str,
               real: np.ndarray | None = None, real_labels: np.ndarray | None = None) -> np.ndarray:
    """One row per audio class: a real image of the class first (if given), then ``per_class`` generated ones."""
    rows = []
    for c in range(len(classes)):
        row = [] if real is None else list(real[real_labels == c][:1])
        row += list(images[labels == c][:per_class])
        rows.append(row or [np.zeros_like(images[0])])
    cols = None if real is None else ["real"] + [f"gen {i + 1}" for i in range(per_class)]
    return labelled_grid(rows, [f"'{c}'" for c in classes], cols, title)


def volume_grid(images: dict[float, np.ndarray], labels: np.ndarray, classes: list[str], title: str) -> np.ndarray:
    """Rows: the first test clip of each class; columns: its gains (same z throughout)."""
    first = [int(np.flatnonzero(labels == c)[0]) for c in range(len(classes)) if np.any(labels == c)]
    rows = [[images[g][i] for g in images] for i in first]
    return labelled_grid(rows, [f"'{classes[labels[i]]}'" for i in first], [f"×{g:g}" for g in images], title)


def spectrograms(audio: np.ndarray, labels: np.ndarray, classes: list[str], sr: int, title: str = "") -> np.ndarray:
    """The first clip of each class as a spectrogram (dB), in a row of panels."""
    plt = pyplot()
    picked = [(c, audio[np.flatnonzero(labels == c)[0]]) for c in range(len(classes)) if np.any(labels == c)]
    fig, axes = plt.subplots(1, len(picked), figsize=(1.4 * len(picked), 2.0), squeeze=False, sharey=True)
    for ax, (c, y) in zip(axes[0], picked, strict=True):
        ax.specgram(y, NFFT=512, Fs=sr, noverlap=352, cmap="magma", scale="dB")
        ax.set_title(f"'{classes[c]}'", fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel("Hz", fontsize=7)
    fig.suptitle(title, fontsize=8)
    return figure_rgb(fig)


def feature_means(feats: dict[str, np.ndarray], labels: np.ndarray, classes: list[str], title: str = "") -> np.ndarray:
    """Per feature, the class means of the z-scored condition vectors as a heat map (class × dimension)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(feats), figsize=(3.2 * len(feats), 2.6), squeeze=False)
    for ax, (name, x) in zip(axes[0], feats.items(), strict=True):
        z = (x - x.mean(0)) / np.where(x.std(0) > 1e-8, x.std(0), 1.0)
        m = np.stack([z[labels == c].mean(0) if np.any(labels == c) else np.zeros(z.shape[1])
                      for c in range(len(classes))])
        ax.imshow(m, aspect="auto", cmap="coolwarm", vmin=-2, vmax=2, interpolation="nearest")
        ax.set_yticks(range(len(classes)), classes, fontsize=6)
        ax.set_title(f"{name} ({x.shape[1]} dims)", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=8)
    return figure_rgb(fig)
