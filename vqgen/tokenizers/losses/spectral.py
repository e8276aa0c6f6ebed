"""Spectral losses for audio ``[B, C, S]``: multi-resolution STFT and multi-scale mel (EnCodec / DAC).

These are reconstruction terms (the ``spectral_weight`` of :class:`~vqgen.tokenizers.losses.TokenizerLoss`);
the adversarial side of audio lives in :mod:`vqgen.tokenizers.losses.discriminators`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.losses.reconstruction import check_same_shape


def _waveforms(reconstruction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two audio batches ``[B, C, S]`` and fold them to float32 ``[B * C, S]``."""
    check_same_shape(reconstruction, target)
    if target.dim() != 3:
        raise ShapeError(f"spectral losses expect audio [B, C, S], got shape {tuple(target.shape)}")
    return reconstruction.float().flatten(0, 1), target.float().flatten(0, 1)


def stft_magnitude(x: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """``|STFT(x)|`` with a Hann window, centred frames, zero padding: ``[N, S] -> [N, n_fft // 2 + 1, frames]``."""
    window = torch.hann_window(win_length, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        x,
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.abs()


def floored_log(fake: torch.Tensor, real: torch.Tensor, eps: float, top_db: float | None):
    """``log`` of two magnitude spectrograms ``[B, F, T]``, both floored at ``eps`` and, with ``top_db``, at
    ``top_db`` below the loudest bin of each target item. Without the relative floor, digital silence (common in
    clips of single words) dominates a log loss: reconstructing it to 1e-3 instead of exactly 0 costs more
    than every voiced bin together, and the model learns silence instead of speech."""
    floor = real.new_full((), eps)
    if top_db is not None:
        floor = (real.amax(dim=(-2, -1), keepdim=True) * 10 ** (-top_db / 20)).clamp_min(eps)
    return torch.maximum(fake, floor).log(), torch.maximum(real, floor).log()


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence plus log-magnitude L1, averaged over STFT resolutions (Parallel WaveGAN).

    At each resolution, with magnitudes ``M = |STFT(target)|`` and ``M' = |STFT(reconstruction)|``:
    ``sc = ||M - M'||_F / ||M||_F`` (Frobenius norms over the whole batch) and
    ``log_mag = mean |log(max(M, f)) - log(max(M', f))|`` with the floor ``f = max(eps, max(M) * 10^(-top_db/20))``
    per item (see :func:`floored_log`; ``top_db=None`` keeps only ``eps``). The loss is
    ``mean over resolutions of (sc + log_mag)``. Channels are treated as separate signals.

    Shapes: ``reconstruction``, ``target`` ``[B, C, S]`` -> scalar (float32).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (512, 1024, 2048),
        hop_sizes: Sequence[int] | None = None,
        win_lengths: Sequence[int] | None = None,
        eps: float = 1e-5,
        top_db: float | None = 80.0,
    ):
        super().__init__()
        self.top_db = top_db
        self.fft_sizes = [int(n) for n in fft_sizes]
        self.hop_sizes = [int(h) for h in hop_sizes] if hop_sizes else [n // 4 for n in self.fft_sizes]
        self.win_lengths = [int(w) for w in win_lengths] if win_lengths else list(self.fft_sizes)
        if not self.fft_sizes or not (len(self.fft_sizes) == len(self.hop_sizes) == len(self.win_lengths)):
            raise ConfigError("fft_sizes, hop_sizes and win_lengths must be non-empty and of equal length")
        if any(w > n or h < 1 for n, h, w in zip(self.fft_sizes, self.hop_sizes, self.win_lengths)):
            raise ConfigError("every STFT needs hop >= 1 and win_length <= n_fft")
        self.eps = eps

    def terms(self, reconstruction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"spectral_convergence": ..., "log_magnitude": ...}``, each averaged over resolutions."""
        fake, real = _waveforms(reconstruction, target)
        sc, mag = fake.new_zeros(()), fake.new_zeros(())
        with torch.autocast(device_type=fake.device.type, enabled=False):
            for n_fft, hop, win in zip(self.fft_sizes, self.hop_sizes, self.win_lengths):
                m_fake = stft_magnitude(fake, n_fft, hop, win)
                m_real = stft_magnitude(real, n_fft, hop, win)
                sc = sc + torch.linalg.norm(m_real - m_fake) / torch.linalg.norm(m_real).clamp_min(self.eps)
                mag = mag + F.l1_loss(*floored_log(m_fake, m_real, self.eps, self.top_db))
        count = len(self.fft_sizes)
        return {"spectral_convergence": sc / count, "log_magnitude": mag / count}

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = self.terms(reconstruction, target)
        return terms["spectral_convergence"] + terms["log_magnitude"]


class MultiScaleMelLoss(nn.Module):
    """L1 between log mel spectrograms at several window sizes (DAC's mel loss), averaged over scales.

    At each scale (window ``w``, hop ``w // 4``, ``n_mels`` bands, Hann window, magnitude spectrum, HTK mel
    filters from ``torchaudio.transforms.MelSpectrogram``): ``mean |log(max(mel(x'), f)) -
    log(max(mel(x), f))|`` with the per-item floor ``f`` of :func:`floored_log`.

    Shapes: ``reconstruction``, ``target`` ``[B, C, S]`` -> scalar (float32).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        window_lengths: Sequence[int] = (128, 512, 2048),
        n_mels: Sequence[int] = (20, 40, 80),
        eps: float = 1e-5,
        top_db: float | None = 80.0,
    ):
        super().__init__()
        import torchaudio

        self.top_db = top_db
        if len(window_lengths) != len(n_mels) or not window_lengths:
            raise ConfigError("window_lengths and n_mels must be non-empty and of equal length")
        if sample_rate < 1:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate, self.eps = int(sample_rate), eps
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=int(sample_rate),
                n_fft=int(w),
                hop_length=max(1, int(w) // 4),
                n_mels=int(m),
                power=1.0,
                center=True,
                pad_mode="constant",
            )
            for w, m in zip(window_lengths, n_mels)
        )

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fake, real = _waveforms(reconstruction, target)
        self.mels.to(fake.device)  # a no-op once the filters sit where the audio is
        total = fake.new_zeros(())
        with torch.autocast(device_type=fake.device.type, enabled=False):
            for mel in self.mels:
                total = total + F.l1_loss(*floored_log(mel(fake), mel(real), self.eps, self.top_db))
        return total / len(self.mels)


class SpectralLoss(nn.Module):
    """``MultiResolutionSTFTLoss + MultiScaleMelLoss`` (each weight 1): the audio term of
    :class:`TokenizerLoss` (``spectral_weight``). Shapes: ``[B, C, S]`` pairs -> scalar."""

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self.stft = MultiResolutionSTFTLoss()
        self.mel = MultiScaleMelLoss(sample_rate)

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.stft(reconstruction, target) + self.mel(reconstruction, target)
