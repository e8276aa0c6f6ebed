"""AudioTokenizer: waveforms ``[B, C, S]`` <-> codes ``[B, K, T]`` (K residual levels, T frames)."""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.base import QuantizedTokenizerMixin, TokenizerOutput, check_media
from vqgen.tokenizers.layers import (
    HarmonicAnalysis1d,
    HarmonicDecoder1d,
    HarmonicSynthesis1d,
    PhaseCoder,
    PitchCoder,
    STFTDecoder1d,
    STFTEncoder1d,
    StridedConvDecoder1d,
    StridedConvEncoder1d,
)
from vqgen.tokenizers.layers.parametric import FEATURES as PARAMETRIC_FEATURES
from vqgen.tokenizers.layers.parametric import HARMONICS as PARAMETRIC_HARMONICS
from vqgen.tokenizers.layers.parametric import PHASE_HARMONICS_PER_LEVEL
from vqgen.tokenizers.quantizers import QuantizerOutput, build_quantizer

DEFAULT_AUDIO_QUANTIZER = {
    "type": "rvq",
    "num_quantizers": 4,
    "codebook_size": 256,
    "quantizer_dropout": 0.5,
}

#: ``frontend`` values: the strided time-domain codec, or STFT features and an inverse STFT (Vocos style).
AUDIO_FRONTENDS = (
    "waveform",
    "stft",
    "stft-advance",
    "stft-magnitude",
    "stft-harmonic",
    "parametric-harmonic",
)
#: Frontends with a pitch level (level 0: the tracked fundamental).
PITCH_FRONTENDS = ("stft-harmonic", "parametric-harmonic")
#: The STFT decoder's phase mode for each STFT frontend.
STFT_FRONTEND_PHASES = {"stft": "pair", "stft-advance": "advance", "stft-magnitude": "griffin-lim"}


def check_pitch_options(
    frontend: str,
    in_channels: int,
    latent_channels: int,
    sample_rate: int,
    pitch_range: tuple[float, float],
    phase_levels: int,
) -> None:
    """Refuse, in one line each, the pitch frontends' settings that do not fit: a pitch range outside the
    audible band, a parametric latent width other than its measured features, phase levels on a codec that
    does not measure harmonics (or on more than one channel), or more phase levels than harmonics."""
    if frontend in PITCH_FRONTENDS and not 0 < pitch_range[0] < pitch_range[1] <= sample_rate / 2:
        raise ConfigError(f"pitch_range must be 0 < fmin < fmax <= sample_rate / 2, got {pitch_range}")
    if frontend == "parametric-harmonic" and latent_channels != in_channels * PARAMETRIC_FEATURES:
        raise ConfigError(
            f"frontend 'parametric-harmonic' codes {PARAMETRIC_FEATURES} features a channel: latent_channels "
            f"must be {in_channels * PARAMETRIC_FEATURES} for {in_channels} channel(s), got {latent_channels}"
        )
    if phase_levels and (frontend != "parametric-harmonic" or in_channels != 1):
        raise ConfigError(
            f"phase_levels needs frontend 'parametric-harmonic' and one channel, got {frontend!r} with "
            f"{in_channels} channel(s)"
        )
    if not 0 <= phase_levels * PHASE_HARMONICS_PER_LEVEL <= PARAMETRIC_HARMONICS:
        raise ConfigError(
            f"phase_levels must be in [0, {PARAMETRIC_HARMONICS // PHASE_HARMONICS_PER_LEVEL}] "
            f"({PHASE_HARMONICS_PER_LEVEL} harmonics a level), got {phase_levels}"
        )


