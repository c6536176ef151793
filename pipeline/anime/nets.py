"""64×64 networks of the anime domain: the seed's DCGAN generator and discriminator, and the attribute
classifier that measures real and generated faces.

Seed 003's DCGAN: z (100) → dense → 4×4×512 → four stride-2 transposed convolutions to 64×64×3, batch
norm and LeakyReLU between them, tanh out; the discriminator mirrors it with stride-2 convolutions. Here
the widths scale with ``ngf``/``ndf`` (the seed is ngf = ndf = 64: 8·64 = 512 maps at 4×4).
Conditional variants (hair colour): the generator takes a 16-d class embedding next to z; the
discriminator adds a projection term ⟨embed(y), spatially summed features⟩ (Miyato & Koyama 2018) to its
logit. A 100-d embedding and a projection on the flattened features were tried first (one 1200-step run
each); the detector found fewer of their faces, and no version stops the conditional variants drawing
about one face per class (see the README).
"""

from __future__ import annotations

import torch
from torch import nn

EMBED_G = 16  # width of the generator's class embedding
# "none": the WGAN-GP critic (batch norm breaks the per-sample gradient penalty); "spectral": spectral
# normalisation of every weight (Miyato et al. 2018), no batch norm: D stays 1-Lipschitz-ish, so it cannot
# win outright in a few hundred steps and G keeps a useful gradient
NORMS = ("batch", "none", "spectral")


# "deconv": the seed's stride-2 transposed 4×4 convolutions; "resize": nearest-neighbour ×2 then a 3×3
# convolution (Odena et al. 2016), which cannot draw the checkerboard that uneven kernel overlap makes
UPSAMPLING = ("deconv", "resize")


def _up(cin: int, cout: int, how: str = "deconv", last: bool = False) -> nn.Sequential:
    if how == "deconv":
        conv: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last)]
    else:
        conv = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=last)]
    if last:
        return nn.Sequential(*conv, nn.Tanh())
    return nn.Sequential(*conv, nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))


class Generator64(nn.Module):
    """z (B, latent_dim) [+ class y (B,)] → image (B, 3, 64, 64) in [-1, 1]; ``upsampling`` in UPSAMPLING."""

    def __init__(self, latent_dim: int = 100, ngf: int = 64, n_classes: int = 0, upsampling: str = "deconv") -> None:
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"unknown upsampling {upsampling!r} (known: {', '.join(UPSAMPLING)})")
        self.latent_dim, self.n_classes, self.ngf = latent_dim, n_classes, ngf
        self.embed = nn.Embedding(n_classes, EMBED_G) if n_classes else None
        self.fc = nn.Sequential(nn.Linear(latent_dim + (EMBED_G if n_classes else 0), 16 * ngf * 8, bias=False),
                                nn.BatchNorm1d(16 * ngf * 8), nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(_up(ngf * 8, ngf * 4, upsampling), _up(ngf * 4, ngf * 2, upsampling),
                                  _up(ngf * 2, ngf, upsampling), _up(ngf, 3, upsampling, last=True))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.body(self.fc(z).view(len(z), self.ngf * 8, 4, 4))


class Discriminator64(nn.Module):
    """image (B, 3, 64, 64) [+ y (B,)] → logit (B,). ``norm``: batch (DCGAN), none (WGAN-GP critic) or
    spectral (SNGAN-style: every conv, the output layer and the class projection spectrally normalised)."""

    def __init__(self, ndf: int = 64, n_classes: int = 0, norm: str = "batch") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r} (known: {', '.join(NORMS)})")
        self.norm = norm
        sn = nn.utils.spectral_norm if norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = [sn(nn.Conv2d(3, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout in ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8)):
            layers.append(sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=norm != "batch")))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers)  # (B, 8·ndf, 4, 4)
        self.out = sn(nn.Linear(ndf * 8 * 16, 1))
        self.embed = nn.Embedding(n_classes, ndf * 8) if n_classes else None
        if self.embed is not None:  # N(0, 1) rows would swamp the logit at the start
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
            self.embed = sn(self.embed)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logit = self.out(h.flatten(1)).squeeze(1)
        if self.embed is not None:  # projection on spatially summed features, as Miyato & Koyama
            logit = logit + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return logit


class AttributeClassifier(nn.Module):
    """image (B, 3, 64, 64) in [-1, 1] → class logits (B, n_classes); ``features``: (B, 4·width)."""

    def __init__(self, n_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(cin, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
