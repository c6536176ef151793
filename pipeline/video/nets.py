"""Spatiotemporal DCGAN generator/discriminator (seed Tables 4.1/4.2) and their 2D frame twins.

The 3D networks follow the seed's layer plan scaled to clips of ``frames`` × ``size`` × ``size``: the
generator projects z to a 4×4 map per frame and doubles the spatial size with transposed convolutions
(channels 8·ngf → 4·ngf → … → C at 64 px), the discriminator mirrors it with strided convolutions and
LeakyReLU(0.2). Every kernel is 3 frames deep with temporal stride 1 ("dense"): time is never down- or
upsampled, so each layer sees every frame; the discriminator scores every frame's 4×4 map and averages.

``dims=2`` builds the same network for single frames with identical parameter names, so a trained frame
GAN can be inflated into the 3D one (seed §4.2, eqs. 4.1-4.2, ``inflate``): each 2D kernel is copied to
all T' = 3 temporal slices and divided by T', and the generator's per-frame projection copies the 2D
projection to every frame. Time is padded by repeating the edge frames (not zeros), so a static clip
through the inflated network gives exactly the 2D network's response on every frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

KT = 3  # temporal kernel depth T'


class TimeConv(nn.Module):
    """A (transposed) conv of ``dims`` 2 or 3; in 3D, kernels span ``kt`` frames at temporal stride 1 and
    time is padded by replicating the first/last frame, so the frame count is kept."""

    def __init__(self, dims: int, cin: int, cout: int, k: int, stride: int, pad: int, transposed: bool = False,
                 bias: bool = False, kt: int = KT) -> None:
        super().__init__()
        self.pad_t = (kt - 1) // 2 if dims == 3 else 0
        if dims == 2:
            cls = nn.ConvTranspose2d if transposed else nn.Conv2d
            self.conv = cls(cin, cout, k, stride, pad, bias=bias)
        elif dims == 3:
            cls = nn.ConvTranspose3d if transposed else nn.Conv3d
            # a stride-1 transposed conv over a replicate-padded input: padding kt-1 trims it back to T frames
            tpad = kt - 1 if transposed else 0
            self.conv = cls(cin, cout, (kt, k, k), (1, stride, stride), (tpad, pad, pad), bias=bias)
        else:
            raise ValueError(f"dims must be 2 or 3, got {dims}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_t:
            x = F.pad(x, (0, 0, 0, 0, self.pad_t, self.pad_t), mode="replicate")
        return self.conv(x)


def _levels(size: int) -> int:
    levels = int(math.log2(size // 4))
    if size < 16 or 4 * 2 ** levels != size:
        raise ValueError(f"frame size must be a power of two >= 16, got {size}")
    return levels


def _bn(dims: int, c: int) -> nn.Module:
    return nn.BatchNorm3d(c) if dims == 3 else nn.BatchNorm2d(c)


class VideoGenerator(nn.Module):
    """z (B, latent_dim) → clip (B, C, frames, size, size) in [-1, 1]; ``dims=2``: a frame (B, C, size, size)."""

    def __init__(self, dims: int, channels: int, size: int, frames: int, latent_dim: int = 100,
                 ngf: int = 64) -> None:
        super().__init__()
        levels = _levels(size)
        self.dims, self.frames, self.latent_dim = dims, frames if dims == 3 else 1, latent_dim
        self.c0 = ngf * 2 ** (levels - 1)
        # one 4x4 projection per frame: a shared one would make every frame equal and, being symmetric
        # in time, could never learn motion
        self.fc = nn.Linear(latent_dim, self.c0 * self.frames * 16, bias=False)
        self.bn0 = _bn(dims, self.c0)
        blocks: list[nn.Module] = []
        cin = self.c0
        for i in range(levels):
            last = i == levels - 1
            cout = channels if last else cin // 2
            blocks.append(TimeConv(dims, cin, cout, 4, 2, 1, transposed=True, bias=last))
            blocks += [nn.Tanh()] if last else [_bn(dims, cout), nn.ReLU(inplace=True)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        shape = (len(z), self.c0, self.frames, 4, 4) if self.dims == 3 else (len(z), self.c0, 4, 4)
        return self.blocks(F.relu(self.bn0(self.fc(z).view(shape))))


NORMS = {"batch": _bn, "none": lambda dims, c: nn.Identity()}


class VideoDiscriminator(nn.Module):
    """clip (B, C, frames, size, size) → logit (B,); ``dims=2``: frame (B, C, size, size) → logit (B,).

    ``norm``: batch (DCGAN) or none (WGAN-GP critic). ``features`` gives the pooled last feature map
    (B, ndf·2^(L-1)) used by the feature-matching loss.
    """

    def __init__(self, dims: int, channels: int, size: int, frames: int, ndf: int = 64,
                 norm: str = "batch") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r} (known: {', '.join(NORMS)})")
        levels = _levels(size)
        layers: list[nn.Module] = []
        cin, cout = channels, ndf
        for i in range(levels):
            layers.append(TimeConv(dims, cin, cout, 4, 2, 1, bias=i == 0 or norm == "none"))
            if i:  # DCGAN: no normalisation on the input layer
                layers.append(NORMS[norm](dims, cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin, cout = cout, cout * 2
        self.trunk = nn.Sequential(*layers)
        self.head = TimeConv(dims, cin, 1, 4, 1, 0, bias=True, kt=1)  # a score per frame
        self.out_features = cin

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        """Trunk map → (B,): per-frame scores averaged over time."""
        return self.head(h).flatten(1).mean(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(2).mean(2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.logit(self.trunk(x))


@torch.no_grad()
def inflate(net2d: nn.Module, net3d: nn.Module) -> nn.Module:
    """Copy a trained 2D frame network into its 3D twin (seed eqs. 4.1-4.2); returns ``net3d``.

    Conv kernels: W3[:, :, t] = W2 / T' for every temporal slice t. The generator's projection: the 2D
    projection is copied for every frame. Norm layers and biases are copied unchanged.
    """
    src, dst = net2d.state_dict(), net3d.state_dict()
    if set(src) != set(dst):
        raise ValueError(f"not twins: {sorted(set(src) ^ set(dst))[:3]} differ")
    for name, w2 in src.items():
        w3 = dst[name]
        if w3.shape == w2.shape:
            w3.copy_(w2)
        elif w3.dim() == w2.dim() + 1 and w3.shape[:2] == w2.shape[:2] and w3.shape[3:] == w2.shape[2:]:
            w3.copy_(w2.unsqueeze(2).expand_as(w3) / w3.shape[2])
        elif w2.dim() == 2 and w3.shape[1] == w2.shape[1] and w3.shape[0] % w2.shape[0] == 0:
            frames, c0 = w3.shape[0] // w2.shape[0], w2.shape[0] // 16
            w3.view(c0, frames, 16, -1).copy_(w2.view(c0, 1, 16, -1).expand(c0, frames, 16, w2.shape[1]))
        else:
            raise ValueError(f"{name}: cannot inflate {tuple(w2.shape)} into {tuple(w3.shape)}")
    net3d.load_state_dict(dst)
    return net3d
