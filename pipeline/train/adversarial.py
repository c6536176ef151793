"""One adversarial-training harness for every GAN family in the project.

A *family* owns its networks and says how to compute the generator loss and the discriminator loss
for a batch; the harness owns everything around that: optimisers (Adam or SGD per network), the
learning-rate schedule (constant for the first half of the epochs, then linear decay to 0; or constant),
critic steps per generator step (or generator steps per critic step), the loss-ratio balancing rule
that trains only the side that is behind, an exponential moving average of the generator's weights,
image history pools, autocast, progress bars, per-epoch checkpoints and resuming from the last one. Data comes from a sampler whose
batches depend only on (seed, epoch), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import torch
from torch import nn
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.io.atomic import temp_sibling
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
    optimizer_G: str = "adam"  # "adam" or "sgd" (the sensor seed trains D with SGD, G with Adam)
    optimizer_D: str = "adam"
    lr_D: float | None = None  # None: ``lr``
    schedule: str = "linear_decay"  # or "constant"
    d_steps: int = 1  # discriminator (critic) updates per generator update, each on fresh fakes
    g_steps: int = 1  # generator updates per step (the audio seed trains G 5 times per D update)
    ema: float = 0.0  # > 0: keep an exponential moving average of G's weights with this decay
    balance: tuple[float, float] | None = None  # (r_low, r_high) on r = loss_D / loss_G; see ``balance_mode``


class GanFamily(Protocol):
    """What the harness needs from a GAN family."""

    pooled: tuple[str, ...]  # names of generated batches that pass through history pools

    def modules(self) -> dict[str, nn.Module]: ...

    def parameters_of(self, role: str) -> list[nn.Parameter]: ...  # role: "G" or "D"

    def generator_loss(self, batch: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float], Batch]: ...

    def discriminator_loss(self, batch: Batch, fakes: Batch, epoch: int) -> tuple[torch.Tensor, dict[str, float]]: ...


def _optimizer(kind: str, params: list[nn.Parameter], lr: float, beta1: float) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))
    raise ValueError(f"unknown optimizer {kind!r}")


def balance_mode(loss_d: float, loss_g: float, low: float, high: float) -> str:
    """Which networks to update next, from r = L_disc / L_adv (the video seed's eq. 4.9 rule).

    r > ``high``: the discriminator is losing, so only D trains; r < ``low``: D is winning too easily,
    so only G trains; otherwise both do.
    """
    r = loss_d / max(abs(loss_g), 1e-8)
    return "D" if r > high else "G" if r < low else "both"


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
        kinds, lrs = {"G": cfg.optimizer_G, "D": cfg.optimizer_D}, {"G": cfg.lr, "D": cfg.lr_D or cfg.lr}
        self.opt = {r: _optimizer(kinds[r], family.parameters_of(r), lrs[r], cfg.beta1) for r in ("G", "D")}
        factor = (lambda e: lr_factor(e, cfg.epochs)) if cfg.schedule == "linear_decay" else (lambda e: 1.0)
        self.sched = {r: torch.optim.lr_scheduler.LambdaLR(o, factor) for r, o in self.opt.items()}
        self.pools = {k: ImagePool(cfg.pool_size, cfg.seed + i) for i, k in enumerate(family.pooled)}
        self.ema_G = copy.deepcopy(family.modules()["G"]).eval().requires_grad_(False) if cfg.ema > 0 else None
        self.mode = "both"  # updated by the balancing rule after every step when ``cfg.balance`` is set
        self.epoch, self.history = 0, []

    def generator(self) -> nn.Module:
        """The generator to sample from: its EMA copy when ``cfg.ema`` > 0, else the trained one."""
        return self.ema_G if self.ema_G is not None else self.family.modules()["G"]

    @torch.no_grad()
    def _update_ema(self) -> None:
        g = self.family.modules()["G"]
        for e, p in zip(self.ema_G.parameters(), g.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - self.cfg.ema)
        for e, b in zip(self.ema_G.buffers(), g.buffers(), strict=True):
            e.copy_(b)

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "history": self.history,
                "modules": {k: m.state_dict() for k, m in self.family.modules().items()},
                "opt": {k: o.state_dict() for k, o in self.opt.items()},
                "sched": {k: s.state_dict() for k, s in self.sched.items()},
                "pools": {k: p.state_dict() for k, p in self.pools.items()}, "mode": self.mode,
                "ema_G": self.ema_G.state_dict() if self.ema_G is not None else None}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.family.modules().items():
            m.load_state_dict(state["modules"][k])
        for k in self.opt:
            self.opt[k].load_state_dict(state["opt"][k])
            self.sched[k].load_state_dict(state["sched"][k])
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k], self.setup.device)
        if self.ema_G is not None:
            self.ema_G.load_state_dict(state["ema_G"])
        self.mode = state.get("mode", "both")
        self.epoch, self.history = state["epoch"], state["history"]

    def save(self) -> None:
        if self.ckpt_dir is None:
            return
        tmp = temp_sibling(self.ckpt_dir / "last.pt")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.ckpt_dir / "last.pt")

    def resume(self) -> bool:
        """Load ``last.pt`` when there is one. A file that does not load (truncated by a full disk or a
        kill outside the atomic rename, or not a checkpoint) is reported, set aside as
        ``last.pt.corrupt-<time>`` and training starts fresh; one that loads but does not fit these networks
        stops with one line (the checkpoint folder belongs to another configuration)."""
        path = self.ckpt_dir / "last.pt" if self.ckpt_dir else None
        if path is None or not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.setup.device, weights_only=False)
            if not isinstance(state, dict) or "epoch" not in state:
                raise ValueError("not a training checkpoint")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is set aside the same way
            aside = path.with_name(f"last.pt.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
            print(f"warning: checkpoint {path} is unreadable ({type(exc).__name__}: {str(exc)[:80]}); moved to "
                  f"{aside.name}, training starts fresh", file=sys.stderr, flush=True)
            return False
        try:
            self.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            raise PipelineError(f"{path}: checkpoint does not fit this configuration's networks "
                                f"({type(exc).__name__}); move it aside to start fresh") from None
        return True

    # ------------------------------------------------------------ training
    def _step(self, batch: Batch) -> dict[str, float]:
        fam, setup, cfg = self.family, self.setup, self.cfg
        batch = {k: setup.batch(v) for k, v in batch.items()}
        train_g, train_d = self.mode in ("both", "G"), self.mode in ("both", "D")
        for _ in range(cfg.g_steps if train_g else 1):
            self.opt["G"].zero_grad(set_to_none=True)
            with setup.autocast(), torch.set_grad_enabled(train_g):
                g_loss, logs, fakes = fam.generator_loss(batch, self.epoch)
            if train_g:
                g_loss.backward()
                self.opt["G"].step()
                if self.ema_G is not None:
                    self._update_ema()
        fakes = {k: self.pools[k].query(v) if k in self.pools else v.detach() for k, v in fakes.items()}
        for i in range(cfg.d_steps if train_d else 1):
            if i and hasattr(fam, "fresh_fakes"):  # further critic steps see new samples
                with torch.no_grad(), setup.autocast():
                    fakes = fam.fresh_fakes(batch)
            self.opt["D"].zero_grad(set_to_none=True)
            with setup.autocast(), torch.set_grad_enabled(train_d):
                d_loss, d_logs = fam.discriminator_loss(batch, fakes, self.epoch)
            if train_d:
                d_loss.backward()
                self.opt["D"].step()
        out = {"loss_G": float(g_loss.detach()), "loss_D": float(d_loss.detach()), **logs, **d_logs}
        if cfg.balance is not None:
            out.update(trained_G=float(train_g), trained_D=float(train_d))
            self.mode = balance_mode(out["loss_D"], out.get("G_adv", out["loss_G"]), *cfg.balance)
        return out

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
