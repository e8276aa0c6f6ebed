"""Audio: files (soundfile: WAV, FLAC, Ogg Vorbis / Opus), channel mixing and resampling, previews, data sets,
jitter, the codec's defaults (residual levels, quantizer dropout), metrics and the flags only audio has.

Media tensors are float ``[B, C, S]`` in [-1, 1]; arrays read from files are float32 ``[C, S]``. The sample rate
belongs to the tokenizer (``tokenizer.config.sample_rate``).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch

from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.io import _one_line, atomic_path
from vqgen.media.base import Flag, Medium, int_list, positive_float, positive_int, register_medium
from vqgen.tokenizers.audio import AUDIO_FRONTENDS

__all__ = [
    "AUDIO",
    "AUDIO_EXTENSIONS",
    "AUDIO_FORMATS",
    "DEMO_AUDIO_DATASETS",
    "AudioMedium",
    "check_resampling",
    "jitter_audio",
    "load_audio",
    "mix_channels",
    "resample_audio",
    "save_audio",
    "save_audio_sequence",
    "spectrogram",
    "unreadable_audio_hint",
]

# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

#: File suffix (lower case) -> (soundfile format, default subtype), for writing.
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
}


def mix_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Map ``[C, S]`` to ``[channels, S]``: average to mono, duplicate mono, or keep a matching count.

    Any other combination (say 6 channels to 2) raises ``ShapeError``: there is no single right downmix.
    """
    found = audio.shape[0]
    if found == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if found == 1:
        return np.repeat(audio, channels, axis=0)
    raise ShapeError(
        f"cannot mix {found} audio channels to {channels}; expected mono, or {channels} channels"
    )


def unreadable_audio_hint(path: str | os.PathLike) -> str:
    """``""``, or why libsndfile fails on a file it is known not to decode everywhere: Ogg/Opus needs libsndfile
    1.0.29 or later (the soundfile wheels bundle 1.2), so an older system library refuses it."""
    import soundfile

    try:
        with open(path, "rb") as file:
            head = file.read(64)
    except OSError:
        return ""
    if head.startswith(b"OggS") and b"OpusHead" in head:
        version = getattr(soundfile, "__libsndfile_version__", "?")
        return (
            f"; it is Ogg/Opus, which this libsndfile ({version}) cannot decode: convert it to WAV, FLAC or "
            f"Ogg Vorbis"
        )
    return ""


