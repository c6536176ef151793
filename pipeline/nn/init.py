"""Weight initialisation shared by every GAN (refiners and the four domains).

DCGAN's and CycleGAN's init are the same rule (Radford et al. 2016; Zhu et al. 2017): convolution and
linear weights ~ N(0, gain), biases 0, affine normalisation weights ~ N(1, gain).
"""

from __future__ import annotations

from torch import nn

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.GroupNorm, nn.LayerNorm)


def init_normal(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise ``module`` in place (call before spectral norm, which makes weights computed); returns it."""
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
