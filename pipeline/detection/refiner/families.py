"""Train a refiner config on synthetic crops (X) and real crops (Y) with the shared harness."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

from pipeline.io.images import grid, load_rgb
from pipeline.detection.refiner.nets import Identity
from pipeline.detection.refiner.vgg import VGGFeatures, resolve_vgg_weights
from pipeline.detection.params import RefineParams, RefinerSpec
from pipeline.detection.refiner.apply import to_tensor, to_uint8
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig, UnpairedSampler
from pipeline.detection.refiner.training import FAMILIES
from pipeline.train.device import deterministic, pick_device

if TYPE_CHECKING:
    import pandas as pd

EpochHook = Callable[[int, dict[str, float], Any], None]


def train_config(p: RefineParams) -> TrainConfig:
    return TrainConfig(epochs=p.epochs, lr=p.lr, beta1=p.beta1, batch_size=p.batch_size, pool_size=p.pool_size,
                       seed=p.seed, steps_per_epoch=p.steps_per_epoch, device=p.device, compile=p.compile)


def build_vgg(spec: RefinerSpec, weights: str | None) -> VGGFeatures | None:
    """Resolve VGG16 weights before any training; a missing file names the config and how to supply it."""
    if not spec.needs_vgg:
        return None
    path = weights if weights == "random" else str(resolve_vgg_weights(weights, who=f"refine.configs.{spec.name}"))
    return VGGFeatures(spec.vgg_layers, path, who=f"refine.configs.{spec.name}")


def load_crops(folder: Path, manifest: pd.DataFrame) -> torch.Tensor:
    return to_tensor([load_rgb(folder / f) for f in manifest["crop_file"]])


def run_key(spec: RefinerSpec, cfg: TrainConfig, *manifests: pd.DataFrame) -> str:
    """Checkpoints are only resumed by the same config on the same crops."""
    import pandas as pd  # pandas costs ~0.5 s to import: only to hash the manifests
    blob = json.dumps([dataclasses.asdict(spec), dataclasses.asdict(cfg)], sort_keys=True, default=str)
    h = hashlib.sha256(blob.encode())
    for m in manifests:
        h.update(pd.util.hash_pandas_object(m, index=False).values.tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def sample_grid(family: Any, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Rows: synthetic, refined, real, back-translated (+ attention maps for AGGAN)."""
    mods = family.modules()
    for m in mods.values():
        m.eval()
    dev = next(family.G_XY.parameters()).device
    x, y = x.to(dev), y.to(dev)
    fake_y, att_x = family.translate_xy(x)
    fake_x, att_y = family.translate_yx(y)
    rows = [x, fake_y, y, fake_x]
    if att_x is not None:
        rows += [att_x.expand_as(x) * 2 - 1, att_y.expand_as(y) * 2 - 1]
    for m in mods.values():
        m.train()
    tiles = [im for row in rows for im in to_uint8(row.float().cpu())]
    return grid(tiles, cols=len(x))


def train_refiner(p: RefineParams, spec: RefinerSpec, x_dir: Path, x_manifest: pd.DataFrame, y_dir: Path,
                  y_manifest: pd.DataFrame, checkpoints: Path | None, on_epoch: EpochHook | None = None,
                  vgg: VGGFeatures | None = None) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train ``spec`` (resuming from ``checkpoints`` when possible); returns the X->Y translator.

    ``vgg`` comes from ``build_vgg`` (called first, so missing weights fail before any data is read).
    """
    if spec.arch == "identity":
        return Identity(), []
    cfg = train_config(p)
    x, y = load_crops(x_dir, x_manifest), load_crops(y_dir, y_manifest)
    with deterministic(p.seed):
        family = FAMILIES[spec.arch](spec, vgg)
        ckpt = checkpoints / run_key(spec, cfg, x_manifest, y_manifest) if checkpoints else None
        trainer = AdversarialTrainer(family, cfg, ckpt)
        if vgg is not None:
            trainer.setup.prepare(vgg)
        family.set_targets(x, y)
        fixed_x, fixed_y = x[:4], y[:4]
        hook = (lambda e, m: on_epoch(e, m, sample_grid(family, fixed_x, fixed_y))) if on_epoch else None
        history = trainer.fit(UnpairedSampler(x, y, cfg.batch_size, cfg.seed, cfg.steps_per_epoch), hook)
    return family.translator().eval(), history


def device_of(p: RefineParams) -> str:
    return str(pick_device(p.device).device)
