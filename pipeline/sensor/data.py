"""Sensor recordings → resampled sliding windows, split by source, and the two scalers with exact inverses.

A *recording* is one continuous trace (channels × time) with an activity label and a *source*: the
subject (MotionSense) or the recording itself (BasicMotions, which has no subject ids). Splits are drawn
over sources, so windows of one source never land on both sides of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.io.tables import numeric_columns, read_csv_records

MOTIONSENSE_ACTIVITIES = ("dws", "ups", "wlk", "jog", "std", "sit")
MOTIONSENSE_ACC = ("userAcceleration.x", "userAcceleration.y", "userAcceleration.z")
MOTIONSENSE_GYRO = ("rotationRate.x", "rotationRate.y", "rotationRate.z")
BASIC_MOTIONS_RATE = 10.0  # Hz: 100 samples over 10 s per recording (UEA archive description)


@dataclass(frozen=True)
class Recording:
    data: np.ndarray  # (channels, time), float64
    label: str
    source: str
    rate_hz: float


def load_basic_motions(gyroscope: bool = False) -> tuple[list[Recording], list[str]]:
    """BasicMotions as aeon ships it: 80 smartwatch recordings (train + test files), 4 activities."""
    from aeon.datasets import load_basic_motions as aeon_load

    recs = []
    for split in ("train", "test"):
        x, y = aeon_load(split=split)
        for i, (series, label) in enumerate(zip(x, y, strict=True)):
            data = np.asarray(series[: 6 if gyroscope else 3], dtype=np.float64)
            recs.append(Recording(data, str(label), f"{split}{i:02d}", BASIC_MOTIONS_RATE))
    names = ["acc_x", "acc_y", "acc_z"] + (["gyr_x", "gyr_y", "gyr_z"] if gyroscope else [])
    return recs, names


def load_motionsense(root: Path, gyroscope: bool = False) -> tuple[list[Recording], list[str]]:
    """MotionSense: ``A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv`` at 50 Hz; the source is the subject."""
    base = root / "A_DeviceMotion_data" if (root / "A_DeviceMotion_data").is_dir() else root
    folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if not folders:
        raise PipelineError(f"{root}: no <activity>_<trial> folders of MotionSense's A_DeviceMotion_data")
    cols = MOTIONSENSE_ACC + (MOTIONSENSE_GYRO if gyroscope else ())
    recs = []
    for folder in folders:
        act = folder.name.split("_")[0]
        if act not in MOTIONSENSE_ACTIVITIES:
            raise PipelineError(f"{folder}: unknown activity {act!r} (known: {', '.join(MOTIONSENSE_ACTIVITIES)})")
        for f in sorted(folder.glob("sub_*.csv")):
            recs.append(Recording(_read_csv(f, cols), act, f.stem, 50.0))
    if not recs:
        raise PipelineError(f"{base}: no sub_<n>.csv files")
    return recs, [c.replace("userAcceleration.", "acc_").replace("rotationRate.", "gyr_") for c in cols]


def _read_csv(path: Path, cols: tuple[str, ...]) -> np.ndarray:
    """(channels, time) from a recording CSV; every value of ``cols`` must be a finite number."""
    rows = read_csv_records(path, numeric_columns(cols), "MotionSense CSV")
    return np.array([[getattr(r, f"c{i}") for r in rows] for i in range(len(cols))], dtype=np.float64)


def load_source(source: str, gyroscope: bool = False) -> tuple[list[Recording], list[str]]:
    if source == "basic_motions":
        return load_basic_motions(gyroscope)
    path = Path(source)
    if not path.is_dir():
        raise PipelineError(f"sensor_prepare.source: {source!r} is neither 'basic_motions' nor a folder")
    return load_motionsense(path, gyroscope)


def resample(data: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Polyphase resampling along time (scipy), exact ratio up to 1/1000."""
    if rate_in == rate_out:
        return data
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out / rate_in).limit_denominator(1000)
    return resample_poly(data, ratio.numerator, ratio.denominator, axis=-1)


def band_limit(meta: dict) -> float:
    """The band the prepared windows can hold, as a fraction of their Nyquist frequency: the slowest source
    rate over the target rate when sensor_prepare upsampled (BasicMotions: 10 Hz → 50 Hz gives 0.2, nothing
    above 5 Hz), 0 when it did not (no band limit below Nyquist)."""
    if "source_rate_hz" not in meta:
        raise PipelineError("sensor_prepare's meta.json has no source_rate_hz (rerun the sensor_prepare stage)")
    ratio = float(meta["source_rate_hz"]) / float(meta["rate_hz"])
    return ratio if ratio < 1 else 0.0


