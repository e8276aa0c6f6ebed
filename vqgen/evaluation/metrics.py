"""Reconstruction and codebook metrics: PSNR, SSIM, codebook usage and perplexity, bits per pixel.

Media tensors are float in ``[-1, 1]`` (so the default ``data_range`` is 2): images ``[B, C, H, W]``,
video ``[B, C, T, H, W]``, audio ``[B, C, S]``. Per-item metrics return one value per batch item ``[B]``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from vqgen.errors import ConfigError, MismatchError, ShapeError

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _check_pair(reconstruction: torch.Tensor, target: torch.Tensor) -> None:
    if reconstruction.shape != target.shape:
        raise ShapeError(
            f"reconstruction shape {tuple(reconstruction.shape)} differs from target shape {tuple(target.shape)}"
        )
    if reconstruction.dim() < 2:
        raise ShapeError(f"expected a batch [B, C, ...], got shape {tuple(reconstruction.shape)}")


def _float(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (half precision is too coarse for squared errors near zero)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per item: ``10 * log10(data_range**2 / mse)``.

    The MSE runs over all non-batch axes and is clamped at ``1e-10``, so identical inputs give a large
    finite value (``10 * log10(4e10)`` = 106 dB for the default range) instead of infinity.

    Shapes: ``reconstruction``, ``target`` ``[B, ...]`` -> ``[B]``.
    """
    _check_pair(reconstruction, target)
    if data_range <= 0:
        raise ConfigError(f"data_range must be positive, got {data_range}")
    mse = (_float(reconstruction) - _float(target)).pow(2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_kernel(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _ssim_maps(
    x: torch.Tensor, y: torch.Tensor, data_range: float, size: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps of ``[N, C, H, W]`` pairs with a ``size`` Gaussian window over valid
    positions (no padding): two ``[N, C, H - size + 1, W - size + 1]`` tensors."""
    channels = x.shape[1]
    kernel = _gaussian_kernel(size, sigma, x)

    # Local means of x, y, x², y², xy in one grouped, separable (rows then columns) convolution, no padding.
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = stacked.shape[1]
    stacked = F.conv2d(stacked, kernel.view(1, 1, size, 1).expand(groups, 1, size, 1), groups=groups)
    stacked = F.conv2d(stacked, kernel.view(1, 1, 1, size).expand(groups, 1, 1, size), groups=groups)
    mu_x, mu_y, xx, yy, xy = stacked.split(channels, dim=1)

    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map, (2 * cov + c2) / (var_x + var_y + c2)


def _ssim_images(
    x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int, sigma: float
) -> torch.Tensor:
    """SSIM of ``[N, C, H, W]`` pairs -> ``[N]``, averaged over channels and valid window positions."""
    height, width = x.shape[2:]
    size = min(window_size, height, width)
    size -= 1 - size % 2  # an odd window has a centre pixel
    ssim_map, _ = _ssim_maps(x, y, data_range, size, sigma)
    return ssim_map.flatten(1).mean(dim=1)


def ssim(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 2.0,
    window_size: int = 7,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Structural similarity with a Gaussian window (``K1 = 0.01``, ``K2 = 0.03``), per item.

    Local statistics use a ``window_size`` Gaussian window of standard deviation ``sigma`` over valid
    positions only (no padding); the window shrinks to the largest odd size that fits a smaller image.
    The SSIM map is averaged over channels and positions. Video clips are scored frame by frame and
    averaged over frames. (scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)`` matches ``window_size=11``.)

    Shapes: images ``[B, C, H, W]`` or video ``[B, C, T, H, W]`` -> ``[B]``.
    """
    _check_pair(reconstruction, target)
    if data_range <= 0 or window_size < 1 or sigma <= 0:
        raise ConfigError(
            f"ssim needs data_range > 0, window_size >= 1, sigma > 0; got {data_range}, {window_size}, {sigma}"
        )
    x, y = _float(reconstruction), _float(target)
    if x.dim() < 4:
        raise ShapeError(
            f"ssim expects images [B, C, H, W] or video [B, C, T, H, W], got shape {tuple(x.shape)}"
        )
    # [B, C, *T, H, W] -> [B * T, C, H, W]: every frame (one for images) scored, then averaged per item.
    batch, channels, height, width = x.shape[0], x.shape[1], *x.shape[-2:]
    x, y = (t.movedim(1, -3).reshape(-1, channels, height, width) for t in (x, y))
    return _ssim_images(x, y, data_range, window_size, sigma).view(batch, -1).mean(dim=1)


#: Wang, Simoncelli and Bovik (2003): the exponents of scales 1 (full resolution) to 5.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ms_ssim_scales(height: int, width: int, window_size: int, max_scales: int) -> int:
    """How many scales of 2x downsampling keep the smaller side at least ``window_size`` (at least 1)."""
    side, scales = min(height, width), 1
    while scales < max_scales and side // 2 >= window_size:
        side //= 2
        scales += 1
    return scales


def _ms_ssim_images(
    x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int, sigma: float, weights
) -> torch.Tensor:
    """MS-SSIM of ``[N, C, H, W]`` pairs -> ``[N]`` (see :func:`ms_ssim`)."""
    height, width = x.shape[2:]
    scales = _ms_ssim_scales(height, width, window_size, len(weights))
    exponents = torch.tensor(weights[:scales], dtype=x.dtype, device=x.device)
    if scales < len(weights):
        exponents = exponents / exponents.sum()
    size = min(window_size, height, width)
    size -= 1 - size % 2  # only a single-scale image smaller than the window shrinks it
    factors = []
    for scale in range(scales):
        if scale:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        ssim_map, cs_map = _ssim_maps(x, y, data_range, size, sigma)
        factors.append((ssim_map if scale == scales - 1 else cs_map).flatten(2).mean(dim=2))  # [N, C]
    per_channel = torch.stack(factors).clamp_min(1e-6).pow(exponents.view(-1, 1, 1)).prod(dim=0)
    return per_channel.mean(dim=1)


def ms_ssim(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 2.0,
    window_size: int = 11,
    sigma: float = 1.5,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Multi-scale structural similarity (Wang et al. 2003) per item, differentiable.

    Scale 1 is the input; each further scale halves it with 2x2 average pooling (odd sizes drop their last
    row or column). Per channel, the contrast-structure term of every scale but the last and the full SSIM
    of the last (each averaged over valid window positions, as in :func:`ssim`) are raised to ``weights``
    and multiplied; the result is averaged over channels (as TensorFlow's ``ssim_multiscale`` and
    ``pytorch_msssim`` do). Factors are clamped at ``1e-6`` first, so anti-correlated structure gives a tiny
    value with a finite gradient instead of NaN.

    Images too small for every scale: only the scales whose smaller side is still at least ``window_size``
    are used (at least one), with their weights renormalised to sum to 1 (with all five, the published
    weights are used as they are); the window is never shrunk, so each scale's terms keep their standard
    meaning. 64x64 with the default 11-pixel window uses 3 scales (64, 32, 16); the standard 5 need 176
    pixels. An image smaller than the window gets one scale with the window shrunk as in :func:`ssim`,
    i.e. plain SSIM. Video is scored frame by frame and averaged over frames.

    Shapes: images ``[B, C, H, W]`` or video ``[B, C, T, H, W]`` -> ``[B]`` (1 for identical inputs).
    """
    _check_pair(reconstruction, target)
    if data_range <= 0 or window_size < 1 or sigma <= 0 or not weights or min(weights) <= 0:
        raise ConfigError(
            f"ms_ssim needs data_range > 0, window_size >= 1, sigma > 0 and positive weights; "
            f"got {data_range}, {window_size}, {sigma}, {tuple(weights)}"
        )
    x, y = _float(reconstruction), _float(target)
    weights = tuple(float(w) for w in weights)
    if x.dim() == 4:
        return _ms_ssim_images(x, y, data_range, window_size, sigma, weights)
    if x.dim() == 5:
        batch, frames = x.shape[0], x.shape[2]
        # [B, C, T, H, W] -> [B * T, C, H, W]
        x, y = (t.transpose(1, 2).flatten(0, 1) for t in (x, y))
        return _ms_ssim_images(x, y, data_range, window_size, sigma, weights).view(batch, frames).mean(dim=1)
    raise ShapeError(
        f"ms_ssim expects images [B, C, H, W] or video [B, C, T, H, W], got shape {tuple(x.shape)}"
    )


def codebook_statistics(counts: torch.Tensor) -> dict[str, float]:
    """Usage and perplexity of a code histogram.

    ``counts`` ``[K]``: how often each code was used. Returns ``usage``, the fraction of codes used at least
    once, and ``perplexity``, ``exp`` of the entropy of ``counts / counts.sum()`` (``K`` for a uniform
    histogram, 1 when a single code is used; 0 for an empty histogram).
    """
    if counts.dim() != 1 or counts.numel() == 0:
        raise ShapeError(f"counts must be a non-empty 1-D histogram [K], got shape {tuple(counts.shape)}")
    counts = counts.detach().double()
    if (counts < 0).any():
        raise ConfigError("code counts must be non-negative")
    total = counts.sum()
    usage = (counts > 0).double().mean().item()
    if total == 0:
        return {"usage": usage, "perplexity": 0.0}
    probs = counts / total
    entropy = -(probs * probs.clamp_min(1e-300).log()).sum()
    return {"usage": usage, "perplexity": entropy.exp().item()}


class CodeCounter:
    """Accumulates a histogram of code ids over many batches.

    Codes of every residual level go into the one histogram; count levels with separate codebooks with one
    counter each. Under multi-process evaluation, sum ``counts`` across processes before ``statistics``.
    """

    def __init__(self, codebook_size: int):
        if codebook_size < 1:
            raise ConfigError(f"codebook_size must be at least 1, got {codebook_size}")
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        """Add the ids in ``codes`` (integer tensor of any shape, values in ``[0, codebook_size)``)."""
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ShapeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        codes = codes.detach().flatten().long()
        if codes.numel() == 0:
            return
        low, high = codes.min().item(), codes.max().item()
        if low < 0 or high >= self.codebook_size:
            raise MismatchError(
                f"code ids range over [{low}, {high}] but the codebook has {self.codebook_size} entries"
            )
        self.counts += torch.bincount(codes, minlength=self.codebook_size).cpu()

    def reset(self) -> None:
        """Forget every count."""
        self.counts.zero_()

    def statistics(self) -> dict[str, float]:
        """``{"usage": ..., "perplexity": ...}`` of the accumulated histogram (see ``codebook_statistics``)."""
        return codebook_statistics(self.counts)


def bits_per_pixel(codes_per_item: int, codebook_size: int, num_pixels: int) -> float:
    """``codes_per_item * log2(codebook_size) / num_pixels``: the rate of a code grid.

    ``codes_per_item`` counts every code of one item (all residual levels included); ``num_pixels`` the pixels
    (or samples, or voxels) of that item, not counting channels. A 7x7 grid of 256 codes for a 28x28
    image is ``49 * 8 / 784 = 0.5``.
    """
    if codes_per_item < 0 or codebook_size < 1 or num_pixels < 1:
        raise ConfigError(
            f"bits_per_pixel needs codes_per_item >= 0, codebook_size >= 1, num_pixels >= 1; "
            f"got {codes_per_item}, {codebook_size}, {num_pixels}"
        )
    return codes_per_item * math.log2(codebook_size) / num_pixels
