"""Shared by the emoji benchmarks (``emoji_rate_distortion.py``, ``emoji_sample_quality.py``): the splits of an
emoji build as tensors, the uint8 round trip every scored image goes through, a tokenizer's batched
reconstruction, and a fingerprint of the build.

Not a benchmark itself. An emoji build is what ``vqgen data build emoji --output DIR`` writes:
``DIR/{train,test}/<group>/*.png`` (RGB on white), ``DIR/manifest.json`` and ``DIR/metadata.csv``; labels are
the nine groups in ``vqgen.data.emoji.EMOJI_GROUPS`` order (the labels a class-conditional prior trained on
the build uses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqgen.data.emoji import EMOJI_GROUPS, load_emoji_dataset
from vqgen.media.image import images_from_uint8, to_uint8_images

DEFAULT_DATA = "/tmp/emoji64"


@dataclass
class EmojiSplit:
    """One split (or an evenly spread part of it): ``images`` float ``[N, 3, H, W]`` in [-1, 1] (exactly the
    PNG's uint8 values mapped by ``v / 127.5 - 1``), ``labels`` ``[N]`` (group indices), the files, and the
    indices of the chosen images in the full split."""

    dataset: object
    images: torch.Tensor
    labels: torch.Tensor
    files: list[Path]
    indices: list[int]

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def uint8(self) -> np.ndarray:
        """The images as uint8 ``[N, H, W, 3]`` (what the PNG files hold)."""
        return to_uint8_images(self.images)


def spread_indices(total: int, count: int | None) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them when ``count`` is None or larger):
    the splits are sorted by group folder, so every group keeps its share."""
    if count is None or count >= total:
        return list(range(total))
    if count < 1:
        raise SystemExit(f"--max-images must be at least 1, got {count}")
    return np.linspace(0, total - 1, count).round().astype(int).tolist()


def load_split(root: str | Path, split: str, max_images: int | None = None) -> EmojiSplit:
    """The ``split`` of the emoji build at ``root`` as tensors (``max_images`` of them, spread evenly)."""
    dataset = load_emoji_dataset(split, root=root, strict=True)
    indices = spread_indices(len(dataset), max_images)
    images = torch.stack([dataset[i]["pixels"] for i in indices])
    labels = torch.tensor([dataset.labels[i] for i in indices], dtype=torch.long)
    return EmojiSplit(dataset, images, labels, [dataset.files[i] for i in indices], indices)


def as_saved(images: torch.Tensor) -> torch.Tensor:
    """Float images ``[N, C, H, W]`` rounded to uint8 and back: what a decoder that writes PNG files gives,
    so that learned methods are scored on the same 8-bit footing as JPEG and WebP."""
    return images_from_uint8(to_uint8_images(images))


@torch.no_grad()
def reconstruct(
    tokenizer: torch.nn.Module, images: torch.Tensor, device: torch.device, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode(encode(x))`` in batches on ``device``, clamped to [-1, 1], and the codes; both on the CPU."""
    out, codes = [], []
    for start in range(0, images.shape[0], batch):
        codes.append(tokenizer.encode(images[start : start + batch].to(device)))
        out.append(tokenizer.decode(codes[-1]).float().clamp(-1, 1).cpu())
    return torch.cat(out), torch.cat(codes).cpu()


def load_pipeline_quietly(path: str | Path, device: str = "cpu"):
    """``vqgen.pipelines.loading.load_pipeline`` without diffusers' "Loading pipeline components" bar."""
    from diffusers.utils import logging as diffusers_logging

    from vqgen.pipelines.loading import load_pipeline

    enabled = diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    try:
        return load_pipeline(path, device=device)
    finally:
        if enabled:
            diffusers_logging.enable_progress_bar()


def build_fingerprint(root: str | Path) -> str:
    """A short hash of the build's ``manifest.json`` and ``metadata.csv`` (which images, which split)."""
    digest = hashlib.sha256()
    for name in ("manifest.json", "metadata.csv"):
        path = Path(root) / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


NUM_GROUPS = len(EMOJI_GROUPS)
