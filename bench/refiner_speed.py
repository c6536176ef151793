"""CycleGAN training throughput (iterations/s) at 128x128, ngf 64, 9 residual blocks, ndf 64.

    python bench/refiner_speed.py [--batch 1 8] [--steps 5] [--device auto|cpu|cuda] [--compile]
        [--losses cyc_pixel=10 id_pixel=5] [--lr 2e-4]
    OMP_NUM_THREADS=2 python bench/refiner_speed.py --reference PATH [--batch 1 4] [--rounds 3] [--iters 8]
        [--losses cyc_pixel=10 id_pixel=5] [--variant plain dfreeze foreach channels_last compile ...]

One iteration = one generator step + one discriminator step of the shared harness. The learning rate is the
configured one (constant schedule). On CUDA it runs with bf16 autocast and channels_last, and reports peak GPU
memory.

``--reference PATH``: PATH is a folder the user supplies, holding junyanz/pytorch-CycleGAN-and-pix2pix's
``models/networks.py``, ``models/cycle_gan_model.py``, ``models/base_model.py`` and ``util/image_pool.py``
(a ``models/__init__.py`` that imports nothing else is enough). Nothing of it is vendored or downloaded. Each
side runs in its own worker process (spawned, so neither shares threads or memory with the other); the parent
copies the project's initial weights into the reference's networks, checks the parameter counts and that both
sides' losses of the first two steps agree (``--tol``, relative), and exits with status 1 if not. Only then
does it time them in alternating rounds (the order rotates each round) and print the median it/s of each side,
the ratio project / reference (of the medians, and the median of per-round ratios, which cancels slow drifts of a
shared machine's load), the CPU seconds per iteration of each worker (steadier than wall time when other jobs
share the cores; with OMP_NUM_THREADS=1 it holds no OpenMP spin-waiting), and each worker's peak RSS. Every project variant is also compared bit for bit
with ``plain`` after the check steps.

Project variants (join with ``+``): ``plain`` (the harness as it is: the discriminators' weight gradients are
computed in the generator step and dropped before the D step), ``dfreeze`` (D's parameters frozen for the
generator step, as the reference does; exact on one thread, but on two threads the backward kernels change and
the demo's refine run drifted: loss_G 2.1509 -> 2.1657 after 2 epochs, so the harness keeps ``plain``),
``foreach`` (Adam with foreach=True),
``fused`` (Adam with fused=True), ``channels_last`` and ``compile`` (torch.compile of the four networks).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.train.adversarial import AdversarialTrainer, TrainConfig  # noqa: E402
from pipeline.detection.params import parse_spec  # noqa: E402
from pipeline.detection.refiner.training import FAMILIES  # noqa: E402
from pipeline.train.device import DeviceSetup  # noqa: E402

# ours <-> reference (the reference's G_A maps A=x to B=y; its D_A judges domain B)
NET_MAP = {"G_XY": "netG_A", "G_YX": "netG_B", "D_Y": "netD_A", "D_X": "netD_B"}
VARIANTS = ("plain", "dfreeze", "foreach", "fused", "channels_last", "compile")


def parse_losses(items: list[str]) -> dict[str, float]:
    return {k: float(v) for k, v in (i.split("=", 1) for i in items)}


def build_ours(losses: dict[str, float], batch: int, lr: float, seed: int, device: str = "cpu",
               variant: str = "plain", compile: bool = False) -> AdversarialTrainer:
    spec = parse_spec("bench", {"arch": "cyclegan", "losses": losses}, {"ngf": 64, "n_blocks": 9, "ndf": 64})
    parts = set(variant.split("+"))
    cfg = TrainConfig(epochs=1, lr=lr, batch_size=batch, device=device, seed=seed, schedule="constant",
                      compile=compile or "compile" in parts)
    setup = DeviceSetup(torch.device("cpu"), False, True, False) if "channels_last" in parts else None
    torch.manual_seed(seed)  # the family's initial weights, as train_refiner seeds them
    trainer = AdversarialTrainer(FAMILIES["cyclegan"](spec), cfg, setup=setup)
    if "dfreeze" in parts:  # D's own parameters need no gradient in the G step: its graph is built without them
        fam, d_only = trainer.family, [p for p in trainer.family.parameters_of("D") if p.requires_grad]
        g_loss = fam.generator_loss

        def frozen_d(*args):
            for p in d_only:
                p.requires_grad_(False)
            try:
                return g_loss(*args)
            finally:
                for p in d_only:
                    p.requires_grad_(True)

        fam.generator_loss = frozen_d
    for kind in ("foreach", "fused"):
        if kind in parts:
            trainer.opt = {r: torch.optim.Adam(o.param_groups[0]["params"], lr=lr, betas=(cfg.beta1, 0.999),
                                               **{kind: True}) for r, o in trainer.opt.items()}
    if cfg.compile:
        for name in NET_MAP:
            setattr(trainer.family, name, torch.compile(getattr(trainer.family, name)))
    return trainer


def data(batch: int, seed: int, size: int = 128) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 7)
    return {"x": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
            "y": torch.rand(batch, 3, size, size, generator=g) * 2 - 1}


# ------------------------------------------------------------------ one side per worker process
class Ours:
    def __init__(self, a: SimpleNamespace, batch: int, variant: str) -> None:
        self.trainer, self.w = build_ours(a.losses, batch, a.lr, a.seed, variant=variant), a.losses
        self.nets = {k: getattr(self.trainer.family, k) for k in NET_MAP}

    def export(self, path: str) -> dict[str, int]:
        torch.save({k: m.state_dict() for k, m in self.nets.items()}, path)
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.nets.items()}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        o = self.trainer._step(batch)
        return {"G_gan": o["G_gan"], "cycle": self.w.get("cyc_pixel", 0) * o.get("G_cyc_pixel", 0.0),
                "identity": self.w.get("id_pixel", 0) * o.get("G_id_pixel", 0.0), "G": o["loss_G"],
                "D_X": o["D_X"], "D_Y": o["D_Y"]}

    def parameters(self) -> list[torch.Tensor]:
        return [t for k in NET_MAP for t in self.nets[k].state_dict().values()]


class Reference:
    def __init__(self, a: SimpleNamespace, batch: int, variant: str) -> None:
        sys.path.insert(0, str(Path(a.reference).resolve()))
        from models.cycle_gan_model import CycleGANModel  # the user's copy of the reference

        w = a.losses
        lam = w.get("cyc_pixel", 0.0)
        opt = SimpleNamespace(  # the reference's train defaults, at the bench's settings
            input_nc=3, output_nc=3, ngf=64, ndf=64, netG="resnet_9blocks", netD="basic", n_layers_D=3,
            norm="instance", init_type="normal", init_gain=0.02, no_dropout=True, gpu_ids=[], isTrain=True,
            checkpoints_dir=tempfile.gettempdir(), name="bench", preprocess="resize_and_crop", direction="AtoB",
            gan_mode="lsgan", pool_size=50, lr=a.lr, beta1=0.5, lambda_A=lam, lambda_B=lam,
            lambda_identity=w.get("id_pixel", 0.0) / lam if lam else 0.0)
        self.model = CycleGANModel(opt)
        self.nets = {k: getattr(self.model, v) for k, v in NET_MAP.items()}

    def load(self, path: str) -> dict[str, int]:
        """Copy the project's weights in, by position; every pair of tensors must have the same shape."""
        ours = torch.load(path, weights_only=True)
        for k, net in self.nets.items():
            src, dst = list(ours[k].values()), net.state_dict()
            if len(src) != len(dst) or any(s.shape != d.shape for s, d in zip(src, dst.values())):
                raise SystemExit(f"error: {k} <-> {NET_MAP[k]}: the architectures differ "
                                 f"({len(src)} vs {len(dst)} tensors)")
            net.load_state_dict(dict(zip(dst, src)))
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.nets.items()}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        m = self.model
        m.set_input({"A": batch["x"], "B": batch["y"], "A_paths": [], "B_paths": []})
        m.optimize_parameters()
        f = lambda t: float(t.detach()) if torch.is_tensor(t) else float(t)  # noqa: E731
        return {"G_gan": f(m.loss_G_A) + f(m.loss_G_B), "cycle": f(m.loss_cycle_A) + f(m.loss_cycle_B),
                "identity": f(m.loss_idt_A) + f(m.loss_idt_B), "G": f(m.loss_G),
                "D_X": f(m.loss_D_B), "D_Y": f(m.loss_D_A)}


