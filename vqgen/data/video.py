"""Video datasets: in-memory uint8 clips, Moving-MNIST-style demo clips and validated video folders.

Every item is ``{"video": float32 [C, T, H, W] in [-1, 1], "label": int (-1 if unlabelled), "index": int}``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vqgen.data.demo import MNIST_LABEL_NAMES, mnist_split
from vqgen.data.folders import MediaFolder, folder_split_root
from vqgen.data.images import _check_channels, _resolution_pair
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.media.base import to_unit_range
from vqgen.media.video import DEFAULT_VIDEO_FRAMES, DEMO_VIDEO_DATASETS, VIDEO_EXTENSIONS, load_video

__all__ = [
    "DEFAULT_VIDEO_FRAMES",
    "DEMO_VIDEO_DATASETS",
    "MOVING_MNIST_SIZES",
    "TensorVideoDataset",
    "VideoFolderDataset",
    "load_video_dataset",
    "moving_mnist",
]

MOVING_MNIST_SIZES: tuple[int, ...] = (32, 64)
_DIGIT = 28


def _to_float(clip: torch.Tensor) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` -> float32 ``[C, T, H, W]`` in [-1, 1]."""
    return to_unit_range(clip).permute(3, 0, 1, 2).contiguous()


class TensorVideoDataset(Dataset):
    """Clips held in memory as uint8 ``[N, T, H, W]`` or ``[N, T, H, W, C]`` (C = 1 or 3), optionally labelled.

    ``labels`` may hold -1 for unlabelled clips. Items are
    ``{"video": float32 [C, T, H, W] in [-1, 1], "label": int, "index": int}``.
    """

    def __init__(
        self,
        videos: np.ndarray | torch.Tensor,
        labels: np.ndarray | Sequence[int] | torch.Tensor | None = None,
        label_names: Sequence[str] | None = None,
        fps: float = 8.0,
    ) -> None:
        videos = torch.as_tensor(videos)
        if videos.dtype != torch.uint8:
            raise ShapeError(f"TensorVideoDataset expects uint8 clips, got {videos.dtype}")
        if videos.ndim == 4:
            videos = videos.unsqueeze(-1)
        if videos.ndim != 5 or videos.shape[-1] not in (1, 3) or videos.shape[0] == 0:
            raise ShapeError(
                "TensorVideoDataset expects clips [N, T, H, W] or [N, T, H, W, C] with N >= 1 and C in (1, 3), "
                f"got {list(videos.shape)}"
            )
        self._videos = videos
        self.channels: int = int(videos.shape[-1])
        self.frames: int = int(videos.shape[1])
        self.resolution: tuple[int, int] = (int(videos.shape[2]), int(videos.shape[3]))
        self.fps = float(fps)
        self.label_names: tuple[str, ...] | None = tuple(label_names) if label_names is not None else None
        if labels is None:
            self._labels = torch.full((len(videos),), -1, dtype=torch.int64)
        else:
            self._labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
            if len(self._labels) != len(videos):
                raise ShapeError(f"TensorVideoDataset got {len(videos)} clips but {len(self._labels)} labels")
        top = int(self._labels.max())
        self.num_classes: int = len(self.label_names) if self.label_names is not None else max(top + 1, 0)
        if int(self._labels.min()) < -1 or (self.label_names is not None and top >= self.num_classes):
            raise ShapeError(
                f"TensorVideoDataset labels must lie in [-1, {self.num_classes}) (-1: unlabelled), "
                f"got [{int(self._labels.min())}, {top}]"
            )

    @property
    def labels(self) -> list[int]:
        return self._labels.tolist()

    @property
    def videos(self) -> torch.Tensor:
        """The stored uint8 clips ``[N, T, H, W, C]``."""
        return self._videos

    def __len__(self) -> int:
        return self._videos.shape[0]

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]
        return {"video": _to_float(self._videos[index]), "label": int(self._labels[index]), "index": index}


