"""VideoTokenizer: shapes, causality in time, residual codes, save/load, inflation from an ImageTokenizer."""

from __future__ import annotations

import pytest
import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.loading import load_tokenizer
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.tokenizers.video import VideoTokenizer

VQ = {"type": "vq", "codebook_size": 16, "kmeans_init": False}


def make_video_tokenizer(temporal_factor: int = 4, multipliers=(1, 2), quantizer=None, seed: int = 0):
    torch.manual_seed(seed)
    return VideoTokenizer(
        base_channels=8,
        channel_multipliers=multipliers,
        latent_channels=8,
        temporal_factor=temporal_factor,
        quantizer_config=quantizer or VQ,
    ).eval()


def clip(frames: int, size: int = 8, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, frames, size, size, generator=generator) * 2 - 1


@pytest.mark.parametrize("temporal_factor", [1, 2, 4])
@pytest.mark.parametrize("multipliers", [(1, 2), (1, 2, 2)])
def test_shapes(temporal_factor, multipliers):
    tokenizer = make_video_tokenizer(temporal_factor, multipliers)
    spatial = 2 ** (len(multipliers) - 1)
    frames = 1 + 2 * temporal_factor
    video = clip(frames)
    out = tokenizer(video)
    grid = (3, 8 // spatial, 8 // spatial)
    assert tokenizer.downsample_factor == spatial and tokenizer.temporal_factor == temporal_factor
    assert tokenizer.code_grid((1, frames, 8, 8)) == grid
    assert out.codes.shape == (2, *grid) and out.codes.dtype == torch.long
    assert out.reconstruction.shape == video.shape
    assert set(out.losses) == {"quantizer", "perplexity", "usage"}
    codes = tokenizer.encode(video)
    assert torch.equal(codes, out.codes)
    assert tokenizer.decode(codes).shape == video.shape
    assert tokenizer.codebook_size == 16 and tokenizer.num_levels == 1
    assert tokenizer.last_layer_weight is tokenizer.decoder.conv_out.weight


def test_single_frame_is_a_one_frame_video():
    tokenizer = make_video_tokenizer(4, (1, 2, 2))
    image = clip(1)
    codes = tokenizer.encode(image)
    assert codes.shape == (2, 1, 2, 2)
    assert tokenizer.decode(codes).shape == (2, 1, 1, 8, 8)


@pytest.mark.parametrize("temporal_factor", [1, 2, 4])
def test_causal_in_time(temporal_factor):
    tokenizer = make_video_tokenizer(temporal_factor, (1, 2))
    frames = 1 + 2 * temporal_factor
    video = clip(frames, batch=1)
    latents = tokenizer.encoder(video)
    for t in range(frames - 1):
        changed = video.clone()
        changed[:, :, t + 1 :] = clip(frames - t - 1, batch=1, seed=t + 1)
        new = tokenizer.encoder(changed)
        # Latent frame j sees input frames <= j * temporal_factor.
        kept = t // temporal_factor + 1
        assert torch.equal(new[:, :, :kept], latents[:, :, :kept]), t
        assert torch.equal(tokenizer.encode(changed)[:, :kept], tokenizer.encode(video)[:, :kept])
        if kept < latents.shape[2]:
            assert not torch.equal(new[:, :, kept:], latents[:, :, kept:])


def test_residual_codes_shape():
    rvq = {"type": "rvq", "num_quantizers": 3, "codebook_size": 8, "kmeans_init": False}
    tokenizer = make_video_tokenizer(2, (1, 2), quantizer=rvq)
    video = clip(5)
    codes = tokenizer.encode(video)
    assert codes.shape == (2, 3, 3, 4, 4) == (2, *tokenizer.code_grid((1, 5, 8, 8)))
    assert tokenizer.num_levels == 3
    assert tokenizer.decode(codes).shape == video.shape
    assert tokenizer(video).codes.shape == codes.shape


def test_fsq_works():
    tokenizer = make_video_tokenizer(2, (1, 2), quantizer={"type": "fsq", "levels": [3, 3, 3]})
    assert tokenizer.codebook_size == 27
    assert tokenizer.encode(clip(3)).shape == (2, 2, 4, 4)


def test_save_load_round_trip(tmp_path):
    tokenizer = make_video_tokenizer(2, (1, 2))
    video = clip(5)
    tokenizer.save_pretrained(tmp_path / "video")
    loaded = load_tokenizer(tmp_path / "video")
    assert isinstance(loaded, VideoTokenizer)
    assert loaded.temporal_factor == 2
    assert torch.equal(loaded.encode(video), tokenizer.encode(video))
    codes = tokenizer.encode(video)
    assert torch.equal(loaded.decode(codes), tokenizer.decode(codes))


def test_inflated_from_image_tokenizer_reproduces_image_codes():
    torch.manual_seed(0)
    image_tokenizer = ImageTokenizer(
        base_channels=8, channel_multipliers=(1, 2), latent_channels=8, quantizer_config=VQ
    ).eval()
    # Perturb every weight so the test does not rely on default initial values.
    with torch.no_grad():
        for parameter in image_tokenizer.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    images = clip(1)[:, :, 0]
    for temporal_factor in (1, 4):
        video_tokenizer = VideoTokenizer.from_image_tokenizer(
            image_tokenizer, temporal_factor=temporal_factor
        )
        assert not video_tokenizer.training
        one_frame = images[:, :, None]
        assert torch.equal(video_tokenizer.encode(one_frame)[:, 0], image_tokenizer.encode(images))
        decoded = video_tokenizer.decode(video_tokenizer.encode(one_frame))[:, :, 0]
        torch.testing.assert_close(decoded, image_tokenizer.decode(image_tokenizer.encode(images)))
    # Every frame of a static clip starts out tokenized like the image (factor 1: one latent per frame).
    static = images[:, :, None].repeat(1, 1, 3, 1, 1)
    codes = VideoTokenizer.from_image_tokenizer(image_tokenizer, temporal_factor=1).encode(static)
    assert all(torch.equal(codes[:, t], image_tokenizer.encode(images)) for t in range(3))


def test_bad_input_is_refused():
    tokenizer = make_video_tokenizer(4, (1, 2))
    with pytest.raises(ShapeError, match="6 frames"):
        tokenizer.encode(clip(6))
    with pytest.raises(ShapeError, match="6 frames"):
        tokenizer.code_grid((1, 6, 8, 8))
    with pytest.raises(ShapeError, match="7x8"):
        tokenizer.code_grid((1, 5, 7, 8))
    with pytest.raises(ShapeError, match="3 channels"):
        tokenizer.encode(torch.zeros(1, 3, 5, 8, 8))
    with pytest.raises(ShapeError, match="5 dimensions"):
        tokenizer.encode(torch.zeros(1, 1, 8, 8))
    bad = clip(5)
    bad[0, 0, 2, 3, 3] = float("nan")
    with pytest.raises(ShapeError, match="NaN"):
        tokenizer.encode(bad)
    with pytest.raises(ShapeError, match="dimensions"):
        tokenizer.decode(torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ConfigError, match="temporal_factor"):
        VideoTokenizer(temporal_factor=3)
