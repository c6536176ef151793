"""Inception score and MS-SSIM diversity against torchmetrics on the same inputs, and their bounds."""

import numpy as np
import pytest
import torch

from pipeline.metrics.generative import inception_score, ms_ssim, ms_ssim_diversity, ms_ssim_settings


class _Logits(torch.nn.Module):
    """torchmetrics feature extractor that passes precomputed logits through."""

    def forward(self, x):
        return x.float()


def test_inception_score_matches_torchmetrics_on_the_same_probabilities():
    from torchmetrics.image.inception import InceptionScore

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (400, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    tm = InceptionScore(feature=_Logits(), splits=10)
    # torchmetrics shuffles before splitting; with one split the order does not matter
    tm1 = InceptionScore(feature=_Logits(), splits=1)
    tm1.update(torch.as_tensor(logits))
    assert inception_score(probs, splits=1)[0] == pytest.approx(float(tm1.compute()[0]), rel=1e-5)
    tm.update(torch.as_tensor(logits))
    mean, _ = tm.compute()
    assert inception_score(probs, splits=10)[0] == pytest.approx(float(mean), rel=0.05)


def test_inception_score_bounds():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert inception_score(one_hot)[0] == pytest.approx(10.0)  # confident and balanced: the number of classes
    assert inception_score(np.full((1000, 10), 0.1))[0] == pytest.approx(1.0)  # uninformative
    assert inception_score(np.eye(10)[np.zeros(1000, int)])[0] == pytest.approx(1.0)  # one class only


@pytest.mark.parametrize("size", [32, 64])
def test_ms_ssim_is_one_for_identical_images_and_matches_torchmetrics(size):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(4, 3, size, size, generator=g), torch.rand(4, 3, size, size, generator=g)
    assert torch.allclose(ms_ssim(a, a), torch.ones(4), atol=1e-5)
    kernel, betas = ms_ssim_settings(size)
    ref = tm(a, b, data_range=1.0, kernel_size=kernel, betas=betas, reduction="none", normalize="relu")
    assert torch.allclose(ms_ssim(a, b), ref)
    assert float(ms_ssim(a, b).mean()) < 0.3


def test_ms_ssim_diversity_exposes_collapse():
    g = torch.Generator().manual_seed(0)
    varied = torch.rand(20, 3, 64, 64, generator=g)
    collapsed = varied[:1].repeat(20, 1, 1, 1)
    assert ms_ssim_diversity(collapsed, pairs=50) == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim_diversity(varied, pairs=50) < 0.3


def test_collapse_alarm_flags_a_generator_that_returns_one_sample():
    from pipeline.metrics.generative import collapse_alarm, collapse_label

    rng = np.random.default_rng(0)
    real = rng.random((40, 1, 32, 32)).astype(np.float32)  # independent images: MS-SSIM near 0
    one = np.repeat(real[:1], 40, axis=0)  # a generator that always draws the same image
    real_div, one_div = ms_ssim_diversity(real, 60, 0), ms_ssim_diversity(one, 60, 0)
    assert one_div == pytest.approx(1.0, abs=1e-4)
    assert collapse_alarm(one_div, real_div)
    assert not collapse_alarm(ms_ssim_diversity(real[::-1].copy(), 60, 1), real_div)
    # the distance form: mean pairwise distance of one repeated window is 0
    dist = lambda x: float(np.mean([np.abs(x[i] - x[j]).mean() for i in range(10) for j in range(i + 1, 10)]))
    assert collapse_alarm(dist(one[:10]), dist(real[:10]), "distance")
    assert not collapse_alarm(dist(real[10:20]), dist(real[:10]), "distance")
    assert not collapse_alarm(None, real_div) and not collapse_alarm(float("nan"), real_div)
    with pytest.raises(ValueError, match="known: similarity, distance"):
        collapse_alarm(0.5, 0.5, "entropy")
    assert collapse_label("dcgan", True) == "**`dcgan` (collapsed)**" and collapse_label("dcgan", False) == "`dcgan`"
