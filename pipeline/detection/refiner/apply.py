"""Apply a refiner to a folder of crops (batched), keeping the crop manifest unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.io.images import load_rgb, save_rgb
from pipeline.detection.crops.manifest import write_manifest

if TYPE_CHECKING:
    import pandas as pd


def to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H,W,3) list -> (B,3,H,W) float in [-1,1]."""
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1,1] -> (B,H,W,3) uint8 (exact inverse of ``to_tensor`` on its outputs)."""
    return x.add(1.0).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def refine_folder(model: nn.Module, crops: Path, manifest: pd.DataFrame, out: Path, batch_size: int = 16,
                  device: str = "cpu") -> int:
    """Refine every crop listed in ``manifest`` from ``crops`` into ``out`` (same names, same manifest)."""
    model = model.to(device).eval()
    (out / "crops").mkdir(parents=True, exist_ok=True)
    files = list(manifest["crop_file"])
    for start in tqdm(range(0, len(files), batch_size), desc="refine", unit="batch"):
        names = files[start:start + batch_size]
        refined = to_uint8(model(to_tensor([load_rgb(crops / f) for f in names]).to(device)))
        for f, im in zip(names, refined):
            save_rgb(out / f, im)
    write_manifest(out, manifest.to_dict("records"))
    return len(files)
