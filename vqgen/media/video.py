"""Video: files (PyAV: MP4, GIF, ...), uint8 <-> float, frame grids and previews, data sets, the temporal
factor of tokenizers, per-frame metrics and the flags only video has.

Media tensors are float ``[B, C, T, H, W]`` in [-1, 1]; uint8 clips are ``[B, T, H, W, C]`` (or one
``[T, H, W, C]``). Frames per second belong to files and pipelines, not to tokenizers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vqgen.errors import ConfigError, DataError, ShapeError, VqgenError
from vqgen.io import _one_line, atomic_path
from vqgen.media.base import Flag, Medium, positive_float, positive_int, register_medium, to_unit_range
from vqgen.media.image import (
    image_tokenizer_config,
    imshow_arguments,
    interleave,
    make_grid,
    save_image,
    to_uint8_images,
)

__all__ = [
    "DEFAULT_VIDEO_FRAMES",
    "DEMO_VIDEO_DATASETS",
    "MAX_VIDEO_FRAMES",
    "VIDEO",
    "VIDEO_EXTENSIONS",
    "VIDEO_WRITE_FORMATS",
    "VideoMedium",
    "frame_grid",
    "load_video",
    "save_video",
    "to_uint8_videos",
    "videos_from_uint8",
]

#: Frames per clip of video data sets unless told: ``1 + n * temporal_factor`` for every factor (1, 2, 4).
DEFAULT_VIDEO_FRAMES = 9

# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------

#: File suffixes ``save_video`` writes; ``load_video`` also reads ``.webm``, ``.avi``, ``.mov`` and ``.mkv``.
VIDEO_WRITE_FORMATS: tuple[str, ...] = (".mp4", ".gif")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".gif", ".webm", ".avi", ".mov", ".mkv")
#: Most frames ``load_video`` returns after resampling in time (a corrupt timestamp can claim years).
MAX_VIDEO_FRAMES = 100_000


def _video_frames_array(frames: np.ndarray | torch.Tensor, target: Path) -> np.ndarray:
    """Validate uint8 frames ``[T, H, W]`` or ``[T, H, W, C]`` (C = 1 or 3) -> ``[T, H, W, C]``."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[..., None]
    if (
        array.dtype != np.uint8
        or array.ndim != 4
        or array.shape[-1] not in (1, 3)
        or min(array.shape[:3]) < 1
    ):
        raise ShapeError(
            f"cannot save video '{target}': expected uint8 frames [T, H, W, C] with C in (1, 3) and "
            f"T, H, W >= 1, got {array.dtype} {list(array.shape)}"
        )
    return np.ascontiguousarray(array)


def _even_padded(array: np.ndarray) -> np.ndarray:
    """Pad frames ``[T, H, W, C]`` to even height and width by repeating the last row / column (yuv420p)."""
    pad_h, pad_w = array.shape[1] % 2, array.shape[2] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return array


def _gif_palette(array: np.ndarray) -> np.ndarray:
    """One adaptive 256-colour palette for RGB frames ``[T, H, W, 3]``, as PyAV's ``pal8`` ARGB ``[256, 4]``."""
    step = max(1, len(array) // 16)
    mosaic = Image.fromarray(np.concatenate(list(array[::step]), axis=0))
    palette = np.zeros((256, 4), dtype=np.uint8)
    quantized = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    colours = np.asarray(quantized.getpalette() or [], dtype=np.uint8).reshape(-1, 3)[:256]
    palette[: len(colours), 1:] = colours  # each row is [A, R, G, B]
    palette[:, 0] = 255
    return palette


def save_video(frames: np.ndarray | torch.Tensor, path: str | os.PathLike, fps: float = 8.0) -> Path:
    """Write uint8 frames ``[T, H, W, C]`` (C = 1 or 3) or ``[T, H, W]`` as MP4 or GIF, atomically.

    ``.mp4``: H.264 (libx264, yuv420p, constant quality); odd heights or widths are padded to even by
    repeating the last row / column, since yuv420p needs even sizes. ``.gif``: grey frames are stored
    exactly; colour frames share one adaptive 256-colour palette. GIF delays are whole hundredths of a
    second, so the fps read back is ``100 / round(100 / fps)``.
    """
    import av

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_WRITE_FORMATS:
        raise ConfigError(
            f"cannot save video '{target}': unknown suffix '{target.suffix}', expected one of {list(VIDEO_WRITE_FORMATS)}"
        )
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ConfigError(f"cannot save video '{target}': fps must be a positive number, got {fps!r}")
    array = _video_frames_array(frames, target)
    grey = array.shape[-1] == 1
    rate = _fps_fraction(fps if suffix == ".mp4" else 100.0 / max(1, round(100.0 / fps)))
    with atomic_path(target) as temporary:
        try:
            with av.open(str(temporary), mode="w", format="mp4" if suffix == ".mp4" else "gif") as container:
                if suffix == ".mp4":
                    array = _even_padded(array)
                    stream = container.add_stream("libx264", rate=rate)
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "18", "preset": "medium"}
                    source_format = "gray" if grey else "rgb24"
                else:
                    stream = container.add_stream("gif", rate=rate)
                    stream.pix_fmt = "gray" if grey else "pal8"
                    source_format = stream.pix_fmt
                    if not grey:
                        palette = _gif_palette(array)
                stream.height, stream.width = array.shape[1], array.shape[2]
                for index, image in enumerate(array):
                    if suffix == ".gif" and not grey:
                        indices = Image.fromarray(image).quantize(palette=_pil_palette(palette), dither=0)
                        frame = av.VideoFrame.from_ndarray((np.asarray(indices), palette), format="pal8")
                    else:
                        frame = av.VideoFrame.from_ndarray(
                            image[..., 0] if grey else image, format=source_format
                        )
                        if suffix == ".mp4":
                            frame = frame.reformat(format="yuv420p")
                    frame.pts = index
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
        except VqgenError:
            raise
        except OSError:
            raise
        except Exception as error:  # noqa: BLE001 - PyAV raises its own FFmpeg error types
            raise DataError(f"cannot write video '{target}': {_one_line(error)}") from error
    return target


