"""Pitch codes and a harmonic-plus-noise decoder: the audio codec for pitched notes (``frontend="stft-harmonic"``).

Why: decoders that must learn where spectral peaks go (the strided waveform codec, the STFT decoders with a
phase pair, a phase advance or magnitudes and Griffin-Lim) kept the pitch of 0 to 4 of 72 held-out notes after
500-1,300 CPU steps (``benchmarks/RESULTS.md``, "Instrument-notes codec"); even fitting 32 notes took hundreds
of steps per dozen notes. Here pitch is not learned. :class:`PitchCoder` tracks the input's fundamental per
code frame (YIN, :func:`vqgen.evaluation.pitch.track_f0`) and writes it as one code level (log-spaced steps);
:class:`HarmonicDecoder1d` synthesises a sum of harmonics of that f0 plus filtered noise (DDSP, Engel et al.
2020), and the learned residual levels carry only the timbre: the harmonic amplitudes and the noise spectrum.
Pitch is kept by construction, to within a step (7 cents with 1,024 codes over 30-2,000 Hz), wherever the
tracker hears one; unpitched sound is noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from vqgen.errors import ConfigError
from vqgen.evaluation.pitch import track_f0
from vqgen.tokenizers.layers.stft1d import FrameNetwork1d, stft_sizes

#: Harmonics the decoder synthesises (at most; those above the Nyquist frequency are silent).
HARMONICS = 64
#: Bands of the noise spectrum the decoder predicts (interpolated linearly to the STFT bins).
NOISE_BANDS = 64
#: The seed of the noise's phases: decoding is deterministic.
NOISE_SEED = 0


def exp_sigmoid(x: torch.Tensor, exponent: float = math.log(10.0), max_value: float = 2.0) -> torch.Tensor:
    """DDSP's positive amplitude: ``max_value * sigmoid(x) ** exponent + 1e-7`` (bounded, smooth near 0)."""
    return max_value * torch.sigmoid(x).pow(exponent) + 1e-7