def worker(kind: str, a: SimpleNamespace, batch: int, variant: str, conn) -> None:
    torch.manual_seed(a.seed)
    side = (Reference if kind == "reference" else Ours)(a, batch, variant)
    x = data(batch, a.seed)
    conn.send("ready")
    while True:
        cmd, *args = conn.recv()
        if cmd == "stop":
            break
        if cmd == "export":
            conn.send(side.export(*args))
        elif cmd == "load":
            conn.send(side.load(*args))
        elif cmd == "check":
            conn.send([side.step(x) for _ in range(args[0])])
        elif cmd == "digest":
            h = hashlib.sha256()
            for t in side.parameters():
                h.update(t.detach().contiguous().cpu().numpy().tobytes())
            conn.send(h.hexdigest())
        elif cmd == "time":
            t, c = time.perf_counter(), time.process_time()
            for _ in range(args[0]):
                side.step(x)
            conn.send((time.perf_counter() - t, time.process_time() - c))
        elif cmd == "rss":
            import resource
            conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)  # KiB -> GiB


def compare(ref: list[dict[str, float]], ours: list[dict[str, float]], tol: float) -> tuple[float, list[str]]:
    worst, bad = 0.0, []
    for step, (r, o) in enumerate(zip(ref, ours), 1):
        for k in r:
            rel = abs(o[k] - r[k]) / max(abs(r[k]), 1e-12)
            worst = max(worst, rel)
            if rel > tol:
                bad.append(f"step {step} {k}: project {o[k]:.8g}, reference {r[k]:.8g} (rel. diff {rel:.2e})")
    return worst, bad


