"""The CycleGAN family (with its loss variants and skip connections) and the attention-guided GAN.

x is the synthetic domain X, y the real domain Y. G_XY refines synthetic images; G_YX maps back.
"""

from __future__ import annotations


import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.detection.refiner.attention import AttentionNet, compose, threshold_foreground
from pipeline.detection.refiner.nets import PatchDiscriminator, ResnetGenerator
from pipeline.nn.init import init_normal
from pipeline.detection.refiner.vgg import VGGFeatures
from pipeline.detection.params import RefinerSpec
from pipeline.detection.refiner.losses import LOSSES, CycleContext, lsgan


class Translator(nn.Module):
    """The trained refiner: x (B,3,H,W) in [-1,1] -> refined x, same range (attention-composed for AGGAN)."""

    def __init__(self, gen: nn.Module, attention: nn.Module | None = None) -> None:
        super().__init__()
        self.gen, self.attention = gen, attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention is None:
            return self.gen(x)
        return compose(self.attention(x), self.gen(x), x)


class CycleGANFamily:
    """Two generators, two 70x70 PatchGAN discriminators, LSGAN + weighted loss terms."""

    pooled = ("fake_x", "fake_y")

    def __init__(self, spec: RefinerSpec, vgg: VGGFeatures | None = None) -> None:
        self.spec, self.vgg_net, self.epoch = spec, vgg, 0
        gen = lambda: init_normal(ResnetGenerator(ngf=spec.ngf, n_blocks=spec.n_blocks, skip=spec.skip))  # noqa
        self.G_XY, self.G_YX = gen(), gen()
        self.D_X, self.D_Y = init_normal(PatchDiscriminator(ndf=spec.ndf)), init_normal(PatchDiscriminator(ndf=spec.ndf))
        self.mean_x: dict[str, torch.Tensor] = {}
        self.mean_y: dict[str, torch.Tensor] = {}

    def modules(self) -> dict[str, nn.Module]:
        return {"G_XY": self.G_XY, "G_YX": self.G_YX, "D_X": self.D_X, "D_Y": self.D_Y}

    def parameters_of(self, role: str) -> list[nn.Parameter]:
        return [p for k, m in self.modules().items() if k.startswith(role) or (role == "G" and k.startswith("A_"))
                for p in m.parameters()]

    def vgg(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.vgg_net is None:
            raise PipelineError(f"refine.configs.{self.spec.name}: a VGG loss term is on but no VGG16 was built")
        return self.vgg_net(t)

    @torch.no_grad()
    def set_targets(self, x: torch.Tensor, y: torch.Tensor, batch: int = 32) -> None:
        """Mean VGG features of both full sets (for the mean-feature loss)."""
        if self.spec.losses.get("mean_feat", 0) <= 0:
            return
        dev = next(self.G_XY.parameters()).device
        for attr, data in (("mean_x", x), ("mean_y", y)):
            sums: dict[str, torch.Tensor] = {}
            for i in range(0, len(data), batch):
                for k, v in self.vgg(data[i:i + batch].to(dev)).items():
                    sums[k] = sums.get(k, 0) + v.float().sum(0)
            setattr(self, attr, {k: v / len(data) for k, v in sums.items()})

    def translate_xy(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.G_XY(x), None

    def translate_yx(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.G_YX(y), None

    def disc_view(self, img: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
        return img

    def real_views(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["x"], batch["y"]

    def generator_loss(self, batch, epoch):
        self.epoch = epoch
        ctx = CycleContext(self, batch["x"], batch["y"])
        terms = {k: LOSSES[k](ctx) for k, w in self.spec.losses.items() if w > 0}
        loss = sum(self.spec.losses[k] * v for k, v in terms.items())
        fakes = {"fake_y": self.disc_view(ctx.fake_y, ctx.att_x).detach(),
                 "fake_x": self.disc_view(ctx.fake_x, ctx.att_y).detach()}
        return loss, {f"G_{k}": float(v.detach()) for k, v in terms.items()}, fakes

    def discriminator_loss(self, batch, fakes, epoch):
        real_x, real_y = self.real_views(batch)
        d_y = 0.5 * (lsgan(self.D_Y(real_y), True) + lsgan(self.D_Y(fakes["fake_y"]), False))
        d_x = 0.5 * (lsgan(self.D_X(real_x), True) + lsgan(self.D_X(fakes["fake_x"]), False))
        return d_x + d_y, {"D_X": float(d_x.detach()), "D_Y": float(d_y.detach())}

    def translator(self) -> Translator:
        return Translator(self.G_XY)


class AGGANFamily(CycleGANFamily):
    """Attention-guided GAN (seed §2.5, Alg. 9): only attended regions are translated; attention nets
    train until epoch ``switch``, after which discriminators see foregrounds thresholded at ``tau``."""

    def __init__(self, spec: RefinerSpec, vgg: VGGFeatures | None = None) -> None:
        super().__init__(spec, vgg)
        self.A_X, self.A_Y = init_normal(AttentionNet()), init_normal(AttentionNet())

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "A_X": self.A_X, "A_Y": self.A_Y}

    def _attend(self, net: nn.Module, img: torch.Tensor) -> torch.Tensor:
        if self.epoch >= self.spec.switch:
            with torch.no_grad():
                return net(img)
        return net(img)

    def translate_xy(self, x):
        a = self._attend(self.A_X, x)
        return compose(a, self.G_XY(x), x), a

    def translate_yx(self, y):
        a = self._attend(self.A_Y, y)
        return compose(a, self.G_YX(y), y), a

    def disc_view(self, img, attention):
        if self.epoch >= self.spec.switch and attention is not None:
            return threshold_foreground(attention, img, self.spec.tau)
        return img

    def real_views(self, batch):
        if self.epoch < self.spec.switch:
            return batch["x"], batch["y"]
        with torch.no_grad():
            ax, ay = self.A_X(batch["x"]), self.A_Y(batch["y"])
        return threshold_foreground(ax, batch["x"], self.spec.tau), threshold_foreground(ay, batch["y"], self.spec.tau)

    def translator(self) -> Translator:
        return Translator(self.G_XY, self.A_X)


FAMILIES = {"cyclegan": CycleGANFamily, "aggan": AGGANFamily}