def save_audio(
    audio: np.ndarray | torch.Tensor, path: str | os.PathLike, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write float audio ``[C, S]`` (or ``[S]`` mono) in [-1, 1] atomically; format from the suffix.

    Values are clamped to [-1, 1] (NaN becomes 0). ``subtype`` is a soundfile subtype (default 16-bit PCM
    for WAV and FLAC, Vorbis for OGG).
    """
    import soundfile

    target = Path(path)
    spec = AUDIO_FORMATS.get(target.suffix.lower())
    if spec is None:
        raise ConfigError(
            f"cannot save audio '{target}': unknown suffix '{target.suffix}', expected one of {sorted(AUDIO_FORMATS)}"
        )
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ShapeError(f"cannot save audio '{target}': expected [C, S] or [S], got {list(array.shape)}")
    if int(sample_rate) < 1:
        raise ConfigError(f"cannot save audio '{target}': sample_rate must be positive, got {sample_rate}")
    array = np.clip(np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    audio_format, default_subtype = spec
    with atomic_path(target) as temporary:
        try:
            soundfile.write(
                temporary, array.T, int(sample_rate), subtype=subtype or default_subtype, format=audio_format
            )
        except (RuntimeError, ValueError, TypeError) as error:  # soundfile.LibsndfileError is a RuntimeError
            raise DataError(f"cannot write audio '{target}': {_one_line(error)}") from error
    return target


#: Largest ``rate / gcd(rate, target)`` either side may have: torchaudio's resampling kernel grows with the
#: product of the reduced rates, so 44,101 Hz -> 16 kHz would take seconds per clip and a made-up rate in a
#: corrupt header gigabytes. Every common pair (8-192 kHz, 11,025 Hz family included) stays far below it.
MAX_REDUCED_RATE = 4000


def check_resampling(rate: int, target: int, what: str) -> None:
    """Raise DataError (naming ``what``) unless ``rate`` -> ``target`` is a resampling torchaudio does cheaply."""
    if rate < 1:
        raise DataError(f"{what} has sample rate {rate} Hz; expected a positive rate")
    common = math.gcd(int(rate), int(target))
    if max(rate // common, target // common) > MAX_REDUCED_RATE:
        raise DataError(
            f"{what} has an unusual sample rate of {rate} Hz that cannot be resampled to {target} Hz "
            f"efficiently; convert it to a standard rate (e.g. 16000, 22050, 44100 or 48000 Hz) first"
        )


def resample_audio(audio: torch.Tensor, rate: int, target: int, what: str = "audio") -> torch.Tensor:
    """``torchaudio.functional.resample`` of float ``[..., S]`` from ``rate`` to ``target`` Hz, clamped to
    [-1, 1]; refuses rates it cannot resample cheaply (:func:`check_resampling`), passes empty audio through."""
    if int(rate) == int(target):
        return audio
    check_resampling(int(rate), int(target), what)
    if audio.shape[-1] == 0:
        return audio
    import torchaudio

    return torchaudio.functional.resample(audio, int(rate), int(target)).clamp(-1.0, 1.0)


def load_audio(
    path: str | os.PathLike, sample_rate: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``[C, S]`` in [-1, 1] and its sample rate.

    ``channels`` mixes (see :func:`mix_channels`); ``sample_rate`` resamples (:func:`resample_audio`) and is
    then the rate returned. Missing or undecodable files, and files holding NaN or infinite samples, raise
    ``DataError``; float files are clamped to [-1, 1].
    """
    import soundfile

    source = Path(path)
    if not source.is_file():
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"audio file '{source}' {why}")
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as error:  # noqa: BLE001 - libsndfile raises several types for bad files
        hint = unreadable_audio_hint(source)
        raise DataError(f"cannot decode audio '{source}': {_one_line(error)}{hint}") from error
    array = np.ascontiguousarray(data.T)
    if not np.isfinite(array).all():
        raise DataError(f"audio file '{source}' holds NaN or infinite samples")
    array = np.clip(array, -1.0, 1.0)
    if channels is not None:
        array = mix_channels(array, channels)
    if sample_rate is not None and int(sample_rate) != rate:
        resampled = resample_audio(torch.from_numpy(array), rate, int(sample_rate), f"audio file '{source}'")
        array, rate = resampled.numpy(), int(sample_rate)
    return array.astype(np.float32, copy=False), int(rate)


# ---------------------------------------------------------------------------------------------------------
# Previews, spectrograms and augmentation
# ---------------------------------------------------------------------------------------------------------


