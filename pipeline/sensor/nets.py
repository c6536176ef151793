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


class LowPass1D(nn.Module):
    """A fixed (not trained) linear-phase low-pass FIR on every channel, cutoff ``cutoff`` × Nyquist, with
    ``pipeline.sensor.data.lowpass_taps``' design (resample_poly's); windows are extended by repeating their
    end samples, so the length is kept and the ends are not pulled toward 0. (B, C, T) → (B, C, T)."""

    def __init__(self, channels: int, cutoff: float) -> None:
        super().__init__()
        from pipeline.sensor.data import lowpass_taps

        h = torch.as_tensor(lowpass_taps(cutoff), dtype=torch.float32)
        self.channels, self.cutoff, self.half = channels, cutoff, len(h) // 2
        # not in the state dict: rebuilt from the cutoff, which saved generators keep
        self.register_buffer("taps", h.flip(0).view(1, 1, -1).repeat(channels, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (self.half, self.half), mode="replicate")
        return nn.functional.conv1d(x, self.taps.to(x.dtype), groups=self.channels)


class UpsampleFIR(nn.Module):
    """Fixed polyphase upsampling by an integer ``up``, as ``scipy.signal.resample_poly(x, up, 1)`` does it:
    zeros between the samples, then ``lowpass_taps(1 / up)`` × up; the window is extended by repeating its
    end samples first, so the ends have context. (B, C, T) → (B, C, T·up)."""

    def __init__(self, channels: int, up: int) -> None:
        super().__init__()
        from pipeline.sensor.data import lowpass_taps

        h = torch.as_tensor(lowpass_taps(1 / up) * up, dtype=torch.float32)
        self.channels, self.up, self.half = channels, up, len(h) // 2
        self.ctx = -(-self.half // up) + 1  # source samples of context on each side
        self.register_buffer("taps", h.flip(0).view(1, 1, -1).repeat(channels, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        x = nn.functional.pad(x, (self.ctx, self.ctx), mode="replicate")
        z = x.new_zeros(b, c, x.shape[-1] * self.up)
        z[..., ::self.up] = x
        y = nn.functional.conv1d(z, self.taps.to(x.dtype), padding=self.half, groups=self.channels)
        return y[..., self.ctx * self.up:(self.ctx + t) * self.up]


class Generator1D(nn.Module):
    """z (B, latent) [+ class y (B,)] → window (B, channels, length) in [-1, 1]; length divisible by 8.
    ``pad``: the convolutions' padding mode; "zeros" (the seed) bends every window's ends toward 0, which
    a time-series classifier spots; "replicate" does not. ``lowpass`` in (0, 1): the window leaves tanh
    through a fixed low-pass FIR with that cutoff × Nyquist (``LowPass1D``), so G's windows hold no more band
    than upsampled data does; 0: no filter (the seed). ``upsample`` > 1: G draws the window at 1/upsample of
    the rate (length / upsample steps) and ``UpsampleFIR`` brings it to ``length``, as sensor_prepare
    upsampled the recordings."""

    def __init__(self, channels: int, length: int, latent_dim: int = 100, ngf: int = 32,
                 n_classes: int = 0, pad: str = "zeros", lowpass: float = 0.0, upsample: int = 1,
                 noise: bool = False) -> None:
        super().__init__()
        if length % upsample or (length // upsample) % 8:
            raise ValueError(f"window length / {upsample} must be an integer divisible by 8, got {length}")
        self.latent_dim, self.n_classes, self.base = latent_dim, n_classes, length // upsample // 8
        self.embed = nn.Embedding(n_classes, latent_dim) if n_classes else None
        self.fc = nn.Sequential(nn.Linear(latent_dim * (2 if n_classes else 1), ngf * 4 * self.base, bias=False),
                                nn.BatchNorm1d(ngf * 4 * self.base), nn.ReLU(inplace=True))
        self.ngf = ngf
        self.body = nn.Sequential(_up(ngf * 4, ngf * 2, pad), _up(ngf * 2, ngf, pad), _up(ngf, ngf, pad))
        # per-channel heads: mix into `channels` groups of 8 maps, then one grouped conv per axis
        self.head = nn.Sequential(nn.Conv1d(ngf, channels * 8, 5, padding=2, padding_mode=pad), nn.ReLU(inplace=True),
                                  nn.Conv1d(channels * 8, channels, 5, padding=2, groups=channels, padding_mode=pad),
                                  nn.Tanh())
        self.noise = None
        if noise:  # a per-step noise scale from the features, softplus(-4) ≈ 0.02 at the start
            self.noise = nn.Conv1d(ngf, channels, 5, padding=2, padding_mode=pad)
            nn.init.constant_(self.noise.bias, -4.0)
        # fixed layers that keep the window to the data's band (no weights)
        self.band = nn.Sequential(*([LowPass1D(channels, lowpass)] if lowpass else []),
                                  *([UpsampleFIR(channels, upsample)] if upsample > 1 else []))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.body(self.fc(z).view(len(z), self.ngf * 4, self.base))
        x = self.head(h)
        if self.noise is not None:
            x = x + nn.functional.softplus(self.noise(h)) * torch.randn_like(x)
        return self.band(x)


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


class StandardisedView(nn.Module):
    """Appends each channel standardised over the window's time, (x − mean) / (std + eps): a quiet window
    (standing still, a few hundredths of the [-1, 1] range) shows its shape at the scale of a loud one.
    (B, C, T) → (B, 2C, T)."""

    def __init__(self, eps: float = 0.01) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        return torch.cat([x, centred / (centred.std(dim=-1, keepdim=True) + self.eps)], dim=1)


class Discriminator1D(nn.Module):
    """window (B, channels, length) [+ y] → logit (B,). ``norm``: batch (DCGAN) or none (WGAN-GP critic);
    ``spectral``: spectral normalisation on every weight layer; ``mbstd``: a minibatch-std channel before
    the last block; ``standardised``: D also sees every channel standardised per window
    (``StandardisedView``)."""

    def __init__(self, channels: int, length: int, ndf: int = 32, n_classes: int = 0, norm: str = "batch",
                 spectral: bool = False, mbstd: bool = False, standardised: bool = False) -> None:
        super().__init__()
        view = [StandardisedView()] if standardised else []
        channels = channels * (2 if standardised else 1)
        sn = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)

        def block(cin: int, cout: int, groups: int = 1, bn: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [sn(nn.Conv1d(cin, cout, 5, 2, 2, groups=groups))]
            if bn and norm == "batch":
                layers.append(nn.BatchNorm1d(cout))
            return layers + [nn.LeakyReLU(0.2, inplace=True)]

        per = max(1, ndf // channels)
        self.features = nn.Sequential(
            *view, *block(channels, channels * per, groups=channels, bn=False),     # each axis on its own
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