def _pil_palette(palette: np.ndarray) -> Image.Image:
    image = Image.new("P", (1, 1))
    image.putpalette(palette[:, 1:].reshape(-1).tolist())
    return image


def _fps_fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def load_video(
    path: str | os.PathLike,
    fps: float | None = None,
    max_frames: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, float]:
    """Decode a video file (MP4, WebM, AVI, GIF, ... anything FFmpeg reads) -> (uint8 ``[T, H, W, C]``, fps).

    ``channels``: 1 (grey) or 3 (RGB, the default). ``fps``: resample in time to this rate by taking, for
    each output time, the latest frame shown at or before it (the returned fps is then ``fps``).
    ``max_frames``: stop after that many output frames. Missing, empty, corrupt or non-video files raise a
    one-line ``DataError`` naming the file.
    """
    import av

    source = Path(path)
    if not source.is_file():
        why = "is not a file" if source.exists() else "does not exist"
        raise DataError(f"video file '{source}' {why}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels={channels!r} is not supported, expected 1 or 3")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps!r}")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, got {max_frames}")
    if source.stat().st_size == 0:
        raise DataError(f"cannot decode video '{source}': the file is empty (0 bytes)")
    pixel_format = "gray" if channels == 1 else "rgb24"
    times: list[float] = []
    frames: list[np.ndarray] = []
    try:
        with av.open(str(source), mode="r") as container:
            if not container.streams.video:
                raise DataError(f"cannot decode video '{source}': the file holds no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            source_fps = float(rate) if rate else 0.0
            if not (math.isfinite(source_fps) and source_fps > 0):
                source_fps = float(fps or 25.0)
            for index, frame in enumerate(container.decode(stream)):
                times.append(frame.time if frame.time is not None else index / source_fps)
                frames.append(frame.to_ndarray(format=pixel_format))
                if max_frames is not None:
                    # Without resampling max_frames decoded frames suffice; with it, enough to cover the span.
                    span = times[-1] - times[0]
                    if (fps is None and len(frames) >= max_frames) or (fps and span >= max_frames / fps):
                        break
    except VqgenError:
        raise
    except Exception as error:  # noqa: BLE001 - PyAV raises InvalidDataError, OSError, ... for bad files
        raise DataError(f"cannot decode video '{source}': {_one_line(error)}") from error
    if not frames:
        raise DataError(f"cannot decode video '{source}': no frames could be decoded")
    if fps is not None:
        starts = np.asarray(times, dtype=np.float64) - times[0]
        duration = starts[-1] + 1.0 / source_fps
        count = max(1, int(math.floor(duration * fps + 1e-6)))
        if max_frames is not None:
            count = min(count, max_frames)
        if count > MAX_VIDEO_FRAMES:
            raise DataError(
                f"video '{source}' claims {duration:.0f} s, {count} frames at {fps:g} fps; at most "
                f"{MAX_VIDEO_FRAMES} frames are read (pass max_frames, or check the file's timestamps)"
            )
        # Output frame k shows the latest source frame shown at or before time k / fps.
        chosen = np.searchsorted(starts, np.arange(count) / fps + 1e-6, side="right") - 1
        frames = [frames[i] for i in np.clip(chosen, 0, len(frames) - 1)]
    if max_frames is not None:
        frames = frames[:max_frames]
    array = np.stack(frames)
    array = array[..., None] if array.ndim == 3 else array
    return array, float(fps) if fps else source_fps


# ---------------------------------------------------------------------------------------------------------
# uint8 <-> float, grids and previews
# ---------------------------------------------------------------------------------------------------------


def to_uint8_videos(videos: torch.Tensor) -> np.ndarray:
    """Float videos ``[N, C, T, H, W]`` in [-1, 1] -> uint8 ``[N, T, H, W, C]`` (clamped, rounded)."""
    if not isinstance(videos, torch.Tensor) or videos.dim() != 5:
        shape = list(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise ShapeError(f"videos must be a tensor [N, C, T, H, W], got {shape}")
    n, c, t, h, w = videos.shape
    frames = to_uint8_images(videos.transpose(1, 2).reshape(n * t, c, h, w))
    return frames.reshape(n, t, h, w, c)


def videos_from_uint8(videos: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 clips ``[N, T, H, W, C]`` -> float32 ``[N, C, T, H, W]`` in [-1, 1] (the inverse of
    :func:`to_uint8_videos`)."""
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(np.array(videos, copy=True))
    return to_unit_range(videos.permute(0, 4, 1, 2, 3))


def frame_grid(videos: torch.Tensor) -> np.ndarray:
    """Float videos ``[N, C, T, H, W]`` -> one uint8 image, one row of ``T`` frames per video."""
    frames = to_uint8_videos(videos.float().cpu())
    return make_grid(frames.reshape(-1, *frames.shape[2:]), nrow=frames.shape[1])


def save_frame_preview(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path) -> None:
    """The first 8 clips ``[N, C, T, H, W]`` as rows of frames, each original's row above its reconstruction."""
    save_image(frame_grid(interleave(originals, reconstructions)[:16]), path)


# ---------------------------------------------------------------------------------------------------------
# The medium
# ---------------------------------------------------------------------------------------------------------

#: Demo video clips: ``demo:moving-mnist`` (one real digit bouncing in 32x32 or 64x64 frames, 8 fps).
DEMO_VIDEO_DATASETS: tuple[str, ...] = ("demo:moving-mnist",)

_DATA_FLAGS = (
    Flag(
        "--frames",
        f"video: frames per clip, 1 + n * temporal factor (default {DEFAULT_VIDEO_FRAMES})",
        settings={"type": positive_int, "default": None},
    ),
    Flag(
        "--fps",
        "video: resample clips to this frame rate",
        settings={"type": positive_float, "default": None},
    ),
)


class VideoMedium(Medium):
    """Video clips: MP4 / GIF / WebM / ... files, ``VideoTokenizer``, ``VideoPipeline``."""

    name = "video"
    item_key = "video"
    tokenizer_path = "vqgen.tokenizers.video:VideoTokenizer"
    pipeline_path = "vqgen.pipelines.video:VideoPipeline"
    output_suffixes = reconstruct_suffixes = decompress_suffixes = VIDEO_WRITE_FORMATS
    folder_suffixes = VIDEO_EXTENSIONS
    demo_datasets = DEMO_VIDEO_DATASETS
    directory_formats = ("mp4", "gif")
    preview_samples = 8  # clips show as rows of frames
    init_from_media = ("video", "image")
    dataset_options = ("resolution", "frames", "fps")
    flags = {
        "train-tokenizer": (
            Flag(
                "--temporal-factor",
                "video: frames per latent frame after the first (1, 2, 4)",
                settings={"type": int, "default": 4},
            ),
        ),
        "train-tokenizer data": _DATA_FLAGS,
        "evaluate-tokenizer data": _DATA_FLAGS,
        "encode data": _DATA_FLAGS,
        "score data": _DATA_FLAGS,
        "train-prior": (
            Flag(
                "--fps",
                "video: frames per second stored in the pipeline",
                settings={"type": positive_float, "default": 8.0},
            ),
        ),
        "generate": (
            Flag("--num-frames", "video: 1 + n * temporal factor frames", settings={"type": positive_int}),
            Flag("--prompt", "video: a clip whose first frames the videos continue", option="prompt_frames"),
        ),
        "reconstruct": (
            Flag(
                "--frames", "video: use the first N frames", settings={"type": positive_int, "default": None}
            ),
        ),
    }

    def load_dataset(
        self, spec, split="train", *, channels=None, strict=False, resolution=None, frames=None, fps=None
    ):
        """``demo:moving-mnist`` or a folder of videos (``vqgen.data.video.load_video_dataset``)."""
        from vqgen.data.video import load_video_dataset

        return load_video_dataset(spec, split, resolution, channels, frames, fps, strict=strict)

    def dataset_options_for_pipeline(self, pipe, frames=None, fps=None) -> dict:
        if frames not in (None, pipe.clip_frames):
            raise ConfigError(f"--frames {frames}: this pipeline scores clips of {pipe.clip_frames} frames")
        return {**super().dataset_options_for_pipeline(pipe), "frames": pipe.clip_frames, "fps": fps}

    def write_samples(self, samples, output, nrow=None, file_format=None) -> str:
        """One video to a file path (several samples tile a grid in every frame), else one file per sample."""
        videos, fps = samples.videos, samples.fps
        if output.suffix:
            if len(videos) > 1:
                videos = np.stack([make_grid(videos[:, t], nrow=nrow) for t in range(videos.shape[1])])[None]
            save_video(videos[0], output, fps=fps)
            what = "a video" if len(samples.videos) == 1 else f"a grid of {len(samples.videos)} videos"
            return f"wrote {what} ({samples.videos.shape[1]} frames at {fps:g} fps) to {output}"
        width = max(5, len(str(len(videos) - 1)))
        for index, clip in enumerate(videos):
            save_video(clip, output / f"sample_{index:0{width}d}.{file_format}", fps=fps)
        return f"wrote {len(videos)} videos ({videos.shape[1]} frames at {fps:g} fps) to {output}/"

    def write_item(self, media, path, rate=None) -> None:
        save_video(to_uint8_videos(media)[0], path, fps=rate)

    def rate_of(self, pipe) -> float:
        return pipe.fps

    def thumbnail(self, media):
        """The first, middle and last frames of a clip ``[C, T, H, W]`` side by side."""
        steps = sorted({0, media.shape[1] // 2, media.shape[1] - 1})
        image = make_grid(to_uint8_images(media[:, steps].transpose(0, 1)), nrow=len(steps), padding=1)
        return imshow_arguments(image)

    def tokenizer_config(self, settings, channels: int) -> dict:
        return {
            **image_tokenizer_config(self, settings, channels),
            "temporal_factor": settings.temporal_factor,
        }

    def start_from(self, tokenizer, settings):
        """A video tokenizer as it is; an image tokenizer inflated (its 2-D kernels become causal 3-D ones)."""
        if tokenizer.medium != self.name:
            return self.tokenizer_class.from_image_tokenizer(
                tokenizer, temporal_factor=settings.temporal_factor
            )
        return tokenizer.float()

    def reconstruction_preview(self, dataset):
        return save_frame_preview

    def sample_preview(self, media, path, tokenizer) -> None:
        save_image(frame_grid(media), path)

    def evaluate(self, tokenizer, dataset, batch_size=100, progress=True) -> dict:
        from vqgen.evaluation.video import evaluate_video_tokenizer

        return evaluate_video_tokenizer(tokenizer, dataset, batch_size=batch_size, progress=progress)

    def print_evaluation(self, results: dict) -> None:
        from vqgen.evaluation.video import print_video_table

        print_video_table(results)

    def read_file(self, path, tokenizer, frames=None):
        """A video file (its first ``frames`` frames, which must number ``1 + n * temporal_factor``) -> (float
        ``[1, C, T, H, W]``, the file's fps)."""
        clip, fps = load_video(path, max_frames=frames, channels=tokenizer.config.in_channels)
        if frames and len(clip) < frames:
            raise ShapeError(f"'{path}' holds {len(clip)} frames, fewer than --frames {frames}")
        factor = tokenizer.temporal_factor
        if (len(clip) - 1) % factor:
            fit = 1 + (len(clip) - 1) // factor * factor
            raise ShapeError(
                f"'{path}' holds {len(clip)} frames; the tokenizer needs 1 + n * {factor} frames "
                f"(temporal factor {factor}): pass --frames {fit} to use the first {fit}"
            )
        return videos_from_uint8(clip[None]), fps

    def call_options(self, pipe, num_frames=None, prompt_frames=None) -> dict:
        pipe.check_num_frames(num_frames)  # a bad count fails before any file is read
        return {"num_frames": num_frames, "prompt_frames": prompt_frames}


VIDEO = register_medium(VideoMedium())
