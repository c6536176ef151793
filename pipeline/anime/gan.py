"""Training and sampling the anime GAN variants with the shared adversarial harness.

Pictures across training come from fixed latent vectors (and fixed conditions: class = index mod k), so
the grids of successive epochs show the same draws getting better. Sampling uses the EMA copy of the
generator when the variant keeps one (``ema`` > 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pipeline.anime.data import FaceSet, to_uint8, to_unit
from pipeline.anime.nets import Discriminator64, Generator64
from pipeline.anime.params import AnimeTrainGanParams, GanVariant
from pipeline.io.images import grid, load_rgb, save_rgb
from pipeline.nn.init import init_normal
from pipeline.train import gan as latent
from pipeline.train.adversarial import AdversarialTrainer
from pipeline.train.augment import AugmentedDiscriminator
from pipeline.train.gan import LabelledSampler, LatentGanFamily, sample, train_config

GRID_ROWS, GRID_COLS = 4, 8


def d_norm(v: GanVariant) -> str:
    """The discriminator's normalisation: the variant's, or with ``auto`` the seed's (batch norm; none for
    the WGAN-GP critic, whose per-sample gradient penalty batch norm would break)."""
    return v.d_norm if v.d_norm != "auto" else "none" if v.loss == "wgan-gp" else "batch"


def build(v: GanVariant, n_classes: int) -> tuple[Generator64, nn.Module]:
    """The variant's generator and discriminator; D is wrapped in DiffAugment when ``augment`` names policies."""
    k = n_classes if v.conditional else 0
    g = Generator64(v.latent_dim, v.ngf, k, v.upsampling)
    d = Discriminator64(v.ndf, k, norm=d_norm(v))
    init_normal(g)
    if d.norm != "spectral":  # spectral norm computes the weights from its own copy: PyTorch's init stays
        init_normal(d)
    return g, (AugmentedDiscriminator(d, v.augment) if v.augment else d)


@torch.no_grad()
def _draw(g: nn.Module, z: torch.Tensor, y: torch.Tensor, conditional: bool, device) -> np.ndarray:
    """uint8 samples of ``g`` at fixed z (and y), leaving its train/eval mode as it was."""
    was_training = g.training
    g.eval()
    out = g(z.to(device), y.to(device) if conditional else None).float().cpu().numpy()
    g.train(was_training)
    return to_uint8(out)


class FixedLatents:
    """The GRID_ROWS × GRID_COLS latent vectors (and conditions) that every progress grid is drawn from."""

    def __init__(self, latent_dim: int, n_classes: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.z = torch.randn(GRID_ROWS * GRID_COLS, latent_dim, generator=gen)
        self.y = torch.arange(GRID_ROWS * GRID_COLS) % max(n_classes, 1)

    def grid(self, g: nn.Module, conditional: bool, device="cpu") -> np.ndarray:
        return grid(list(_draw(g, self.z, self.y, conditional, device)), cols=GRID_COLS)


def fingerprint(p: AnimeTrainGanParams, v: GanVariant, prepared: Path, seed: int) -> str:
    """Hash of everything a checkpoint depends on: a resumed run never picks up another setting's state."""
    keys = {k: val for k, val in dataclasses.asdict(p).items() if k not in ("run", "variants", "device", "seeds")}
    blob = json.dumps([keys, dataclasses.asdict(v), seed], sort_keys=True).encode()
    for f in ("meta.json", "labels.csv"):
        blob += (prepared / f).read_bytes() if (prepared / f).is_file() else b""
    return hashlib.sha256(blob).hexdigest()[:16]


def train(p: AnimeTrainGanParams, v: GanVariant, faces: FaceSet, n_classes: int, seed: int = 0,
          checkpoints: Path | None = None,
          on_epoch: Callable[[int, dict[str, float], np.ndarray | None], None] | None = None
          ) -> tuple[nn.Module, list[dict], dict[int, np.ndarray]]:
    """Fit one variant with training seed ``seed``; returns the generator to sample from, the loss history
    and the fixed-latent grid of every ``grid_every``-th epoch (and the last), also kept beside the
    checkpoints for resumed runs. The grids' latents do not depend on the seed, so seeds compare."""
    torch.manual_seed(seed)
    g, d = build(v, n_classes)
    family = LatentGanFamily(g, d, v.latent_dim, v.loss, v.conditional, v.gp_weight, mode_seeking=v.mode_seeking)
    trainer = AdversarialTrainer(family, train_config(p, v, seed, ema=v.ema), checkpoints)
    fixed = FixedLatents(v.latent_dim, n_classes, 7)
    grids: dict[int, np.ndarray] = {}

    def epoch_done(epoch: int, means: dict[str, float]) -> None:
        picture = None
        if epoch % p.grid_every == 0 or epoch == p.epochs:
            picture = grids[epoch] = fixed.grid(trainer.generator(), v.conditional, trainer.setup.device)
            if checkpoints is not None:
                save_rgb(checkpoints / f"grid_epoch{epoch:04d}.png", picture)
        if on_epoch is not None:
            on_epoch(epoch, means, picture)

    x = torch.as_tensor(to_unit(faces.x))
    history = trainer.fit(LabelledSampler(x, torch.as_tensor(faces.y), p.batch_size, seed), epoch_done)
    if checkpoints is not None:  # grids drawn before an interruption
        for f in sorted(checkpoints.glob("grid_epoch*.png")):
            grids.setdefault(int(f.stem[len("grid_epoch"):]), load_rgb(f))
    return trainer.generator().cpu().eval(), history, dict(sorted(grids.items()))


def progress_strip(grids: dict[int, np.ndarray]) -> np.ndarray:
    """One row per recorded epoch: the first row of that epoch's fixed-latent grid (oldest on top)."""
    rows = []
    for picture in grids.values():
        h = (picture.shape[0] - 2) // GRID_ROWS + 2  # grid(): pad 2 around every tile
        rows.append(picture[:h])
    return np.concatenate(rows) if rows else np.zeros((8, 8, 3), np.uint8)


def generate(g: nn.Module, v: GanVariant, n_classes: int, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` faces for every class, uint8; labels are the conditions asked for (for an
    unconditional generator they only say which draw it was)."""
    labels = torch.arange(max(n_classes, 1)).repeat_interleave(per_class)
    return to_uint8(sample(g, labels, v.latent_dim, seed, v.conditional).numpy()), labels.numpy()


@torch.no_grad()
def interpolation(g: nn.Module, v: GanVariant, n_classes: int, rows: int = 4, steps: int = 8,
                  seed: int = 0) -> np.ndarray:
    """``rows`` strips of ``steps`` faces along straight lines between two random latents (class fixed per
    row for a conditional generator)."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(rows, v.latent_dim, generator=gen), torch.randn(rows, v.latent_dim, generator=gen)
    t = torch.linspace(0, 1, steps)
    z = (a[:, None] * (1 - t[None, :, None]) + b[:, None] * t[None, :, None]).reshape(rows * steps, -1)
    y = (torch.arange(rows) % max(n_classes, 1)).repeat_interleave(steps)
    return grid(list(_draw(g, z, y, v.conditional, "cpu")), cols=steps)


def save_generator(path: Path, g: nn.Module, v: GanVariant, n_classes: int) -> None:
    latent.save_generator(path, g, v, n_classes=n_classes)


def load_generator(path: Path) -> tuple[Generator64, GanVariant, int]:
    g, v, saved = latent.load_generator(path, GanVariant, lambda v, s: build(v, s["n_classes"])[0])
    return g, v, saved["n_classes"]