def lowpass_taps(cutoff: float) -> np.ndarray:
    """A linear-phase low-pass FIR with unit DC gain, cutoff ``cutoff`` × Nyquist (0 < cutoff < 1), designed
    as ``resample_poly`` designs its anti-imaging filter (Kaiser window, β = 5, 10 zero crossings on each side:
    2·10·ceil(1/cutoff) + 1 taps); for an integer upsampling factor u and cutoff 1/u these are its taps up to
    the gain u."""
    from scipy.signal import firwin

    if not 0 < cutoff < 1:
        raise ValueError(f"cutoff must be in (0, 1) x Nyquist, got {cutoff}")
    h = firwin(2 * 10 * int(np.ceil(1 / cutoff - 1e-9)) + 1, cutoff, window=("kaiser", 5.0))
    return h / h.sum()


def windows(data: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Sliding windows (n, channels, length) of one recording; none when it is shorter than ``length``."""
    t = data.shape[-1]
    if t < length:
        return np.empty((0, data.shape[0], length), dtype=data.dtype)
    starts = range(0, t - length + 1, stride)
    return np.stack([data[:, s:s + length] for s in starts])


def split_sources(recs: list[Recording], val: float, test: float, seed: int) -> dict[str, str]:
    """Source → split. Sources with one label each (BasicMotions) are split per label, keeping classes
    balanced; sources spanning labels (MotionSense subjects) are split as a whole."""
    rng = np.random.default_rng(seed)
    labels: dict[str, set[str]] = {}
    for r in recs:
        labels.setdefault(r.source, set()).add(r.label)
    single = all(len(v) == 1 for v in labels.values())
    groups = ({lab: sorted(s for s, v in labels.items() if lab in v) for lab in sorted({r.label for r in recs})}
              if single else {"all": sorted(labels)})
    out: dict[str, str] = {}
    for members in groups.values():
        order = [members[i] for i in rng.permutation(len(members))]
        n_test = max(1, round(test * len(order)))
        n_val = max(1, round(val * len(order))) if len(order) - n_test > 1 else 0
        for i, s in enumerate(order):
            out[s] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    if {"train", "test"} - set(out.values()):
        raise PipelineError("sensor_prepare: too few sources to split into train and test")
    return out


class MinMaxScaler:
    """Per-channel min-max to [-1, 1] (GAN range) and back."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self.span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)

    @classmethod
    def fit(cls, x: np.ndarray) -> MinMaxScaler:
        return cls(x.min(axis=(0, 2)), x.max(axis=(0, 2)))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.lo[None, :, None]) / self.span[None, :, None] * 2.0 - 1.0

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) + 1.0) / 2.0 * self.span[None, :, None] + self.lo[None, :, None]

    def to_dict(self) -> dict[str, list[float]]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}


class ZScaler:
    """Per-channel z-scoring (classifier input) and back."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.std = np.where(self.std > 0, self.std, 1.0)

    @classmethod
    def fit(cls, x: np.ndarray) -> ZScaler:
        return cls(x.mean(axis=(0, 2)), x.std(axis=(0, 2)))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean[None, :, None]) / self.std[None, :, None]

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64) * self.std[None, :, None] + self.mean[None, :, None]

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


@dataclass(frozen=True)
class WindowSet:
    x: np.ndarray  # (n, channels, length) float64, in the sensor's units
    y: np.ndarray  # (n,) int class index
    source: np.ndarray  # (n,) str


def prepare(recs: list[Recording], rate_hz: float, length: int, stride: int, val: float, test: float,
            seed: int) -> tuple[dict[str, WindowSet], list[str]]:
    """Resample every recording to ``rate_hz``, window it, and group windows by split; also the class names."""
    classes = sorted({r.label for r in recs})
    where = split_sources(recs, val, test, seed)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for r in recs:
        w = windows(resample(r.data, r.rate_hz, rate_hz), length, stride)
        parts[where[r.source]].append((w, classes.index(r.label), r.source))
    out = {}
    for split, items in parts.items():
        items = [it for it in items if len(it[0])]
        if not items:
            raise PipelineError(f"sensor_prepare: no {split} windows (recordings shorter than window "
                                f"{length} at {rate_hz} Hz?)")
        out[split] = WindowSet(np.concatenate([w for w, _, _ in items]),
                               np.concatenate([np.full(len(w), c) for w, c, _ in items]),
                               np.concatenate([np.full(len(w), s) for w, _, s in items]))
    return out, classes


def save_windows(path: Path, ws: WindowSet) -> None:
    np.savez_compressed(path, x=ws.x.astype(np.float32), y=ws.y.astype(np.int64), source=ws.source.astype(str))


def load_windows(path: Path) -> WindowSet:
    if not path.is_file():
        raise PipelineError(f"{path}: not found (run the sensor_prepare stage)")
    with np.load(path) as z:
        return WindowSet(z["x"].astype(np.float64), z["y"], z["source"])


def read_prepared(folder: Path,
                  splits: tuple[str, ...] = ("train", "val", "test")) -> tuple[dict, dict[str, WindowSet]]:
    """The sensor_prepare output: meta.json and the requested splits."""
    import json

    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise PipelineError(f"{meta_file}: not found (run the sensor_prepare stage)")
    return json.loads(meta_file.read_text()), {s: load_windows(folder / f"{s}.npz") for s in splits}