def against_reference(a: argparse.Namespace, batch: int) -> int:
    ctx = mp.get_context("spawn")
    conf = SimpleNamespace(reference=a.reference, losses=a.losses, lr=a.lr, seed=a.seed)
    sides: dict[str, tuple] = {}
    for name, kind, variant in [("reference", "reference", "")] + [(v, "ours", v) for v in a.variant]:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(kind, conf, batch, variant, child), daemon=True)
        proc.start()
        sides[name] = (proc, parent)
    ask = lambda name, *msg: (sides[name][1].send(msg), sides[name][1].recv())[1]  # noqa: E731
    for name, (proc, conn) in sides.items():
        if not conn.poll(600) or conn.recv() != "ready":
            raise SystemExit(f"error: worker {name} did not start")
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        first = a.variant[0]
        counts = ask(first, "export", f"{tmp}/w.pt")
        ref_counts = ask("reference", "load", f"{tmp}/w.pt")
    if counts != ref_counts:
        raise SystemExit(f"error: parameter counts differ: project {counts}, reference {ref_counts}")
    print(f"batch {batch}: parameters {sum(counts.values()):,} on both sides ({counts}); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    ref_losses = ask("reference", "check", a.check_steps)
    digests = {}
    for v in a.variant:
        worst, bad = compare(ref_losses, ask(v, "check", a.check_steps), a.tol)
        digests[v] = ask(v, "digest")
        same = "" if v == a.variant[0] else (
            f"; parameters after the check {'bit-identical to' if digests[v] == digests[a.variant[0]] else 'DIFFER from'}"
            f" {a.variant[0]}")
        print(f"  {v}: losses of {a.check_steps} step(s) {'DISAGREE with' if bad else 'agree with'} the reference, "
              f"largest relative difference {worst:.1e} (tol {a.tol:g}){same}")
        if bad:
            print("error: the project and the reference disagree before timing:\n  " + "\n  ".join(bad),
                  file=sys.stderr)
            status = 1
    if status:
        for _, conn in sides.values():
            conn.send(("stop",))
        return status
    print(f"  step-1 losses: {', '.join(f'{k} {v:.5g}' for k, v in ref_losses[0].items())}")
    names = list(sides)
    rates: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}  # CPU seconds per iteration, all threads of the worker
    for r in range(a.rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            wall, used = ask(n, "time", a.iters)
            rates[n].append(a.iters / wall)
            cpu[n].append(used / a.iters)
    med = {n: statistics.median(v) for n, v in rates.items()}
    cpu_med = {n: statistics.median(v) for n, v in cpu.items()}
    print(f"  timed; load average now {os.getloadavg()[0]:.2f}")
    for n in names:
        paired = [x / r for x, r in zip(rates[n], rates["reference"])]  # same round: same machine load
        ratio = "" if n == "reference" else (f"  ratio {med[n] / med['reference']:.3f} (of medians), "
                                              f"{statistics.median(paired):.3f} (median of per-round ratios)")
        print(f"  {n:>22}: {med[n]:.4f} it/s (median of {a.rounds} x {a.iters}; rounds "
              f"{', '.join(f'{x:.4f}' for x in rates[n])}), peak RSS {ask(n, 'rss'):.2f} GiB{ratio}", flush=True)
        print(f"  {'':>22}  CPU time {cpu_med[n]:.2f} s/it (median; rounds {', '.join(f'{x:.2f}' for x in cpu[n])})"
              + ("" if n == "reference" else f"  CPU-time ratio reference/project {cpu_med['reference'] / cpu_med[n]:.3f}"))
    for proc, conn in sides.values():
        conn.send(("stop",))
        proc.join(30)
    return 0


def bench(batch: int, steps: int, device: str, compile: bool, losses: dict[str, float], lr: float) -> str:
    trainer = build_ours(losses, batch, lr, 0, device=device, compile=compile)
    batch_data = {k: v for k, v in data(batch, 0).items()}
    trainer._step(batch_data)  # warm-up (and compilation)
    sync = torch.cuda.synchronize if trainer.setup.device.type == "cuda" else (lambda: None)
    if trainer.setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        trainer._step(batch_data)
    sync()
    dt = (time.perf_counter() - t) / steps
    mem = (f", peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
           if trainer.setup.device.type == "cuda" else "")
    return (f"{trainer.setup.device.type} bf16={trainer.setup.bf16} compile={trainer.setup.compile} batch {batch}: "
            f"{1 / dt:.3f} it/s ({batch / dt:.2f} images/s){mem}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="default: 1 8 (1 4 with --reference)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--losses", nargs="+", default=["cyc_pixel=10"], help="TERM=WEIGHT; gan is 1 unless given")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", help="folder with the reference's models/ and util/ files")
    ap.add_argument("--variant", nargs="+", default=["plain"], help=f"project variants: {'|'.join(VARIANTS)}, "
                    "joined with +")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--check-steps", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    a.losses = parse_losses(a.losses)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, losses {a.losses}, lr {a.lr:g}")
    if a.reference is None:
        for b in a.batch or [1, 8]:
            print(bench(b, a.steps, a.device, a.compile, a.losses, a.lr), flush=True)
        return 0
    extra = set(a.losses) - {"gan", "cyc_pixel", "id_pixel"}
    if extra or a.losses.get("gan", 1.0) != 1.0 or (a.losses.get("id_pixel") and not a.losses.get("cyc_pixel")):
        raise SystemExit(f"error: the reference trains gan 1 + cyc_pixel (+ id_pixel with cyc_pixel > 0); "
                         f"got {a.losses}")
    for v in a.variant:
        if not set(v.split("+")) <= set(VARIANTS):
            raise SystemExit(f"error: unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    if not (Path(a.reference) / "models" / "cycle_gan_model.py").is_file():
        raise SystemExit(f"error: {a.reference} holds no models/cycle_gan_model.py of the reference")
    for b in a.batch or [1, 4]:
        if against_reference(a, b):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
