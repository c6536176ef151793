"""Video GAN variants through the shared adversarial harness: the composite generator loss (seed §4.3),
2D→3D inflation (seed §4.2), sampling and latent interpolation (seed §5.2.4).

The loss-ratio rule of seed eq. 4.9 (r = L_disc / L_adv; train only D, only G, or both) is the
harness's ``TrainConfig.balance``; this family logs its adversarial term as ``G_adv`` so r uses the
adversarial part of the generator loss, not the composite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import PipelineError
from pipeline.nn.init import init_normal
from pipeline.video.nets import SpriteGenerator, VideoDiscriminator, VideoFrameDiscriminator, VideoGenerator, inflate
from pipeline.train import gan as latent
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig
from pipeline.train.augment import AugmentedDiscriminator
from pipeline.train.gan import LabelledSampler, LatentGanFamily, sample, train_config
from pipeline.train.pixels import to_uint8, to_unit
from pipeline.video.params import GanVariant, VideoTrainGanParams

Batch = dict[str, torch.Tensor]
OnEpoch = Callable[[int, dict[str, float]], None]


class VideoGanFamily(LatentGanFamily):
    """LatentGanFamily whose generator loss is λ_adv·adv + λ_feat·feature matching + λ_vid·pixel (seed §4.3).

    * adv: the family's adversarial loss (bce / hinge / wgan-gp), logged as ``G_adv``.
    * feature matching (Salimans et al. 2016): squared distance between the batch means of the
      discriminator's pooled last feature map on real and on generated clips.
    * pixel: an unconditional generator has no paired target clip, so the pixel term compares the batch's
      mean clip (per pixel and frame, L1) with the real batch's: it pulls brightness, where digits tend to
      be and how that moves over time toward the data without pulling any one sample to the mean.
    """

    def __init__(self, generator: VideoGenerator, discriminator: VideoDiscriminator, latent_dim: int,
                 loss: str = "bce", gp_weight: float = 10.0, lambda_adv: float = 1.0, lambda_feat: float = 0.0,
                 lambda_vid: float = 0.0, conditional: bool = False) -> None:
        super().__init__(generator, discriminator, latent_dim, loss, conditional, gp_weight)
        self.lambdas = (lambda_adv, lambda_feat, lambda_vid)

    def generator_loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float], Batch]:
        real = batch["x"]
        fake = self._fake(batch)
        out = self.D(fake, self._labels(batch))
        adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out)) if self.loss == "bce" else -out.mean()
        la, lf, lv = self.lambdas
        total, logs = la * adv, {"G_adv": float(adv.detach())}
        if lf > 0:
            with torch.no_grad():
                f_real = self.D.features(real).mean(0)
            feat = (self.D.features(fake).mean(0) - f_real).pow(2).mean()
            total = total + lf * feat
            logs["G_feat"] = float(feat.detach())
        if lv > 0:
            pix = (fake.mean(0) - real.mean(0)).abs().mean()
            total = total + lv * pix
            logs["G_pix"] = float(pix.detach())
        return total, logs, {"fake": fake}


def build(v: GanVariant, dims: int, channels: int, size: int, frames: int, n_classes: int = 0
          ) -> tuple[VideoGenerator, VideoDiscriminator]:
    k = n_classes if v.conditional else 0
    if v.arch == "sprite" and dims == 3:
        g = init_normal(SpriteGenerator(channels, size, frames, v.latent_dim, v.ngf, k)).init_motion()
    else:
        g = init_normal(VideoGenerator(dims, channels, size, frames, v.latent_dim, v.ngf, k))
    d = init_normal(VideoDiscriminator(dims, channels, size, frames, v.ndf, v.norm, k))
    if v.frame_d and dims == 3:
        d = VideoFrameDiscriminator(d, init_normal(VideoDiscriminator(2, channels, size, frames, v.ndf, v.norm, k)))
    return g, d.apply_spectral_norm()


def family(v: GanVariant, g: VideoGenerator, d: VideoDiscriminator) -> VideoGanFamily:
    """The variant's training family; with ``augment``, D judges every clip (real and generated, in D's step,
    in G's and for feature matching) through DiffAugment, one draw per clip, black (-1) where it cuts."""
    if v.augment:
        d = AugmentedDiscriminator(d, v.augment, fill=-1.0)
    return VideoGanFamily(g, d, v.latent_dim, v.loss, v.gp_weight, v.lambda_adv, v.lambda_feat, v.lambda_vid,
                          v.conditional)


def config(p: VideoTrainGanParams, v: GanVariant, epochs: int, seed: int) -> TrainConfig:
    return train_config(p, v, seed, epochs=epochs, optimizer_G=v.optimizer_G, optimizer_D=v.optimizer_D, ema=v.ema,
                        balance=v.balance)


