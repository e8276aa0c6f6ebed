"""STFT front and back end of the audio codec (Vocos style): every convolution runs at the frame rate.

The encoder turns audio ``[B, C, S]`` into one feature vector per hop of ``hop`` samples (log magnitude and the
cosine and sine of the phase of each STFT bin), the decoder predicts a complex spectrum per frame and inverts it
with ``torch.istft``. Neither upsamples in time with convolutions, so there are no transposed convolutions and
no upsampling artefacts; harmonics are placed by the inverse STFT rather than synthesised sample by sample.

Frame alignment: with ``center=True`` an STFT of ``S = T * hop`` samples has ``T + 1`` frames, frame ``t``
centred on sample ``t * hop``. The encoder drops the last one (centred on ``S``, past the end, it only repeats
what frames ``T - 2`` and ``T - 1`` see), so code frame ``t`` is the window centred on sample ``t * hop``. The
decoder's ``T`` frames cover samples ``[-2 * hop, (T + 1) * hop)`` with ``n_fft = 4 * hop``, so
``torch.istft(..., center=True, length=T * hop)`` reconstructs every one of the ``T * hop`` samples from at
least two overlapping windows.

Phase, three ways (``STFTDecoder1d(phase=...)``): a cosine/sine pair per bin (``"pair"``), the phase advance per
hop accumulated from 0 (``"advance"``), or no phase at all (``"griffin-lim"``): the decoder predicts magnitudes
only. Measured on instrument notes (``benchmarks/RESULTS.md``, "Instrument-notes codec"), ``"advance"`` learns
inconsistent advances: overlapping frames cancel (output energy 10-100x below the predicted spectrum's) and
pitch is lost; ``"griffin-lim"`` sidesteps that. In training (:meth:`STFTDecoder1d.forward` given the input
``reference``) the predicted magnitudes take the input's phase, so the spectral loss sees only magnitude error;
decoding codes alone rebuilds a phase with Griffin-Lim (``torchaudio.functional.griffinlim``, deterministic
start), which from the input's own magnitudes keeps the pitch of every pitched test note (72 of 72, 16
iterations). Such a codec keeps frequencies, not waveforms.

The centring pads with zeros (``pad_mode="constant"``, as the tokenizer pads the tail; reflection would fail
on clips shorter than half a window). The STFT is ``normalized=True`` (scaled by ``n_fft ** -0.5``): a
full-scale sine then peaks near ``sqrt(n_fft) / 4`` (about 9 for ``n_fft = 1280``), well under the decoder's
magnitude cap of 100, whereas the unscaled peak (``n_fft / 4 = 320``) would sit above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchaudio
from torch import nn

from vqgen.tokenizers.layers.codec1d import NormActivation1d, PaddedConv1d, ResidualUnit1d

#: Added to magnitudes before the log and the phase division (encoder), and to the decoder's phase pair norm.
STFT_EPS = 1e-5
#: Largest magnitude the decoder predicts (``exp`` of its log-magnitude output is clamped here, as in Vocos).
MAX_MAGNITUDE = 1e2


def stft_sizes(hop: int) -> tuple[int, int]:
    """``(n_fft, bins)`` of the codec's STFT for a hop of ``hop`` samples: ``n_fft = 4 * hop``, ``n_fft // 2 + 1``."""
    n_fft = 4 * int(hop)
    return n_fft, n_fft // 2 + 1


