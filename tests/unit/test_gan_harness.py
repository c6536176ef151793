"""The shared adversarial harness's knobs: G steps per D step, EMA of G, the loss-ratio balancing rule."""

import pytest
import torch

from pipeline.sensor.nets import Discriminator1D, Generator1D
from pipeline.train.adversarial import AdversarialTrainer, TrainConfig, balance_mode
from pipeline.train.gan import LabelledSampler, LatentGanFamily


def _trainer(**cfg) -> AdversarialTrainer:
    torch.manual_seed(0)
    g, d = Generator1D(2, 16, latent_dim=4, ngf=4), Discriminator1D(2, 16, ndf=4)
    cfg = {"device": "cpu", **cfg}
    return AdversarialTrainer(LatentGanFamily(g, d, 4), TrainConfig(epochs=1, lr=1e-3, pool_size=0,
                                                                    schedule="constant", **cfg))


def _data():
    torch.manual_seed(1)
    return LabelledSampler(torch.rand(16, 2, 16) * 2 - 1, torch.zeros(16, dtype=torch.long), 8, 0)


def _counting(opt):
    calls = []
    step = opt.step
    opt.step = lambda *a, **k: (calls.append(1), step(*a, **k))[1]
    return calls


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_g_steps_and_d_steps_count_updates():
    t = _trainer(g_steps=5, d_steps=2)
    g_calls, d_calls = _counting(t.opt["G"]), _counting(t.opt["D"])
    t.fit(_data())
    assert len(g_calls) == 5 * 2 and len(d_calls) == 2 * 2  # two batches per epoch


def test_ema_generator_is_an_average_of_the_trained_one():
    t = _trainer(ema=0.5)
    before = [p.clone() for p in t.generator().parameters()]
    t.fit(_data())
    ema, live = list(t.generator().parameters()), list(t.family.G.parameters())
    assert t.generator() is t.ema_G and not any(p.requires_grad for p in ema)
    moved = [not torch.equal(a, b) for a, b in zip(before, ema, strict=True)]
    assert any(moved) and any(not torch.equal(a, b) for a, b in zip(ema, live, strict=True))
    assert _trainer().generator() is not None and _trainer().ema_G is None


@pytest.mark.parametrize("loss_d,loss_g,mode", [(3.0, 1.0, "D"), (0.1, 1.0, "G"), (1.0, 1.0, "both")])
def test_balance_rule(loss_d, loss_g, mode):
    assert balance_mode(loss_d, loss_g, 0.5, 2.0) == mode


def test_balanced_training_freezes_the_side_that_is_ahead():
    t = _trainer(balance=(10.0, 20.0))  # r is far below 10 at the start: only G may train
    d_before = [p.clone() for p in t.family.D.parameters()]
    t._step(next(iter(_data()(0))))  # first step trains both, then the rule picks "G"
    assert t.mode == "G"
    d_mid = [p.clone() for p in t.family.D.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_mid, strict=True))
    logs = t._step(next(iter(_data()(1))))
    assert logs["trained_D"] == 0.0 and logs["trained_G"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(d_mid, t.family.D.parameters(), strict=True))


def test_channels_last_setup_handles_2d_and_3d_convolutions():
    from pipeline.train.device import DeviceSetup

    setup = DeviceSetup(torch.device("cpu"), bf16=False, channels_last=True, compile=False)  # CUDA's layout
    net = setup.prepare(torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, padding=1), torch.nn.Flatten(0, 1)))
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    clip = setup.batch(torch.rand(1, 2, 4, 8, 8))
    assert clip.is_contiguous(memory_format=torch.channels_last_3d) and net(clip).shape == (4, 4, 8, 8)
    conv2d = setup.prepare(torch.nn.Conv2d(3, 4, 3))
    assert conv2d.weight.is_contiguous(memory_format=torch.channels_last)
    assert setup.batch(torch.rand(2, 3, 8, 8)).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_a_gpu_named_by_its_name_is_never_a_silent_cpu_run():
    from pipeline.errors import PipelineError
    from pipeline.train.device import pick_device

    assert pick_device("auto").device.type in ("cpu", "mps")
    with pytest.raises(PipelineError, match="device 'cuda' was asked for, but torch .* sees no cuda device"):
        pick_device("cuda")
    with pytest.raises(PipelineError, match="cuda"):
        _trainer(device="cuda")