def _bounce(start: float, velocity: float, steps: int, room: int) -> np.ndarray:
    """Positions ``[steps]`` of a point moving at ``velocity`` inside ``[0, room]``, reflected at the walls."""
    if room == 0:
        return np.zeros(steps, dtype=np.int64)
    raw = start + velocity * np.arange(steps)
    folded = np.mod(raw, 2 * room)
    return np.rint(np.where(folded > room, 2 * room - folded, folded)).astype(np.int64)


def moving_mnist(
    split: str = "train",
    num_clips: int = 1000,
    frames: int = 9,
    size: int = 32,
    seed: int = 0,
    digits_per_clip: int = 1,
    fps: float = 8.0,
) -> TensorVideoDataset:
    """Moving-MNIST-style clips from the bundled real digits, generated deterministically from ``seed``.

    Each clip shows ``digits_per_clip`` 28x28 digits of ``split`` bouncing inside a ``size`` x ``size``
    frame (32 or 64) at a random velocity of 1 to 3 pixels per frame (overlaps take the brighter pixel).
    One-digit clips are labelled by their digit (``label_names`` "0".."9"); clips of two or more digits
    get label -1. Returns a :class:`TensorVideoDataset` of uint8 clips ``[num_clips, frames, size, size, 1]``.
    """
    if size not in MOVING_MNIST_SIZES:
        raise ConfigError(f"size={size!r} is not supported, expected one of {MOVING_MNIST_SIZES}")
    if num_clips < 1 or frames < 1 or digits_per_clip < 1:
        raise ConfigError(
            f"num_clips, frames and digits_per_clip must be at least 1, got {num_clips}, {frames}, {digits_per_clip}"
        )
    digits, digit_labels = mnist_split(split)
    rng = np.random.default_rng(seed)
    room = size - _DIGIT
    videos = np.zeros((num_clips, frames, size, size), dtype=np.uint8)
    labels = np.full(num_clips, -1, dtype=np.int64)
    for clip in range(num_clips):
        chosen = rng.integers(0, len(digits), size=digits_per_clip)
        for digit in chosen:
            start = rng.uniform(0, room, size=2)
            angle = rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(1.0, 3.0)
            rows = _bounce(start[0], speed * math.sin(angle), frames, room)
            cols = _bounce(start[1], speed * math.cos(angle), frames, room)
            for t in range(frames):
                window = videos[clip, t, rows[t] : rows[t] + _DIGIT, cols[t] : cols[t] + _DIGIT]
                np.maximum(window, digits[digit], out=window)
        if digits_per_clip == 1:
            labels[clip] = int(digit_labels[chosen[0]])
    return TensorVideoDataset(videos, labels, label_names=MNIST_LABEL_NAMES, fps=fps)


