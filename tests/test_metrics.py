"""Metrics against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from vqgen.errors import ConfigError, MismatchError, ShapeError
from vqgen.evaluation.metrics import (
    MS_SSIM_WEIGHTS,
    CodeCounter,
    _ms_ssim_scales,
    bits_per_pixel,
    codebook_statistics,
    ms_ssim,
    psnr,
    ssim,
)


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


def test_ms_ssim_identical_is_one_and_noise_lowers_it_monotonically():
    x = _images(shape=(2, 3, 64, 64))
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-6)
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(x.shape, generator=generator)
    values = [ms_ssim((x + level * noise).clamp(-1, 1), x) for level in (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)]
    for better, worse in zip(values, values[1:]):
        assert (worse < better).all()
    assert (values[0] < 1).all() and (values[-1] > 0).all()
    # Video: frame by frame, averaged over frames.
    video = torch.stack([x, x.flip(-1)], dim=2)  # [B, C, T, H, W]
    noisy = (video + 0.1 * torch.randn(video.shape, generator=generator)).clamp(-1, 1)
    frames = torch.stack([ms_ssim(noisy[:, :, t], video[:, :, t]) for t in range(2)], dim=1).mean(dim=1)
    assert torch.allclose(ms_ssim(noisy, video), frames, atol=1e-6)


def test_ms_ssim_scale_count_for_small_images():
    assert _ms_ssim_scales(176, 176, 11, 5) == 5  # the published setting needs 176 = 11 * 16 pixels
    assert _ms_ssim_scales(175, 300, 11, 5) == 4
    assert _ms_ssim_scales(64, 64, 11, 5) == 3  # 64, 32, 16 (8 < 11)
    assert _ms_ssim_scales(64, 64, 7, 5) == 4
    assert _ms_ssim_scales(10, 10, 11, 5) == 1
    # One scale (an image smaller than twice the window) is plain SSIM with the same window.
    x = _images(0, (2, 3, 16, 16))
    y = x + 0.3 * _images(1, (2, 3, 16, 16))  # correlated: no channel's SSIM is clamped at 1e-6
    assert torch.allclose(ms_ssim(x, y, window_size=11), ssim(x, y, window_size=11), atol=1e-6)


def _direct_ssim_terms(a: torch.Tensor, b: torch.Tensor, size: int = 7, sigma: float = 1.5):
    """Mean luminance*contrast-structure and mean contrast-structure of two [H, W] images, one window
    position at a time (float64)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    w = torch.outer(g, g) / torch.outer(g, g).sum()
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    full, cs = [], []
    for i in range(a.shape[0] - size + 1):
        for j in range(a.shape[1] - size + 1):
            pa, pb = a[i : i + size, j : j + size], b[i : i + size, j : j + size]
            mu_a, mu_b = (w * pa).sum(), (w * pb).sum()
            var_a, var_b = (w * (pa - mu_a) ** 2).sum(), (w * (pb - mu_b) ** 2).sum()
            cov = (w * (pa - mu_a) * (pb - mu_b)).sum()
            contrast = (2 * cov + c2) / (var_a + var_b + c2)
            cs.append(contrast)
            full.append((2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * contrast)
    return torch.stack(full).mean(), torch.stack(cs).mean()


def test_ms_ssim_matches_direct_computation():
    # 28x28 with a 7-pixel window: scales 28, 14, 7 (the last has a single window position).
    x = _images(4, (1, 2, 28, 28)).double()
    y = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)).clamp(
        -1, 1
    )
    weights = torch.tensor(MS_SSIM_WEIGHTS[:3], dtype=torch.float64)
    weights = weights / weights.sum()
    per_channel = []
    for c in range(2):
        a, b = x[0, c], y[0, c]
        value = torch.ones((), dtype=torch.float64)
        for scale in range(3):
            if scale:  # 2x2 mean pooling
                a = a.view(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(dim=(1, 3))
                b = b.view(b.shape[0] // 2, 2, b.shape[1] // 2, 2).mean(dim=(1, 3))
            full, cs = _direct_ssim_terms(a, b)
            value = value * (full if scale == 2 else cs) ** weights[scale]
        per_channel.append(value)
    expected = torch.stack(per_channel).mean()
    assert ms_ssim(y, x, window_size=7).item() == pytest.approx(expected.item(), rel=1e-9)


def test_ms_ssim_is_differentiable():
    x = _images(6, (1, 1, 14, 14)).double()  # two scales with a 7-pixel window
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)).clamp(
        -1, 1
    )
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ms_ssim(t, x, window_size=7), (y,))
    far = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)  # unrelated images: factors may clamp
    value = ms_ssim(far, _images(8, (2, 3, 32, 32))).sum()
    value.backward()
    assert torch.isfinite(far.grad).all() and far.grad.abs().sum() > 0


def test_ms_ssim_errors():
    x = _images()
    with pytest.raises(ShapeError):
        ms_ssim(x, x[:, :, :-1])
    with pytest.raises(ShapeError):
        ms_ssim(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100))
    with pytest.raises(ConfigError):
        ms_ssim(x, x, weights=(0.5, -0.5))


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
