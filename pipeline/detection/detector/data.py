"""The torch side of detector training sets: samples (``pipeline.detection.detector.sets``) resized or cut
into patches, photometric augmentation, and the loaders."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from pipeline.detection.detector.sets import Sample
from pipeline.detection.params import TrainDetectorParams
from pipeline.errors import PipelineError
from pipeline.io.images import load_rgb


class DetectionData(torch.utils.data.Dataset):
    """Samples resized to ``size`` (H,W): items are (image (3,H,W) in [-1,1], boxes (M,4) xyxy resized).

    With ``augment`` each item is flipped left-right and/or top-bottom with probability 1/2 (both are
    symmetries of a top-down fisheye about its centre); the draw depends on (seed, epoch, index) only.
    """

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int], augment: bool = False, seed: int = 0):
        self.samples, self.size, self.augment, self.seed, self.epoch = list(samples), size, augment, seed, 0

    def __len__(self) -> int:
        return len(self.samples)

    def scale(self, i: int) -> tuple[float, float]:
        """(sx, sy) taking network-input pixels of item ``i`` back to its source image's pixels."""
        s = self.samples[i]
        return s.width / self.size[1], s.height / self.size[0]

    def box_sizes(self) -> np.ndarray:
        """(M,2) widths and heights of every box in network-input pixels (for anchor k-means)."""
        wh = [(s.boxes[:, 2:] - s.boxes[:, :2]) / np.array(self.scale(i), np.float32)
              for i, s in enumerate(self.samples)]
        return np.concatenate(wh) if wh else np.zeros((0, 2), np.float32)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, (h, w) = self.samples[i], self.size
        rgb = load_rgb(s.image)
        if rgb.shape[:2] != (s.height, s.width):
            raise PipelineError(f"{s.image}: image is {rgb.shape[1]}x{rgb.shape[0]} but its COCO entry says "
                                f"{s.width}x{s.height}")
        if (h, w) != rgb.shape[:2]:
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        boxes = torch.from_numpy(s.boxes * np.array([w / s.width, h / s.height] * 2, dtype=np.float32))
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)
        if self.augment:
            flip_x, flip_y = np.random.default_rng([self.seed, self.epoch, i]).random(2) < 0.5
            if flip_x:
                x, boxes = x.flip(-1), torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
            if flip_y:
                x, boxes = x.flip(-2), torch.stack([boxes[:, 0], h - boxes[:, 3], boxes[:, 2], h - boxes[:, 1]], 1)
        return x, boxes.reshape(-1, 4)


class PatchData(DetectionData):
    """Training on windows: ``per_image`` random ``patch`` x ``patch`` windows of every sample (resized to
    ``size`` first, so pixels match whole-image inference), each containing the centre of a random head
    (one draw in 10 anywhere in the image). A box keeps its clipped part when at least half of it lies in
    the window. With ``augment`` each window is also flipped and transposed (the 8 symmetries of a square,
    all symmetries of a top-down fisheye); with ``photometric`` windows of rendered (synthetic or refined)
    images get a random camera (:func:`photometric`), real ones keep theirs. Draws depend on (seed, epoch,
    index) only.
    """

    def __init__(self, samples: Sequence[Sample], size: tuple[int, int], patch: int, per_image: int,
                 augment: bool = False, seed: int = 0, photometric: bool = False):
        super().__init__(samples, size, False, seed)
        if patch > min(size):
            raise PipelineError(f"train_detector.patch: {patch} is larger than the input size {tuple(size)}")
        self.patch, self.per_image, self.flip, self.photometric = patch, per_image, augment, photometric
        self._images: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # decoded once, cut per_image times an epoch

    def __len__(self) -> int:
        return len(self.samples) * self.per_image

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = j // self.per_image
        if i not in self._images:
            self._images[i] = super().__getitem__(i)
        x, boxes = self._images[i]
        rng, p = np.random.default_rng([self.seed, self.epoch, j]), self.patch
        (h, w), u = x.shape[-2:], rng.random(5)
        if len(boxes) and u[0] < 0.9:
            head = boxes[int(u[1] * len(boxes))]
            cx, cy = ((head[:2] + head[2:]) / 2).tolist()
            x0, y0 = cx - (0.15 + 0.7 * u[2]) * p, cy - (0.15 + 0.7 * u[3]) * p
        else:
            x0, y0 = u[2] * (w - p), u[3] * (h - p)
        x0, y0 = int(min(max(x0, 0), w - p)), int(min(max(y0, 0), h - p))
        x = x[:, y0:y0 + p, x0:x0 + p]
        shifted = boxes - torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
        clipped = shifted.clamp(0, p)
        kept = _area(clipped) >= 0.5 * _area(shifted)
        boxes = clipped[kept]
        if self.flip:
            if u[4] < 0.5:
                x, boxes = x.transpose(-1, -2), boxes[:, [1, 0, 3, 2]]
            flip_x, flip_y = rng.random(2) < 0.5
            if flip_x:
                x, boxes = x.flip(-1), torch.stack([p - boxes[:, 2], boxes[:, 1], p - boxes[:, 0], boxes[:, 3]], 1)
            if flip_y:
                x, boxes = x.flip(-2), torch.stack([boxes[:, 0], p - boxes[:, 3], boxes[:, 2], p - boxes[:, 1]], 1)
        if self.photometric and self.samples[i].rendered:
            x = photometric(x, rng)
        return x.contiguous(), boxes.reshape(-1, 4)


def photometric(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A random camera, so that clean renders do not teach a detector their own look: white balance
    (a gain of x0.75-1.25 per channel), brightness and contrast (x0.6-1.4 each), saturation (x0.5-1.5),
    Gaussian blur (sigma 0-1.2 px, one draw in two) and pixel noise (sigma 0-0.06 of the range);
    ``x`` (3,H,W) in [-1,1]."""
    from torchvision.transforms import functional as TF

    b, c, s, blur, noise = rng.uniform([0.6, 0.6, 0.5, 0.0, 0.0], [1.4, 1.4, 1.5, 2.4, 0.12])
    gains = torch.as_tensor(rng.uniform(0.75, 1.25, 3), dtype=x.dtype).view(3, 1, 1)
    y = ((x + 1) / 2 * gains).clamp(0, 1)
    y = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(y, b), c), s)
    if blur > 1.2:
        y = TF.gaussian_blur(y, [5, 5], [blur - 1.2] * 2)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    y = y + noise / 2 * torch.randn(y.shape, generator=gen)
    return (y.clamp(0, 1) * 2 - 1).to(x.dtype)


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)


def training_data(samples: Sequence[Sample], p: TrainDetectorParams, seed: int) -> DetectionData:
    """The training view of ``samples`` under ``train_detector`` params ``p``: whole images, or windows."""
    if p.patch:
        return PatchData(samples, p.input_size, p.patch, p.patches_per_image, p.augment, seed, p.photometric)
    return DetectionData(samples, p.input_size, p.augment, seed)


def collate(items: list[tuple[torch.Tensor, torch.Tensor]]):
    """(images (B,3,H,W), [boxes (Mi,4)], [labels (Mi,) zeros]) for the single class."""
    images = torch.stack([x for x, _ in items])
    boxes = [b for _, b in items]
    return images, boxes, [torch.zeros(len(b), dtype=torch.long) for b in boxes]


def loader(data: DetectionData, batch_size: int, shuffle: bool, seed: int = 0, workers: int = 0):
    """A DataLoader whose shuffling depends on ``seed`` and ``data.epoch`` only."""
    gen = torch.Generator().manual_seed(seed * 1000003 + data.epoch)
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=gen,
                                       collate_fn=collate, num_workers=workers)
