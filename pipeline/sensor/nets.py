"""1D networks for sensor windows (channels × time): DCGAN generator/discriminator and a CNN classifier.

Like the seed's accelerometer GAN, the first discriminator layers and the last generator layers keep the
sensor channels separate (grouped convolutions, one filter bank per axis) before/after mixing them.
Conditional variants: the generator takes a class embedding next to z; the discriminator adds a
projection term ⟨embed(y), features⟩ (Miyato & Koyama 2018) to its logit.
"""

from __future__ import annotations

import torch
from torch import nn


def _up(cin: int, cout: int, pad: str = "zeros") -> nn.Sequential:
    # upsample + conv rather than a strided transposed conv: the latter stamps a period-2 checkerboard
    # onto smooth signals (measured here as spectra far from the real ones)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
                         nn.Conv1d(cin, cout, 5, padding=2, bias=False, padding_mode=pad), nn.BatchNorm1d(cout),
                         nn.ReLU(inplace=True))


class Generator1D(nn.Module):
    """z (B, latent) [+ class y (B,)] → window (B, channels, length) in [-1, 1]; length divisible by 8.
    ``pad``: the convolutions' padding mode; "zeros" (the seed) bends every window's ends toward 0, which
    a time-series classifier spots; "replicate" does not."""

    def __init__(self, channels: int, length: int, latent_dim: int = 100, ngf: int = 32,
                 n_classes: int = 0, pad: str = "zeros") -> None:
        super().__init__()
        if length % 8:
            raise ValueError(f"window length must be divisible by 8, got {length}")
        self.latent_dim, self.n_classes, self.base = latent_dim, n_classes, length // 8
        self.embed = nn.Embedding(n_classes, latent_dim) if n_classes else None
        self.fc = nn.Sequential(nn.Linear(latent_dim * (2 if n_classes else 1), ngf * 4 * self.base, bias=False),
                                nn.BatchNorm1d(ngf * 4 * self.base), nn.ReLU(inplace=True))
        self.ngf = ngf
        self.body = nn.Sequential(_up(ngf * 4, ngf * 2, pad), _up(ngf * 2, ngf, pad), _up(ngf, ngf, pad))
        # per-channel heads: mix into `channels` groups of 8 maps, then one grouped conv per axis
        self.head = nn.Sequential(nn.Conv1d(ngf, channels * 8, 5, padding=2, padding_mode=pad), nn.ReLU(inplace=True),
                                  nn.Conv1d(channels * 8, channels, 5, padding=2, groups=channels, padding_mode=pad),
                                  nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.fc(z).view(len(z), self.ngf * 4, self.base)
        return self.head(self.body(h))


class MinibatchStd(nn.Module):
    """Appends one channel: the std of each feature over the batch, averaged (Karras et al. 2018), so D can
    see a batch whose windows are all alike. (B, C, T) → (B, C + 1, T); groups of ``group`` samples."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        g = min(self.group, b)
        if b % g:
            g = 1 if b < 2 else next(k for k in range(g, 0, -1) if b % k == 0)
        if g < 2:
            return torch.cat([x, x.new_zeros(b, 1, t)], dim=1)
        s = x.view(g, b // g, c, t).var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2))  # (B/g,)
        return torch.cat([x, s.repeat(g).view(b, 1, 1).expand(b, 1, t)], dim=1)


class Discriminator1D(nn.Module):
    """window (B, channels, length) [+ y] → logit (B,). ``norm``: batch (DCGAN) or none (WGAN-GP critic);
    ``spectral``: spectral normalisation on every weight layer; ``mbstd``: a minibatch-std channel before
    the last block."""

    def __init__(self, channels: int, length: int, ndf: int = 32, n_classes: int = 0, norm: str = "batch",
                 spectral: bool = False, mbstd: bool = False) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)

        def block(cin: int, cout: int, groups: int = 1, bn: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [sn(nn.Conv1d(cin, cout, 5, 2, 2, groups=groups))]
            if bn and norm == "batch":
                layers.append(nn.BatchNorm1d(cout))
            return layers + [nn.LeakyReLU(0.2, inplace=True)]

        per = max(1, ndf // channels)
        self.features = nn.Sequential(
            *block(channels, channels * per, groups=channels, bn=False),     # each axis on its own
            *block(channels * per, channels * per, groups=channels),
            *block(channels * per, ndf * 2),
            *([MinibatchStd()] if mbstd else []), *block(ndf * 2 + int(mbstd), ndf * 4),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.out = sn(nn.Linear(ndf * 4, 1))
        self.embed = sn(nn.Embedding(n_classes, ndf * 4)) if n_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logit = self.out(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(dim=1)
        return logit


class Classifier1D(nn.Module):
    """Activity classifier: three conv blocks, global average pooling, a linear layer."""

    def __init__(self, channels: int, n_classes: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for cout in (width, width * 2, width * 2):
            layers += [nn.Conv1d(cin, cout, 7, padding=3), nn.BatchNorm1d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool1d(2)]
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.head = nn.Linear(cin, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
