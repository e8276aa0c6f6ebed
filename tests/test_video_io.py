"""Video files: MP4 (H.264) and GIF round trips, bad files, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.media.video import load_video, save_video


def smooth_clip(frames: int = 9, height: int = 32, width: int = 48, channels: int = 3) -> np.ndarray:
    """A slowly moving smooth colour pattern, uint8 ``[T, H, W, C]``."""
    rows, cols = np.mgrid[0:height, 0:width]
    clip = [
        np.stack(
            [
                128 + 100 * np.sin((cols + 2 * t) / 8) * np.cos(rows / 10),
                128 + 80 * np.cos((rows + t) / 9),
                np.full((height, width), 90.0),
            ],
            axis=-1,
        )
        for t in range(frames)
    ]
    return np.stack(clip).astype(np.uint8)[..., :channels]


def test_mp4_round_trip(tmp_path):
    clip = smooth_clip()
    path = save_video(clip, tmp_path / "clip.mp4", fps=10)
    frames, fps = load_video(path)
    assert frames.shape == clip.shape and frames.dtype == np.uint8
    assert fps == pytest.approx(10.0)
    error = np.abs(frames.astype(int) - clip.astype(int))
    assert error.mean() < 6 and np.percentile(error, 99) < 30  # lossy, but close on a smooth pattern


def test_mp4_grey_round_trip_and_odd_sizes_are_padded(tmp_path):
    grey = smooth_clip(5, channels=1)
    frames, _ = load_video(save_video(grey, tmp_path / "grey.mp4", fps=8), channels=1)
    assert frames.shape == grey.shape
    assert np.abs(frames.astype(int) - grey.astype(int)).mean() < 4
    odd = smooth_clip(3, 31, 47)
    frames, _ = load_video(save_video(odd, tmp_path / "odd.mp4", fps=8))
    assert frames.shape == (3, 32, 48, 3)  # padded to even sizes for yuv420p


def test_gif_round_trip(tmp_path):
    clip = smooth_clip()
    frames, fps = load_video(save_video(clip, tmp_path / "clip.gif", fps=10))
    assert frames.shape == clip.shape
    assert fps == pytest.approx(10.0)
    error = np.abs(frames.astype(int) - clip.astype(int))
    assert error.mean() < 4 and error.max() < 40  # 256-colour palette
    grey = smooth_clip(4, channels=1)
    frames, _ = load_video(save_video(grey[..., 0], tmp_path / "grey.gif", fps=5), channels=1)
    assert np.array_equal(frames, grey)  # grey GIFs are exact
    static = np.repeat(clip[:1], 4, axis=0)  # repeated frames are kept, not merged
    assert load_video(save_video(static, tmp_path / "static.gif", fps=10))[0].shape == static.shape


def test_fps_resampling_and_max_frames(tmp_path):
    path = save_video(smooth_clip(10), tmp_path / "clip.mp4", fps=10)
    assert load_video(path, max_frames=4)[0].shape[0] == 4
    frames, fps = load_video(path, fps=5)
    assert fps == 5.0 and frames.shape[0] == 5
    frames, fps = load_video(path, fps=20, max_frames=7)
    assert frames.shape[0] == 7


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 20])
@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm"])
def test_bad_files_raise_data_error(tmp_path, content, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(DataError, match="bad") as info:
        load_video(path)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        load_video(tmp_path / "missing.mp4")


def test_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(ShapeError):
        save_video(np.zeros((2, 8, 8, 3), dtype=np.float32), tmp_path / "x.mp4", fps=8)
    with pytest.raises(ConfigError):
        save_video(np.zeros((2, 8, 8, 3), dtype=np.uint8), tmp_path / "x.avi", fps=8)
    with pytest.raises(ConfigError):
        save_video(np.zeros((2, 8, 8, 3), dtype=np.uint8), tmp_path / "x.mp4", fps=0)
    assert list(tmp_path.iterdir()) == []


def test_failing_encoder_leaves_no_file_and_keeps_old_one(tmp_path, monkeypatch):
    import av

    target = tmp_path / "clip.mp4"
    save_video(smooth_clip(3), target, fps=8)
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise av.error.FFmpegError(1, "encoder exploded")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", broken)
    with pytest.raises(DataError, match="clip.mp4"):
        save_video(smooth_clip(3), target, fps=8)
    with pytest.raises(DataError, match="new.gif"):
        save_video(smooth_clip(3, channels=1), tmp_path / "new.gif", fps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert target.read_bytes() == before


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "libvpx"), (".avi", "mpeg4")])
def test_reads_webm_and_avi(tmp_path, suffix, codec):
    import av

    clip = smooth_clip(5)
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames, fps = load_video(path)
    assert frames.shape == clip.shape and fps == pytest.approx(8.0)
    assert np.abs(frames.astype(int) - clip.astype(int)).mean() < 12
