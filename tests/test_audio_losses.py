"""Spectral audio losses against their formulas, and their use inside TokenizerLoss (dims=1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.losses import (
    HarmonicLoss,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    SpectralLoss,
    TokenizerLoss,
    reconstruction_loss,
)


def sine(freq: float, samples: int = 512, rate: int = 8000, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float32) / rate
    return amplitude * torch.sin(2 * math.pi * freq * t)


def pair(batch: int = 2, channels: int = 2, samples: int = 512):
    generator = torch.Generator().manual_seed(0)
    target = torch.stack([sine(440 * (i + 1), samples) for i in range(batch * channels)]).view(
        batch, channels, samples
    )
    noise = 0.05 * torch.randn(batch, channels, samples, generator=generator)
    return target + noise, target


def numpy_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| by hand: zero-pad n_fft // 2 on both sides, Hann (periodic) window, rfft per frame."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    frames = 1 + (len(padded) - n_fft) // hop
    return np.stack(
        [np.abs(np.fft.rfft(padded[i * hop : i * hop + n_fft] * window)) for i in range(frames)], axis=1
    )


def test_multi_resolution_stft_loss_matches_formula():
    fake, real = pair()
    sizes, hops = (64, 128), (16, 32)
    loss = MultiResolutionSTFTLoss(fft_sizes=sizes, hop_sizes=hops, eps=1e-5)
    terms = loss.terms(fake, real)
    sc_expected, mag_expected = 0.0, 0.0
    f, r = (
        fake.reshape(-1, fake.shape[-1]).double().numpy(),
        real.reshape(-1, real.shape[-1]).double().numpy(),
    )
    for n_fft, hop in zip(sizes, hops):
        mf = np.stack([numpy_magnitude(x, n_fft, hop) for x in f])
        mr = np.stack([numpy_magnitude(x, n_fft, hop) for x in r])
        sc_expected += np.linalg.norm(mr - mf) / np.linalg.norm(mr)
        floor = np.maximum(1e-5, mr.max(axis=(1, 2), keepdims=True) * 1e-4)  # 80 dB below each item's peak
        mag_expected += np.mean(np.abs(np.log(np.maximum(mf, floor)) - np.log(np.maximum(mr, floor))))
    assert float(terms["spectral_convergence"]) == pytest.approx(sc_expected / 2, rel=1e-4)
    assert float(terms["log_magnitude"]) == pytest.approx(mag_expected / 2, rel=1e-4)
    assert float(loss(fake, real)) == pytest.approx((sc_expected + mag_expected) / 2, rel=1e-4)


def test_multi_scale_mel_loss_matches_formula():
    fake, real = pair(channels=1)
    windows, mels = (64, 256), (8, 20)
    loss = MultiScaleMelLoss(sample_rate=8000, window_lengths=windows, n_mels=mels, eps=1e-5)
    expected = 0.0
    f, r = fake[:, 0].double().numpy(), real[:, 0].double().numpy()
    for n_fft, n_mel in zip(windows, mels):
        bank = (
            torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, 4000.0, n_mel, 8000).double().numpy()
        )
        mel_f = np.stack([bank.T @ numpy_magnitude(x, n_fft, n_fft // 4) for x in f])
        mel_r = np.stack([bank.T @ numpy_magnitude(x, n_fft, n_fft // 4) for x in r])
        floor = np.maximum(1e-5, mel_r.max(axis=(1, 2), keepdims=True) * 1e-4)
        expected += np.mean(np.abs(np.log(np.maximum(mel_f, floor)) - np.log(np.maximum(mel_r, floor))))
    assert float(loss(fake, real)) == pytest.approx(expected / 2, rel=1e-4)


def test_spectral_losses_zero_on_identical_and_grow_with_error():
    fake, real = pair()
    for loss in (MultiResolutionSTFTLoss(fft_sizes=(64, 128)), MultiScaleMelLoss(8000, (64, 128), (8, 16))):
        assert float(loss(real, real)) == pytest.approx(0.0, abs=1e-6)
        small = float(loss(real + 0.01 * (fake - real), real))
        large = float(loss(fake, real))
        assert 0 < small < large


def test_faint_noise_in_silence_costs_less_than_a_wrong_word():
    """The relative floor: hiss 90 dB down where the target is silent must not outweigh a voiced error."""
    t = torch.arange(8000) / 8000
    word = torch.where((t > 0.4) & (t < 0.6), 0.5 * torch.sin(2 * torch.pi * 440 * t), torch.zeros_like(t))
    target = word.view(1, 1, -1)
    hiss = target + 1e-5 * torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(0))
    wrong = 0.5 * target.roll(400, dims=-1)
    for loss in (
        MultiResolutionSTFTLoss(fft_sizes=(128, 256)),
        MultiScaleMelLoss(8000, (128, 256), (16, 32)),
    ):
        assert float(loss(hiss, target)) < 0.25 * float(loss(wrong, target))
    unfloored = MultiScaleMelLoss(8000, (128, 256), (16, 32), top_db=None)
    assert float(unfloored(hiss, target)) > float(unfloored(wrong, target))  # what the floor prevents


def test_spectral_losses_gradients_are_finite_even_on_silence():
    target = torch.zeros(1, 1, 300)
    reconstruction = torch.zeros(1, 1, 300, requires_grad=True)
    SpectralLoss(8000)(reconstruction, target).backward()
    assert torch.isfinite(reconstruction.grad).all()


def test_spectral_losses_short_signal_and_bad_shapes():
    loss = SpectralLoss(16000)
    x = torch.randn(2, 1, 40)  # shorter than every window
    assert torch.isfinite(loss(x, x * 0.5))
    with pytest.raises(ShapeError):
        loss(x, x[..., :30])
    with pytest.raises(ShapeError):
        loss(x[:, 0], x[:, 0])
    with pytest.raises(ConfigError):
        MultiResolutionSTFTLoss(fft_sizes=(64,), hop_sizes=(16, 32))
    with pytest.raises(ConfigError):
        MultiScaleMelLoss(window_lengths=(64, 128), n_mels=(8,))


def test_tokenizer_loss_spectral_term_for_audio():
    fake, real = pair()
    fake.requires_grad_(True)
    quantizer_loss = torch.tensor(0.25)
    plain = TokenizerLoss(in_channels=2, dims=1)
    total, logs = plain.generator_loss(real, fake, quantizer_loss, step=0, last_layer_weight=None)
    assert "spectral" not in logs and plain.spectral is None
    assert float(total.detach()) == pytest.approx(
        float(reconstruction_loss(fake, real).detach()) + 0.25, rel=1e-5
    )

    weighted = TokenizerLoss(in_channels=2, dims=1, spectral_weight=2.0, sample_rate=8000)
    total, logs = weighted.generator_loss(real, fake, quantizer_loss, step=0, last_layer_weight=None)
    spectral = float(SpectralLoss(8000)(fake, real).detach())
    assert float(logs["spectral"]) == pytest.approx(spectral, rel=1e-5)
    expected = float(reconstruction_loss(fake, real).detach()) + 2.0 * spectral + 0.25
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert torch.isfinite(fake.grad).all()

    spectral_only = TokenizerLoss(
        in_channels=2, dims=1, spectral_weight=2.0, reconstruction_weight=0.0, sample_rate=8000
    )
    total, logs = spectral_only.generator_loss(real, fake, quantizer_loss, step=0, last_layer_weight=None)
    assert float(total.detach()) == pytest.approx(2.0 * spectral + 0.25, rel=1e-5)
    assert float(logs["reconstruction"]) == pytest.approx(float(reconstruction_loss(fake, real)), rel=1e-5)


def test_tokenizer_loss_spectral_weight_errors():
    with pytest.raises(ConfigError):
        TokenizerLoss(in_channels=1, dims=2, spectral_weight=1.0)
    with pytest.raises(ConfigError):
        TokenizerLoss(in_channels=1, dims=1, spectral_weight=-1.0)
    with pytest.raises(ConfigError, match="reconstruction_weight"):
        TokenizerLoss(in_channels=1, dims=1, reconstruction_weight=float("nan"))


def partials(
    amplitudes: list[float], f0: float = 220.0, samples: int = 8000, rate: int = 16000
) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float32) / rate
    return sum(a * torch.sin(2 * math.pi * f0 * (k + 1) * t) for k, a in enumerate(amplitudes))


def test_harmonic_loss_reads_the_partials_of_the_tracked_pitch():
    loss = HarmonicLoss(16000, harmonics=8)
    note = partials([0.3, 0.15, 0.1, 0.075]).view(1, 1, -1)
    assert float(loss(note, note)) == 0.0
    # every partial at half amplitude: log 2 on the 4 heard harmonics, 0 on the 4 floored (silent) ones
    assert float(loss(0.5 * note, note)) == pytest.approx(math.log(2) / 2, rel=0.02)
    # a wrong timbre (the second partial moved to the third) costs more than a quieter right one
    other = partials([0.3, 0.0, 0.25, 0.075]).view(1, 1, -1)
    assert float(loss(other, note)) > float(loss(0.7 * note, note))
    # energy between the partials is not what it reads: white noise 40 dB down changes little
    noisy = note + 0.003 * torch.randn(note.shape, generator=torch.Generator().manual_seed(0))
    assert float(loss(noisy, note)) < 0.05
    fake = (0.5 * note).requires_grad_(True)
    loss(fake, note).backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_harmonic_loss_on_silence_and_inside_the_tokenizer_loss():
    loss = HarmonicLoss(16000)
    silent = torch.zeros(2, 1, 4000, requires_grad=True)
    value = loss(silent, torch.zeros(2, 1, 4000))
    assert float(value) == 0.0
    value.backward()  # a batch with no voiced frame still backpropagates (zeros)
    note = partials([0.3, 0.1]).view(1, 1, -1)
    objective = TokenizerLoss(in_channels=1, dims=1, reconstruction_weight=0.0, harmonic_weight=2.0)
    total, logs = objective.generator_loss(
        note, 0.5 * note, torch.tensor(0.0), step=0, last_layer_weight=None
    )
    assert float(logs["harmonic"]) == pytest.approx(float(loss(0.5 * note, note)), rel=1e-5)
    assert float(total) == pytest.approx(2.0 * float(logs["harmonic"]), rel=1e-5)
    with pytest.raises(ConfigError, match="harmonic_weight=1.0 applies to audio"):
        TokenizerLoss(in_channels=1, dims=2, harmonic_weight=1.0)
    with pytest.raises(ConfigError, match="HarmonicLoss needs"):
        HarmonicLoss(16000, harmonics=0)
