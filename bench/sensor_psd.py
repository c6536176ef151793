"""Average spectra of real and generated sensor windows: band energies and a log-scale figure.

    .venv/bin/python bench/sensor_psd.py OUT.png LABEL=path/to/samples.npz ... [--prepared data/sensor/prepared]

Welch PSD (one 200-step segment, each window's mean removed), averaged over windows and axes, of the real
test and training windows (``sensor_prepare``'s output) and of each generated ``samples.npz``
(``sensor_train_gan``'s output); prints the energy per band (in (m/s²)², summed over the band) and draws
the spectra with the recordings' Nyquist frequency (``source_rate_hz / 2``) marked.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.signal import welch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.sensor.data import read_prepared  # noqa: E402

BANDS = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 4.5), (4.5, 5), (5, 5.5), (5.5, 7), (7, 10), (10, 25)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("samples", nargs="*", help="LABEL=path/to/samples.npz")
    ap.add_argument("--prepared", type=Path, default=Path("data/sensor/prepared"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, sets = read_prepared(args.prepared, ("train", "test"))
    fs = meta["rate_hz"]
    series = {"real test": sets["test"].x, "real train": sets["train"].x}
    for item in args.samples:
        label, path = item.split("=", 1)
        with np.load(path) as z:
            series[label] = z["x"].astype(np.float64)
    print("series".ljust(28) + "".join(f"{f'{lo}-{hi}':>10}" for lo, hi in BANDS) + "   total")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, x in series.items():
        f, p = welch(x - x.mean(-1, keepdims=True), fs=fs, nperseg=x.shape[-1], axis=-1)
        pm, df = p.mean((0, 1)), f[1] - f[0]
        print(label[:27].ljust(28) + "".join(f"{pm[(f >= lo) & (f < hi)].sum() * df:10.2e}" for lo, hi in BANDS)
              + f"   {pm.sum() * df:.3g}")
        ax.semilogy(f, pm, label=label, lw=1.2)
    if "source_rate_hz" in meta:
        ax.axvline(meta["source_rate_hz"] / 2, color="k", ls=":", lw=1, label="recordings' Nyquist")
    ax.set_xlabel("Hz")
    ax.set_ylabel("PSD ((m/s²)²/Hz), mean over windows and axes")
    ax.set_ylim(1e-8, None)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("saved", args.out)


if __name__ == "__main__":
    main()