class VideoFolderDataset(Dataset):
    """Every video file under ``root`` (recursive; ``VIDEO_EXTENSIONS``), checked up front by decoding a frame.

    Each item is one clip of ``frames`` frames taken every ``frame_stride`` decoded frames (after
    resampling to ``fps`` when given), resized so the short side covers ``resolution`` and centre-cropped.
    In training the clip start is drawn from a generator seeded by ``(seed, index)`` (no global RNG, so
    items are reproducible); otherwise clips start at the first frame. Videos shorter than a clip repeat
    their last frame. Unreadable files are skipped with a :class:`DataWarning` naming them
    (``strict=True``: ``DataError``). Labels come from first-level class subfolders when there are two or
    more (sorted names), else -1.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        frames: int,
        resolution: int | Sequence[int],
        channels: int,
        fps: float | None = None,
        frame_stride: int = 1,
        train: bool = True,
        strict: bool = False,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if frames < 1 or frame_stride < 1:
            raise ConfigError(f"frames and frame_stride must be at least 1, got {frames} and {frame_stride}")
        self.frames, self.frame_stride, self.fps = int(frames), int(frame_stride), fps
        self.resolution: tuple[int, int] = _resolution_pair(resolution)
        self.channels: int = _check_channels(channels)
        self.train, self.seed = bool(train), int(seed)
        folder = MediaFolder(self.root, VIDEO_EXTENSIONS, ("video", "videos"), self._check, strict)
        self.files, self.skipped, self._labels = folder.files, folder.skipped, folder.labels
        self.label_names: tuple[str, ...] | None = folder.label_names
        self.num_classes: int = folder.num_classes

    def _check(self, path: Path) -> str | None:
        """Why ``path`` cannot be used (it must decode at least one frame), or None."""
        try:
            load_video(path, max_frames=1, channels=self.channels)
        except DataError as error:
            return f"cannot be used ({error})"
        return None

    @property
    def labels(self) -> list[int]:
        return list(self._labels)

    def __len__(self) -> int:
        return len(self.files)

    def _clip_indices(self, available: int, index: int) -> np.ndarray:
        span = (self.frames - 1) * self.frame_stride + 1
        latest = max(available - span, 0)
        start = 0
        if self.train and latest > 0:
            start = int(np.random.default_rng([self.seed, index]).integers(0, latest + 1))
        positions = start + self.frame_stride * np.arange(self.frames)
        return np.minimum(positions, available - 1)

    def _resized(self, clip: torch.Tensor) -> torch.Tensor:
        """float ``[T, C, H, W]`` -> ``[T, C, *resolution]``: scale the short side, crop the centre."""
        height, width = self.resolution
        source_h, source_w = clip.shape[-2:]
        if (source_h, source_w) == (height, width):
            return clip
        scale = max(width / source_w, height / source_h)
        crop_h = min(source_h, max(1, round(height / scale)))
        crop_w = min(source_w, max(1, round(width / scale)))
        top, left = (source_h - crop_h) // 2, (source_w - crop_w) // 2
        clip = clip[..., top : top + crop_h, left : left + crop_w]
        return F.interpolate(clip, size=(height, width), mode="bilinear", align_corners=False, antialias=True)

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]
        path = self.files[index]
        span = (self.frames - 1) * self.frame_stride + 1
        limit = None if self.train else span  # a training clip may start anywhere: decode the whole file
        array, _ = load_video(path, fps=self.fps, max_frames=limit, channels=self.channels)
        clip = torch.from_numpy(array[self._clip_indices(len(array), index)].copy())
        pixels = clip.permute(0, 3, 1, 2).to(torch.float32)  # [T, C, H, W] in 0..255
        pixels = to_unit_range(self._resized(pixels))
        video = pixels.clamp_(-1.0, 1.0).permute(1, 0, 2, 3).contiguous()
        return {"video": video, "label": self._labels[index], "index": index}


_MOVING_MNIST_CLIPS = {"train": (8000, 0), "test": (1000, 1)}  # clips and seed per split


def load_video_dataset(
    spec: str,
    split: str,
    resolution: int | None = None,
    channels: int | None = None,
    frames: int | None = None,
    fps: float | None = None,
    strict: bool = False,
):
    """A video data set by name: ``demo:moving-mnist`` (its ``split``) or a folder of video files
    (``VideoFolderDataset``; ``DIR/train`` and ``DIR/test`` when present). Clips of ``frames`` frames
    (default 9) at ``fps``, frames ``resolution`` square."""
    frames = frames or DEFAULT_VIDEO_FRAMES
    if spec.startswith("demo:"):
        if spec not in DEMO_VIDEO_DATASETS:
            raise DataError(
                f"unknown demo video dataset '{spec}', available: {', '.join(DEMO_VIDEO_DATASETS)}"
            )
        if channels not in (None, 1):
            raise ShapeError(f"{spec} has 1 channel, the tokenizer expects {channels}")
        clips, seed = _MOVING_MNIST_CLIPS[split]
        return moving_mnist(
            split, num_clips=clips, frames=frames, size=resolution or 32, seed=seed, fps=fps or 8.0
        )
    root = folder_split_root(spec, split, resolution, channels, DEMO_VIDEO_DATASETS)
    return VideoFolderDataset(
        root, frames, resolution, channels, fps=fps, train=split == "train", strict=strict
    )
