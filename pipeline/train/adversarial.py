"""One adversarial-training harness for every GAN family in the project.

A *family* owns its networks and says how to compute the generator loss and the discriminator loss
for a batch; the harness owns everything around that: optimisers (Adam), the learning-rate schedule
(constant for the first half of the epochs, then linear decay to 0), image history pools, autocast,
progress bars, per-epoch checkpoints and resuming from the last one. Data comes from a sampler whose
batches depend only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import torch
from torch import nn
from tqdm import tqdm

from pipeline.train.device import DeviceSetup, pick_device
from pipeline.train.pool import ImagePool

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    lr: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 1
    pool_size: int = 50
    seed: int = 0
    steps_per_epoch: int | None = None
    device: str = "auto"
    compile: bool = False


class GanFamily(Protocol):
    """What the harness needs from a GAN family."""

    pooled: tuple[str, ...]  # names of generated batches that pass through history pools

    def modules(self) -> dict[str, nn.Module]: ...

    def parameters_of(self, role: str) -> list[nn.Parameter]: ...  # role: "G" or "D"

    def generator_loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float], Batch]: ...

    def discriminator_loss(self, batch: Batch, fakes: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]: ...


def lr_factor(epoch: int, epochs: int) -> float:
    """1 for the first half of the epochs, then linearly down to 0 after the last epoch."""
    keep = epochs // 2
    return 1.0 if epoch < keep else max(0.0, (epochs - epoch) / (epochs - keep + 1))


class UnpairedSampler:
    """Batches of x (shuffled each epoch) paired with random y; both drawn from a (seed, epoch) generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 steps_per_epoch: int | None = None) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        full = max(1, len(x) // batch_size)
        self.steps = min(full, steps_per_epoch) if steps_per_epoch else full

    def __call__(self, epoch: int) -> Iterator[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        order = torch.randperm(len(self.x), generator=g)
        for s in range(self.steps):
            ix = order[s * self.batch_size:(s + 1) * self.batch_size]
            iy = torch.randint(0, len(self.y), (len(ix),), generator=g)
            yield {"x": self.x[ix], "y": self.y[iy]}


class AdversarialTrainer:
    def __init__(self, family: GanFamily, cfg: TrainConfig, ckpt_dir: Path | None = None,
                 setup: DeviceSetup | None = None) -> None:
        self.family, self.cfg, self.ckpt_dir = family, cfg, ckpt_dir
        self.setup = setup or pick_device(cfg.device, cfg.compile)
        torch.manual_seed(cfg.seed)
        for m in family.modules().values():
            self.setup.prepare(m)
        betas = (cfg.beta1, 0.999)
        self.opt = {r: torch.optim.Adam(family.parameters_of(r), lr=cfg.lr, betas=betas) for r in ("G", "D")}
        self.sched = {r: torch.optim.lr_scheduler.LambdaLR(o, lambda e: lr_factor(e, cfg.epochs))
                      for r, o in self.opt.items()}
        self.pools = {k: ImagePool(cfg.pool_size, cfg.seed + i) for i, k in enumerate(family.pooled)}
        self.epoch, self.history = 0, []

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "history": self.history,
                "modules": {k: m.state_dict() for k, m in self.family.modules().items()},
                "opt": {k: o.state_dict() for k, o in self.opt.items()},
                "sched": {k: s.state_dict() for k, s in self.sched.items()},
                "pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.family.modules().items():
            m.load_state_dict(state["modules"][k])
        for k in self.opt:
            self.opt[k].load_state_dict(state["opt"][k])
            self.sched[k].load_state_dict(state["sched"][k])
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k], self.setup.device)
        self.epoch, self.history = state["epoch"], state["history"]

    def save(self) -> None:
        if self.ckpt_dir is None:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_dir / f".last.pt.tmp-{os.getpid()}"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.ckpt_dir / "last.pt")

    def resume(self) -> bool:
        path = self.ckpt_dir / "last.pt" if self.ckpt_dir else None
        if path is None or not path.is_file():
            return False
        self.load_state_dict(torch.load(path, map_location=self.setup.device, weights_only=False))
        return True

    # ------------------------------------------------------------ training
    def _step(self, batch: Batch) -> dict[str, float]:
        fam, setup = self.family, self.setup
        batch = {k: setup.batch(v) for k, v in batch.items()}
        self.opt["G"].zero_grad(set_to_none=True)
        with setup.autocast():
            g_loss, logs, fakes = fam.generator_loss(batch, self.epoch)
        g_loss.backward()
        self.opt["G"].step()
        fakes = {k: self.pools[k].query(v) if k in self.pools else v.detach() for k, v in fakes.items()}
        self.opt["D"].zero_grad(set_to_none=True)
        with setup.autocast():
            d_loss, d_logs = fam.discriminator_loss(batch, fakes, self.epoch)
        d_loss.backward()
        self.opt["D"].step()
        return {"loss_G": float(g_loss.detach()), "loss_D": float(d_loss.detach()), **logs, **d_logs}

    def fit(self, sampler: Callable[[int], Iterable[Batch]],
            on_epoch: Callable[[int, dict[str, float]], None] | None = None, stop_after: int | None = None) -> list:
        """Train to ``cfg.epochs`` (resuming from the last checkpoint); ``stop_after`` simulates a kill."""
        resumed = self.resume()
        for m in self.family.modules().values():
            m.train()
        while self.epoch < self.cfg.epochs:
            if stop_after is not None and self.epoch >= stop_after:
                break
            sums: dict[str, float] = {}
            n = 0
            desc = f"epoch {self.epoch + 1}/{self.cfg.epochs}" + (" (resumed)" if resumed else "")
            bar = tqdm(sampler(self.epoch), total=getattr(sampler, "steps", None), desc=desc, unit="it")
            for batch in bar:
                logs = self._step(batch)
                n += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(G=f"{logs['loss_G']:.3f}", D=f"{logs['loss_D']:.3f}")
            means = {k: v / max(n, 1) for k, v in sums.items()}
            means["lr"] = self.opt["G"].param_groups[0]["lr"]
            for s in self.sched.values():
                s.step()
            self.epoch += 1
            self.history.append(means)
            self.save()
            if on_epoch is not None:
                on_epoch(self.epoch, means)
        return self.history
