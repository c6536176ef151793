"""The demo's best audio variant (the first of ``audio_train_gan.run`` in params.yaml) fits a tiny set: three
MNIST digit classes, each "sound" a fixed random vector per class plus per-clip noise. After a few hundred
steps its images must be drawn from the class of their condition (a nearest-class-mean judge, chance 1/3)
and must not all look alike (the collapse alarm's within-class MS-SSIM); an untrained generator fails both."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.audio.data import PairSet, load_mnist
from pipeline.audio.evaluation import class_diversity
from pipeline.audio.gan import build, generate, train
from pipeline.audio.params import AudioTrainGanParams
from pipeline.fields import parse_section
from pipeline.metrics.generative import collapse_alarm

ROOT = Path(__file__).resolve().parents[2]
CLASSES = (0, 1, 7)
PER_CLASS = 64


@pytest.fixture(scope="module")
def tiny():
    x, y = load_mnist()
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    idx = np.concatenate([np.flatnonzero(y == c)[:PER_CLASS] for c in CLASSES])
    images, label = x[idx], np.repeat(np.arange(len(CLASSES)), PER_CLASS)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((len(CLASSES), 16)).astype(np.float32)
    clip_label = np.repeat(np.arange(len(CLASSES)), 8)  # 8 "clips" per class
    cond = centres[clip_label] + 0.3 * rng.standard_normal((len(clip_label), 16)).astype(np.float32)
    pairs = PairSet(audio=np.zeros((len(clip_label), 1), np.float32), label=clip_label, voice=np.zeros(len(clip_label)),
                    image_index=np.zeros(len(clip_label), np.int64), images=images, image_label=label)
    return pairs, cond, centres


def _judge(images: np.ndarray, real: np.ndarray, real_label: np.ndarray) -> np.ndarray:
    """Nearest class mean in pixel space (on real images of the three digits it is near perfect)."""
    means = np.stack([real[real_label == c].reshape((real_label == c).sum(), -1).mean(0) for c in range(len(CLASSES))])
    flat = images.reshape(len(images), -1).astype(np.float64)
    return ((flat[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)


def test_best_variant_fits_a_tiny_set(tiny):
    pairs, cond, centres = tiny
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["audio_train_gan"]
    raw.update(epochs=8, steps_per_epoch=None, batch_size=32, device="cpu")
    p = parse_section(AudioTrainGanParams, raw, "audio_train_gan")
    best = p.run[0]
    v = p.variant(best)
    torch.set_num_threads(1)
    # the judge itself: 0.948 on the real images
    assert (_judge(pairs.images, pairs.images, pairs.image_label) == pairs.image_label).mean() > 0.9

    test_cond = np.repeat(centres, 20, axis=0) + 0.3 * np.random.default_rng(1).standard_normal((60, 16)).astype(
        np.float32)
    test_label = np.repeat(np.arange(len(CLASSES)), 20)

    def scores(g) -> tuple[float, float]:
        out = generate(g, v, test_cond, 2, seed=3, size=32)
        lab = np.repeat(test_label, 2)
        return float((_judge(out, pairs.images, pairs.image_label) == lab).mean()), class_diversity(out, lab)

    untrained, _ = build(v, 1, cond.shape[1], len(CLASSES))
    agree0, _ = scores(untrained.eval())
    g, hist = train(p, v, pairs, cond, len(CLASSES), by_class=True, seed=0)
    agree, div = scores(g)
    real_div = class_diversity(pairs.images, pairs.image_label)
    assert agree0 < 0.6, agree0  # an untrained (or broken) generator is near chance (1/3)
    assert agree > 0.9, (best, agree, hist[-1])  # measured: 1.000 (cgan_ms, 8 epochs of 6 steps)
    # measured: cgan_ms 0.613 against real 0.526; the plain `cgan` (no mode-seeking term) reaches 0.934
    # and fails here, while its agreement (0.992) would pass
    assert not collapse_alarm(div, real_div), (best, div, real_div)
