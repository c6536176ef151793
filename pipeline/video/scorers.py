"""Video classifiers for scoring and conditioning: a C3D-style 3D CNN and a factorised R(2+1)D-style net.

Both take clips (B, C, T, H, W) in [-1, 1] and return class logits (B, classes); ``features`` is the
pooled penultimate layer. They are deliberately different architectures: the classify stage grades
samples with one and steers activation-maximisation sampling with the other (seed §4.6.3).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.errors import PipelineError


def _pool(first: bool) -> nn.Module:
    # C3D: pool1 keeps time (1x2x2), later pools halve it; ceil_mode keeps short clips from vanishing
    return nn.MaxPool3d((1, 2, 2) if first else (2, 2, 2), ceil_mode=True)


class _PooledClassifier(nn.Module):
    """Conv ``layers`` → global average pool (``features``) → linear head (logits)."""

    def __init__(self, layers: list[nn.Module], width: int, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.head = nn.Linear(width, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class C3D(_PooledClassifier):
    """C3D-style (Tran et al. 2015): 3×3×3 convs, BatchNorm, ReLU, max pools; four blocks, global average pool."""

    def __init__(self, channels: int, n_classes: int, width: int = 32) -> None:
        layers: list[nn.Module] = []
        cin = channels
        for i, cout in enumerate((width, width * 2, width * 4, width * 4)):
            layers += [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(_pool(i == 0))
            cin = cout
        super().__init__(layers, cin, n_classes)


class R2Plus1D(_PooledClassifier):
    """R(2+1)D-style (Tran et al. 2018): each block a 1×3×3 spatial conv then a 3×1×1 temporal conv."""

    def __init__(self, channels: int, n_classes: int, width: int = 32) -> None:
        layers: list[nn.Module] = []
        cin = channels
        for i, cout in enumerate((width, width * 2, width * 4)):
            layers += [nn.Conv3d(cin, cout, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(cout),
                       nn.ReLU(inplace=True), nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0), bias=False),
                       nn.BatchNorm3d(cout), nn.ReLU(inplace=True), _pool(i == 0)]
            cin = cout
        super().__init__(layers, cin, n_classes)


CLASSIFIERS: dict[str, type[nn.Module]] = {"c3d": C3D, "r2plus1d": R2Plus1D}


def build_classifier(name: str, channels: int, n_classes: int, width: int) -> nn.Module:
    """The registered classifier ``name``; an unknown name lists the known ones."""
    if name not in CLASSIFIERS:
        raise PipelineError(f"unknown video classifier {name!r} (known: {', '.join(CLASSIFIERS)})")
    return CLASSIFIERS[name](channels, n_classes, width)
