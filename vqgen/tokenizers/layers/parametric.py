"""A measured harmonic analysis and its synthesis: the encoder and decoder of ``frontend="parametric-harmonic"``.

Why: the learned harmonic codec (:mod:`vqgen.tokenizers.layers.harmonic`, ``"stft-harmonic"``) keeps pitch by
construction, but its trained encoder and decoder lose the timbre: the notes benchmarks' family classifier
reads 98.8% of real training notes and 46.5% of that codec's reconstructions of them, while resynthesising the
same notes from their MEASURED harmonic amplitudes keeps 76.8% (``benchmarks/RESULTS.md``, "Where the
instrument timbre is lost"), and CPU-length training with a harmonic loss did not close the gap. So here
nothing is learned but the codebooks: :class:`HarmonicAnalysis1d` measures, per code frame, the amplitude of
each harmonic of the tracked fundamental and the noise floor between them (a classic harmonic-plus-noise
vocoder analysis), residual VQ codes those log magnitudes (its codebooks fitted by k-means,
:func:`vqgen.training.codebooks.fit_codebooks`), and :class:`HarmonicSynthesis1d` plays them back with the
same harmonic and noise synthesis as the learned decoder. Such a codec keeps pitch and spectral envelope, not
the waveform's phase (its SI-SDR is low, as every phase-free codec's).

:class:`PhaseCoder` adds that phase where bits allow: optional code levels hold the measured phase of the first
harmonics at every frame centre, and the synthesis plays those harmonics as overlapping windowed grains with that
phase (the other harmonics keep their free-running phase). Why grains rather than a phase track through the frames
(McAulay-Quatieri): each grain is the harmonic as measured around its frame, so adjacent grains agree where they
overlap without any unwrapping, and a coarse pitch step (7 cents) drifts at most a few hundredths of a cycle over
a grain. On the 952 held-out notes at 6 kbit/s (pitch, 7 magnitude levels, 4 phase levels of 3 harmonics) SI-SDR
is +0.77 dB, against -18.5 dB for the phase-free codec and -6.6 dB for Opus (``benchmarks/RESULTS.md``,
"Instrument codec with phase levels").
"""

from __future__ import annotations

import math

import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.layers.harmonic import (
    HARMONICS,
    NOISE_BANDS,
    filtered_noise,
    harmonic_frequencies,
    synthesise_harmonics,
    upsample_frames,
)
from vqgen.tokenizers.layers.stft1d import stft_sizes

#: Features per frame and channel: the log amplitude of each harmonic, then the log magnitude of each noise band.
FEATURES = HARMONICS + NOISE_BANDS
#: Harmonic amplitudes (of a full-scale sine: 1) are floored here before the log (-80 dB); the floor decodes to 0.
AMPLITUDE_FLOOR = 1e-4
#: Noise band magnitudes (normalised STFT units) are floored here before the log; the floor decodes to 0.
NOISE_FLOOR = 1e-5
#: Bins on each side of a harmonic left out of the noise measurement (a Hann window's main lobe is 2 bins wide
#: on each side).
HARMONIC_GUARD_BINS = 2
#: Synthesised noise level / measured band median for white noise: the median of a Rayleigh magnitude is 0.83
#: of its RMS, and overlap-adding frames of random phase loses more; measured on white noise (one second,
#: levels 0.01-0.3: the output RMS matches the input's within 0.3%; tests/test_audio_parametric.py allows 5%).
NOISE_GAIN = 2.39
#: Harmonics one phase level codes: 3 share a code, so with 1,024 codes each phase has 10 steps of 36 degrees.
#: Measured on 96 held-out notes at 4 phase levels: 2 harmonics of 32 steps gave +0.27 dB SI-SDR, 3 of 10
#: +0.40 dB, 4 of 5 -0.45 dB: more harmonics at a coarser step pay while the step stays near a tenth of a turn.
PHASE_HARMONICS_PER_LEVEL = 3


