"""benchmarks/sample_quality.py helpers: the centroid crop that lets the digit classifier judge video frames,
the per-clip figures, and the padding of short audio clips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from sample_quality import pad_to_one_second  # noqa: E402
from video_frames import centroid_crop, clip_figures, frames_of  # noqa: E402

from vqgen.data.video import moving_mnist  # noqa: E402


def test_centroid_crop_finds_the_digit_in_real_moving_mnist_frames():
    clips = moving_mnist("test", num_clips=4, frames=3, size=32, seed=1)
    videos = clips.videos.permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # [4, 1, 3, 32, 32]
    frames = frames_of(videos)
    assert frames.shape == (12, 1, 32, 32)
    torch.testing.assert_close(frames[3], videos[1, :, 0])  # clip-major order
    crops = centroid_crop(frames)
    assert crops.shape == (12, 1, 28, 28)
    # The crop is a window of the frame and keeps (nearly) all of the digit's ink.
    ink = lambda x: ((x + 1) / 2).sum(dim=(1, 2, 3))  # noqa: E731
    assert bool((ink(crops) >= 0.97 * ink(frames)).all())


def test_centroid_crop_follows_the_ink_and_clamps_to_the_frame():
    frames = torch.full((3, 1, 32, 32), -1.0)
    frames[0, 0, 0, 0] = 1.0  # a dot in the top-left corner: the window clamps to (0, 0)
    frames[1, 0, 31, 31] = 1.0  # bottom-right corner: the window clamps to (4, 4)
    crops = centroid_crop(frames)  # frame 2 is blank: the centre window
    assert crops[0, 0, 0, 0] == 1 and crops[1, 0, 27, 27] == 1
    torch.testing.assert_close(crops[2], frames[2, :, 2:30, 2:30])


def test_clip_figures():
    predictions = torch.tensor([[3, 3, 3, 1], [5, 5, 5, 5]])
    figures = clip_figures(predictions, torch.tensor([3, 4]))
    assert figures["frames"] == 8
    assert figures["accuracy"] == 3 / 8
    assert figures["temporal_consistency"] == 7 / 8
    assert figures["clip_majority_accuracy"] == 0.5
    assert figures["per_class_accuracy"][3] == 0.75 and figures["per_class_accuracy"][4] == 0.0
    assert figures["per_class_accuracy"][0] is None
    np.testing.assert_allclose(figures["predicted_class_shares"][5], 0.5)
    assert "accuracy" not in clip_figures(predictions, None)


def test_pad_to_one_second():
    audio = torch.ones(2, 1, 5)
    padded = pad_to_one_second(audio, 10)
    assert padded.shape == (2, 1, 10) and padded.sum() == 10 and padded[0, 0, 2] == 1 and padded[0, 0, 1] == 0
    assert pad_to_one_second(torch.ones(1, 1, 12), 10).shape == (1, 1, 12)