class AudioTokenizer(QuantizedTokenizerMixin, ModelMixin, ConfigMixin):
    """Convolutional residual-VQ codec for waveforms (SoundStream / EnCodec layout).

    The encoder downsamples by ``prod(strides)`` samples per frame (the hop): ``strides=(2, 4, 5, 8)`` at
    16 kHz gives 320 samples per frame, 50 frames per second. With the default residual quantizer and
    quantizer dropout, one model encodes and decodes at 1..K levels, i.e. at K bitrates.

    Codes are always ``[B, K, T]``: a plain ``"vq"`` or ``"fsq"`` quantizer gives ``K = 1``.

    A length ``S`` that is not a multiple of the hop is zero-padded on the right to ``T = ceil(S / hop)``
    frames; :meth:`decode` returns ``T * hop`` samples, :meth:`forward` crops back to ``S``.

    ``frontend="stft"`` swaps the strided encoder and decoder for a Vocos-style pair whose convolutions all run
    at the frame rate (:mod:`vqgen.tokenizers.layers.stft1d`): STFT features (``n_fft = 4 * hop``, Hann window)
    in, a predicted complex spectrum and ``torch.istft`` out. ``strides`` then only fix the hop, the width is
    ``max_channels`` throughout and ``base_channels`` is unused; it is not causal. A training step costs a
    tenth or less of the strided codec's, and it has no upsampling artefact (the strided codec, trained
    briefly, peaks at multiples of 200 Hz whatever the input). ``"stft-advance"`` predicts each bin's phase
    advance per hop instead of its phase (see :class:`~vqgen.tokenizers.layers.STFTDecoder1d`): frequencies,
    not waveforms, for spectral losses only (``--reconstruction-weight 0``). ``"stft-magnitude"`` predicts
    magnitudes only: :meth:`forward` (training) gives them the input's phase, :meth:`decode` rebuilds one with
    Griffin-Lim, so its reconstructions keep frequencies, not waveforms, and evaluation must go through
    ``decode(encode(x))`` (as ``vqgen.evaluation.audio_tokenizer`` does), never ``forward(x)``.

    ``frontend="stft-harmonic"`` is the codec for pitched notes (:mod:`vqgen.tokenizers.layers.harmonic`): code
    level 0 is the input's fundamental per frame (tracked, not learned: 0 unvoiced, then log-spaced steps over
    ``pitch_range``), the learned residual levels follow it, and the decoder synthesises harmonics of that f0
    plus filtered noise. ``num_levels`` then counts the pitch level: ``num_quantizers + 1``; decoding with one
    level gives the bare pitch. ``frontend="parametric-harmonic"`` has the same pitch level, but no trained
    encoder or decoder (:mod:`vqgen.tokenizers.layers.parametric`): the residual levels code the measured log
    amplitude of each harmonic and the noise floor per frame (``latent_channels`` must be
    ``in_channels * FEATURES``, 128 a channel), and are fitted by k-means
    (:func:`vqgen.training.codebooks.fit_codebooks`), not by gradient: the notes' timbre survives it where
    the learned decoder lost it (``benchmarks/RESULTS.md``, "A parametric harmonic codec").

    Args:
        in_channels: audio channels (1 mono, 2 stereo).
        sample_rate: samples per second the model is trained for (informational: frame rate, bitrate).
        strides: downsampling stride per encoder level.
        base_channels: width of the first encoder level (doubling per level, capped at ``max_channels``).
        max_channels: cap on the width.
        latent_channels: channels of the encoder output fed to the quantizer.
        dilations: dilations of the residual units in every level.
        causal: left-only padding everywhere, so decoded samples before frame boundary ``t * hop`` depend
            only on input before it (streaming).
        norm: ``"channel"`` (LayerNorm over channels at each position, the first codecs' choice),
            ``"weight"`` (weight norm on every convolution, no activation norm: SEANet, DAC) or ``"none"``.
        activation: ``"elu"`` (SEANet) or ``"snake"`` (periodic, per-channel learned frequency: DAC).
        frontend: ``"waveform"`` (strided convolutions on samples, the default, as every tokenizer saved
            before the option), ``"stft"``, ``"stft-advance"``, ``"stft-magnitude"`` or ``"stft-harmonic"``
            (see above).
        pitch_range: ``(fmin, fmax)`` in Hz of the pitch level (``"stft-harmonic"`` only).
        phase_levels: ``"parametric-harmonic"``, mono: code levels after the magnitude levels that hold the
            phase of the first harmonics at every frame (3 a level, :class:`~vqgen.tokenizers.layers.PhaseCoder`),
            so that decoding with them keeps the waveform, not only the spectrum. Codes are then ``[pitch,
            magnitude levels, phase levels]``: a prefix of them is still a lower bitrate. 0 (default): none.
        quantizer_config: ``{"type": "rvq" | "vq" | "fsq", ...}`` (see ``build_quantizer``).
    """

    medium = "audio"  # its home in vqgen.media
    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        sample_rate: int = 16000,
        strides: tuple[int, ...] = (2, 4, 5, 8),
        base_channels: int = 32,
        max_channels: int = 512,
        latent_channels: int = 64,
        dilations: tuple[int, ...] = (1, 3, 9),
        causal: bool = False,
        quantizer_config: dict | None = None,
        norm: str = "channel",
        activation: str = "elu",
        frontend: str = "waveform",
        pitch_range: tuple[float, float] = (30.0, 2000.0),
        phase_levels: int = 0,
    ):
        super().__init__()
        if frontend not in AUDIO_FRONTENDS:
            raise ConfigError(f"frontend must be one of {', '.join(AUDIO_FRONTENDS)}, got {frontend!r}")
        if frontend != "waveform" and causal:
            raise ConfigError("causal=True needs frontend='waveform': the STFT frontend sees the future")
        if in_channels < 1 or base_channels < 1 or latent_channels < 1 or max_channels < 1:
            raise ConfigError("in_channels, base_channels, max_channels and latent_channels must be positive")
        if sample_rate < 1:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        if not strides or any(int(s) < 1 for s in strides):
            raise ConfigError(f"strides must be a non-empty list of positive ints, got {strides!r}")
        strides = tuple(int(s) for s in strides)
        dilations = tuple(int(d) for d in dilations)
        quantizer_config = dict(quantizer_config or DEFAULT_AUDIO_QUANTIZER)
        pitch_range = tuple(float(f) for f in pitch_range)
        phase_levels = int(phase_levels)
        check_pitch_options(frontend, in_channels, latent_channels, sample_rate, pitch_range, phase_levels)
        if frontend == "parametric-harmonic":
            hop = math.prod(strides)
            encoder_class, decoder_class = HarmonicAnalysis1d, HarmonicSynthesis1d
            args, common = (), dict(hop=hop, sample_rate=sample_rate, channels=in_channels)
            common_decoder = dict(hop=hop, sample_rate=sample_rate, out_channels=in_channels)
        elif frontend == "waveform":
            args = (in_channels, base_channels, strides, latent_channels)
            common = dict(
                causal=causal,
                max_channels=max_channels,
                dilations=dilations,
                norm=norm,
                activation=activation,
            )
            encoder_class, decoder_class, common_decoder = StridedConvEncoder1d, StridedConvDecoder1d, common
        else:
            args = (in_channels, math.prod(strides), latent_channels)
            common = dict(width=max_channels, dilations=dilations, norm=norm, activation=activation)
            encoder_class = STFTEncoder1d
            if frontend == "stft-harmonic":
                fmin, fmax = pitch_range
                decoder_class = HarmonicDecoder1d
                common_decoder = dict(common, sample_rate=sample_rate, fmin=fmin, fmax=fmax)
            else:
                decoder_class = STFTDecoder1d
                common_decoder = dict(common, phase=STFT_FRONTEND_PHASES[frontend])
        # built in this order (random draws: encoder, codebook, decoder) as every saved codec was
        self.encoder = encoder_class(*args, **common)
        self.quantizer = build_quantizer(latent_channels, quantizer_config)
        self.decoder = decoder_class(*args, **common_decoder)
        self.pitch = None
        if frontend in PITCH_FRONTENDS:
            self.pitch = PitchCoder(
                sample_rate, math.prod(strides), self.quantizer.codebook_size, *pitch_range
            )
        self.phase = None
        if phase_levels:
            self.phase = PhaseCoder(math.prod(strides), sample_rate, self.quantizer.codebook_size)

    # -- properties --------------------------------------------------------------------------------------

    @property
    def downsample_factor(self) -> int:
        """Samples per frame (the hop): ``prod(strides)``."""
        return math.prod(self.config.strides)

    @property
    def frame_rate(self) -> float:
        """Code frames per second: ``sample_rate / downsample_factor``."""
        return self.config.sample_rate / self.downsample_factor

    def bitrate(self, levels: int | None = None) -> float:
        """Bits per second at ``levels`` levels (all by default): ``frame_rate * levels * log2(codebook_size)``."""
        levels = self._levels(levels)
        return self.frame_rate * levels * math.log2(self.codebook_size)

    def code_frames(self, num_samples: int) -> int:
        """Frames for ``num_samples`` samples: ``ceil(num_samples / hop)`` (the tail is zero-padded)."""
        return -(-int(num_samples) // self.downsample_factor)

    def code_grid(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        """Shape of the codes for one clip of ``input_shape = (C, S)``: ``(K, ceil(S / hop))``."""
        if len(input_shape) != 2:
            raise ShapeError(f"input_shape must be (C, S), got {tuple(input_shape)}")
        channels, samples = input_shape
        if channels != self.config.in_channels:
            raise ShapeError(
                f"audio has {channels} channels, the tokenizer expects {self.config.in_channels}"
            )
        if samples < 1:
            raise ShapeError(f"audio must hold at least one sample, got {samples}")
        return (self.num_levels, self.code_frames(samples))

    def media_shape(self, code_grid: tuple[int, ...]) -> tuple[int, int]:
        """The inverse of :meth:`code_grid`: ``(K, T)`` -> audio shape ``(C, T * hop)`` (the level axis is skipped)."""
        try:
            grid = tuple(int(g) for g in code_grid)
        except (TypeError, ValueError):
            grid = ()
        if len(grid) != 2 or min(grid) < 1:
            raise ShapeError(f"code grid must be (K, T) of positive ints, got {code_grid!r}")
        return (int(self.config.in_channels), grid[1] * self.downsample_factor)

    # -- encode / decode ---------------------------------------------------------------------------------

    def _levels(self, levels: int | None) -> int:
        levels = self.num_levels if levels is None else int(levels)
        if not 1 <= levels <= self.num_levels:
            raise ConfigError(f"num_levels must be in [1, {self.num_levels}], got {levels}")
        return levels

    def _pad(self, audio: torch.Tensor) -> torch.Tensor:
        """Check ``audio [B, C, S]`` and zero-pad it on the right to a multiple of the hop."""
        check_media(audio, 3, self.config.in_channels, "audio")
        self.code_grid(tuple(audio.shape[1:]))
        extra = (-audio.shape[-1]) % self.downsample_factor
        return F.pad(audio, (0, extra)) if extra else audio

    @property
    def num_levels(self) -> int:
        """Code levels per frame: the quantizer's (1 for plain VQ and FSQ), plus the pitch level of the pitch
        frontends and the ``phase_levels``."""
        pitch = 1 if self.pitch is not None else 0
        return self._learned_levels + pitch + int(self.config.phase_levels)

    @property
    def _learned_levels(self) -> int:
        return self.quantizer.num_quantizers if self._residual else 1

    def _quantize(self, audio: torch.Tensor, num_levels: int | None = None) -> QuantizerOutput:
        audio = self._pad(audio)
        levels = self._levels(num_levels)
        if self.pitch is not None:
            return self._quantize_with_pitch(audio, levels)
        latents = self.encoder(audio)
        if self._residual:
            return self.quantizer(latents, num_levels=levels)
        out = self.quantizer(latents)
        out.codes = out.codes.unsqueeze(1)
        return out

    def _quantize_with_pitch(self, audio: torch.Tensor, levels: int) -> QuantizerOutput:
        """Pitch codes as level 0, then up to ``levels - 1`` learned levels (none: zero vectors), then the phase
        levels the rest asks for."""
        pitch_codes = self.pitch.encode(audio).unsqueeze(1)  # [B, 1, T]
        learned = min(levels - 1, self._learned_levels)
        if learned == 0 and not self.training:  # the pitch level alone: no encoder pass needed
            zero = audio.new_zeros(())
            vectors = audio.new_zeros(audio.shape[0], self.config.latent_channels, pitch_codes.shape[-1])
            return QuantizerOutput(vectors, pitch_codes, zero, zero, zero)
        latents = self._encode_with_pitch(audio, pitch_codes[:, 0])
        if self._residual:
            out = self.quantizer(latents, num_levels=max(1, learned))
        else:
            out = self.quantizer(latents)
            out.codes = out.codes.unsqueeze(1)
        if learned == 0:  # training at one level: the quantizer still runs (its losses), its vectors unused
            out.quantized = torch.zeros_like(out.quantized)
        out.codes = torch.cat(
            [pitch_codes, out.codes[:, :learned], self._phase_codes(audio, pitch_codes, levels)], 1
        )
        return out

    def _phase_codes(self, audio: torch.Tensor, pitch_codes: torch.Tensor, levels: int) -> torch.Tensor:
        """The phase levels of ``levels`` in all: ``[B, levels - 1 - learned, T]`` (none: ``[B, 0, T]``)."""
        phase = levels - 1 - self._learned_levels
        if phase <= 0:
            return pitch_codes[:, :0]
        return self.phase.encode(audio, self.pitch.decode(pitch_codes[:, 0]), phase)

    def _encode_with_pitch(self, audio: torch.Tensor, pitch_codes: torch.Tensor) -> torch.Tensor:
        """The encoder on padded ``audio [B, C, T * hop]``; the parametric analysis also takes the coded pitch
        ``[B, T]`` (it measures the harmonics the decoder will play)."""
        if self.config.frontend == "parametric-harmonic":
            return self.encoder(audio, self.pitch.decode(pitch_codes))
        return self.encoder(audio)

    @torch.no_grad()
    def latents(self, audio: torch.Tensor) -> torch.Tensor:
        """What the quantizer sees: audio ``[B, C, S]`` -> the encoder's output ``[B, latent_channels, T]``
        (``T = ceil(S / hop)``, the input zero-padded as :meth:`encode` pads it)."""
        audio = self._pad(audio)
        if self.pitch is not None:
            return self._encode_with_pitch(audio, self.pitch.encode(audio))
        return self.encoder(audio)

    def _decode_vectors(self, vectors: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The decoder on quantized ``vectors [B, D, T]``; ``codes [B, K, T]`` give the pitch level and any
        phase levels."""
        vectors = self._in_decoder_dtype(vectors)
        if self.config.frontend == "parametric-harmonic":  # the analysis centred its features: uncentre
            vectors = vectors + self.encoder.feature_mean[:, None].to(vectors.dtype)
            phase_codes = codes[:, 1 + self._learned_levels :]
            phases = self.phase.decode(phase_codes) if phase_codes.shape[1] else None
            return self.decoder(vectors, self.pitch.decode(codes[:, 0]), phases)
        if self.pitch is not None:
            return self.decoder(vectors, self.pitch.decode(codes[:, 0]))
        return self.decoder(vectors)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, num_levels: int | None = None) -> torch.Tensor:
        """Audio ``[B, C, S]`` in [-1, 1] -> long codes ``[B, num_levels, ceil(S / hop)]``.

        ``S`` need not be a multiple of the hop: the input is zero-padded on the right.
        """
        return self._quantize(audio, num_levels).codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Long codes ``[B, K', T]`` (any ``1 <= K' <= num_levels``) -> audio ``[B, C, T * hop]``."""
        if not isinstance(codes, torch.Tensor) or codes.dim() != 3:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ShapeError(f"codes must be a long tensor [B, K, T], got {shape}")
        if not 1 <= codes.shape[1] <= self.num_levels:
            raise ShapeError(
                f"codes have {codes.shape[1]} levels, the tokenizer decodes 1 to {self.num_levels}"
            )
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
            raise ShapeError(f"codes must be an integer tensor (long), got {codes.dtype}")
        codes = codes.long()
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ShapeError(
                f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]"
            )
        learned = codes[:, 1 : 1 + self._learned_levels] if self.pitch is not None else codes
        if learned.shape[1] == 0:  # the pitch level alone
            dim = self.config.latent_channels
            vectors = torch.zeros(codes.shape[0], dim, codes.shape[-1], device=codes.device)
        else:
            vectors = self.quantizer.codes_to_vectors(learned if self._residual else learned[:, 0])
        return self._decode_vectors(vectors, codes)

    def forward(self, audio: torch.Tensor, num_levels: int | None = None) -> TokenizerOutput:
        """Encode, quantize and decode ``audio [B, C, S]``; the reconstruction is cropped back to ``S``.

        ``losses`` holds ``quantizer`` (commitment/codebook), ``perplexity`` and ``usage``.
        """
        q = self._quantize(audio, num_levels)
        if self.config.frontend == "stft-magnitude":
            # predicted magnitudes with the input's phase: the loss sees magnitude error only (see stft1d)
            reconstruction = self.decoder(q.quantized, reference=self._pad(audio))
        else:
            reconstruction = self._decode_vectors(q.quantized, q.codes)
        reconstruction = reconstruction[..., : audio.shape[-1]]
        losses = {"quantizer": q.loss, "perplexity": q.perplexity, "usage": q.usage}
        return TokenizerOutput(reconstruction=reconstruction, codes=q.codes, losses=losses)
