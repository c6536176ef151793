"""Refiner networks chosen by name. A refiner maps crops (B,3,H,W) in [-1,1] to refined crops, same range."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from pipeline.errors import PipelineError


class Identity(nn.Module):
    """Returns its input: lets the DAG run end to end and checks crop -> reinsert round trips."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


REFINERS: dict[str, Callable[..., nn.Module]] = {"identity": Identity}


def build_refiner(name: str, config: dict[str, Any]) -> nn.Module:
    """Build the refiner for config ``name``; an unknown arch lists the known ones."""
    arch = config.get("arch")
    if arch not in REFINERS:
        raise PipelineError(f"refine.configs.{name}.arch: unknown arch {arch!r} (known: {', '.join(sorted(REFINERS))})")
    kwargs = {k: v for k, v in config.items() if k != "arch"}
    try:
        return REFINERS[arch](**kwargs)
    except TypeError as exc:
        raise PipelineError(f"refine.configs.{name}: {exc}") from None
