"""One place that picks the device and the speed settings that go with it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class DeviceSetup:
    """cuda -> bf16 autocast + channels_last (+ optional torch.compile); mps and cpu run plain fp32."""

    device: torch.device
    bf16: bool
    channels_last: bool
    compile: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        if self.channels_last:  # per tensor: a network may mix 2D (4-d weights) and 3D (5-d) convolutions
            for p in module.parameters():
                p.data = _channels_last(p.data)
        return module

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return _channels_last(x) if self.channels_last else x


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """Images (4-d) to channels_last, clips (5-d) to channels_last_3d, anything else unchanged."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def pick_device(prefer: str = "auto", compile: bool = False) -> DeviceSetup:
    """``prefer``: auto (cuda, then mps, then cpu), cuda, mps or cpu.

    ``auto`` takes what is there; naming ``cuda`` or ``mps`` when torch cannot see it is an error, not a
    silent run on the CPU (a GPU job that quietly trains on CPU costs hours and reports wrong speeds).
    """
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if prefer in ("auto", "cuda") and torch.cuda.is_available():
        return DeviceSetup(torch.device("cuda"), True, True, compile)
    if prefer in ("auto", "mps") and has_mps:
        return DeviceSetup(torch.device("mps"), False, False, False)
    if prefer in ("cuda", "mps"):
        from pipeline.errors import PipelineError

        raise PipelineError(f"device {prefer!r} was asked for, but torch {torch.__version__} sees no {prefer} "
                            f"device here (use device: auto or cpu)")
    return DeviceSetup(torch.device("cpu"), False, False, False)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and ask for deterministic kernels (exact on CPU; best effort on CUDA)."""
    torch.manual_seed(seed)
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)