def save_audio_sequence(clips, path: str | os.PathLike, sample_rate: int) -> None:
    """Float clips ``[C, S]`` -> one WAV (``path`` with suffix ``.wav``), 0.25 s of silence after each."""
    gap = torch.zeros(clips[0].shape[0], sample_rate // 4)
    pieces = [piece for clip in clips for piece in (clip.float().cpu(), gap)]
    save_audio(torch.cat(pieces, dim=-1), Path(path).with_suffix(".wav"), sample_rate)


def save_audio_pairs(originals, reconstructions, path: str | os.PathLike, sample_rate: int) -> None:
    """A WAV beside ``path``: each of the first 4 clips, then its reconstruction, with short silences between."""
    pairs = [clip for pair in zip(originals[:4], reconstructions[:4]) for clip in pair]
    save_audio_sequence(pairs, path, sample_rate)


def spectrogram(wave: torch.Tensor, top_db: float = 80.0) -> np.ndarray:
    """Float ``[S]`` -> log-magnitude STFT in dB ``[n_fft / 2 + 1, frames]`` (Hann window, hop ``n_fft / 4``,
    ``n_fft`` a power of two from 16 to 512 that fits about 8 windows in the clip), floored ``top_db`` below
    its loudest bin."""
    n_fft = 2 ** min(9, max(4, int(math.log2(max(1, wave.shape[-1] // 8)))))
    magnitude = torch.stft(
        wave.float(),
        n_fft,
        hop_length=n_fft // 4,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).abs()
    decibels = 20 * torch.log10(magnitude.clamp_min(1e-10))
    return decibels.clamp_min(decibels.max() - top_db).numpy()


def jitter_audio(
    audio: torch.Tensor,
    generator: torch.Generator,
    speed: float = 0.1,
    shift: float = 0.1,
    gain_db: float = 6.0,
) -> torch.Tensor:
    """Random tape-speed change (factor 1 +- ``speed``, pitch and tempo together, about the clip's centre),
    time shift (+- ``shift`` of the clip, zero-filled) and gain (+- ``gain_db``, never past full scale) of
    ``audio [B, C, S]`` (the augmentation of ``--augment-copies`` for sound).

    Each item is read at positions ``factor * (t - S/2) + S/2 + offset`` with linear interpolation, so a shift
    by a fraction of a frame changes every code of the clip: the prior sees new code sequences of the same word.
    """
    batch, _, length = audio.shape
    factor = 1 + (torch.rand(batch, 1, generator=generator) * 2 - 1) * speed
    offset = (torch.rand(batch, 1, generator=generator) * 2 - 1) * shift * length
    gain = 10 ** ((torch.rand(batch, 1, 1, generator=generator) * 2 - 1) * gain_db / 20)
    centre = (length - 1) / 2
    position = factor * (torch.arange(length, dtype=torch.float64) - centre) + centre + offset.double()
    left = position.floor().long()
    weight = (position - left).to(audio.dtype).unsqueeze(1)  # [B, 1, S]

    def read(index: torch.Tensor) -> torch.Tensor:
        inside = ((index >= 0) & (index < length)).unsqueeze(1)
        values = audio.gather(2, index.clamp(0, length - 1).unsqueeze(1).expand(-1, audio.shape[1], -1))
        return values * inside

    warped = read(left) * (1 - weight) + read(left + 1) * weight
    peak = warped.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-8)
    return warped * torch.minimum(gain, 0.99 / peak)


# ---------------------------------------------------------------------------------------------------------
# The medium
# ---------------------------------------------------------------------------------------------------------

#: Files ``generate`` and ``reconstruct`` write; ``decompress`` writes lossless ones only (16-bit PCM).
AUDIO_OUTPUTS = (".wav", ".flac", ".ogg")
LOSSLESS_AUDIO_OUTPUTS = (".wav", ".flac")
#: Files audio folders are made of (``vqgen.data.audio``), read by libsndfile from their content: WAV (PCM
#: 8-32 bit, float), FLAC, Ogg Vorbis and Ogg Opus.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".opus")
#: Named audio datasets, each built once with ``vqgen data build NAME``.
DEMO_AUDIO_DATASETS: tuple[str, ...] = ("demo:spoken-digits", "demo:instrument-notes")

_SEGMENT = Flag(
    "--segment-seconds",
    "audio: seconds per clip (longer files are cropped, shorter ones zero-padded; default 1)",
    settings={"type": positive_float, "default": 1.0},
)


class AudioMedium(Medium):
    """Sound: WAV / FLAC / OGG files, ``AudioTokenizer`` (a residual-VQ codec), ``AudioPipeline``."""

    name = "audio"
    item_key = "audio"
    tokenizer_path = "vqgen.tokenizers.audio:AudioTokenizer"
    pipeline_path = "vqgen.pipelines.audio:AudioPipeline"
    output_suffixes = reconstruct_suffixes = AUDIO_OUTPUTS
    decompress_suffixes = LOSSLESS_AUDIO_OUTPUTS
    folder_suffixes = AUDIO_EXTENSIONS
    demo_datasets = DEMO_AUDIO_DATASETS
    directory_formats = ("wav", "flac", "ogg")
    # Residual audio codes read best level-interleaved (MusicGen's delay pattern).
    default_layout = "delay"
    # Residual levels: one model at many bitrates.
    # The codec measured best on recorded instrument notes (benchmarks/RESULTS.md, "A parametric harmonic codec"):
    # the pitch level plus 11 residual levels of 1,024 codes over the measured harmonic and noise magnitudes
    # (12 levels, 6 kbit/s at 50 frames/s), fitted by k-means, no network to train. stft_width is the width of
    # every layer of the learned STFT codecs; the waveform codec (frontend "waveform": base_channels, strides,
    # max_channels 512) is the spoken-digits default's.
    defaults = {
        "quantizer": "rvq",
        "num_quantizers": 11,
        "quantizer_dropout": 0.5,
        "base_channels": 32,
        "codebook_size": 1024,
        "frontend": "parametric-harmonic",
        "stft_width": 256,
    }
    #: Frontends whose decoder does not keep the input's phase: a sample-wise loss would only pull them to
    #: silence, so their default reconstruction weight is 0 (spectral losses only, as DAC).
    phase_free_frontends = ("stft-advance", "stft-magnitude", "stft-harmonic", "parametric-harmonic")
    exclusive_settings = ("norm", "activation", "frontend", "max_channels", "phase_levels")
    tokenizer_noun = "codec"
    init_from_media = ("audio",)
    dataset_options = ("sample_rate", "segment_seconds")
    flags = {
        "train-tokenizer": (
            Flag(
                "--strides",
                "audio: encoder downsampling per level; their product is the samples per code frame",
                settings={"type": int_list, "default": [2, 4, 5, 8]},
            ),
            Flag("--causal", "audio: causal convolutions (streaming)", settings={"action": "store_true"}),
            Flag(
                "--norm",
                "audio: LayerNorm over channels (default), weight norm on the convolutions (SEANet, DAC) or none",
                settings={"choices": ["channel", "weight", "none"], "default": None},
            ),
            Flag(
                "--activation",
                "audio: ELU (default) or Snake (DAC)",
                settings={"choices": ["elu", "snake"], "default": None},
            ),
            Flag(
                "--frontend",
                "audio: parametric-harmonic (default) codes the tracked pitch as level 0, then the measured "
                "harmonic amplitudes and noise floor by residual VQ fitted by k-means (no network: --max-steps, "
                "the rate, loss and --latent-channels flags do not apply); stft-harmonic: the same pitch level, "
                "learned levels and a learned harmonic-plus-noise decoder; waveform: strided convolutions on "
                "the samples (the spoken-digits codec); stft, stft-advance, stft-magnitude: STFT features in, "
                "a predicted phase, phase advance or magnitudes (Griffin-Lim) out (Vocos style, every "
                "convolution at the frame rate; not causal)",
                settings={
                    "choices": list(AUDIO_FRONTENDS),
                    "default": None,
                },
            ),
            Flag(
                "--max-channels",
                "audio: the widest convolution (waveform: the cap on the doubling widths, default 512; "
                "stft frontends: the width of every layer, default 256)",
                settings={"type": positive_int, "default": None},
            ),
            Flag(
                "--phase-levels",
                "audio, parametric-harmonic, mono: code levels after the --num-levels magnitude levels that hold "
                "the phase of the first harmonics (3 a level), so the waveform is kept, not only the spectrum "
                "(e.g. --num-levels 7 --phase-levels 4: 12 levels, 6 kbit/s; default 0)",
                settings={"type": int, "default": 0},
            ),
        ),
        "train-tokenizer data": (
            Flag(
                "--sample-rate",
                "audio: resample every file to this rate (Hz)",
                settings={"type": positive_int, "default": 16000},
            ),
            _SEGMENT,
        ),
        "evaluate-tokenizer data": (_SEGMENT,),
        "encode data": (_SEGMENT,),
        "encode": (
            Flag(
                "--jitter-speed",
                "audio: with --augment-copies, the largest tape-speed change of a copy (default 0.1, +-10%%; "
                "0 for notes conditioned on pitch: a speed change moves the pitch off its label)",
                option="speed",
                settings={"type": float, "default": None},
            ),
        ),
        "generate": (
            Flag("--prompt", "audio: a file the clips continue", option="prompt_audio"),
            Flag(
                "--seconds",
                "audio: seconds per clip (default and maximum: the prior's trained length)",
                option="audio_length_in_s",
                settings={"type": positive_float},
            ),
        ),
        "reconstruct": (
            Flag(
                "--levels",
                "audio: residual levels to keep (lower bitrate)",
                option="num_levels",
                settings={"type": positive_int, "default": None},
            ),
        ),
    }

    def load_dataset(
        self, spec, split="train", *, channels=None, strict=False, sample_rate=None, segment_seconds=None
    ):
        """``demo:spoken-digits`` or a folder of audio files (``vqgen.data.audio.load_audio_dataset``)."""
        from vqgen.data.audio import load_audio_dataset

        return load_audio_dataset(spec, split, sample_rate, channels, segment_seconds, strict=strict)

    def dataset_options_for(self, tokenizer) -> dict:
        return {"sample_rate": tokenizer.config.sample_rate}

    def dataset_options_for_pipeline(self, pipe, **given) -> dict:
        """At the pipeline's rate, the centre of each file cut (or zero-padded) to its clip length."""
        return {"sample_rate": pipe.sample_rate, "segment_seconds": pipe.max_samples / pipe.sample_rate}

    def augment(self, media, generator, **options):
        return jitter_audio(media, generator, **options)

    def write_samples(self, samples, output, nrow=None, file_format=None) -> str:
        """One file per sample: into a directory (``sample_00000.wav``, ...), or for several samples and a file
        path, beside it with an index suffix (``out.wav`` -> ``out_0.wav``, ``out_1.wav``, ...)."""
        audios, rate = samples.audios, samples.sample_rate
        width = max(5, len(str(len(audios) - 1))) if not output.suffix else len(str(len(audios) - 1))
        if output.suffix and len(audios) == 1:
            paths = [output]
        elif output.suffix:
            paths = [
                output.with_name(f"{output.stem}_{i:0{width}d}{output.suffix}") for i in range(len(audios))
            ]
        else:
            paths = [output / f"sample_{i:0{width}d}.{file_format}" for i in range(len(audios))]
        for clip, path in zip(audios, paths):
            save_audio(clip, path, rate)
        seconds = audios.shape[-1] / rate
        several = f"{output}/" if not output.suffix else f"{paths[0]} .. {paths[-1]}"
        where = paths[0] if len(paths) == 1 else several
        return f"wrote {len(paths)} audio clip{'s' if len(paths) > 1 else ''} ({seconds:.3g} s at {rate} Hz) to {where}"

    def write_item(self, media, path, rate=None) -> None:
        save_audio(media[0], path, rate)

    def rate_of(self, pipe) -> int:
        return pipe.sample_rate

    def thumbnail(self, media):
        """A spectrogram of the channel mean of a clip ``[C, S]``."""
        return spectrogram(media.float().mean(0)), {"origin": "lower", "aspect": "auto", "cmap": "magma"}

    def tokenizer_config(self, settings, channels: int) -> dict:
        from vqgen.media.settings import quantizer_config

        config = {
            "in_channels": channels,
            "sample_rate": settings.sample_rate,
            "strides": settings.strides,
            "base_channels": settings.base_channels or self.defaults["base_channels"],
            "latent_channels": settings.latent_channels,
            "causal": settings.causal,
            "quantizer_config": quantizer_config(self, settings),
        }
        frontend = settings.frontend or self.defaults["frontend"]
        if frontend == "parametric-harmonic":
            from vqgen.tokenizers.layers.parametric import FEATURES

            # its latents are the measured features: a fixed number a channel
            config["latent_channels"] = channels * FEATURES
        learned_stft = frontend.startswith("stft")
        width = settings.max_channels or (self.defaults["stft_width"] if learned_stft else None)
        # only when set: the tokenizer's own defaults apply otherwise
        options = (
            ("norm", settings.norm),
            ("activation", settings.activation),
            ("frontend", frontend),
            ("max_channels", width),
            ("phase_levels", settings.phase_levels),
        )
        config.update({k: v for k, v in options if v})
        return config

    def loss_defaults(self, tokenizer) -> dict:
        phase_free = tokenizer.config.frontend in self.phase_free_frontends
        return {"spectral_weight": 1.0, "reconstruction_weight": 0.0 if phase_free else 1.0}

    def complete_config(self, config: dict, settings) -> dict:
        config.setdefault("sample_rate", settings.sample_rate)
        return config

    def check_training_data(self, tokenizer, dataset) -> None:
        super().check_training_data(tokenizer, dataset)
        if tokenizer.config.sample_rate != dataset.sample_rate:
            raise ConfigError(
                f"the tokenizer (--tokenizer-config / --init-from) has sample_rate {tokenizer.config.sample_rate}, "
                f"the data is read at --sample-rate {dataset.sample_rate}: make them agree"
            )

    def reconstruction_preview(self, dataset):
        return functools.partial(save_audio_pairs, sample_rate=dataset.sample_rate)

    def sample_preview(self, media, path, tokenizer) -> None:
        save_audio_sequence(list(media), path, tokenizer.config.sample_rate)  # one WAV of all the clips

    def evaluate(self, tokenizer, dataset, batch_size=100, progress=True) -> dict:
        from vqgen.evaluation.audio_tokenizer import evaluate_audio_tokenizer

        return evaluate_audio_tokenizer(tokenizer, dataset, batch_size=batch_size, progress=progress)

    def print_evaluation(self, results: dict) -> None:
        from vqgen.evaluation.audio_tokenizer import print_audio_table

        print_audio_table(results)

    def read_file(self, path, tokenizer, num_levels=None):
        """An audio file at any rate and channel count -> (float ``[1, C, S]`` resampled and mixed to the
        tokenizer, the tokenizer's rate); ``num_levels`` applies to the encoding (:meth:`encode_options`)."""
        rate, hop = int(tokenizer.config.sample_rate), tokenizer.downsample_factor
        array, _ = load_audio(path, sample_rate=rate, channels=tokenizer.config.in_channels)
        if array.shape[-1] == 0:
            raise ShapeError(f"'{path}' holds no audio samples")
        if array.shape[-1] < hop:
            raise ShapeError(
                f"'{path}' lasts {array.shape[-1]} samples at {rate} Hz, shorter than one code frame ({hop} samples)"
            )
        return torch.from_numpy(array)[None], rate

    def encode_options(self, tokenizer, num_levels=None) -> dict:
        """``num_levels``: the first residual levels to keep (a lower bitrate); None keeps them all."""
        if num_levels is None:
            return {}
        if num_levels > tokenizer.num_levels:
            raise ConfigError(f"--levels {num_levels}: the tokenizer has {tokenizer.num_levels} levels")
        return {"num_levels": num_levels}

    def round_trip_text(self, reconstruction, x, tokenizer, codes) -> str:
        """Levels kept, bitrate, SI-SDR and mel distance of the round trip."""
        from vqgen.evaluation.audio import mel_distance, si_sdr

        rate, kept = int(tokenizer.config.sample_rate), codes.shape[1]
        return (
            f"{kept} of {tokenizer.num_levels} levels, {tokenizer.bitrate(kept) / 1000:.3g} kbit/s, "
            f"SI-SDR {float(si_sdr(reconstruction, x)[0]):.2f} dB, "
            f"mel distance {float(mel_distance(reconstruction, x, rate)[0]):.3f}"
        )

    def default_num_samples(self, output) -> int:
        return 1 if output.suffix else 4  # to one file path: one clip (more are written one file each)

    def call_options(self, pipe, prompt_audio=None, audio_length_in_s=None) -> dict:
        pipe.check_length(audio_length_in_s)
        return {"audio_length_in_s": audio_length_in_s, "prompt_audio": prompt_audio}


AUDIO = register_medium(AudioMedium())
