"""Video datasets: folders of files written by save_video, Moving-MNIST-style clips, tokenizer training on them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from vqgen.data.images import DataWarning
from vqgen.data.video import TensorVideoDataset, VideoFolderDataset, moving_mnist
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.media.video import save_video


def ramp_clip(frames: int, height: int = 20, width: int = 24, offset: int = 0) -> np.ndarray:
    """Grey frames whose brightness encodes the frame number: frame t is ``10 * (t + offset)``."""
    values = 10 * (np.arange(frames) + offset)
    return np.broadcast_to(values[:, None, None, None], (frames, height, width, 1)).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "videos"
    save_video(ramp_clip(12), root / "cats" / "a.mp4", fps=8)
    save_video(ramp_clip(12, offset=5), root / "cats" / "b.gif", fps=8)
    save_video(ramp_clip(9), root / "dogs" / "c.mp4", fps=8)
    return root


def test_folder_dataset_items_and_labels(folder):
    dataset = VideoFolderDataset(folder, frames=5, resolution=16, channels=1, train=False)
    assert len(dataset) == 3
    assert dataset.label_names == ("cats", "dogs") and dataset.labels == [0, 0, 1]
    item = dataset[1]
    assert item["video"].shape == (1, 5, 16, 16) and item["video"].dtype == torch.float32
    assert item["label"] == 0 and item["index"] == 1
    assert -1.0 <= float(item["video"].min()) and float(item["video"].max()) <= 1.0
    # Evaluation clips start at the first frame: the GIF is exact, brightness 10 * (t + 5).
    expected = torch.tensor([10.0 * (t + 5) for t in range(5)]) / 127.5 - 1.0
    torch.testing.assert_close(item["video"][0, :, 8, 8], expected, atol=1e-4, rtol=0)


def test_training_clip_starts_are_random_but_deterministic(folder):
    dataset = VideoFolderDataset(folder, frames=3, resolution=(20, 24), channels=1, frame_stride=2)
    again = VideoFolderDataset(folder, frames=3, resolution=(20, 24), channels=1, frame_stride=2)
    state = torch.random.get_rng_state()
    first = dataset[1]["video"]
    assert torch.equal(first, again[1]["video"])
    assert torch.equal(torch.random.get_rng_state(), state)  # no global RNG used
    brightness = (first[0, :, 10, 12] + 1.0) * 127.5
    steps = brightness[1:] - brightness[:-1]
    torch.testing.assert_close(steps, torch.full((2,), 20.0), atol=0.5, rtol=0)  # stride 2 frames
    starts = {VideoFolderDataset(folder, 3, 8, 1, seed=s)[1]["video"][0, 0, 4, 4].item() for s in range(8)}
    assert len(starts) > 1


def test_short_videos_repeat_their_last_frame(folder):
    dataset = VideoFolderDataset(folder, frames=11, resolution=8, channels=1, train=False)
    clip = dataset[2]["video"]  # dogs/c.mp4 has 9 frames
    assert clip.shape == (1, 11, 8, 8)
    torch.testing.assert_close(clip[:, 9], clip[:, 8])


def test_corrupt_file_is_skipped_with_a_warning_or_refused_when_strict(folder):
    (folder / "dogs" / "broken.mp4").write_bytes(b"\x00garbage" * 30)
    (folder / "dogs" / "empty.gif").write_bytes(b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = VideoFolderDataset(folder, frames=3, resolution=8, channels=1)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "broken.mp4" in messages[0] and "empty.gif" in messages[0]
    assert len(dataset) == 3 and dataset.labels == [0, 0, 1]
    with pytest.raises(DataError, match="broken.mp4"):
        VideoFolderDataset(folder, frames=3, resolution=8, channels=1, strict=True)


def test_empty_or_missing_folder_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    with pytest.raises(DataError, match="no video files"):
        VideoFolderDataset(tmp_path / "empty", frames=3, resolution=8, channels=1)
    with pytest.raises(DataError, match="does not exist"):
        VideoFolderDataset(tmp_path / "missing", frames=3, resolution=8, channels=1)
    with pytest.raises(ConfigError):
        VideoFolderDataset(tmp_path / "empty", frames=0, resolution=8, channels=1)


def test_moving_mnist_is_deterministic_and_labelled():
    first = moving_mnist("train", num_clips=6, frames=9, size=32, seed=3)
    again = moving_mnist("train", num_clips=6, frames=9, size=32, seed=3)
    other = moving_mnist("train", num_clips=6, frames=9, size=32, seed=4)
    assert torch.equal(first.videos, again.videos) and first.labels == again.labels
    assert not torch.equal(first.videos, other.videos)
    assert first.label_names == tuple(str(i) for i in range(10)) and first.num_classes == 10
    assert all(0 <= label <= 9 for label in first.labels)
    item = first[2]
    assert item["video"].shape == (1, 9, 32, 32) and item["label"] == first.labels[2]
    assert float(item["video"].min()) == -1.0 and float(item["video"].max()) <= 1.0


def test_moving_mnist_digit_stays_inside_and_moves():
    from vqgen.data.demo import mnist_split

    digits, labels = mnist_split("test")
    dataset = moving_mnist("test", num_clips=5, frames=12, size=64, seed=0)
    ink = {int(d.astype(np.int64).sum()) for d in digits}
    for clip, label in zip(dataset.videos.numpy()[..., 0], dataset.labels):
        totals = clip.astype(np.int64).reshape(len(clip), -1).sum(axis=1)
        assert len(set(totals.tolist())) == 1 and int(totals[0]) in ink  # never clipped by the border
        matches = [i for i in np.flatnonzero(labels == label) if digits[i].sum() == totals[0]]
        assert matches, "the clip's digit has its label"
        assert any(not np.array_equal(clip[0], clip[t]) for t in range(1, len(clip)))  # it moves


def test_moving_mnist_two_digits_are_unlabelled():
    dataset = moving_mnist("test", num_clips=3, frames=4, size=64, seed=1, digits_per_clip=2)
    assert dataset.labels == [-1, -1, -1]
    assert dataset[0]["label"] == -1
    with pytest.raises(ConfigError, match="size"):
        moving_mnist("test", num_clips=1, frames=2, size=48)


def test_tensor_video_dataset_validates():
    with pytest.raises(ShapeError):
        TensorVideoDataset(np.zeros((2, 3, 8, 8), dtype=np.float32))
    with pytest.raises(ShapeError):
        TensorVideoDataset(np.zeros((2, 3, 8, 8), dtype=np.uint8), labels=[0])
    dataset = TensorVideoDataset(np.zeros((2, 3, 8, 8, 3), dtype=np.uint8))
    assert dataset[1]["video"].shape == (3, 3, 8, 8) and dataset[1]["label"] == -1


def test_train_video_tokenizer_end_to_end(tmp_path):
    from vqgen.loading import load_tokenizer
    from vqgen.tokenizers.video import VideoTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import train_tokenizer

    dataset = moving_mnist("train", num_clips=4, frames=5, size=32, seed=0)
    torch.manual_seed(0)
    tokenizer = VideoTokenizer(
        base_channels=8,
        channel_multipliers=(1, 2),
        latent_channels=8,
        temporal_factor=2,
        quantizer_config={"type": "vq", "codebook_size": 16, "kmeans_init": False},
    )
    options = TrainingOptions(
        output=str(tmp_path / "run"),
        max_steps=3,
        batch_size=2,
        progress=False,
        log_every=1,
        eval_every=3,
        checkpoint_every=3,
    )
    trained = train_tokenizer(tokenizer, dataset, options).eval()
    loaded = load_tokenizer(tmp_path / "run")
    assert isinstance(loaded, VideoTokenizer)
    video = dataset[0]["video"][None]
    assert loaded.encode(video).shape == (1, 3, 16, 16)
    assert torch.equal(loaded.encode(video), trained.encode(video))


def test_tensor_video_dataset_labels_must_fit_label_names():
    clips = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    with pytest.raises(ShapeError, match="labels"):
        TensorVideoDataset(clips, labels=[0, 2], label_names=["a", "b"])
    with pytest.raises(ShapeError, match="labels"):
        TensorVideoDataset(clips, labels=[0, -2])
    assert TensorVideoDataset(clips, labels=[1, -1], label_names=["a", "b"]).num_classes == 2