def nearest_peaks(magnitude: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """The largest of the three bins around each bin of ``centre [N, H, T]`` in ``magnitude [N, bins, T]``:
    where each harmonic's spectral peak lies (long ``[N, H, T]``)."""
    bins = magnitude.shape[1]
    near = torch.stack([magnitude.gather(1, (centre + d).clamp(0, bins - 1)) for d in (-1, 0, 1)])
    return (centre + near.argmax(0) - 1).clamp(0, bins - 1)


def frame_spectrum(audio: torch.Tensor, hop: int, frames: int) -> torch.Tensor:
    """The codec's STFT (``n_fft = 4 * hop``, periodic Hann, centred: frame ``t`` on sample ``t * hop``, zero
    padding): ``audio [N, S]`` -> complex ``[N, n_fft // 2 + 1, frames]``."""
    n_fft, _ = stft_sizes(hop)
    window = torch.hann_window(n_fft, device=audio.device)
    spectrum = torch.stft(
        audio.float(), n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return spectrum[..., :frames]


def harmonic_bins(f0: torch.Tensor, sample_rate: int, n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``f0 [B, T]`` Hz -> the STFT bin nearest each harmonic ``[B, HARMONICS, T]`` and whether it is audible."""
    freqs, audible = harmonic_frequencies(f0, sample_rate)
    return (freqs * n_fft / sample_rate).round().long().clamp(0, n_fft // 2), audible


class HarmonicAnalysis1d(torch.nn.Module):
    """Audio and its fundamental -> per frame, log harmonic amplitudes and log noise band magnitudes (no weights).

    Frames are those of the codec's STFT (``n_fft = 4 * hop``, Hann, centred: frame ``t`` on sample
    ``t * hop``). Harmonic ``k``'s amplitude is the height of the STFT peak within one bin of ``k f0``
    (:meth:`peak_magnitudes`), scaled so that a sine of amplitude ``a`` measures ``a`` (0 where inaudible).
    Noise band ``b`` (:data:`NOISE_BANDS` bands centred on evenly spaced bins, as
    :func:`~vqgen.tokenizers.layers.harmonic.filtered_noise` reads them) is the median normalised magnitude of its bins away from the audible harmonics, times
    :data:`NOISE_GAIN`. Both are floored (:data:`AMPLITUDE_FLOOR`, :data:`NOISE_FLOOR`) and logged.

    The output is centred on ``feature_mean`` (a buffer ``[C * FEATURES]``, 0 until
    :func:`~vqgen.training.codebooks.fit_codebooks` sets it to the training data's mean): a zero vector, what a
    codec decodes when no learned level is given, then means the average timbre rather than every harmonic
    at full scale. k-means is unchanged by the shift (its codes are the same; level 0's centroids move).

    Shapes: ``audio [B, C, T * hop]``, ``f0 [B, T]`` Hz (shared by the channels) -> ``[B, C * FEATURES, T]``
    (channel ``c``'s harmonics, then its noise bands).
    """

    def __init__(self, hop: int, sample_rate: int, channels: int = 1):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(channels * FEATURES))
        self.hop, self.sample_rate = int(hop), int(sample_rate)
        self.n_fft, self.bins = stft_sizes(self.hop)
        centres = torch.linspace(0, self.bins - 1, NOISE_BANDS)
        half = (self.bins - 1) / (NOISE_BANDS - 1) / 2
        self.band_edges = [
            (max(0, math.floor(c - half)), min(self.bins, math.ceil(c + half) + 1)) for c in centres.tolist()
        ]

    def forward(self, audio: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = audio.shape
        frames = f0.shape[-1]
        if samples != frames * self.hop:
            raise ShapeError(
                f"analysis needs {frames} x {self.hop} samples for {frames} frames, got {samples}"
            )
        spectrum = frame_spectrum(audio.reshape(batch * channels, samples), self.hop, frames).abs()
        centre, audible = harmonic_bins(f0.to(audio.device), self.sample_rate, self.n_fft)
        centre, audible = centre.repeat_interleave(channels, 0), audible.repeat_interleave(channels, 0)
        # a sinusoid of amplitude a peaks at a * sum(window) / 2 = a * n_fft / 4 in a Hann-window STFT
        amplitudes = self.peak_magnitudes(spectrum, centre) * (4 / self.n_fft) * audible
        guard = torch.zeros_like(spectrum)
        for offset in range(-HARMONIC_GUARD_BINS, HARMONIC_GUARD_BINS + 1):
            guard.scatter_add_(1, (centre + offset).clamp(0, self.bins - 1), audible.float())
        between = (spectrum / math.sqrt(self.n_fft)).masked_fill(guard > 0, float("nan"))
        bands = torch.stack([between[:, lo:hi].nanmedian(dim=1).values for lo, hi in self.band_edges], 1)
        noise = bands.nan_to_num(0.0) * NOISE_GAIN  # a band with every bin on a harmonic: no noise measured
        features = torch.cat(
            [amplitudes.clamp_min(AMPLITUDE_FLOOR).log(), noise.clamp_min(NOISE_FLOOR).log()], dim=1
        )
        return features.reshape(batch, channels * FEATURES, frames) - self.feature_mean[:, None]

    def peak_magnitudes(self, spectrum: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """The height of the spectral peak nearest each bin of ``centre [N, H, T]`` in ``spectrum [N, bins, T]``:
        the largest of the three bins around it, corrected for the window's scalloping by a parabola through
        the log magnitudes at that bin and its neighbours (off-bin sines would otherwise read up to 1.4 dB
        low)."""

        def at(bins: torch.Tensor) -> torch.Tensor:
            return spectrum.gather(1, bins.clamp(0, self.bins - 1))

        peak = nearest_peaks(spectrum, centre).clamp(1, self.bins - 2)
        left, middle, right = (at(peak + d).clamp_min(1e-12).log() for d in (-1, 0, 1))
        curvature = left - 2 * middle + right
        offset = torch.where(curvature < 0, 0.5 * (left - right) / curvature.clamp_max(-1e-12), 0.0)
        return (middle - 0.25 * (left - right) * offset.clamp(-0.5, 0.5)).exp()


class HarmonicSynthesis1d(torch.nn.Module):
    """The inverse of :class:`HarmonicAnalysis1d` (no weights): log magnitudes and f0 -> harmonics plus noise.

    Amplitudes are ``exp(feature) - floor`` (clamped at 0, so a floored feature is silence), harmonics of
    inaudible frequencies are dropped; the harmonics are interpolated linearly to the samples and summed
    (:func:`~vqgen.tokenizers.layers.harmonic.synthesise_harmonics`), the noise bands shape fixed-phase noise
    (:func:`~vqgen.tokenizers.layers.harmonic.filtered_noise`). Deterministic.

    With ``phases [B, P, T]`` (:class:`PhaseCoder`'s decode, mono), the first ``P`` harmonics are played by
    :func:`phase_locked_harmonics` with those phases instead.

    Shapes: ``features [B, C * FEATURES, T]`` (uncentred: the analysis' output plus its ``feature_mean``),
    ``f0 [B, T]`` Hz -> ``[B, C, T * hop]``.
    """

    def __init__(self, out_channels: int, hop: int, sample_rate: int):
        super().__init__()
        self.out_channels, self.hop, self.sample_rate = int(out_channels), int(hop), int(sample_rate)

    def forward(
        self, features: torch.Tensor, f0: torch.Tensor, phases: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, _, frames = features.shape
        features = features.float().reshape(batch, self.out_channels, FEATURES, frames)
        amplitudes = (features[:, :, :HARMONICS].exp() - AMPLITUDE_FLOOR).clamp_min(0.0)
        _, audible = harmonic_frequencies(f0, self.sample_rate)
        amplitudes = amplitudes * audible.unsqueeze(1)
        noise = (features[:, :, HARMONICS:].exp() - NOISE_FLOOR).clamp_min(0.0)
        locked = 0.0
        if phases is not None and phases.shape[1]:
            coded = phases.shape[1]
            locked = phase_locked_harmonics(amplitudes[:, 0, :coded], f0, phases, self.hop, self.sample_rate)
            locked = locked.unsqueeze(1)
            amplitudes = torch.cat([torch.zeros_like(amplitudes[:, :, :coded]), amplitudes[:, :, coded:]], 2)
        f0 = f0.float().unsqueeze(1)  # [B, 1, T]
        harmonic = synthesise_harmonics(
            upsample_frames(amplitudes, self.hop), upsample_frames(f0, self.hop), self.sample_rate
        )
        return harmonic + locked + filtered_noise(noise, frames, self.hop)


def phase_steps(codebook_size: int) -> int:
    """Steps of each phase a phase level codes: the largest ``s`` with ``s ** PHASE_HARMONICS_PER_LEVEL <=
    codebook_size`` (10 for 1,024 codes)."""
    steps = 1
    while (steps + 1) ** PHASE_HARMONICS_PER_LEVEL <= codebook_size:
        steps += 1
    return steps


class PhaseCoder(torch.nn.Module):
    """The phase of the first harmonics at each frame centre <-> code levels (no weights; mono).

    Level ``j`` codes harmonics ``3j + 1 .. 3j + 3`` (:data:`PHASE_HARMONICS_PER_LEVEL`); each phase is rounded
    to one of ``steps`` (:func:`phase_steps`) equal steps of the turn and a code is the three steps as one
    number, the lowest harmonic's the least significant digit. A harmonic's phase is read from the STFT bin of
    its peak (:func:`nearest_peaks`): the Hann window is symmetric about its centre, ``n_fft / 2`` samples into
    the frame, so a sinusoid ``cos(w (n - centre) + theta)`` gives ``arg X[m] = theta - pi m`` whatever ``w``
    near bin ``m`` is. Inaudible harmonics and unvoiced frames code step 0.

    Shapes: :meth:`encode` audio ``[B, 1, T * hop]``, ``f0 [B, T]`` Hz -> long ``[B, levels, T]``;
    :meth:`decode` long ``[B, L, T]`` -> radians ``[B, 3 L, T]`` (of ``cos``, at each frame centre).
    """

    def __init__(self, hop: int, sample_rate: int, codebook_size: int):
        super().__init__()
        self.hop, self.sample_rate = int(hop), int(sample_rate)
        self.steps = phase_steps(codebook_size)
        if self.steps < 2:
            raise ConfigError(
                f"a phase level needs a codebook of at least {2**PHASE_HARMONICS_PER_LEVEL} codes, got "
                f"{codebook_size}"
            )
        self.register_buffer("place", self.steps ** torch.arange(PHASE_HARMONICS_PER_LEVEL), persistent=False)

    def encode(self, audio: torch.Tensor, f0: torch.Tensor, levels: int) -> torch.Tensor:
        batch, frames = f0.shape
        n_fft, _ = stft_sizes(self.hop)
        spectrum = frame_spectrum(audio[:, 0], self.hop, frames)  # [B, bins, T]
        count = levels * PHASE_HARMONICS_PER_LEVEL
        centre, audible = harmonic_bins(f0.to(audio.device), self.sample_rate, n_fft)
        peak = nearest_peaks(spectrum.abs(), centre[:, :count])
        phase = spectrum.gather(1, peak).angle() + math.pi * peak.float()
        step = torch.round(phase / (2 * math.pi) * self.steps).long().remainder(self.steps)
        step = step * audible[:, :count]
        digits = step.reshape(batch, levels, PHASE_HARMONICS_PER_LEVEL, frames)
        return (digits * self.place.view(1, 1, -1, 1)).sum(2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch, levels, frames = codes.shape
        digits = codes.unsqueeze(2).div(self.place.view(1, 1, -1, 1), rounding_mode="floor") % self.steps
        return digits.reshape(batch, levels * PHASE_HARMONICS_PER_LEVEL, frames).float() * (
            2 * math.pi / self.steps
        )


def phase_locked_harmonics(
    amplitudes: torch.Tensor, f0: torch.Tensor, phases: torch.Tensor, hop: int, sample_rate: int
) -> torch.Tensor:
    """The first harmonics with their coded phases: at each frame ``t`` a grain ``a cos(2 pi k f0 (n - t hop) /
    sample_rate + theta)`` under a Hann window of ``2 hop`` samples centred on sample ``t * hop``, overlap-added
    (the windows sum to 1).

    Shapes: ``amplitudes [B, H, T]`` (per frame, 0 where inaudible), ``f0 [B, T]`` Hz, ``phases [B, H, T]``
    radians -> ``[B, T * hop]``.
    """
    batch, count, frames = amplitudes.shape
    offset = torch.arange(-hop, hop, device=amplitudes.device, dtype=torch.float32)
    window = 0.5 + 0.5 * torch.cos(math.pi * offset / hop)
    numbers = torch.arange(1, count + 1, device=amplitudes.device, dtype=torch.float32).view(1, -1, 1)
    freqs = (numbers * f0.float().unsqueeze(1)).unsqueeze(-1)  # [B, H, T, 1]
    angle = 2 * math.pi * freqs * offset / sample_rate + phases.float().unsqueeze(-1)
    grains = (amplitudes.float().unsqueeze(-1) * torch.cos(angle)).sum(1) * window  # [B, T, 2 hop]
    summed = torch.nn.functional.fold(
        grains.transpose(1, 2), output_size=(1, (frames + 1) * hop), kernel_size=(1, 2 * hop), stride=(1, hop)
    )  # grain t covers samples t hop - hop .. t hop + hop - 1, shifted by hop
    return summed.reshape(batch, (frames + 1) * hop)[:, hop:]
