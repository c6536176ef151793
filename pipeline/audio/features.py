"""Sound condition vectors (seed §4.1, Table 2), each averaged over time into one vector per clip.

* ``spectrogram``: STFT magnitude in dB (librosa), n_fft/2 + 1 values;
* ``fbank``: log-mel filterbank energies in dB (librosa), n_mels values;
* ``mfcc``: MFCCs of that log-mel spectrogram (librosa), n_mfcc values;
* ``embedding``: the time-averaged last feature map of a small CNN trained to classify the digit from
  log-mel frames of the TRAINING clips only (the analogue of the seed's SoundNet features).

Levels are absolute (dB re 1.0, no per-clip normalisation), so a louder clip gives a different vector:
that is what the volume experiment probes. Vectors are z-scored with training-split statistics
before they condition a GAN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from pipeline.audio.nets import AudioClassifier
from pipeline.audio.params import AudioFeaturesParams
from pipeline.errors import PipelineError
from pipeline.train.classifier import features as net_features
from pipeline.train.classifier import fit_classifier

AMIN = 1e-5  # amplitude floor of the dB conversions (-100 dB), far below the added noise


def _stft_mag(y: np.ndarray, p: AudioFeaturesParams) -> np.ndarray:
    import librosa

    return np.abs(librosa.stft(np.asarray(y, np.float32), n_fft=p.n_fft, hop_length=p.hop))


def spectrogram(y: np.ndarray, sr: int, p: AudioFeaturesParams) -> np.ndarray:
    """(n_fft/2 + 1, frames) STFT magnitude in dB."""
    import librosa

    return librosa.amplitude_to_db(_stft_mag(y, p), ref=1.0, amin=AMIN, top_db=None)


def fbank(y: np.ndarray, sr: int, p: AudioFeaturesParams) -> np.ndarray:
    """(n_mels, frames) log-mel energies in dB."""
    import librosa

    mel = librosa.feature.melspectrogram(S=_stft_mag(y, p) ** 2, sr=sr, n_mels=p.n_mels)
    return librosa.power_to_db(mel, ref=1.0, amin=AMIN**2, top_db=None)


def mfcc(y: np.ndarray, sr: int, p: AudioFeaturesParams) -> np.ndarray:
    """(n_mfcc, frames) MFCCs of the log-mel spectrogram."""
    import librosa

    return librosa.feature.mfcc(S=fbank(y, sr, p), n_mfcc=p.n_mfcc)


FRAME_FEATURES: dict[str, Callable[[np.ndarray, int, AudioFeaturesParams], np.ndarray]] = {
    "spectrogram": spectrogram, "fbank": fbank, "mfcc": mfcc}


def time_averaged(audio: np.ndarray, sr: int, p: AudioFeaturesParams, names: tuple[str, ...] = tuple(FRAME_FEATURES),
                  desc: str | None = None) -> dict[str, np.ndarray]:
    """{name: (n, dims) float32}: each frame feature of each clip, averaged over time."""
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for y in tqdm(audio, desc=desc, unit="clip", disable=desc is None):
        for n in names:
            out[n].append(FRAME_FEATURES[n](y, sr, p).mean(axis=1))
    return {n: np.stack(v).astype(np.float32) for n, v in out.items()}


# ---------------------------------------------------------------- learned embedding
@dataclass(frozen=True)
class Embedder:
    """The audio classifier behind the ``embedding`` feature, with its input normalisation: a fixed
    per-band affine map fitted on the training clips, so absolute level differences survive."""

    net: AudioClassifier
    mean: np.ndarray  # (n_mels, 1)
    std: np.ndarray  # (n_mels, 1)
    p: AudioFeaturesParams
    sr: int

    def inputs(self, audio: np.ndarray) -> np.ndarray:
        """(n, n_mels, frames) float32 normalised log-mel input of the network."""
        return ((np.stack([fbank(y, self.sr, self.p) for y in audio]) - self.mean) / self.std).astype(np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """(n, embedding_dim) float32 embeddings of the clips."""
        return net_features(self.net, self.inputs(audio)).astype(np.float32)

    def state(self) -> dict:
        return {"state_dict": self.net.state_dict(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "n_classes": self.net.head.out_features}


def _audio_net(p: AudioFeaturesParams, n_classes: int) -> AudioClassifier:
    return AudioClassifier(p.n_mels, n_classes, p.embedding_dim)


def train_embedder(audio: np.ndarray, labels: np.ndarray, n_classes: int, sr: int,
                   p: AudioFeaturesParams) -> Embedder:
    """Fit the audio classifier on training clips (fixed epochs; no test clip is seen)."""
    logmel = np.stack([fbank(y, sr, p) for y in audio])
    mean, std = logmel.mean(axis=(0, 2))[:, None], logmel.std(axis=(0, 2))[:, None]
    std = np.where(std > 1e-6, std, 1.0)
    x = ((logmel - mean) / std).astype(np.float32)
    net = fit_classifier(lambda: _audio_net(p, n_classes), x, labels, p.epochs, p.batch_size, p.lr, p.seed,
                         p.device, "audio classifier")
    return Embedder(net, mean, std, p, sr)


def load_embedder(state: dict, p: AudioFeaturesParams, sr: int) -> Embedder:
    net = _audio_net(p, state["n_classes"])
    net.load_state_dict(state["state_dict"])
    return Embedder(net.eval(), np.asarray(state["mean"]), np.asarray(state["std"]), p, sr)


def condition_vectors(audio: np.ndarray, sr: int, p: AudioFeaturesParams, embedder: Embedder | None,
                      names: tuple[str, ...] = (*FRAME_FEATURES, "embedding"),
                      desc: str | None = None) -> dict[str, np.ndarray]:
    """{feature name: (n, dims) float32} for the requested features of the clips (raw, not z-scored)."""
    out = time_averaged(audio, sr, p, tuple(n for n in names if n in FRAME_FEATURES), desc)
    if "embedding" in names:
        if embedder is None:
            raise ValueError("the embedding feature needs the trained audio classifier")
        with torch.no_grad():
            out["embedding"] = embedder(audio)
    return out


class Standardizer:
    """Per-dimension z-scoring with training statistics (a constant dimension is left at 0)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float64)
        self.std = np.where(np.asarray(std, np.float64) > 1e-8, np.asarray(std, np.float64), 1.0)

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        return cls(x.mean(axis=0), x.std(axis=0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   seed: int = 0) -> float:
    """Accuracy on the test clips (unseen voices) of a logistic regression fitted on the training vectors:
    how much class information a time-averaged feature keeps."""
    from sklearn.linear_model import LogisticRegression

    z = Standardizer.fit(train_x)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(z(train_x), train_y)
    return float((clf.predict(z(test_x)) == test_y).mean())


def read_features(folder: Path,
                  splits: tuple[str, ...] = ("train", "test")) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """The audio_features output: meta.json and {split: {feature: (n, dims), "label": (n,)}}."""
    import json

    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise PipelineError(f"{meta_file}: not found (run the audio_features stage)")
    out = {}
    for s in splits:
        f = folder / f"{s}.npz"
        if not f.is_file():
            raise PipelineError(f"{f}: not found (run the audio_features stage)")
        with np.load(f) as z:
            out[s] = {k: z[k] for k in z.files}
    return json.loads(meta_file.read_text()), out


def conditions(meta: dict, feats: dict[str, np.ndarray], name: str, labels: np.ndarray, where: Path) -> np.ndarray:
    """The z-scored ``name`` vectors of one split, checked against the pairs they were computed from."""
    if name not in feats:
        raise PipelineError(f"{where}: no {name!r} feature (has: {', '.join(k for k in feats if k != 'label')})")
    if not np.array_equal(feats["label"], labels):
        raise PipelineError(f"{where}: features do not match the pairs (re-run audio_features)")
    info = meta["features"][name]
    return Standardizer(info["mean"], info["std"])(feats[name])
