"""Metrics against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from vqgen.errors import ConfigError, MismatchError, ShapeError
from vqgen.evaluation.metrics import CodeCounter, bits_per_pixel, codebook_statistics, psnr, ssim


def test_psnr_by_hand():
    target = torch.zeros(2, 1, 2, 2)
    recon = torch.zeros(2, 1, 2, 2)
    recon[0] = 0.1  # mse 0.01
    recon[1, 0, 0] = 0.2  # two of four pixels off by 0.2: mse 0.02
    values = psnr(recon, target)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-5)
    assert values[1].item() == pytest.approx(10 * math.log10(4 / 0.02), rel=1e-5)
    assert psnr(recon, target, data_range=1.0)[0].item() == pytest.approx(20.0, rel=1e-5)
    same = psnr(target, target)
    assert torch.isfinite(same).all() and same[0].item() == pytest.approx(10 * math.log10(4e10))
    with pytest.raises(ShapeError):
        psnr(recon, torch.zeros(2, 1, 2, 3))


def _images(seed: int = 0, shape=(2, 3, 24, 24)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # Smooth-ish images: a low-resolution random field upsampled, so SSIM has structure to compare.
    low = torch.rand(shape[0], shape[1], shape[2] // 4, shape[3] // 4, generator=generator) * 2 - 1
    return torch.nn.functional.interpolate(low, size=shape[2:], mode="bilinear", align_corners=False)


def test_ssim_identical_noisy_symmetric():
    x = _images()
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=generator)
    slightly = (x + 0.05 * noise).clamp(-1, 1)
    very = (x + 0.5 * noise).clamp(-1, 1)
    s_slight, s_very = ssim(slightly, x), ssim(very, x)
    assert (s_slight < 1).all() and (s_very < s_slight).all()
    assert torch.allclose(ssim(x, very), s_very, atol=1e-6)


def test_ssim_single_window_by_hand():
    # A 7x7 image has exactly one valid window position: compute the weighted statistics directly.
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 7, 7, generator=generator, dtype=torch.float64) * 2 - 1
    y = torch.rand(1, 1, 7, 7, generator=generator, dtype=torch.float64) * 2 - 1
    coords = torch.arange(7, dtype=torch.float64) - 3
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    w = torch.outer(g, g) / torch.outer(g, g).sum()
    a, b = x[0, 0], y[0, 0]
    mu_a, mu_b = (w * a).sum(), (w * b).sum()
    var_a = (w * (a - mu_a) ** 2).sum()
    var_b = (w * (b - mu_b) ** 2).sum()
    cov = (w * (a - mu_a) * (b - mu_b)).sum()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    expected = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    assert ssim(x, y).item() == pytest.approx(expected.item(), rel=1e-9)


def test_ssim_small_images_and_video():
    small = _images(shape=(1, 1, 4, 5))  # smaller than the window: it shrinks to 3x3
    assert torch.isfinite(ssim(small, small * 0.5)).all()

    frames = [_images(seed=s, shape=(2, 1, 12, 12)) for s in range(3)]
    noisy = [f + 0.2 * torch.randn_like(f) for f in frames]
    video, noisy_video = torch.stack(frames, dim=2), torch.stack(noisy, dim=2)  # [B, C, T, H, W]
    per_frame = torch.stack([ssim(n, f) for n, f in zip(noisy, frames)], dim=1).mean(dim=1)
    assert torch.allclose(ssim(noisy_video, video), per_frame, atol=1e-6)

    with pytest.raises(ShapeError):
        ssim(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100))
    with pytest.raises(ConfigError):
        ssim(small, small, window_size=0)


def test_ssim_close_to_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    x, y = _images(0), _images(5)
    ours = ssim(x, y, window_size=11)
    for i in range(x.shape[0]):
        reference = metrics.structural_similarity(
            x[i].numpy(),
            y[i].numpy(),
            data_range=2.0,
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours[i].item() == pytest.approx(reference, abs=1e-4)


def test_codebook_statistics_known_histograms():
    uniform = codebook_statistics(torch.full((8,), 5))
    assert uniform["usage"] == 1.0 and uniform["perplexity"] == pytest.approx(8.0)
    one = codebook_statistics(torch.tensor([0, 9, 0, 0]))
    assert one["usage"] == 0.25 and one["perplexity"] == pytest.approx(1.0)
    half = codebook_statistics(torch.tensor([3, 0, 3, 0]))
    assert half["usage"] == 0.5 and half["perplexity"] == pytest.approx(2.0)
    skewed = codebook_statistics(torch.tensor([3.0, 1.0]))
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert skewed["perplexity"] == pytest.approx(math.exp(entropy))
    assert codebook_statistics(torch.zeros(4)) == {"usage": 0.0, "perplexity": 0.0}
    with pytest.raises(ShapeError):
        codebook_statistics(torch.ones(2, 2))


def test_code_counter_accumulates_batches():
    counter = CodeCounter(6)
    counter.update(torch.tensor([[0, 1], [1, 5]]))
    counter.update(torch.tensor([[[1]], [[2]]], dtype=torch.int32))
    counter.update(torch.zeros(0, dtype=torch.long))
    assert counter.counts.tolist() == [1, 3, 1, 0, 0, 1]
    stats = counter.statistics()
    assert stats["usage"] == pytest.approx(4 / 6)
    assert stats == codebook_statistics(torch.tensor([1, 3, 1, 0, 0, 1]))
    with pytest.raises(MismatchError, match="6 entries"):
        counter.update(torch.tensor([6]))
    with pytest.raises(ShapeError):
        counter.update(torch.tensor([0.0]))
    counter.reset()
    assert counter.counts.sum().item() == 0


def test_bits_per_pixel():
    assert bits_per_pixel(49, 256, 784) == pytest.approx(0.5)
    assert bits_per_pixel(4 * 49, 1024, 28 * 28) == pytest.approx(4 * 49 * 10 / 784)  # 4 residual levels
    with pytest.raises(ConfigError):
        bits_per_pixel(49, 256, 0)
