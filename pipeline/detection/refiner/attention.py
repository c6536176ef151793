"""Attention-guided GAN pieces (Mejjati et al. 2018; seed section 2.5).

An attention network predicts a foreground map a in [0,1]; the translated image is composed as
``a * G(x) + (1 - a) * x`` and, after the ``switch`` epoch, discriminators only see the
thresholded foreground (eqs. 2.14-2.16).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.detection.refiner.nets import ResnetBlock


def _conv_in_relu(in_ch: int, out_ch: int, stride: int = 1) -> list[nn.Module]:
    """3x3 conv (zero padding 1) + InstanceNorm2d + ReLU."""
    return [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.InstanceNorm2d(out_ch),
            nn.ReLU(inplace=True)]


class AttentionNet(nn.Module):
    """Small encoder-decoder producing a 1-channel attention map.

    c7s1-ngf, two stride-2 3x3 convs (2ngf, 4ngf), ``n_blocks`` ResnetBlocks, two
    (nearest x2 upsample + 3x3 conv) stages back to ngf, then a 7x7 conv to 1 channel + sigmoid.
    """

    def __init__(self, in_ch: int = 3, ngf: int = 32, n_blocks: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), nn.InstanceNorm2d(ngf),
                                   nn.ReLU(inplace=True)]
        layers += _conv_in_relu(ngf, 2 * ngf, stride=2)
        layers += _conv_in_relu(2 * ngf, 4 * ngf, stride=2)
        layers += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_in_relu(4 * ngf, 2 * ngf)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_conv_in_relu(2 * ngf, ngf)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 1, 7), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,H,W) in [-1,1], H and W divisible by 4 -> (B,1,H,W) attention in [0,1]."""
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"AttentionNet: H and W must be divisible by 4, got {tuple(x.shape[-2:])}")
        return self.net(x)


def compose(attention: torch.Tensor, translated: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``a * translated + (1 - a) * source``; attention (B,1,H,W) in [0,1], images (B,C,H,W) in [-1,1]."""
    return attention * translated + (1.0 - attention) * source


def threshold_foreground(attention: torch.Tensor, image: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """``image * (attention > tau)``: keep only the attended foreground, zeroing the rest.

    attention (B,1,H,W) in [0,1], image (B,C,H,W). The mask is a constant, so gradients flow to
    ``image`` only (none to ``attention``).
    """
    mask = (attention.detach() > tau).to(image.dtype)
    return image * mask
