"""Local pretrained weights: finding the file a params key names (or torch hub's cached copy) and loading
the ``features.*`` part of a torchvision state dict from it, with one-line errors. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import PipelineError


def hub_checkpoints() -> Path:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), read at call time so TORCH_HOME counts."""
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass(frozen=True)
class WeightsSource:
    """One pretrained weights file that is never downloaded: the path a params key gives, else torch hub's cache.

    ``hint`` says how to supply the file; ``{file}``, ``{key}`` and ``{hub}`` in it become ``file``, the
    params key and torch hub's checkpoint folder.
    """

    what: str  # the weights in messages: "VGG16 ImageNet weights"
    file: str  # the file's name in torch hub's cache
    key: str  # the params key whose value is the path, named in errors when the caller names none
    hint: str
    aliases: tuple[str, ...] = ()  # other names the same file is published under, also looked for
    folders: bool = False  # a path that is a folder is searched for ``file`` and ``aliases``
    error: type[PipelineError] = PipelineError  # raised when missing; a subclass lets a caller fall back

    def how_to_supply(self, key: str | None = None) -> str:
        """The hint, for this and other errors about the file (corrupt, wrong network)."""
        return self.hint.format(file=self.file, key=key or self.key, hub=hub_checkpoints())

    def candidates(self, path: str | Path | None) -> list[Path]:
        """Where the file may be, in the order looked at."""
        names = (self.file, *self.aliases)
        if not path:
            return [hub_checkpoints() / n for n in names]
        p = Path(path).expanduser()
        return [p / n for n in names] if self.folders and p.is_dir() else [p]

    def resolve(self, path: str | Path | None, key: str | None = None, who: str | None = None) -> Path:
        """The first existing candidate for ``path``; else ``error``, one line naming ``key`` (default
        ``self.key``) and where it looked, prefixed by ``who`` (the setting that needs the weights)."""
        found = self.candidates(path)
        for c in found:
            if c.is_file():
                return c
        where = found[0] if len(found) == 1 else found[0].parent
        prefix = f"{who}: " if who else ""
        raise self.error(f"{prefix}{self.what} not found at {where}: {self.how_to_supply(key)}")


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
