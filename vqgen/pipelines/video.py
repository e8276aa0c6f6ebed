"""VideoPipeline: class-conditional or unconditional video generation, and frame prediction, from a code prior.

Frames per second belong to the pipeline, not to the tokenizer: the tokenizer turns frames into codes at
any rate, while the prior learned motion per frame from clips at one rate. ``fps`` is registered in the
pipeline's config (``model_index.json``), defaults to 8 (the rate of ``demo:moving-mnist``) and is
returned with every output so files play at the speed of the training clips.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import BaseOutput

from vqgen.checks import positive_number
from vqgen.errors import ConfigError, ShapeError
from vqgen.media.video import load_video, to_uint8_videos, videos_from_uint8
from vqgen.pipelines.base import TokenPipeline
from vqgen.priors.sampling_config import SamplingConfig

__all__ = ["DEFAULT_FPS", "VideoPipeline", "VideoPipelineOutput", "to_uint8_videos"]

#: Frames per second of a pipeline saved without one.
DEFAULT_FPS = 8.0


@dataclass
class VideoPipelineOutput(BaseOutput):
    """``videos``: uint8 ``np.ndarray [N, T, H, W, C]`` or float ``torch.Tensor [N, C, T, H, W]`` in [-1, 1],
    by ``output_type``; ``fps``: the frame rate to play them at."""

    videos: np.ndarray | torch.Tensor
    fps: float


def _valid_counts(factor: int, most: int) -> list[int]:
    return list(range(1, most + 1, factor))


def _counts_text(factor: int, most: int) -> str:
    counts = _valid_counts(factor, most)
    return ", ".join(map(str, counts)) if len(counts) <= 8 else f"1 + n * {factor} up to {most}"


class VideoPipeline(TokenPipeline):
    """``VideoTokenizer`` + ``CodePrior``: ``pipe(num_samples=4, class_labels=3).videos``.

    Args:
        tokenizer: a ``VideoTokenizer``.
        prior: a ``CodePrior`` over the tokenizer's ``(t, h, w)`` (or ``(L, t, h, w)``) grid of one clip.
        fps: frames per second of the clips the prior was trained on (saved in ``model_index.json``).
        background: optional unconditional ``CodePrior`` over the same grid, for likelihood-ratio scores.
        default_guidance_scale: the guidance drawn with when labels come without ``guidance_scale`` (saved in
            ``model_index.json``; None: 3).
        condition_names: value names of the prior's condition fields ``{field: [names]}`` (saved in
            ``model_index.json``; None: indices only).
    """

    medium = "video"
    output_types = ("np", "pt")
    time_axis_from_end = 3  # (t, h, w)

    def __init__(
        self,
        tokenizer,
        prior,
        fps: float = DEFAULT_FPS,
        background=None,
        default_guidance_scale: float | None = None,
        condition_names: dict[str, list[str]] | None = None,
        default_sampling: dict | None = None,
    ):
        super().__init__(
            tokenizer, prior, background, default_guidance_scale, condition_names, default_sampling
        )
        self.register_to_config(fps=positive_number("fps", fps))

    @property
    def fps(self) -> float:
        return float(self.config.fps)

    @property
    def temporal_factor(self) -> int:
        return int(self.tokenizer.temporal_factor)

    @property
    def clip_frames(self) -> int:
        """Frames of the clips the prior models: the longest video one call can draw."""
        return int(self.sample_shape[1])

    def check_num_frames(self, num_frames: int | None) -> int:
        """``num_frames`` (None: the full clip) checked against this pipeline -> the frame count to draw."""
        if num_frames is None:
            return self.clip_frames
        factor, most = self.temporal_factor, self.clip_frames
        if (
            isinstance(num_frames, bool)
            or not isinstance(num_frames, int)
            or not 1 <= num_frames <= most
            or (num_frames - 1) % factor
        ):
            raise ConfigError(
                f"num_frames={num_frames!r} does not work with this pipeline: it makes 1 + n * {factor} frames "
                f"up to {most} ({_counts_text(factor, most)})"
            )
        return num_frames

    def __call__(
        self,
        num_samples: int = 1,
        *,
        class_labels=None,
        conditions=None,
        num_frames: int | None = None,
        prompt_frames=None,
        sampling: SamplingConfig | None = None,
        guidance_scale: float | None = None,
        guidance_schedule: str | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        batch_size: int = 64,
        progress: bool = False,
    ) -> VideoPipelineOutput:
        """Draw ``num_samples`` videos of ``num_frames`` frames.

        Args:
            class_labels: None (unconditional / null class), one label for all, or one per sample: an int (an
                index) or a value name of a single-field pipeline (:attr:`condition_names`).
            conditions: for a prior with named condition fields, ``{field: values}``: one value for all or
                one per sample (a list or a tensor ``[B]``), each a name (``"brass"``) or an int; an int is an
                index, except for a field whose names are all integers, where it is the value itself
                (``{"pitch": 60}`` means the pitch named ``"60"``). A missing field is that field's null
                (unconditional in it). See ``vqgen.pipelines.conditions``.
            num_frames: ``1 + n * temporal_factor`` frames, at most the trained clip length (the default).
            prompt_frames: frame prediction: a clip (uint8 ``[T, H, W, C]`` / ``[N, T, H, W, C]``, float
                ``[C, T, H, W]`` / ``[N, C, T, H, W]`` in [-1, 1], or a video file) whose first ``k`` frames
                are encoded and kept; the prior continues them. ``k`` is the largest ``1 + m * temporal_factor``
                that the prompt holds and that leaves at least one latent frame to draw. One prompt serves
                every sample, or give one per sample. The videos start with the decoded prompt frames.
            sampling: how codes are drawn (``SamplingConfig``), default :attr:`default_sampling`; the keywords
                ``guidance_scale``, ``guidance_schedule``, ``temperature``, ``top_k``, ``top_p`` replace single
                fields. Guidance (1 = none) defaults to :attr:`default_guidance_scale` with labels, else 1.
            generator: seeds every draw; the same seed gives the same videos on the same machine.
            output_type: ``"np"`` (uint8 ``[N, T, H, W, C]``) or ``"pt"`` (float ``[N, C, T, H, W]`` in [-1, 1]).
        """
        self._check_call(num_samples, class_labels, output_type)
        frames = self.check_num_frames(num_frames)
        latent_frames = 1 + (frames - 1) // self.temporal_factor
        prompt = None
        if prompt_frames is not None:
            prompt = self.prompt_codes(prompt_frames, frames)
            self.check_prompt_count(prompt, num_samples, "prompt_frames")
        full = latent_frames == self.prior.config.code_grid[-3]
        sampling = self.sampling_config(
            sampling,
            guidance_scale=guidance_scale,
            guidance_schedule=guidance_schedule,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
        )
        videos = self.generate_media(
            num_samples,
            sampling=sampling,
            class_labels=class_labels,
            conditions=conditions,
            prompt=prompt,
            generator=generator,
            batch_size=batch_size,
            progress=progress,
            time_steps=None if full else latent_frames,
        )
        if output_type == "pt":
            return VideoPipelineOutput(videos=videos, fps=self.fps)
        return VideoPipelineOutput(videos=to_uint8_videos(videos), fps=self.fps)

    @torch.no_grad()
    def prompt_codes(self, prompt_frames, num_frames: int | None = None) -> torch.Tensor:
        """The codes of a prompt clip's first frames: long ``[N, m, h, w]``, the leading latent frames.

        ``num_frames`` is the length of the video to draw (default: the full clip); the prompt keeps the
        largest ``1 + (m - 1) * temporal_factor`` of its frames that leaves at least one latent frame to draw.
        """
        if self.tokenizer._residual:
            raise ConfigError(
                "frame prediction needs a single-level video tokenizer: the raster order of a residual grid "
                "puts whole levels first, so its leading codes are not the first frames"
            )
        frames = self.check_num_frames(num_frames)
        clip = self._video_tensor(prompt_frames, "prompt_frames")
        factor = self.temporal_factor
        available = clip.shape[2]
        if frames == 1:
            raise ConfigError("num_frames=1 leaves no frame to predict after a prompt")
        keep = 1 + min((available - 1) // factor, (frames - 1) // factor - 1) * factor
        clip = clip[:, :, :keep].to(device=self.tokenizer.device, dtype=self.tokenizer.dtype)
        return self.encode_codes(clip).to(self.prior.device)

    def preprocess(self, videos) -> torch.Tensor:
        """Videos -> float ``[N, C, T, H, W]`` in [-1, 1] of the pipeline's full clip shape (for ``score`` and
        ``compress``).

        Accepts a float tensor ``[N, C, T, H, W]`` / ``[C, T, H, W]`` in [-1, 1], a uint8 array
        ``[N, T, H, W, C]`` / ``[T, H, W, C]`` / ``[T, H, W]`` (grey), a video file path, or a list of those.
        """
        clip = self._video_tensor(videos, "videos")
        if clip.shape[2] != self.clip_frames:
            raise ShapeError(
                f"videos must have {self.clip_frames} frames for this pipeline, got {clip.shape[2]}"
            )
        return clip

    def _video_tensor(self, videos, what: str) -> torch.Tensor:
        """Any accepted form -> float ``[N, C, T, H, W]`` with the pipeline's channels and frame size."""
        channels, _, height, width = self.sample_shape
        if isinstance(videos, (list, tuple)):
            if not videos:
                raise ShapeError(f"{what}: got an empty list")
            parts = [self._video_tensor(item, what) for item in videos]
            if len({p.shape[2] for p in parts}) > 1:
                raise ShapeError(f"{what}: the clips have different frame counts")
            return torch.cat(parts)
        if isinstance(videos, (str, os.PathLike)):
            videos, _ = load_video(Path(videos), channels=channels)
        if isinstance(videos, np.ndarray):
            if videos.dtype != np.uint8:
                raise ShapeError(
                    f"{what}: video arrays must be uint8 [N, T, H, W, C] in 0..255, got {videos.dtype}"
                )
            array = videos[..., None] if videos.ndim == 3 else videos
            array = array[None] if array.ndim == 4 else array
            if array.ndim != 5:
                raise ShapeError(
                    f"{what}: video arrays must be [N, T, H, W, C], got shape {list(videos.shape)}"
                )
            videos = videos_from_uint8(array)
        if not isinstance(videos, torch.Tensor):
            raise ShapeError(
                f"cannot use {type(videos).__name__} as {what}: pass tensors, uint8 arrays or paths"
            )
        videos = videos[None] if videos.dim() == 4 else videos
        if videos.dim() != 5 or videos.shape[1] != channels or tuple(videos.shape[3:]) != (height, width):
            raise ShapeError(
                f"{what} must be [N, {channels}, T, {height}, {width}] (frames of {height}x{width}, {channels} "
                f"channel{'s' if channels > 1 else ''}) for this pipeline, got {list(videos.shape)}"
            )
        if videos.shape[0] == 0 or videos.shape[2] == 0:
            raise ShapeError(f"{what} holds no frames: got shape {list(videos.shape)}")
        if not videos.is_floating_point() or not torch.isfinite(videos).all():
            raise ShapeError(f"{what}: video tensors must be finite floats in [-1, 1]")
        return videos.float()
