"""SqueezeDet: a small single-shot detector (Wu et al. 2017) on a SqueezeNet-1.1 backbone.

Images are (B,3,H,W) in [-1,1] with H and W divisible by 16; boxes are xyxy in pixels. The
ConvDet head predicts, for each of K anchors at every cell of the stride-16 grid, 4 box deltas,
1 confidence logit and C class logits. The ``N = (H/16) * (W/16) * K`` anchors are ordered
row-major over the grid, the K anchors of one cell adjacent (index ``(row * Wg + col) * K + k``).

ImageNet weights come from a local copy of torchvision's ``squeezenet1_1-b8a52dc0.pth``
(SqueezeNet1_1_Weights.IMAGENET1K_V1); nothing is ever downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.nn.weights import WeightsSource, load_features

WEIGHTS_FILE = "squeezenet1_1-b8a52dc0.pth"
WEIGHTS = WeightsSource(
    "SqueezeNet 1.1 ImageNet weights", WEIGHTS_FILE, "train_detector.backbone_weights",
    "put torchvision's {file} (SqueezeNet1_1_Weights.IMAGENET1K_V1) in $TORCH_HOME/hub/checkpoints/ "
    "(here {hub}) or set {key} to its path")
STRIDE = 16
MAX_LOG_SCALE = math.log(1000.0 / 16.0)
CONF_PRIOR = 0.01  # decode never grows an anchor side by more than 62.5x

# SqueezeNet 1.1 fire modules 2-9 as (squeeze, expand) channels; "M" is a stride-2 max pool.
_FIRES: list[tuple[int, int] | str] = [(16, 64), (16, 64), "M", (32, 128), (32, 128), "M",
                                       (48, 192), (48, 192), (64, 256), (64, 256)]
_EXTRA: list[tuple[int, int]] = [(96, 384), (96, 384)]  # SqueezeDet's fire10 and fire11
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Fire(nn.Module):
    """SqueezeNet fire module: (B,in_ch,H,W) -> (B,expand1+expand3,H,W), values >= 0.

    A 1x1 squeeze conv + ReLU feeds a 1x1 and a 3x3 expand conv (each + ReLU) whose outputs are
    concatenated. Attribute names match torchvision's ``Fire`` so its state dicts load as-is.
    ``norm`` adds BatchNorm after the squeeze and after the expand convs (not in SqueezeNet; it makes
    training from scratch much faster, and such a network cannot take the ImageNet weights).
    """

    def __init__(self, in_ch: int, squeeze: int, expand1: int, expand3: int, norm: bool = False) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_ch, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3, 3, padding=1)
        self.norm_squeeze = nn.BatchNorm2d(squeeze) if norm else nn.Identity()
        self.norm_expand = nn.BatchNorm2d(expand1 + expand3) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.norm_squeeze(self.squeeze(x)))
        return torch.relu(self.norm_expand(torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)))


def _ch(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _pool() -> nn.MaxPool2d:
    """3x3 stride-2 max pool, padded so an even side is exactly halved."""
    return nn.MaxPool2d(3, stride=2, padding=1)


def _backbone(width: float, stride: int = STRIDE, norm: bool = False) -> tuple[nn.Sequential, int]:
    """SqueezeNet-1.1 ``features`` (same indices as torchvision's) and its output channels.

    The first conv and the pools are padded (weights unchanged) so the output stride is exactly 16;
    ``stride`` 8 replaces the last pool by an identity (same indices, so ImageNet weights still load);
    ``norm`` puts BatchNorm before every ReLU (the first one at index 1, keeping the indices).
    """
    c1 = _ch(64, width)
    relu1: nn.Module = nn.Sequential(nn.BatchNorm2d(c1), nn.ReLU(inplace=True)) if norm else nn.ReLU(inplace=True)
    layers: list[nn.Module] = [nn.Conv2d(3, c1, 3, stride=2, padding=1), relu1, _pool()]
    in_ch = c1
    pools = sum(isinstance(item, str) for item in _FIRES)
    for item in _FIRES:
        if isinstance(item, str):
            pools -= 1
            layers.append(nn.Identity() if stride == 8 and pools == 0 else _pool())
            continue
        squeeze, expand = _ch(item[0], width), _ch(item[1], width)
        layers.append(Fire(in_ch, squeeze, expand, expand, norm))
        in_ch = 2 * expand
    return nn.Sequential(*layers), in_ch


def anchor_grid(anchors_wh: torch.Tensor, grid: tuple[int, int], stride: int = STRIDE) -> torch.Tensor:
    """(K,2) anchor (w,h) in pixels, grid (Hg,Wg) -> (Hg*Wg*K, 4) xyxy boxes centred on the cells."""
    from torchvision.ops import box_convert  # torchvision's import costs seconds: only when used
    hg, wg = grid
    k = anchors_wh.shape[0]
    ys = (torch.arange(hg, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(wg, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2).expand(-1, k, 2)
    wh = anchors_wh.float().reshape(1, k, 2).expand(hg * wg, k, 2)
    return box_convert(torch.cat([centres, wh], dim=-1).reshape(-1, 4), "cxcywh", "xyxy")


class SqueezeDet(nn.Module):
    """SqueezeNet-1.1 backbone + fire10/fire11 + ConvDet head (a 3x3 conv to K*(C+1+4) channels).

    ``anchors``: (K,2) anchor (w,h) in pixels; ``image_size``: (H,W), both divisible by 16;
    ``width`` scales every channel count (1.0 is the real network, ImageNet weights need it);
    ``dropout`` is applied after fire11 (the paper uses 0.5). Buffers (derived from the arguments,
    so not in the state dict): ``anchors_wh`` (K,2) and ``anchors_xyxy`` (N,4) in pixels.
    """

    def __init__(self, num_classes: int = 1, anchors: Any = None, image_size: Sequence[int] | None = None,
                 width: float = 1.0, dropout: float = 0.0, stride: int = STRIDE, norm: bool = False) -> None:
        super().__init__()
        if anchors is None or image_size is None:
            raise PipelineError("SqueezeDet: anchors (K,2 widths and heights in pixels) and image_size (H,W) "
                                "are required")
        wh = torch.as_tensor(np.asarray(anchors, dtype=np.float32))
        h, w = (int(v) for v in image_size)
        if wh.ndim != 2 or wh.shape[1] != 2 or len(wh) == 0 or bool((wh <= 0).any()):
            raise PipelineError(f"SqueezeDet: anchors must be a non-empty (K,2) array of positive (w,h), "
                                f"got shape {tuple(wh.shape)}")
        if stride not in (8, 16):
            raise PipelineError(f"SqueezeDet: stride must be 8 or 16, got {stride}")
        if h <= 0 or w <= 0 or h % STRIDE or w % STRIDE:
            raise PipelineError(f"SqueezeDet: image_size must be positive multiples of {STRIDE}, got {(h, w)}")
        if num_classes < 1 or width <= 0:
            raise PipelineError(f"SqueezeDet: need num_classes >= 1 and width > 0 (got {num_classes}, {width})")
        self.num_classes, self.width = num_classes, float(width)
        self.image_size = (h, w)
        self.stride = stride
        self.grid = (h // stride, w // stride)
        self.norm = norm
        self.features, ch = _backbone(width, stride, norm)
        extra: list[nn.Module] = []
        for squeeze, expand in _EXTRA:
            extra.append(Fire(ch, _ch(squeeze, width), _ch(expand, width), _ch(expand, width), norm))
            ch = 2 * _ch(expand, width)
        self.extra = nn.Sequential(*extra)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(ch, len(wh) * (num_classes + 5), 3, padding=1)
        self.register_buffer("anchors_wh", wh, persistent=False)
        self.register_buffer("anchors_xyxy", anchor_grid(wh, self.grid, stride), persistent=False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        # Confidence logits start at a low object prior (as in RetinaNet): thousands of anchors are
        # background, and starting at sigmoid(0) = 0.5 spends the first hundreds of steps unlearning it.
        with torch.no_grad():
            self.head.bias.view(-1, self.num_classes + 5)[:, 4] = -math.log((1 - CONF_PRIOR) / CONF_PRIOR)

    @property
    def num_anchors(self) -> int:
        """N = Hg * Wg * K."""
        return self.anchors_xyxy.shape[0]

    def anchors_for(self, size: Sequence[int]) -> torch.Tensor:
        """The (N,4) xyxy anchors of an input of ``size`` (H,W): ``anchors_xyxy`` at ``image_size``, else the
        same anchor shapes on that size's grid (training on patches, see ``train_detector.patch``)."""
        h, w = (int(v) for v in size)
        if (h, w) == self.image_size:
            return self.anchors_xyxy
        return anchor_grid(self.anchors_wh, (h // self.stride, w // self.stride), self.stride).to(self.anchors_xyxy)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B,3,H,W) in [-1,1] -> deltas (B,N,4), conf (B,N) logits, cls (B,N,C) logits.

        H and W are ``image_size`` or any other multiples of 16 (anchors: :meth:`anchors_for`)."""
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(f"SqueezeDet: image sides must be multiples of {STRIDE}, got {tuple(x.shape[-2:])}")
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        y = self.head(self.dropout(self.extra(self.features(x))))
        y = y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, self.num_classes + 5)
        return {"deltas": y[..., :4], "conf": y[..., 4], "cls": y[..., 5:]}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,3,h,w) in [-1,1], any size >= 16 -> (B,D) fire11 features averaged over space.

        A feature space for distances between image sets (crops need not match ``image_size``).
        """
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        return self.extra(self.features(x)).mean(dim=(2, 3))

    def load_backbone(self, path: str | Path | None = None, param: str | None = None) -> None:
        """Load ImageNet SqueezeNet-1.1 ``features.*`` weights (torchvision state dict) into the backbone.

        ``path`` None means ``$TORCH_HOME/hub/checkpoints/squeezenet1_1-b8a52dc0.pth``; ``param``
        names the setting that supplies the path, for error messages. Needs ``width == 1.0``.
        """
        if self.width != 1.0:
            raise PipelineError(f"SqueezeDet: ImageNet backbone weights need width 1.0, got {self.width}")
        if self.norm:
            raise PipelineError("SqueezeDet: ImageNet SqueezeNet weights have no BatchNorm; build the network "
                                "without norm to load them")
        file = resolve_backbone_weights(path, param)
        load_features(self.features, file, "SqueezeNet 1.1", hint=WEIGHTS.how_to_supply(param))


def resolve_backbone_weights(path: str | Path | None = None, param: str | None = None) -> Path:
    """``path`` if given, else ``<torch hub dir>/checkpoints/squeezenet1_1-b8a52dc0.pth``; must exist."""
    return WEIGHTS.resolve(path, param)


def encode(anchors_xyxy: torch.Tensor, gt_xyxy: torch.Tensor) -> torch.Tensor:
    """SqueezeDet deltas (...,4) = (dx, dy, dw, dh) taking anchors (...,4) to gt boxes (...,4), xyxy.

    dx = (gx - ax) / aw, dy = (gy - ay) / ah, dw = log(gw / aw), dh = log(gh / ah) (centres, sizes).
    Degenerate gt sides are clamped to 1e-3 px so the logs stay finite.
    """
    from torchvision.ops import box_convert  # torchvision's import costs seconds: only when used
    a = box_convert(anchors_xyxy, "xyxy", "cxcywh")
    g = box_convert(gt_xyxy, "xyxy", "cxcywh")
    return torch.stack([(g[..., 0] - a[..., 0]) / a[..., 2], (g[..., 1] - a[..., 1]) / a[..., 3],
                        torch.log(g[..., 2].clamp(min=1e-3) / a[..., 2]),
                        torch.log(g[..., 3].clamp(min=1e-3) / a[..., 3])], dim=-1)


def decode(anchors_xyxy: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode`: anchors (...,4) xyxy + deltas (...,4) -> boxes (...,4) xyxy in pixels.

    dw and dh are clamped to at most log(1000/16) so early, wild predictions cannot overflow.
    """
    from torchvision.ops import box_convert  # torchvision's import costs seconds: only when used
    a = box_convert(anchors_xyxy, "xyxy", "cxcywh")
    cx = a[..., 0] + deltas[..., 0] * a[..., 2]
    cy = a[..., 1] + deltas[..., 1] * a[..., 3]
    w = a[..., 2] * torch.exp(deltas[..., 2].clamp(max=MAX_LOG_SCALE))
    h = a[..., 3] * torch.exp(deltas[..., 3].clamp(max=MAX_LOG_SCALE))
    return box_convert(torch.stack([cx, cy, w, h], dim=-1), "cxcywh", "xyxy")


def _wh_iou(wh: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """IoU (M,k) of boxes (M,2) and centres (k,2) given as (w,h), all aligned at the same centre."""
    inter = np.minimum(wh[:, None, 0], centres[None, :, 0]) * np.minimum(wh[:, None, 1], centres[None, :, 1])
    union = wh[:, None].prod(-1) + centres[None, :].prod(-1) - inter
    return inter / union


def _kmeans_once(wh: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    """k-means++ seeding then Lloyd iterations (mean update) with distance 1 - IoU."""
    centres = wh[[rng.integers(len(wh))]]
    while len(centres) < k:
        d = 1.0 - _wh_iou(wh, centres).max(1)
        p = d**2 / (d**2).sum() if d.sum() > 0 else np.full(len(wh), 1.0 / len(wh))
        centres = np.concatenate([centres, wh[[rng.choice(len(wh), p=p)]]])
    assign = None
    for _ in range(iters):
        new = _wh_iou(wh, centres).argmax(1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            if (assign == j).any():
                centres[j] = wh[assign == j].mean(0)
    return centres


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, n_init: int = 5, iters: int = 100) -> np.ndarray:
    """Anchor (w,h) sizes (k,2) from box sizes ``wh`` (M,2) by k-means with 1 - IoU distance.

    Boxes and centres are compared aligned at a common centre. Deterministic for a given seed;
    the best of ``n_init`` k-means++ runs (highest mean best IoU) is kept; sorted by area, smallest
    first. With M <= k the boxes themselves are returned, repeated cyclically to fill k rows.
    """
    wh = np.asarray(wh, dtype=np.float64)
    if wh.ndim != 2 or wh.shape[1] != 2 or len(wh) == 0 or k < 1:
        raise PipelineError(f"kmeans_anchors: need a non-empty (M,2) array of box sizes and k >= 1, "
                            f"got shape {wh.shape} and k={k}")
    if (wh <= 0).any():
        raise PipelineError("kmeans_anchors: box widths and heights must be positive")
    if len(wh) <= k:
        out = wh[np.arange(k) % len(wh)]
    else:
        rng = np.random.default_rng(seed)
        best, best_fit = wh[:k], -1.0
        for _ in range(max(1, n_init)):
            centres = _kmeans_once(wh, k, rng, iters)
            fit = float(_wh_iou(wh, centres).max(1).mean())
            if fit > best_fit:
                best, best_fit = centres, fit
        out = best
    return out[np.argsort(out.prod(1), kind="stable")].copy()
