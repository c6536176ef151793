"""Frozen VGG16 feature extractor for perceptual losses.

Weights come from a local copy of torchvision's ``vgg16-397923af.pth``
(VGG16_Weights.IMAGENET1K_V1); nothing is ever downloaded. ``"random"`` weights exist for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.nn.weights import WeightsSource, load_features

WEIGHTS_FILE = "vgg16-397923af.pth"
WEIGHTS = WeightsSource("VGG16 ImageNet weights", WEIGHTS_FILE, "refine.vgg_weights",
                        "copy {file} (torchvision VGG16_Weights.IMAGENET1K_V1) there or set {key} to its path")

# Indices into torchvision.models.vgg16().features (output of that layer).
VGG_LAYERS: dict[str, int] = {
    "relu1_2": 3, "pool1": 4,
    "relu2_2": 8, "pool2": 9,
    "relu3_3": 15, "pool3": 16,
    "relu4_3": 22, "pool4": 23,
    "relu5_3": 29, "pool5": 30,
}

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _prefix(who: str | None) -> str:
    return f"{who}: " if who else ""


def resolve_vgg_weights(path: str | None, who: str | None = None) -> Path:
    """Return the VGG16 weights file: ``path`` if given, else ``<torch hub dir>/checkpoints/vgg16-397923af.pth``.

    A missing file raises a one-line PipelineError (prefixed by ``who``) saying how to supply it.
    """
    return WEIGHTS.resolve(path, who=who)


def _vgg16_features() -> nn.Sequential:
    """Untrained torchvision VGG16 ``features`` (conv weights kaiming-normal, biases 0, like torchvision)."""
    from torchvision.models import vgg as tv_vgg  # torchvision's import costs seconds: only with a VGG loss
    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


def _load_features(file: Path, who: str | None) -> nn.Sequential:
    """VGG16 ``features`` with the ``features.*`` entries of a torchvision VGG16 state dict at ``file``."""
    from torchvision.models import vgg as tv_vgg  # torchvision's import costs seconds: only with a VGG loss
    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])
    load_features(features, file, "VGG16", _prefix(who))
    return features


class VGGFeatures(nn.Module):
    """Frozen VGG16 returning the activations named in ``layers`` (keys of VGG_LAYERS).

    ``weights`` is ``"random"`` (deterministic seed-0 weights, tests only) or a path to
    torchvision's VGG16 state dict. The network is truncated after the deepest requested layer,
    has no trainable parameters and always stays in eval mode.
    """

    def __init__(self, layers: Sequence[str], weights: str, *, who: str | None = None) -> None:
        super().__init__()
        if isinstance(layers, str):
            layers = [layers]
        unknown = [name for name in layers if name not in VGG_LAYERS]
        if unknown or not layers:
            raise PipelineError(f"{_prefix(who)}unknown VGG layer(s) {unknown or '[]'} "
                                f"(known: {', '.join(VGG_LAYERS)})")
        self.layers = list(dict.fromkeys(layers))
        if weights == "random":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                features = _vgg16_features()
        else:
            features = _load_features(resolve_vgg_weights(weights, who), who)
        deepest = max(VGG_LAYERS[name] for name in self.layers)
        for m in features.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False  # keep returned activations safe from later in-place ops
        self.features = features[: deepest + 1]
        self._index = {VGG_LAYERS[name]: name for name in self.layers}
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode (it is a fixed feature extractor)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B,3,H,W) in [-1,1] -> {layer name: activation}, e.g. pool2 (B,128,H/4,W/4)."""
        x = ((x + 1.0) * 0.5 - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._index:
                out[self._index[i]] = x
        return out
