"""CycleGAN building blocks (Zhu et al. 2017; seed Tables 2.2 and 2.3).

Images are (B,C,H,W) in [-1,1]. Normalisation is InstanceNorm2d without affine parameters,
so convolutions keep their biases (this gives the canonical 11,378,179 parameters for the
ResNet-9 generator with 3 input and 3 output channels).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.errors import PipelineError


def _conv_norm_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    """Conv2d + InstanceNorm2d + ReLU (the 'c7s1-k' and 'dk' units of the paper)."""
    return [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding),
            nn.InstanceNorm2d(out_ch), nn.ReLU(inplace=True)]


def _up_norm_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    """Fractionally strided conv (exact x2 upsampling) + InstanceNorm2d + ReLU: the 'uk' unit."""
    return [nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(out_ch), nn.ReLU(inplace=True)]


class ResnetBlock(nn.Module):
    """Residual block 'Rk': two reflection-padded 3x3 convs with InstanceNorm; (B,ch,H,W) -> same shape."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator: c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-out.

    ``skip=True`` (the seed's "S" variants) adds an input->output skip connection,
    ``out = clamp(x + tanh(raw), -1, 1)``, so the network only learns a residual on top of its
    input; it needs ``in_ch == out_ch``. Without skip, ``out = tanh(raw)``.
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9,
                 skip: bool = False) -> None:
        super().__init__()
        if skip and in_ch != out_ch:
            raise PipelineError(f"ResnetGenerator: skip=True needs in_ch == out_ch (got {in_ch} and {out_ch})")
        if n_blocks < 0 or ngf < 1:
            raise PipelineError(f"ResnetGenerator: need ngf >= 1 and n_blocks >= 0 (got {ngf} and {n_blocks})")
        self.skip = skip
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), *_conv_norm_relu(in_ch, ngf, 7)]
        layers += _conv_norm_relu(ngf, 2 * ngf, 3, stride=2, padding=1)
        layers += _conv_norm_relu(2 * ngf, 4 * ngf, 3, stride=2, padding=1)
        layers += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
        layers += _up_norm_relu(4 * ngf, 2 * ngf)
        layers += _up_norm_relu(2 * ngf, ngf)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7)]
        self.net = nn.Sequential(*layers)

    @property
    def last_conv(self) -> nn.Conv2d:
        """The final c7s1 convolution (e.g. to zero-initialise a skip generator to the identity)."""
        conv = self.net[-1]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,H,W) in [-1,1], H and W divisible by 4 -> (B,out_ch,H,W) in [-1,1]."""
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"ResnetGenerator: H and W must be divisible by 4, got {tuple(x.shape[-2:])}")
        out = torch.tanh(self.net(x))
        if self.skip:
            out = (x + out).clamp(-1.0, 1.0)
        return out


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: C64 (no norm), C128, C256 (stride 2), C512 (stride 1), then a 1-channel conv.

    Outputs raw scores (no sigmoid; meant for the least-squares GAN loss). For a 256x256 input the
    map is 30x30, for 128x128 it is 14x14; inputs need H, W >= 32 (InstanceNorm needs > 1 pixel).
    """

    def __init__(self, in_ch: int = 3, ndf: int = 64) -> None:
        super().__init__()
        chans = [in_ch, ndf, 2 * ndf, 4 * ndf, 8 * ndf]
        blocks: list[nn.Module] = []
        for i in range(4):
            stride = 2 if i < 3 else 1
            layers: list[nn.Module] = [nn.Conv2d(chans[i], chans[i + 1], 4, stride=stride, padding=1)]
            if i > 0:
                layers.append(nn.InstanceNorm2d(chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(chans[-1], 1, 4, stride=1, padding=1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,in_ch,H,W) in [-1,1] -> outputs of C64, C128, C256, C512 (for feature-space losses)."""
        feats: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One pass returning the (B,1,h,w) score map and the four block outputs."""
        feats = self.features(x)
        return self.head(feats[-1]), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,H,W) in [-1,1] -> (B,1,h,w) raw patch scores."""
        return self.forward_with_features(x)[0]


class Identity(nn.Module):
    """Returns its input: a baseline config, and the check that crop -> reinsert round-trips."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
