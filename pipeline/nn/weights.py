"""Loading the ``features.*`` part of a torchvision state dict from a local file, with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import PipelineError


def load_features(target: nn.Module, file: Path, name: str, prefix: str = "", hint: str = "") -> None:
    """Load the ``features.*`` entries of the torchvision state dict at ``file`` into ``target`` (strict).

    ``name`` is the network in messages ("VGG16"); ``prefix`` starts and ``hint`` ends every error
    (who asked for the weights, how to supply them).
    """
    tail = f"; {hint}" if hint else ""
    try:
        state: Any = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a torch file; torch's own text is multi-line
        raise PipelineError(f"{prefix}cannot read {name} weights {file}: corrupt or not a PyTorch state dict "
                            f"({type(exc).__name__}){tail}") from None
    if not isinstance(state, dict):
        raise PipelineError(f"{prefix}{name} weights {file} is not a state dict{tail}")
    sub = {k[len("features."):]: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    try:
        target.load_state_dict(sub, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:300]
        raise PipelineError(f"{prefix}{name} weights {file} do not match torchvision {name}: {reason}{tail}") from None