def _fit(p: VideoTrainGanParams, fam: VideoGanFamily, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor,
         on_epoch: OnEpoch | None) -> tuple[AdversarialTrainer, list[dict]]:
    trainer = AdversarialTrainer(fam, cfg)
    history = trainer.fit(LabelledSampler(x, y, p.batch_size, cfg.seed), on_epoch)
    return trainer, history


def pretrain_frames(p: VideoTrainGanParams, v: GanVariant, clips: np.ndarray, seed: int = 0,
                    on_epoch: OnEpoch | None = None) -> tuple[VideoGenerator, VideoDiscriminator, list[dict]]:
    """Train the 2D frame GAN on every frame of the training clips (the first step of seed §4.2)."""
    torch.manual_seed(seed)
    n, c, t, h, w = clips.shape
    g, d = build(v, 2, c, h, t)
    frames = torch.as_tensor(to_unit(clips.transpose(0, 2, 1, 3, 4).reshape(n * t, c, h, w)))
    _, history = _fit(p, family(v, g, d), config(p, v, v.pretrain_epochs, seed), frames,
                      torch.zeros(len(frames), dtype=torch.long), on_epoch)
    return g.cpu(), d.cpu(), history


def train(p: VideoTrainGanParams, v: GanVariant, clips: np.ndarray, labels: np.ndarray | None = None,
          n_classes: int = 0, seed: int = 0, on_epoch: OnEpoch | None = None, on_pretrain: OnEpoch | None = None
          ) -> tuple[VideoGenerator, dict[str, list[dict]]]:
    """Fit one variant on uint8 clips (N, C, T, H, W) (with their class ``labels`` when conditional) from
    training seed ``seed``; returns the generator to sample from (the EMA copy when ``ema`` > 0) and the loss
    histories ({"pretrain_2d": …, "video": …})."""
    _, c, t, h, _ = clips.shape
    if v.conditional and (labels is None or n_classes < 1):
        raise PipelineError("video_train_gan: a conditional variant needs the clips' labels")
    y = torch.as_tensor(labels if labels is not None else np.zeros(len(clips)), dtype=torch.long)
    histories: dict[str, list[dict]] = {}
    g2 = d2 = None
    if v.init == "inflate":
        g2, d2, histories["pretrain_2d"] = pretrain_frames(p, v, clips, seed, on_pretrain)
    torch.manual_seed(seed)
    g, d = build(v, 3, c, h, t, n_classes)
    if g2 is not None:
        inflate(g2, g)
        inflate(d2, d)
    trainer, histories["video"] = _fit(p, family(v, g, d), config(p, v, p.epochs, seed),
                                       torch.as_tensor(to_unit(clips)), y, on_epoch)
    return trainer.generator().cpu().eval(), histories


def sample_labels(n: int, n_classes: int) -> torch.Tensor:
    """Balanced class indices 0, 1, …, n_classes − 1, 0, … for ``n`` samples (0s when unconditional)."""
    return torch.arange(n) % max(n_classes, 1)


def generate(g: VideoGenerator, latent_dim: int, n: int, seed: int, n_classes: int = 0) -> np.ndarray:
    """``n`` uint8 clips (n, C, T, H, W) from a fixed seed; a conditional G gets balanced classes."""
    return to_uint8(sample(g, sample_labels(n, n_classes), latent_dim, seed, g.embed is not None).numpy())


@torch.no_grad()
def interpolate(g: VideoGenerator, latent_dim: int, pairs: int, steps: int, seed: int, n_classes: int = 0
                ) -> np.ndarray:
    """Clips from linearly interpolated latents between ``pairs`` random pairs (seed §5.2.4):
    (pairs, steps, C, T, H, W) uint8; step 0 and the last step are the two endpoint samples (a conditional
    G keeps pair i's class i mod n_classes fixed)."""
    g.eval()
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(pairs, latent_dim, generator=gen), torch.randn(pairs, latent_dim, generator=gen)
    alpha = torch.linspace(0, 1, steps)[None, :, None]
    z = ((1 - alpha) * z0[:, None] + alpha * z1[:, None]).reshape(pairs * steps, latent_dim)
    y = sample_labels(pairs, n_classes).repeat_interleave(steps)
    clips = to_uint8(g(z, y if g.embed is not None else None).float().numpy())
    return clips.reshape(pairs, steps, *clips.shape[1:])


def save_generator(path: Path, g: VideoGenerator, v: GanVariant, shape: tuple[int, ...], n_classes: int = 0) -> None:
    """``shape`` is one clip's (C, T, H, W)."""
    latent.save_generator(path, g, v, shape=list(shape), n_classes=n_classes)


def _rebuild(v: GanVariant, saved: dict) -> VideoGenerator:
    c, t, h, _ = saved["shape"]
    return build(v, 3, c, h, t, saved.get("n_classes", 0))[0]


def load_generator(path: Path) -> tuple[VideoGenerator, GanVariant]:
    g, v, _ = latent.load_generator(path, GanVariant, _rebuild)
    return g, v
