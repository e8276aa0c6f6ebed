"""Helpers that let the 28x28 digit classifier judge video frames (for ``sample_quality.py --modality video``).

Not a benchmark itself. Moving-MNIST frames are larger than a digit (32x32 with one 28x28 digit anywhere in
them), so each frame is cropped to the 28x28 window centred on its intensity centroid before it is classified;
the bundled digits are centred by their centre of mass, so on real clips this window is (up to rounding) the
digit's own. Per-clip figures: accuracy over frames, temporal consistency and the clip's majority class.
"""

from __future__ import annotations

import torch

__all__ = ["centroid_crop", "clip_figures", "frames_of", "majority_class"]

DIGIT_SIZE = 28


def centroid_crop(frames: torch.Tensor, size: int = DIGIT_SIZE) -> torch.Tensor:
    """The ``size`` x ``size`` window centred on each frame's intensity centroid, clamped to the frame.

    Args:
        frames: float ``[N, 1, H, W]`` in [-1, 1] (background -1), ``H, W >= size``.

    Returns:
        float ``[N, 1, size, size]``. Intensity is ``(x + 1) / 2`` clamped to [0, 1]; a blank frame (no
        intensity) gets the centre window.
    """
    if frames.dim() != 4 or frames.shape[1] != 1:
        raise ValueError(f"frames must be [N, 1, H, W], got {list(frames.shape)}")
    n, _, h, w = frames.shape
    if h < size or w < size:
        raise ValueError(f"frames of {h}x{w} are smaller than the {size}x{size} crop")
    weight = ((frames[:, 0].float() + 1) / 2).clamp(0, 1)  # [N, H, W]
    mass = weight.sum(dim=(1, 2))
    rows = torch.arange(h, dtype=torch.float32)
    cols = torch.arange(w, dtype=torch.float32)
    safe = mass.clamp_min(1e-12)
    centre_row = torch.where(mass > 0, (weight.sum(dim=2) * rows).sum(dim=1) / safe, (h - 1) / 2)
    centre_col = torch.where(mass > 0, (weight.sum(dim=1) * cols).sum(dim=1) / safe, (w - 1) / 2)
    top = torch.round(centre_row - (size - 1) / 2).long().clamp(0, h - size)
    left = torch.round(centre_col - (size - 1) / 2).long().clamp(0, w - size)
    offsets = torch.arange(size)
    row_index = (top[:, None] + offsets)[:, :, None]  # [N, size, 1]
    col_index = (left[:, None] + offsets)[:, None, :]  # [N, 1, size]
    crops = frames[torch.arange(n)[:, None, None], 0, row_index, col_index]  # [N, size, size]
    return crops.unsqueeze(1)


def frames_of(videos: torch.Tensor) -> torch.Tensor:
    """Videos ``[N, C, T, H, W]`` -> frames ``[N * T, C, H, W]`` (clip-major: clip 0's frames first)."""
    n, c, t, h, w = videos.shape
    return videos.transpose(1, 2).reshape(n * t, c, h, w)


def majority_class(predictions: torch.Tensor) -> torch.Tensor:
    """Each clip's most frequent predicted class ``[N]`` from ``predictions [N, T]`` (ties: the smallest class)."""
    return torch.mode(predictions, dim=1).values


def clip_figures(predictions: torch.Tensor, labels: torch.Tensor | None, num_classes: int = 10) -> dict:
    """Figures for per-frame ``predictions [N, T]`` (long) of ``N`` clips and their requested ``labels [N]``.

    Returns ``{"frames", "temporal_consistency", "predicted_class_shares"}`` (consistency: the share of frames
    whose predicted class equals their clip's majority predicted class) and, with labels, ``"accuracy"`` (over
    all frames), ``"clip_majority_accuracy"`` (majority class == label) and ``"per_class_accuracy"`` (over the
    frames of the clips that asked for each class; None for a class nobody asked for).
    """
    majority = majority_class(predictions)
    counts = torch.bincount(predictions.reshape(-1), minlength=num_classes).double()
    figures = {
        "frames": int(predictions.numel()),
        "temporal_consistency": float((predictions == majority[:, None]).double().mean()),
        "predicted_class_shares": (counts / counts.sum()).tolist(),
    }
    if labels is not None:
        correct = (predictions == labels[:, None]).double()
        figures["accuracy"] = float(correct.mean())
        figures["clip_majority_accuracy"] = float((majority == labels).double().mean())
        figures["per_class_accuracy"] = [
            float(correct[labels == c].mean()) if bool((labels == c).any()) else None
            for c in range(num_classes)
        ]
    return figures