def upsample_frames(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Frame values ``[..., T]`` (frame ``t`` at sample ``t * hop``) -> samples ``[..., T * hop]`` by linear
    interpolation between frames (held after the last)."""
    frames = x.shape[-1]
    position = torch.arange(frames * hop, device=x.device, dtype=torch.float32) / hop
    below = position.floor().long()
    above = (below + 1).clamp(max=frames - 1)
    weight = (position - below).to(x.dtype)
    return x[..., below] * (1 - weight) + x[..., above] * weight


def harmonic_frequencies(f0: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``f0 [B, T]`` Hz (0 unvoiced) -> the harmonics' frequencies ``[B, HARMONICS, T]`` and whether each is
    audible (voiced frame, below the Nyquist frequency)."""
    numbers = torch.arange(1, HARMONICS + 1, device=f0.device, dtype=torch.float32).view(1, -1, 1)
    freqs = numbers * f0.float().unsqueeze(1)
    audible = (freqs < sample_rate / 2) & (f0.unsqueeze(1) > 0)
    return freqs, audible


def synthesise_harmonics(amplitudes: torch.Tensor, f0: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """A sum of harmonics of a running fundamental: ``sum_k a_k sin(k phi)``, ``phi = 2 pi cumsum(f0) / sample_rate``.

    Shapes: ``amplitudes [B, C, H, S]`` (harmonic ``k = 1 .. H`` per sample), ``f0 [B, 1, S]`` Hz -> ``[B, C, S]``.
    The phase is accumulated in float64, so it does not drift over seconds.
    """
    numbers = torch.arange(1, amplitudes.shape[2] + 1, device=amplitudes.device, dtype=torch.float32)
    cycles = torch.cumsum(f0.double() / sample_rate, dim=-1) % 1.0
    phase = (2 * math.pi * cycles).float()
    return (amplitudes * torch.sin(numbers[:, None] * phase.unsqueeze(2))).sum(dim=2)


def filtered_noise(bands: torch.Tensor, frames: int, hop: int) -> torch.Tensor:
    """Noise shaped by per-frame band magnitudes: the bands interpolated linearly over the ``n_fft // 2 + 1``
    bins of the codec's STFT (``n_fft = 4 * hop``, :func:`~vqgen.tokenizers.layers.stft1d.stft_sizes`), fixed
    random phases (:data:`NOISE_SEED`: deterministic), ``torch.istft`` (``normalized=True``, Hann window).

    Shapes: ``bands [B, C, NB, T]`` (``T = frames``) -> ``[B, C, T * hop]``.
    """
    batch, channels, num_bands = bands.shape[:3]
    n_fft, bins = stft_sizes(hop)
    magnitude = torch.nn.functional.interpolate(
        bands.reshape(batch * channels, num_bands, frames).transpose(1, 2),
        size=bins,
        mode="linear",
        align_corners=True,
    ).transpose(1, 2)  # [B * C, bins, T]
    generator = torch.Generator().manual_seed(NOISE_SEED)
    phase = (torch.rand(bins, frames, generator=generator) * 2 * math.pi).to(bands.device)
    audio = torch.istft(
        torch.polar(magnitude, phase.expand_as(magnitude)),
        n_fft,
        hop_length=hop,
        window=torch.hann_window(n_fft, device=bands.device),
        center=True,
        normalized=True,
        length=frames * hop,
    )
    return audio.reshape(batch, channels, frames * hop)


class PitchCoder(torch.nn.Module):
    """Fundamental frequency per code frame <-> one level of codes (no parameters).

    Code 0 is unvoiced; codes ``1 .. N - 1`` (``N = codebook_size``) are log-spaced fundamentals from ``fmin``
    to ``fmax``: code ``c`` means ``fmin * (fmax / fmin) ** ((c - 1) / (N - 2))``. Frames are those of
    :func:`~vqgen.evaluation.pitch.track_f0` with the codec's hop (frame ``t`` centred on sample ``t * hop``).

    Shapes: :meth:`encode` audio ``[B, C, S]`` -> long ``[B, ceil(S / hop)]`` (channels averaged);
    :meth:`decode` long ``[B, T]`` -> float ``[B, T]`` Hz, 0 where unvoiced.
    """

    def __init__(
        self, sample_rate: int, hop: int, codebook_size: int, fmin: float = 30.0, fmax: float = 2000.0
    ):
        super().__init__()
        if codebook_size < 3:
            raise ConfigError(f"a pitch level needs a codebook of at least 3 codes, got {codebook_size}")
        self.sample_rate, self.hop, self.codebook_size = int(sample_rate), int(hop), int(codebook_size)
        self.fmin, self.fmax = float(fmin), float(fmax)
        self.steps = self.codebook_size - 2  # intervals between the voiced codes

    def f0_to_codes(self, f0: torch.Tensor) -> torch.Tensor:
        """Hz ``[B, T]`` (NaN or <= 0 unvoiced) -> long codes ``[B, T]``."""
        voiced = torch.isfinite(f0) & (f0 > 0)
        f0 = torch.where(voiced, f0, self.fmin).clamp(self.fmin, self.fmax)
        step = torch.log(f0 / self.fmin) / math.log(self.fmax / self.fmin) * self.steps
        return torch.where(voiced, 1 + step.round().long(), torch.zeros_like(step, dtype=torch.long))

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        f0 = track_f0(audio.detach().float().mean(dim=1), self.sample_rate, self.hop, self.fmin, self.fmax)
        return self.f0_to_codes(f0.to(audio.device))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        step = (codes - 1).clamp(min=0).float() / self.steps
        f0 = self.fmin * (self.fmax / self.fmin) ** step
        return torch.where(codes > 0, f0, torch.zeros_like(f0))


class HarmonicDecoder1d(FrameNetwork1d):
    """Latents and f0 -> frame-rate conv network -> harmonics of f0 plus filtered noise -> audio.

    Per frame the network sees the latents and two pitch features (``log(f0 / fmin) / log(fmax / fmin)`` and
    whether the frame is voiced) and predicts, per output channel, an overall harmonic amplitude ``a``
    (:func:`exp_sigmoid`), a distribution over :data:`HARMONICS` harmonics (softmax over those below the
    Nyquist frequency) and :data:`NOISE_BANDS` noise magnitudes. Audio: amplitudes and f0 interpolated
    linearly to the samples, ``sum_k a p_k sin(k phi)`` with ``phi = 2 pi cumsum(f0) / sample_rate``
    (silent where unvoiced), plus noise: the noise magnitudes interpolated over the ``n_fft // 2 + 1`` STFT
    bins (``n_fft = 4 * hop``, as the encoder's) with fixed random phases (:data:`NOISE_SEED`), inverted with
    ``torch.istft``. Decoding is deterministic.

    Shapes: ``z [B, latent_channels, T]``, ``f0 [B, T]`` (Hz, 0 unvoiced) -> ``[B, out_channels, T * hop]``.
    """

    def __init__(
        self,
        out_channels: int,
        hop: int,
        latent_channels: int,
        sample_rate: int,
        fmin: float = 30.0,
        fmax: float = 2000.0,
        width: int = 512,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        outputs = (1 + HARMONICS + NOISE_BANDS) * out_channels
        super().__init__(latent_channels + 2, width, outputs, dilations, norm, activation)
        self.hop, self.out_channels, self.sample_rate = int(hop), int(out_channels), int(sample_rate)
        self.fmin, self.fmax = float(fmin), float(fmax)

    def pitch_features(self, f0: torch.Tensor) -> torch.Tensor:
        """Hz ``[B, T]`` -> ``[B, 2, T]``: normalised log f0 (0 where unvoiced) and the voiced flag."""
        voiced = (f0 > 0).float()
        level = torch.log(f0.clamp(min=self.fmin) / self.fmin) / math.log(self.fmax / self.fmin)
        return torch.stack([level * voiced, voiced], dim=1)

    def forward(self, z: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        batch, _, frames = z.shape
        features = torch.cat([z, self.pitch_features(f0).to(z.dtype)], dim=1)
        out = super().forward(features).float().reshape(batch, self.out_channels, -1, frames)
        _, audible = harmonic_frequencies(f0, self.sample_rate)
        audible = audible.unsqueeze(1)  # [B, 1, H, T]: shared by the channels
        f0 = f0.float().unsqueeze(1)  # [B, 1, T]
        # a finite mask value, then zeroed: a frame with no audible harmonic (unvoiced) gets 0, never NaN
        logits = out[:, :, 1 : 1 + HARMONICS].masked_fill(~audible, -1e4)
        share = torch.softmax(logits, dim=2) * audible
        amplitudes = exp_sigmoid(out[:, :, :1] - 3.0) * share  # [B, C, H, T]; starts quiet
        harmonic = self.harmonics(upsample_frames(amplitudes, self.hop), upsample_frames(f0, self.hop))
        noise = self.noise(exp_sigmoid(out[:, :, 1 + HARMONICS :] - 5.0), frames)
        return (harmonic + noise).to(z.dtype)

    def harmonics(self, amplitudes: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """``amplitudes [B, C, H, S]``, ``f0 [B, 1, S]`` Hz -> ``[B, C, S]`` (:func:`synthesise_harmonics`)."""
        return synthesise_harmonics(amplitudes, f0, self.sample_rate)

    def noise(self, bands: torch.Tensor, frames: int) -> torch.Tensor:
        """Noise magnitudes ``[B, C, NOISE_BANDS, T]`` -> ``[B, C, T * hop]`` (:func:`filtered_noise`)."""
        return filtered_noise(bands, frames, self.hop)
