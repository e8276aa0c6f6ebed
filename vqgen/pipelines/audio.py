"""AudioPipeline: class-conditional or unconditional audio generation, and continuation of a prompt, from a
code prior over an ``AudioTokenizer``'s residual code grid ``(K, T)``.

The sample rate belongs to the tokenizer (``tokenizer.config.sample_rate``): the pipeline returns it with
every output, and resamples prompts to it. The longest clip one call draws is the prior's grid, ``T`` code
frames of ``hop = prod(strides)`` samples.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import BaseOutput

from vqgen.errors import ConfigError, ShapeError
from vqgen.media.audio import load_audio, mix_channels, resample_audio
from vqgen.pipelines.base import TokenPipeline
from vqgen.priors.sampling_config import SamplingConfig

__all__ = ["AudioPipeline", "AudioPipelineOutput"]


@dataclass
class AudioPipelineOutput(BaseOutput):
    """``audios``: float32 ``np.ndarray [N, C, S]`` or ``torch.Tensor [N, C, S]`` in [-1, 1], by
    ``output_type``; ``sample_rate``: samples per second to play (or write) them at."""

    audios: np.ndarray | torch.Tensor
    sample_rate: int


def _seconds(samples: int, rate: int) -> str:
    return f"{samples / rate:.4g} s"


class AudioPipeline(TokenPipeline):
    """``AudioTokenizer`` + ``CodePrior``: ``pipe(num_samples=4, class_labels=7).audios``, or with named
    condition fields ``pipe(conditions={"family": "brass", "pitch": 60}).audios``.

    Args:
        tokenizer: an ``AudioTokenizer``.
        prior: a ``CodePrior`` over the tokenizer's ``(K, T)`` grid of one clip (layout ``"flatten"`` or
            ``"delay"``; a ``"raster"`` prior works too, without ``audio_length_in_s`` or prompts when ``K > 1``).
        background: optional unconditional ``CodePrior`` over the same grid, for likelihood-ratio scores.
        default_guidance_scale: the guidance drawn with when labels come without ``guidance_scale`` (saved in
            ``model_index.json``; None: 3).
        condition_names: value names of the prior's condition fields ``{field: [names]}`` (saved in
            ``model_index.json``; None: indices only).
    """

    medium = "audio"
    output_types = ("np", "pt")
    time_axis_from_end = 1  # (K, T)

    @property
    def sample_rate(self) -> int:
        """Samples per second of the tokenizer (and of every output)."""
        return int(self.tokenizer.config.sample_rate)

    @property
    def hop(self) -> int:
        """Samples per code frame."""
        return int(self.tokenizer.downsample_factor)

    @property
    def max_code_frames(self) -> int:
        """Code frames of the clips the prior models: the longest audio one call draws."""
        return int(self.prior.config.code_grid[-1])

    @property
    def max_samples(self) -> int:
        return self.max_code_frames * self.hop

    @property
    def max_seconds(self) -> float:
        """The longest ``audio_length_in_s`` this pipeline draws: ``T * hop / sample_rate``."""
        return self.max_samples / self.sample_rate

    def check_length(self, audio_length_in_s: float | None) -> int:
        """``audio_length_in_s`` (None: the full clip) checked against the prior -> the samples to return."""
        if audio_length_in_s is None:
            return self.max_samples
        if (
            isinstance(audio_length_in_s, bool)
            or not isinstance(audio_length_in_s, (int, float))
            or not math.isfinite(audio_length_in_s)
            or audio_length_in_s <= 0
        ):
            raise ConfigError(
                f"audio_length_in_s must be a positive number of seconds, got {audio_length_in_s!r}"
            )
        samples = round(float(audio_length_in_s) * self.sample_rate)
        if samples > self.max_samples:
            raise ConfigError(
                f"{audio_length_in_s:g} s of audio (audio_length_in_s) is longer than this pipeline draws: at most "
                f"{self.max_seconds:.4g} s (the {self.max_code_frames} code frames its prior was trained on)"
            )
        return max(samples, 1)

    def __call__(
        self,
        num_samples: int = 1,
        *,
        class_labels=None,
        conditions=None,
        audio_length_in_s: float | None = None,
        prompt_audio=None,
        sampling: SamplingConfig | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        batch_size: int = 64,
        progress: bool = False,
        prompt_sample_rate: int | None = None,
    ) -> AudioPipelineOutput:
        """Draw ``num_samples`` clips of ``audio_length_in_s`` seconds.

        Args:
            class_labels: None (unconditional / null class), one label for all, or one per sample: an int (an
                index) or a value name of a single-field pipeline (:attr:`condition_names`).
            conditions: for a prior with named condition fields, ``{field: values}``: one value for all or
                one per sample (a list or a tensor ``[B]``), each a name (``"brass"``) or an int; an int is an
                index, except for a field whose names are all integers, where it is the value itself
                (``{"pitch": 60}`` means the pitch named ``"60"``). A missing field is that field's null
                (unconditional in it). See ``vqgen.pipelines.conditions``.
            audio_length_in_s: seconds to return, at most :attr:`max_seconds` (the default). Only the code
                frames covering them are sampled (``ceil(seconds * sample_rate / hop)``); the audio is cut to
                ``round(seconds * sample_rate)`` samples.
            prompt_audio: continuation: audio whose whole code frames are kept and continued by the prior. A
                float array or tensor ``[C, S]`` / ``[N, C, S]`` in [-1, 1] at ``prompt_sample_rate``, or an
                audio file (WAV, FLAC, OGG). It is channel-mixed and resampled to the tokenizer as the data
                loader does. One prompt serves every sample, or give one per sample. The outputs begin with the
                decoded prompt frames (the tokenizer's reconstruction of the prompt, as in MusicGen); a partial
                last frame of the prompt is dropped and drawn anew. A prompt longer than the requested length is
                a ConfigError.
            sampling: how codes are drawn (``SamplingConfig``), default :attr:`default_sampling`; the keywords
                ``guidance_scale``, ``guidance_schedule``, ``temperature``, ``top_k``, ``top_p`` replace single
                fields. Guidance (1 = none) defaults to :attr:`default_guidance_scale` with labels, else 1.
            generator: seeds every draw; the same seed gives the same audio on the same machine.
            output_type: ``"np"`` (float32 ``np.ndarray [N, C, S]``) or ``"pt"`` (float ``torch.Tensor``).
            prompt_sample_rate: sample rate of an array / tensor ``prompt_audio`` (default: the pipeline's).
        """
        self._check_call(num_samples, class_labels, output_type)
        samples = self.check_length(audio_length_in_s)
        code_frames = math.ceil(samples / self.hop)
        if code_frames < self.max_code_frames:
            self._check_time_layout("audio_length_in_s")
        prompt = None
        if prompt_audio is not None:
            prompt = self.prompt_codes(prompt_audio, samples, prompt_sample_rate)
            self.check_prompt_count(prompt, num_samples, "prompt_audio")
        sampling = self.sampling_config(
            sampling,
            guidance_scale=guidance_scale,
            guidance_schedule=guidance_schedule,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
        )
        audios = self.generate_media(
            num_samples,
            sampling=sampling,
            class_labels=class_labels,
            conditions=conditions,
            prompt=prompt,
            generator=generator,
            batch_size=batch_size,
            progress=progress,
            time_steps=None if code_frames == self.max_code_frames else code_frames,
        )[..., :samples]
        if output_type == "pt":
            return AudioPipelineOutput(audios=audios, sample_rate=self.sample_rate)
        return AudioPipelineOutput(
            audios=audios.numpy().astype(np.float32, copy=False), sample_rate=self.sample_rate
        )

    def _check_time_layout(self, what: str) -> None:
        """Cutting the clip short or continuing a prompt needs a layout whose time axis is the grid's last."""
        layout = self.prior.layout
        if layout.time_axis != len(layout.grid) - 1:
            raise ConfigError(
                f"{what} needs a prior that reads the codes frame by frame (layout 'flatten' or 'delay'); "
                f"this one uses '{layout.name}', which reads whole levels first"
            )

    @torch.no_grad()
    def prompt_codes(
        self, prompt_audio, max_samples: int | None = None, sample_rate: int | None = None
    ) -> torch.Tensor:
        """The codes of a prompt's whole frames: long ``[N, K, n]``, ``n = S // hop`` leading code frames.

        ``max_samples``: the length of the audio to draw (default: the full clip); a longer prompt is refused.
        """
        self._check_time_layout("prompt_audio")
        limit = self.max_samples if max_samples is None else int(max_samples)
        audio = self.audio_tensor(prompt_audio, "prompt_audio", sample_rate)
        length = audio.shape[-1]
        if length > limit:
            raise ConfigError(
                f"prompt_audio lasts {_seconds(length, self.sample_rate)}, longer than the "
                f"{_seconds(limit, self.sample_rate)} of audio requested (this pipeline draws at most "
                f"{self.max_seconds:.4g} s): shorten the prompt or ask for longer audio"
            )
        code_frames = length // self.hop
        if code_frames < 1:
            raise ConfigError(
                f"prompt_audio lasts {length} samples, shorter than one code frame ({self.hop} samples, "
                f"{_seconds(self.hop, self.sample_rate)})"
            )
        audio = audio[..., : code_frames * self.hop].to(
            device=self.tokenizer.device, dtype=self.tokenizer.dtype
        )
        return self.encode_codes(audio).to(self.prior.device)

    def preprocess(self, audio, sample_rate: int | None = None) -> torch.Tensor:
        """Audio -> float ``[N, C, T * hop]`` in [-1, 1], the pipeline's full clip (for ``score`` and
        ``compress``).

        Accepts what ``prompt_audio`` accepts (arrays, tensors, files, or a list of them). A clip must cover
        exactly the prior's ``T`` code frames; a partial last frame is zero-padded, as the tokenizer does.
        """
        audio = self.audio_tensor(audio, "audio", sample_rate)
        if -(-audio.shape[-1] // self.hop) != self.max_code_frames:  # whole code frames, the last zero-padded
            raise ShapeError(
                f"audio must last {self.max_samples} samples ({self.max_seconds:.4g} s, {self.max_code_frames} code "
                f"frames) for this pipeline, got {audio.shape[-1]} ({_seconds(audio.shape[-1], self.sample_rate)})"
            )
        return torch.nn.functional.pad(audio, (0, self.max_samples - audio.shape[-1]))

    def audio_tensor(self, audio, what: str = "audio", sample_rate: int | None = None) -> torch.Tensor:
        """Any accepted form -> float ``[N, C, S]`` at the tokenizer's sample rate and channel count.

        Files are read with ``vqgen.io.load_audio`` (channel mixing, then resampling); arrays and tensors at
        ``sample_rate`` (default: the pipeline's) go through the same ``mix_channels`` and
        ``torchaudio.functional.resample``.
        """
        channels, rate = int(self.tokenizer.config.in_channels), self.sample_rate
        if isinstance(audio, (list, tuple)):
            if not audio:
                raise ShapeError(f"{what}: got an empty list")
            parts = [self.audio_tensor(item, what, sample_rate) for item in audio]
            if len({p.shape[-1] for p in parts}) > 1:
                raise ShapeError(f"{what}: the clips have different lengths")
            return torch.cat(parts)
        if isinstance(audio, (str, os.PathLike)):
            array, file_rate = load_audio(Path(audio), channels=channels)
            if sample_rate is not None and file_rate != sample_rate:
                raise ConfigError(
                    f"{what}: '{audio}' is {file_rate} Hz, not the {sample_rate} Hz passed; "
                    "leave the sample rate out for files (it is read from the file)"
                )
            # As load_audio(sample_rate=rate) would, without reading the file a second time.
            array = resample_audio(torch.from_numpy(array), file_rate, rate, f"audio file '{audio}'").numpy()
            if array.shape[-1] < 1:
                raise ShapeError(f"{what}: '{audio}' holds no samples")
            return torch.from_numpy(array)[None]
        source_rate = rate if sample_rate is None else sample_rate
        if isinstance(source_rate, bool) or not isinstance(source_rate, int) or source_rate < 1:
            raise ConfigError(f"sample_rate of {what} must be a positive int, got {sample_rate!r}")
        if isinstance(audio, np.ndarray):
            if audio.dtype == np.int16:
                audio = audio.astype(np.float32) / 32768.0
            elif not np.issubdtype(audio.dtype, np.floating):
                raise ShapeError(
                    f"{what}: audio arrays must be float [N, C, S] in [-1, 1], got {audio.dtype}"
                )
            audio = torch.from_numpy(np.array(audio, dtype=np.float32, copy=True))
        if not isinstance(audio, torch.Tensor):
            raise ShapeError(
                f"cannot use {type(audio).__name__} as {what}: pass tensors, float arrays or paths"
            )
        audio = audio[None] if audio.dim() == 2 else audio
        if audio.dim() != 3:
            raise ShapeError(f"{what} must be [N, C, S] or [C, S], got {list(audio.shape)}")
        if audio.shape[0] == 0 or audio.shape[-1] == 0:
            raise ShapeError(f"{what} holds no samples: got shape {list(audio.shape)}")
        if not audio.is_floating_point() or not torch.isfinite(audio).all():
            raise ShapeError(f"{what}: audio tensors must be finite floats in [-1, 1]")
        audio = audio.detach().float().cpu()
        if audio.shape[1] != channels:
            audio = torch.from_numpy(np.stack([mix_channels(a, channels) for a in audio.numpy()]))
        audio = resample_audio(audio, source_rate, rate, what)
        return audio.contiguous()