class FrameNetwork1d(nn.Module):
    """The frame-rate stack of both halves: conv 7 to ``width``, one :class:`ResidualUnit1d` per dilation,
    norm/activation, conv ``out_kernel`` to ``out_channels`` (``conv_out``, the decoder's last layer for the
    adaptive GAN weight). ``norm`` and ``activation`` as in :class:`NormActivation1d`.

    Shapes: ``[B, in_channels, T] -> [B, out_channels, T]`` (every layer keeps the length).
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
        out_kernel: int = 1,
    ):
        super().__init__()
        weight_norm = norm == "weight"
        self.conv_in = PaddedConv1d(in_channels, width, 7, weight_norm=weight_norm)
        self.units = nn.Sequential(
            *(ResidualUnit1d(width, d, norm=norm, activation=activation) for d in dilations)
        )
        self.norm_out = NormActivation1d(width, norm, activation)
        self.conv_out = PaddedConv1d(width, out_channels, out_kernel, weight_norm=weight_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.norm_out(self.units(self.conv_in(x))))


class STFTEncoder1d(FrameNetwork1d):
    """Audio -> STFT features -> frame-rate conv network -> latents.

    Features per frame, for each channel and each of the ``n_fft // 2 + 1`` bins of ``X = STFT(x)``:
    ``log(|X| + 1e-5)``, ``Re X / (|X| + 1e-5)`` and ``Im X / (|X| + 1e-5)`` (the log magnitude and the cosine
    and sine of the phase). ``n_fft = 4 * hop``, Hann window, ``center=True`` with zero padding, the last frame
    dropped (see the module docstring). ``norm`` and ``activation`` as in :class:`NormActivation1d`.

    Shapes: ``[B, in_channels, S] -> [B, latent_channels, S // hop]`` (``S`` a multiple of ``hop``).
    """

    def __init__(
        self,
        in_channels: int,
        hop: int,
        latent_channels: int,
        width: int = 512,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
    ):
        bins = stft_sizes(hop)[1]
        super().__init__(
            3 * bins * in_channels, width, latent_channels, dilations, norm, activation, out_kernel=3
        )
        self.hop, self.n_fft = int(hop), 4 * int(hop)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Audio ``[B, C, S]`` -> float32 features ``[B, 3 * C * bins, S // hop]`` (per channel: log magnitude,
        cosine, sine; each over the bins)."""
        batch, channels, samples = x.shape
        window = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(
            x.float().reshape(batch * channels, samples),
            self.n_fft,
            hop_length=self.hop,
            window=window,
            center=True,
            pad_mode="constant",
            normalized=True,
            return_complex=True,
        )[..., : samples // self.hop]  # [B * C, bins, T]: drop the frame centred past the end
        magnitude = spec.abs() + STFT_EPS
        feats = torch.stack([magnitude.log(), spec.real / magnitude, spec.imag / magnitude], dim=1)
        return feats.reshape(batch, -1, feats.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.features(x).to(self.conv_in.weight.dtype))


#: How :class:`STFTDecoder1d` predicts phase: a cosine/sine pair per frame, the advance per hop, or not at all
#: (magnitudes only; Griffin-Lim rebuilds a phase when decoding).
STFT_PHASES = ("pair", "advance", "griffin-lim")
#: Griffin-Lim iterations and momentum of ``phase="griffin-lim"`` decoding (72 of 72 test notes keep their pitch
#: from true magnitudes at 16 iterations; 32 costs about 60 ms per second of audio on one CPU thread).
GRIFFIN_LIM_ITERATIONS = 32
GRIFFIN_LIM_MOMENTUM = 0.99


class STFTDecoder1d(FrameNetwork1d):
    """Latents -> frame-rate conv network -> complex spectrum -> ``torch.istft`` -> audio.

    Per frame, channel and bin the network predicts a log magnitude ``m`` and a phase pair ``(a, b)``; the
    spectrum is ``min(exp(m), 100) * (a + i b) / sqrt(a^2 + b^2 + 1e-5^2)``. The pair (rather than an angle
    ``p`` with ``cos p + i sin p``, Vocos) mirrors the encoder's cosine/sine features and has no 2 pi cut:
    phases either side of the cut are neighbours in the plane of ``(a, b)`` but far apart as angles (only the
    pair was tried here). ``istft`` with the same window, ``center=True`` and ``length=T * hop`` (the frames
    cover ``(T + 1) * hop`` samples, see the module docstring).

    ``phase="advance"`` predicts instead, per frame and bin, a log magnitude ``m`` and a deviation ``d``: the
    bin's phase advances by ``2 pi k hop / n_fft + pi tanh(d)`` per hop (its centre frequency plus an offset,
    i.e. its instantaneous frequency, as a phase vocoder does) and the phase is the running sum from 0. The
    codes then need not carry absolute phase, which they fail to learn for steady tones (the codebook
    collapses); the output keeps frequencies, not waveforms, so train it with spectral losses only.

    ``phase="griffin-lim"`` predicts the log magnitude ``m`` only. ``forward(z, reference)`` gives the magnitudes
    the phase of ``reference`` (the audio being reconstructed, ``[B, C, T * hop]``, framed as the encoder frames
    it; bins where it is silent take phase 0): the training path. ``forward(z)`` without it runs
    :data:`GRIFFIN_LIM_ITERATIONS` of Griffin-Lim from phase 0 (deterministic): the decoding path.

    Shapes: ``[B, latent_channels, T] -> [B, out_channels, T * hop]``.
    """

    def __init__(
        self,
        out_channels: int,
        hop: int,
        latent_channels: int,
        width: int = 512,
        dilations: Sequence[int] = (1, 3, 9),
        norm: str = "channel",
        activation: str = "elu",
        phase: str = "pair",
    ):
        if phase not in STFT_PHASES:
            raise ValueError(f"phase must be one of {', '.join(STFT_PHASES)}, got {phase!r}")
        n_fft, bins = stft_sizes(hop)
        outputs = {"pair": 3, "advance": 2, "griffin-lim": 1}[phase] * bins * out_channels
        super().__init__(latent_channels, width, outputs, dilations, norm, activation)
        self.hop, self.n_fft, self.bins, self.out_channels = int(hop), n_fft, bins, int(out_channels)
        self.phase = phase
        # Each bin's centre-frequency advance per hop, reduced mod 2 pi exactly in integers.
        centre = (torch.arange(bins) * self.hop % n_fft).float() * (2 * math.pi / n_fft)
        self.register_buffer("centre_advance", centre[:, None], persistent=False)

    def magnitude(self, z: torch.Tensor) -> torch.Tensor:
        """``phase="griffin-lim"``: latents ``[B, latent_channels, T]`` -> float32 magnitudes ``[B * C, bins, T]``."""
        out = super().forward(z).float().reshape(z.shape[0] * self.out_channels, self.bins, z.shape[-1])
        return out.exp().clamp(max=MAX_MAGNITUDE)

    def reference_phase(self, reference: torch.Tensor, frames: int) -> torch.Tensor:
        """Unit phasors ``[B * C, bins, frames]`` of ``reference`` audio ``[B, C, S]`` (frame ``t`` centred on
        sample ``t * hop``, as :class:`STFTEncoder1d` frames it); 1 where a bin is silent."""
        spec = torch.stft(
            reference.float().reshape(-1, reference.shape[-1]),
            self.n_fft,
            hop_length=self.hop,
            window=torch.hann_window(self.n_fft, device=reference.device),
            center=True,
            pad_mode="constant",
            normalized=True,
            return_complex=True,
        )[..., :frames]
        size = spec.abs()
        return torch.where(size > STFT_EPS, spec / size.clamp_min(STFT_EPS), torch.ones_like(spec))

    def spectrum(self, z: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``[B, latent_channels, T]`` -> complex64 spectrum ``[B * C, bins, T]``.

        ``phase="griffin-lim"`` needs ``reference`` (audio ``[B, C, >= T * hop]``) for its phase; the other
        modes ignore it."""
        if self.phase == "griffin-lim":
            if reference is None:
                raise ValueError("phase='griffin-lim' has no spectrum without a reference: call forward(z)")
            return self.magnitude(z) * self.reference_phase(reference, z.shape[-1])
        parts = 3 if self.phase == "pair" else 2
        out = (
            super().forward(z).float().reshape(z.shape[0] * self.out_channels, parts, self.bins, z.shape[-1])
        )
        magnitude = out[:, 0].exp().clamp(max=MAX_MAGNITUDE)
        if self.phase == "advance":
            advance = self.centre_advance + math.pi * torch.tanh(out[:, 1])
            return torch.polar(magnitude, torch.cumsum(advance, dim=-1) - advance[..., :1])
        a, b = out[:, 1], out[:, 2]
        scale = magnitude / (a.square() + b.square() + STFT_EPS**2).sqrt()
        return torch.complex(a * scale, b * scale)

    def forward(self, z: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``[B, latent_channels, T]`` -> audio ``[B, C, T * hop]``; ``reference``: see the class
        docstring (``phase="griffin-lim"`` only; ignored by the other modes)."""
        frames = z.shape[-1]
        window = torch.hann_window(self.n_fft, device=z.device)
        if self.phase == "griffin-lim" and reference is None:
            # torchaudio's Griffin-Lim re-frames T * hop samples into T + 1 frames: the last (centred on the end,
            # dropped by the encoder) repeats frame T - 1. Its STFT pads by reflection, which needs more than
            # n_fft / 2 = 2 hops of signal: clips under 3 frames get silent frames, cropped afterwards. Its STFT
            # is unnormalised: magnitudes times sqrt(n_fft).
            magnitude = self.magnitude(z)
            silent = magnitude.new_zeros(*magnitude.shape[:-1], max(0, 3 - frames))
            magnitude = torch.cat([magnitude, magnitude[..., -1:], silent], dim=-1) * self.n_fft**0.5
            audio = torchaudio.functional.griffinlim(
                magnitude,
                window,
                self.n_fft,
                self.hop,
                self.n_fft,
                power=1.0,
                n_iter=GRIFFIN_LIM_ITERATIONS,
                momentum=GRIFFIN_LIM_MOMENTUM,
                length=(magnitude.shape[-1] - 1) * self.hop,
                rand_init=False,
            )[..., : frames * self.hop]
        else:
            audio = torch.istft(
                self.spectrum(z, reference),
                self.n_fft,
                hop_length=self.hop,
                window=window,
                center=True,
                normalized=True,
                length=frames * self.hop,
            )
        return audio.reshape(z.shape[0], self.out_channels, frames * self.hop).to(z.dtype)
