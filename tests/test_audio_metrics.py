"""vqgen.evaluation.audio: mel distance, multi-resolution STFT distance and SI-SDR against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from vqgen.errors import ShapeError
from vqgen.evaluation.audio import mel_distance, si_sdr, stft_distance

RATE = 16000


def tones(batch: int = 2, channels: int = 1, samples: int = 4000, seed: int = 0) -> torch.Tensor:
    """``[batch, channels, samples]`` sums of two sines plus a little noise, peak below 1."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / RATE
    freqs = 200 + 1500 * torch.rand(batch, channels, 2, generator=g)
    wave = torch.sin(2 * math.pi * freqs[..., :1] * t) + 0.5 * torch.sin(2 * math.pi * freqs[..., 1:] * t)
    return 0.5 * wave / 1.5 + 0.01 * torch.randn(batch, channels, samples, generator=g)


def test_identical_signals_give_zero_distances():
    x = tones(3, 2)
    assert mel_distance(x, x.clone(), RATE).shape == (3,)
    torch.testing.assert_close(mel_distance(x, x.clone(), RATE), torch.zeros(3))
    torch.testing.assert_close(stft_distance(x, x.clone()), torch.zeros(3))


def test_mel_distance_of_a_scaled_copy_is_the_log_of_the_scale():
    # mel is linear in the magnitude, so log mel(a x) - log mel(x) = log a wherever both clear the floor.
    x = tones(2)
    expected = torch.full((2,), math.log(2.0))
    torch.testing.assert_close(mel_distance(2 * x, x, RATE), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(mel_distance(x, 2 * x, RATE), expected, atol=1e-4, rtol=0)


def test_stft_distance_of_a_scaled_copy_matches_the_formula():
    # With M' = a M: sc = |1 - a| at every resolution and log_mag = |log a| (above the floor).
    x = tones(2)
    a = 0.5
    expected = torch.full((2,), abs(1 - a) + abs(math.log(a)))
    # The absolute floor only: every bin counts (the default 80 dB floor clamps a few bins that lie between
    # the tones' peaks, which pulls the distance a little below the formula).
    torch.testing.assert_close(stft_distance(a * x, x, top_db=None), expected, atol=1e-4, rtol=0)
    single = stft_distance(a * x, x, fft_sizes=(256,), top_db=None)
    torch.testing.assert_close(single, expected, atol=1e-4, rtol=0)
    default = stft_distance(a * x, x)
    assert (default <= expected + 1e-5).all() and (default > expected - 0.01).all()


def test_log_floor_relative_to_the_target_ignores_inaudible_noise_in_silence():
    # A tone with digital silence around it; the reconstruction adds noise 100 dB below the tone's peak.
    g = torch.Generator().manual_seed(2)
    x = torch.zeros(2, 1, 8000)
    x[..., 3000:5000] = tones(2, samples=2000)
    y = x + 1e-5 * torch.randn(x.shape, generator=g)
    assert (mel_distance(y, x, RATE) < 0.01).all() and (stft_distance(y, x) < 0.01).all()
    # With only the absolute floor, the silence dominates: large distances for an inaudible difference.
    assert (mel_distance(y, x, RATE, top_db=None) > 1.0).all()
    assert (stft_distance(y, x, top_db=None) > 1.0).all()


def test_distances_are_per_item():
    x = tones(3)
    y = x.clone()
    y[1] = 0.5 * y[1]
    mel = mel_distance(y, x, RATE)
    stft = stft_distance(y, x)
    assert mel[0] == 0 and mel[2] == 0 and mel[1] > 0.6
    assert stft[0] == 0 and stft[2] == 0 and stft[1] > 1.0


def test_si_sdr_of_a_scaled_copy_is_very_large_and_scale_invariant():
    x = tones(2)
    assert (si_sdr(x, x) > 80).all()
    assert (si_sdr(0.3 * x, x) > 80).all()
    y = x + 0.1 * tones(2, seed=1)
    torch.testing.assert_close(si_sdr(3.0 * y, x), si_sdr(y, x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_si_sdr_of_white_noise_at_a_known_snr(snr_db):
    g = torch.Generator().manual_seed(1)
    x = tones(4, samples=16000)
    noise = torch.randn(x.shape, generator=g)
    # Noise orthogonal to the signal (one Gram-Schmidt step), scaled to the exact SNR: then SI-SDR = SNR.
    xc, nc = x - x.mean(-1, keepdim=True), noise - noise.mean(-1, keepdim=True)
    nc = nc - (nc * xc).sum(-1, keepdim=True) / (xc * xc).sum(-1, keepdim=True) * xc
    power = xc.pow(2).sum(-1, keepdim=True) / nc.pow(2).sum(-1, keepdim=True)
    nc = nc * (power / 10 ** (snr_db / 10)).sqrt()
    torch.testing.assert_close(si_sdr(x + nc, x), torch.full((4,), snr_db), atol=1e-3, rtol=0)
    # Plain white noise at that SNR lands close to it too.
    plain = (
        noise
        * (
            xc.pow(2).mean(-1, keepdim=True) / noise.pow(2).mean(-1, keepdim=True) / 10 ** (snr_db / 10)
        ).sqrt()
    )
    assert (si_sdr(x + plain, x) - snr_db).abs().max() < 0.2


def test_si_sdr_hand_computed_example():
    # target x = [1, -1, 1, -1] (zero mean), estimate x' = [2, -1, 1, -2] (zero mean):
    # <x', x> = 6, <x, x> = 4, s = 1.5 x, e = x' - s = [0.5, 0.5, -0.5, -0.5]: ratio 9 / 1 -> 10 log10 9.
    x = torch.tensor([[[1.0, -1.0, 1.0, -1.0]]])
    y = torch.tensor([[[2.0, -1.0, 1.0, -2.0]]])
    torch.testing.assert_close(si_sdr(y, x), torch.tensor([10 * math.log10(9.0)]), atol=1e-5, rtol=0)


def test_channels_are_averaged():
    x = tones(1, channels=2, samples=8000)
    y = x.clone()
    y[:, 1] = 0.5 * y[:, 1]
    one = mel_distance(y[:, 1:], x[:, 1:], RATE)
    torch.testing.assert_close(mel_distance(y, x, RATE), one / 2, atol=1e-5, rtol=0)
    noisy = x + 0.05 * tones(1, channels=2, samples=8000, seed=3)
    per_channel = torch.stack([si_sdr(noisy[:, c : c + 1], x[:, c : c + 1]) for c in range(2)])
    torch.testing.assert_close(si_sdr(noisy, x), per_channel.mean(0), atol=1e-4, rtol=0)


def test_shape_errors():
    x = tones(2)
    with pytest.raises(ShapeError, match="differs"):
        si_sdr(x, x[:, :, :-1])
    with pytest.raises(ShapeError, match=r"\[B, C, S\]"):
        mel_distance(x[0], x[0], RATE)
    with pytest.raises(ShapeError, match=r"\[B, C, S\]"):
        stft_distance(x[:, 0], x[:, 0])
