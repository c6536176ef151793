"""The shared adversarial harness on CycleGAN-family refiners: losses, schedule, resume, learning."""

import dataclasses

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.detection.refiner.vgg import VGGFeatures
from pipeline.params import parse_params
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig, UnpairedSampler, lr_factor
from pipeline.detection.params import parse_spec
from pipeline.detection.refiner.training import FAMILIES
from pipeline.detection.refiner.losses import LOSSES, CycleContext
from pipeline.train.pool import ImagePool
from tests.conftest import ROOT

TINY = {"ngf": 8, "n_blocks": 2, "ndf": 8}


def _textures(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g) * 1.2 - 0.6
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)


SHIFT = torch.tensor([0.5, 0.0, -0.5]).view(1, 3, 1, 1)


@pytest.mark.parametrize("term", sorted(LOSSES))
@pytest.mark.parametrize("arch", ["cyclegan", "aggan"])
def test_every_loss_term_gives_generator_gradients(term, arch):
    # VGG with explicitly random weights: the code path is real, the weights are not ImageNet's.
    spec = parse_spec("t", {"arch": arch, "losses": {term: 1.0}, "vgg_layers": ["pool2"]}, TINY)
    fam = FAMILIES[arch](spec, VGGFeatures(["pool2"], "random"))
    x, y = _textures(2), _textures(2, seed=1)
    fam.set_targets(x, y)
    loss = LOSSES[term](CycleContext(fam, x, y))
    loss.backward()
    grads = [p.grad for p in fam.G_XY.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_lr_constant_then_linear_to_zero():
    f = [lr_factor(e, 10) for e in range(11)]
    assert f[:5] == [1.0] * 5 and all(a > b for a, b in zip(f[4:], f[5:])) and f[10] == 0.0


def test_image_pool_returns_history_and_keeps_size():
    pool = ImagePool(3, seed=0)
    seen = [pool.query(torch.full((1, 1, 2, 2), float(i))) for i in range(30)]
    assert len(pool.images) == 3
    assert any(float(s.mean()) != i for i, s in enumerate(seen))  # some answers come from the history


def _trainer(tmp, epochs=4, arch="cyclegan", skip=False):
    cfg_ = {"arch": arch, "skip": skip, "losses": {"cyc_pixel": 10}}
    if arch == "aggan":
        cfg_["switch"] = 1  # exercise both phases: attention trained, then frozen + thresholded
    spec = parse_spec("toy", cfg_, TINY)
    torch.manual_seed(0)  # as train_refiner does: the family is initialised from the run's seed
    cfg = TrainConfig(epochs=epochs, batch_size=4, pool_size=8, seed=0, steps_per_epoch=3, device="cpu")
    return AdversarialTrainer(FAMILIES[arch](spec), cfg, tmp), cfg


@pytest.mark.parametrize("arch", ["cyclegan", "aggan"])
def test_resume_gives_same_weights_as_uninterrupted(tmp_path, arch):
    x = _textures(16)
    y = (x + SHIFT).clamp(-1, 1)
    full, cfg = _trainer(tmp_path / "a", arch=arch)
    full.fit(UnpairedSampler(x, y, 4, 0, 3))
    killed, _ = _trainer(tmp_path / "b", arch=arch)
    killed.fit(UnpairedSampler(x, y, 4, 0, 3), stop_after=2)  # "killed" after 2 of 4 epochs
    assert killed.epoch == 2
    resumed, _ = _trainer(tmp_path / "b", arch=arch)
    resumed.fit(UnpairedSampler(x, y, 4, 0, 3))
    for name, m in full.family.modules().items():
        other = resumed.family.modules()[name].state_dict()
        for k, v in m.state_dict().items():
            assert torch.equal(v, other[k]), (name, k)


def test_a_truncated_checkpoint_is_set_aside_and_training_starts_fresh(tmp_path, capsys):
    x = _textures(16)
    y = (x + SHIFT).clamp(-1, 1)
    killed, _ = _trainer(tmp_path)
    killed.fit(UnpairedSampler(x, y, 4, 0, 3), stop_after=1)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a full disk or a kill outside the atomic rename
    fresh, _ = _trainer(tmp_path)
    fresh.fit(UnpairedSampler(x, y, 4, 0, 3))
    err = capsys.readouterr().err
    assert f"warning: checkpoint {last} is unreadable" in err and "training starts fresh" in err
    assert fresh.epoch == 4 and len(fresh.history) == 4  # all four epochs ran, none were taken from the file
    assert len(list(tmp_path.glob("last.pt.corrupt-*"))) == 1 and last.is_file()  # set aside; a new one saved
    other, _ = _trainer(tmp_path / "x", arch="aggan")
    (tmp_path / "x").mkdir(exist_ok=True)
    (tmp_path / "x" / "last.pt").write_bytes(last.read_bytes())  # a cyclegan checkpoint under an aggan run
    with pytest.raises(PipelineError, match=r"last.pt: checkpoint does not fit this configuration's networks"):
        other.fit(UnpairedSampler(x, y, 4, 0, 3))


def test_cyclegan_learns_a_colour_shift_on_cpu(tmp_path):
    torch.manual_seed(0)
    x = _textures(64)
    y = (_textures(64, seed=5) + SHIFT).clamp(-1, 1)
    spec = parse_spec("toy", {"arch": "cyclegan", "losses": {"cyc_pixel": 10}}, TINY)
    fam = FAMILIES["cyclegan"](spec)
    cfg = TrainConfig(epochs=12, batch_size=4, pool_size=16, seed=0, lr=1e-3, device="cpu")
    AdversarialTrainer(fam, cfg, None).fit(UnpairedSampler(x, y, 4, 0, 16))
    with torch.no_grad():
        gap_before = (x.mean((0, 2, 3)) - y.mean((0, 2, 3))).abs().sum()
        gap_after = (fam.G_XY(x).mean((0, 2, 3)) - y.mean((0, 2, 3))).abs().sum()
    print("colour gap before/after", float(gap_before), float(gap_after))
    assert gap_after < 0.5 * gap_before, (float(gap_before), float(gap_after))


def test_all_seed_configs_parse_and_unknown_names_list_known():
    p = parse_params(__import__("yaml").safe_load((ROOT / "params.yaml").read_text())).refine
    names = set(p.configs) - {"identity", "D_S_noVGG"}
    assert names == {"C_CP", "C_CPCF", "C_CPCFIF", "C_CPCFIP", "D", "M", "A",
                     "C_CP_S", "C_CPCF_S", "C_CPCFIF_S", "C_CPCFIP_S", "D_S", "M_S", "A_S"}
    for n in p.configs:
        spec = p.spec(n)
        assert spec.skip == n.endswith("_S") or "_S_" in n or spec.arch == "identity"
    for n in p.run:
        assert not p.spec(n).needs_vgg, "demo configs must run offline"
    with pytest.raises(PipelineError, match=r"unknown config 'C_XX' \(known: A, A_S, C_CP"):
        p.spec("C_XX")
    with pytest.raises(PipelineError, match="refine.configs.x.losses.cyc_pix: unknown loss term"):
        parse_spec("x", {"arch": "cyclegan", "losses": {"cyc_pix": 1}}, {})
    with pytest.raises(PipelineError, match="refine.configs.x.skip: expected bool"):
        parse_spec("x", {"arch": "cyclegan", "skip": "yes"}, {})
    assert dataclasses.asdict(p.spec("D"))["losses"]["cyc_disc_feat"] == 1e-5
