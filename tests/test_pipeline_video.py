"""VideoPipeline: output types, seeding, num_frames, frame prediction, save/load, media_shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_prior, make_tokenizer

from vqgen import load_pipeline
from vqgen.errors import CheckpointError, ConfigError, MismatchError, ShapeError
from vqgen.media.video import save_video
from vqgen.pipelines import ImagePipeline, VideoPipeline
from vqgen.pipelines.base import item_generators
from vqgen.pipelines.loading import SHIPPED_PIPELINES, pipeline_class_for
from vqgen.tokenizers.audio import AudioTokenizer
from vqgen.tokenizers.video import VideoTokenizer

GRID = (3, 4, 4)  # 5 frames of 8x8 at temporal factor 2, 2x spatial downsampling


def make_video_tokenizer(seed: int = 0, quantizer: dict | None = None) -> VideoTokenizer:
    torch.manual_seed(seed)
    return VideoTokenizer(
        base_channels=4,
        channel_multipliers=(1, 2),
        latent_channels=4,
        temporal_factor=2,
        quantizer_config=quantizer or {"type": "vq", "codebook_size": 16, "kmeans_init": False},
    ).eval()


@pytest.fixture
def pipe():
    return VideoPipeline(make_video_tokenizer(), make_prior(num_classes=3, grid=GRID), fps=10)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_media_shape_inverts_code_grid():
    video = make_video_tokenizer()
    assert video.media_shape(GRID) == (1, 5, 8, 8) and video.code_grid((1, 5, 8, 8)) == GRID
    residual = make_video_tokenizer(quantizer={"type": "rvq", "num_quantizers": 2, "codebook_size": 16})
    assert residual.media_shape((2, *GRID)) == (1, 5, 8, 8)
    image = make_tokenizer()
    assert image.media_shape((4, 4)) == (1, 8, 8) and image.code_grid((1, 8, 8)) == (4, 4)
    audio = AudioTokenizer(strides=(2, 2), base_channels=4, latent_channels=4)
    assert audio.media_shape((4, 10)) == (1, 40) and audio.code_grid((1, 40)) == (4, 10)
    with pytest.raises(ShapeError, match=r"\(t, h, w\)"):
        video.media_shape((4, 4))


def test_output_types_fps_and_seeding(pipe):
    pt = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(), output_type="pt")
    assert pt.videos.shape == (2, 1, 5, 8, 8) and pt.videos.dtype == torch.float32 and pt.fps == 10.0
    assert pt.videos.abs().max() <= 1
    array = pipe(num_samples=2, class_labels=[0, 2], generator=seeded()).videos  # "np" by default
    assert array.shape == (2, 5, 8, 8, 1) and array.dtype == np.uint8
    expected = np.round((pt.videos[:, 0].numpy() + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(array[..., 0], expected)
    again = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(), output_type="pt").videos
    other = pipe(num_samples=2, class_labels=[0, 2], generator=seeded(1), output_type="pt").videos
    assert torch.equal(pt.videos, again) and not torch.equal(pt.videos, other)
    with pytest.raises(ConfigError, match="output_type must be 'np' or 'pt'"):
        pipe(output_type="pil")


def test_videos_are_decoded_prior_samples(pipe):
    generators = item_generators(seeded(5), 3)  # what one generator becomes: one per sample
    codes = pipe.prior.sample(3, class_labels=1, guidance_scale=2.0, generator=generators)
    expected = pipe.tokenizer.decode(codes).clamp(-1, 1)
    videos = pipe(num_samples=3, class_labels=1, guidance_scale=2.0, generator=seeded(5), output_type="pt")
    torch.testing.assert_close(videos.videos, expected)


def test_num_frames(pipe):
    assert pipe.clip_frames == 5
    short = pipe(num_samples=2, num_frames=3, generator=seeded(2), output_type="pt").videos
    assert short.shape == (2, 1, 3, 8, 8)
    # The causal raster order draws the leading frames exactly as a full-length sample does.
    full = pipe(num_samples=2, generator=seeded(2), output_type="pt").videos
    torch.testing.assert_close(short, full[:, :, :3])
    assert pipe(num_frames=1, generator=seeded(), output_type="pt").videos.shape == (1, 1, 1, 8, 8)
    for bad in (4, 7, 0, 2.0):
        with pytest.raises(ConfigError, match=r"1 \+ n \* 2 frames up to 5 \(1, 3, 5\)"):
            pipe(num_frames=bad)


def test_frame_prediction_keeps_the_prompt_codes(pipe):
    prompt = pipe(num_samples=1, generator=seeded(9), output_type="pt").videos  # [1, 1, 5, 8, 8]
    decoded = []
    original = pipe.tokenizer.decode
    pipe.tokenizer.decode = lambda codes: decoded.append(codes) or original(codes)
    out = pipe(num_samples=3, prompt_frames=prompt, generator=seeded(1), output_type="pt").videos
    codes = decoded[-1]
    # 5 prompt frames, 5 to draw: the first 3 frames (2 latent frames) are kept, the last is drawn.
    prompt_codes = pipe.tokenizer.encode(prompt[:, :, :3])
    assert torch.equal(codes[:, :2], prompt_codes.expand(3, -1, -1, -1))
    assert out.shape == (3, 1, 5, 8, 8)
    # The decoder is causal in time, so the videos open with the decoded prompt frames.
    opening = original(prompt_codes).clamp(-1, 1)
    torch.testing.assert_close(out[:, :, :3], opening.expand(3, -1, -1, -1, -1))
    # A uint8 array [T, H, W, C] or one prompt per sample works too.
    array = ((prompt[0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    both = pipe(num_samples=2, prompt_frames=[array, array], generator=seeded(), output_type="pt").videos
    assert both.shape == (2, 1, 5, 8, 8)
    with pytest.raises(ConfigError, match="one clip or one per sample"):
        pipe(num_samples=3, prompt_frames=[array, array])
    with pytest.raises(ShapeError, match=r"frames of 8x8"):
        pipe(prompt_frames=np.zeros((5, 6, 6, 1), np.uint8))
    with pytest.raises(ConfigError, match="no frame to predict"):
        pipe(num_frames=1, prompt_frames=array)


def test_prompt_from_a_file(pipe, tmp_path):
    clip = pipe(num_samples=1, generator=seeded(3)).videos[0]
    save_video(clip, tmp_path / "prompt.gif", fps=10)  # grey GIF frames are stored exactly
    out = pipe(num_samples=2, prompt_frames=tmp_path / "prompt.gif", generator=seeded(), output_type="pt")
    assert out.videos.shape == (2, 1, 5, 8, 8)


def test_preprocess_and_score(pipe):
    videos = pipe(num_samples=2, generator=seeded(4))
    assert pipe.preprocess(videos.videos).shape == (2, 1, 5, 8, 8)
    scores = pipe.score(videos.videos)
    assert scores.bits_per_dim.shape == (2,) and torch.isfinite(scores.bits_per_token).all()
    with pytest.raises(ShapeError, match="must have 5 frames"):
        pipe.preprocess(videos.videos[:, :3])
    with pytest.raises(ShapeError, match="uint8"):
        pipe.preprocess(videos.videos.astype(np.float32))


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    assert index["_class_name"] == "VideoPipeline" and index["fps"] == 10.0
    assert index["tokenizer"][1] == "VideoTokenizer"
    loaded = load_pipeline(tmp_path / "p")
    assert type(loaded) is VideoPipeline and loaded.fps == 10.0
    direct = VideoPipeline.from_pretrained(tmp_path / "p")
    kwargs = dict(num_samples=2, class_labels=[1, 2], output_type="pt")
    expected = pipe(**kwargs, generator=seeded()).videos
    for other in (loaded, direct):
        torch.testing.assert_close(other(**kwargs, generator=seeded()).videos, expected, rtol=0, atol=0)


def test_defaults_and_refusals():
    assert SHIPPED_PIPELINES["video"] == "video-moving-mnist"
    assert pipeline_class_for(make_video_tokenizer()) is VideoPipeline
    assert pipeline_class_for(make_tokenizer()) is ImagePipeline
    assert VideoPipeline(make_video_tokenizer(), make_prior(grid=GRID)).fps == 8.0
    with pytest.raises(ConfigError, match="fps"):
        VideoPipeline(make_video_tokenizer(), make_prior(grid=GRID), fps=0)
    with pytest.raises(MismatchError, match="cannot make"):
        VideoPipeline(make_video_tokenizer(), make_prior(grid=(4, 4)))
    with pytest.raises(MismatchError):
        ImagePipeline(make_tokenizer(), make_prior(grid=GRID))


def test_missing_shipped_default_is_a_clear_error(monkeypatch, tmp_path):
    from vqgen.pipelines import loading

    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="shipped default 'video' pipeline is not installed"):
        load_pipeline("video")
