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
                 ngf: int = 64, n_classes: int = 0) -> None:
        super().__init__()
        levels = _levels(size)
        self.dims, self.frames, self.latent_dim = dims, frames if dims == 3 else 1, latent_dim
        self.c0 = ngf * 2 ** (levels - 1)
        self.embed = nn.Embedding(n_classes, latent_dim) if n_classes else None
        # one 4x4 projection per frame: a shared one would make every frame equal and, being symmetric
        # in time, could never learn motion
        self.fc = nn.Linear(latent_dim * (2 if n_classes else 1), self.c0 * self.frames * 16, bias=False)
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
        """``y`` (B,) class indices: required when conditional, ignored otherwise."""
        shape = (len(z), self.c0, self.frames, 4, 4) if self.dims == 3 else (len(z), self.c0, 4, 4)
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], 1)
        return self.blocks(F.relu(self.bn0(self.fc(z).view(shape))))


NORMS = {"batch": _bn, "none": lambda dims, c: nn.Identity(), "spectral": lambda dims, c: nn.Identity()}


class VideoDiscriminator(nn.Module):
    """clip (B, C, frames, size, size) → logit (B,); ``dims=2``: frame (B, C, size, size) → logit (B,).

    ``norm``: batch (DCGAN) or none (WGAN-GP critic). ``features`` gives the pooled last feature map
    (B, ndf·2^(L-1)) used by the feature-matching loss.
    """

    def __init__(self, dims: int, channels: int, size: int, frames: int, ndf: int = 64,
                 norm: str = "batch", n_classes: int = 0) -> None:
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
        self.embed = nn.Embedding(n_classes, cin) if n_classes else None
        self.out_features = cin
        self.spectral = norm == "spectral"

    def apply_spectral_norm(self) -> "VideoDiscriminator":
        """Spectral norm on every convolution and the projection (``norm: spectral``); call after init."""
        if self.spectral:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Embedding)):
                    nn.utils.parametrizations.spectral_norm(m)
        return self

    def logit(self, h: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Trunk map → (B,): per-frame scores averaged over time, plus the class projection when conditional."""
        out = self.head(h).flatten(1).mean(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h.flatten(2).mean(2)).sum(1)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(2).mean(2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.logit(self.trunk(x), y)


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


def reflect(pos: torch.Tensor, limit: float) -> torch.Tensor:
    """Positions on an unbounded line folded into [0, limit] as if bouncing off both walls (a triangle
    wave: identity on [0, limit], mirrored on [limit, 2·limit], periodic); differentiable almost everywhere."""
    return limit - (torch.remainder(pos, 2 * limit) - limit).abs()


class SpriteGenerator(nn.Module):
    """Content/motion generator (MoCoGAN's split, Tulyakov et al. 2018, made explicit for one moving object):
    (z, y) → clip (B, C, frames, size, size) in [-1, 1].

    * content G_c([z_c, e(y)]): a 2D DCGAN decoder (a 4×4 map, transposed convolutions) draws one sprite
      (C, size/2, size/2) in [0, 1]
      (the object's appearance, the same in every frame);
    * motion G_m([z_m, e(y)]): an MLP gives the sprite's start position (top-left, inside the frame) and a
      velocity in px/frame (at most ``size/8``); the trajectory is start + t·velocity folded back into the
      frame at its walls (``reflect``: bounces);
    * a differentiable renderer translates the sprite onto a black canvas in every frame
      (``affine_grid``/``grid_sample``, bilinear), so D's gradients reach both appearance and motion.

    z is split in two halves, z_c and z_m; ``e(y)``, the class embedding, goes to both (conditional).
    """

    def __init__(self, channels: int, size: int, frames: int, latent_dim: int = 100, ngf: int = 64,
                 n_classes: int = 0) -> None:
        super().__init__()
        self.sprite = size // 2
        levels = _levels(self.sprite) if self.sprite >= 16 else int(math.log2(self.sprite // 4))
        if self.sprite < 8 or 4 * 2 ** levels != self.sprite:
            raise ValueError(f"frame size must be a power of two >= 16, got {size}")
        self.size, self.frames, self.latent_dim = size, frames, latent_dim
        self.zc = latent_dim - latent_dim // 2
        self.embed = nn.Embedding(n_classes, latent_dim) if n_classes else None
        extra = latent_dim if n_classes else 0
        self.c0 = ngf * 2 ** levels
        self.fc = nn.Linear(self.zc + extra, self.c0 * 16, bias=False)
        self.bn0 = nn.BatchNorm2d(self.c0)
        blocks: list[nn.Module] = []
        cin = self.c0
        for i in range(levels):
            last = i == levels - 1
            cout = channels if last else cin // 2
            blocks.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last))
            blocks += [nn.Sigmoid()] if last else [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.draw = nn.Sequential(*blocks)
        hidden = 4 * ngf
        self.motion = nn.Sequential(nn.Linear(latent_dim // 2 + extra, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, 4))
        self.limit, self.max_speed = float(size - self.sprite), size / 8

    def init_motion(self) -> "SpriteGenerator":
        """Call after ``init_normal``: PyTorch's default init for the motion MLP (DCGAN's N(0, 0.02) would
        start every sprite in the centre, standing still, where D's gradients on position are weakest), and
        a sprite that starts near black (sigmoid(−3) ≈ 0.05) rather than a grey 0.5 square: ink is added
        where it is needed instead of the background having to be learnt away."""
        for m in self.motion:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        nn.init.constant_(self.draw[-2].bias, -3.0)
        return self

    def trajectory(self, zm: torch.Tensor) -> torch.Tensor:
        """Top-left positions (B, frames, 2) (row, col) in [0, size − sprite] from the motion input."""
        out = self.motion(zm)
        start = torch.sigmoid(out[:, :2]) * self.limit
        velocity = torch.tanh(out[:, 2:]) * self.max_speed
        t = torch.arange(self.frames, device=zm.device, dtype=zm.dtype)[None, :, None]
        return reflect(start[:, None] + t * velocity[:, None], self.limit)

    def render(self, sprite: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Sprites (B, C, s, s) in [0, 1] at ``pos`` (B, T, 2) → clips (B, C, T, size, size) in [0, 1]."""
        b, c, s, _ = sprite.shape
        t = pos.shape[1]
        canvas = F.pad(sprite, (0, self.size - s, 0, self.size - s))  # the sprite at the top-left corner
        canvas = canvas[:, None].expand(b, t, c, self.size, self.size).reshape(b * t, c, self.size, self.size)
        shift = -2 * pos.reshape(b * t, 2) / self.size  # output pixel p samples the canvas at p − pos
        theta = torch.zeros(b * t, 2, 3, device=pos.device, dtype=pos.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2], theta[:, 1, 2] = shift[:, 1], shift[:, 0]  # x is the column, y the row
        grid = F.affine_grid(theta, list(canvas.shape), align_corners=False)
        out = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.view(b, t, c, self.size, self.size).transpose(1, 2)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        zc, zm = z[:, :self.zc], z[:, self.zc:]
        if self.embed is not None:
            e = self.embed(y)
            zc, zm = torch.cat([zc, e], 1), torch.cat([zm, e], 1)
        sprite = self.draw(F.relu(self.bn0(self.fc(zc).view(len(z), self.c0, 4, 4))))
        return self.render(sprite, self.trajectory(zm)) * 2 - 1


class VideoFrameDiscriminator(nn.Module):
    """A 3D video discriminator plus a 2D frame discriminator (MoCoGAN's D_V and D_I, one logit): the video
    branch judges motion, the frame branch every single frame's appearance (each frame of a clip scored,
    the scores averaged); the logit is their sum, so one loss trains both branches. ``trunk``/``features``
    are the video branch's (feature matching); ``logit(x, y)`` takes the clip itself."""

    def __init__(self, video: VideoDiscriminator, frame: VideoDiscriminator) -> None:
        super().__init__()
        self.video, self.frame = video, frame
        self.out_features = video.out_features

    def apply_spectral_norm(self) -> "VideoFrameDiscriminator":
        self.video.apply_spectral_norm()
        self.frame.apply_spectral_norm()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.video.features(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        per_frame = self.frame(frames, None if y is None else y.repeat_interleave(t)).view(b, t)
        return self.video(x, y) + per_frame.mean(1)
