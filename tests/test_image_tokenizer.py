"""Tests for vqgen.tokenizers.image.ImageTokenizer (DESIGN.md §2, Tokenizer contract).

Covers code and image shapes for downsampling factors 4, 8 and 16 with 1 and 3 channels, each quantizer
type (vq, fsq, rvq with a leading level axis, including a single residual level), ``code_grid``,
``forward`` (TokenizerOutput fields, agreement with encode/decode, gradients), the save_pretrained /
from_pretrained round trip (bit-exact state and codes) and the ShapeError raised for bad input. Models are
tiny (base_channels 8, 16-32 pixel images), so the file runs in a few seconds on CPU.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from vqgen.errors import ConfigError, ShapeError
from vqgen.tokenizers.base import TokenizerOutput
from vqgen.tokenizers.image import ImageTokenizer
from vqgen.tokenizers.quantizers import FiniteScalarQuantizer, ResidualQuantizer, VectorQuantizer

VQ = {"type": "vq", "codebook_size": 16}
FSQ = {"type": "fsq", "levels": [3, 3]}
RVQ = {"type": "rvq", "num_quantizers": 2, "codebook_size": 16}


def _tokenizer(in_channels=1, multipliers=(1, 1, 1), quantizer=None, latent=4, seed=0) -> ImageTokenizer:
    torch.manual_seed(seed)
    return ImageTokenizer(
        in_channels=in_channels,
        base_channels=8,
        channel_multipliers=multipliers,
        num_res_blocks=1,
        latent_channels=latent,
        quantizer_config=dict(quantizer or VQ),
    )


def _images(b=2, c=1, h=16, w=16, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("multipliers", "factor"), [((1, 1, 1), 4), ((1, 2, 1, 1), 8), ((1, 1, 1, 1, 1), 16)]
)
def test_encode_decode_shapes_per_factor(multipliers, factor, channels):
    tok = _tokenizer(channels, multipliers).eval()
    assert tok.downsample_factor == factor
    h, w = 32, 16
    x = _images(2, channels, h, w)
    codes = tok.encode(x)
    assert codes.dtype == torch.long and codes.shape == (2, h // factor, w // factor)
    assert tok.code_grid((channels, h, w)) == (h // factor, w // factor)
    assert codes.min() >= 0 and codes.max() < tok.codebook_size == 16
    assert not codes.requires_grad
    images = tok.decode(codes)
    assert images.shape == (2, channels, h, w) and images.dtype == torch.float32
    assert tok.num_levels == 1


@pytest.mark.parametrize(
    ("config", "kind", "size", "levels"),
    [(VQ, VectorQuantizer, 16, 1), (FSQ, FiniteScalarQuantizer, 9, 1), (RVQ, ResidualQuantizer, 16, 2)],
)
def test_each_quantizer_type(config, kind, size, levels):
    tok = _tokenizer(3, quantizer=config).train()
    assert isinstance(tok.quantizer, kind)
    x = _images(2, 3)
    tok(x)  # one training step (k-means init for the VQ types)
    tok.eval()
    assert tok.codebook_size == size and tok.num_levels == levels
    codes = tok.encode(x)
    grid = (levels, 4, 4) if kind is ResidualQuantizer else (4, 4)
    assert tok.code_grid((3, 16, 16)) == grid
    assert codes.shape == (2, *grid)
    assert codes.min() >= 0 and codes.max() < size
    # decode(encode(x)) is exactly the eval-mode forward reconstruction
    out = tok(x)
    assert torch.equal(out.codes, codes)
    assert torch.allclose(tok.decode(codes), out.reconstruction, atol=1e-5)


def test_rvq_codes_keep_level_axis_and_decode_fewer_levels():
    tok = _tokenizer(1, quantizer={**RVQ, "num_quantizers": 3}).eval()
    x = _images()
    codes = tok.encode(x)
    assert codes.shape == (2, 3, 4, 4)
    coarse = tok.decode(codes[:, :1])
    assert coarse.shape == (2, 1, 16, 16)
    with torch.no_grad():
        expected = tok.decoder(tok.quantizer(tok.encoder(x), num_levels=1).quantized)
    assert torch.allclose(coarse, expected, atol=1e-5)
    with pytest.raises(ShapeError, match="dimensions"):
        tok.decode(codes[:, 0])
    with pytest.raises(ShapeError):
        tok.decode(torch.zeros(2, 4, 4, 4, dtype=torch.long))


def test_single_level_rvq_round_trips():
    # a one-level residual quantizer still returns codes [B, 1, h, w]; code_grid and decode must agree
    tok = _tokenizer(1, quantizer={**RVQ, "num_quantizers": 1}).eval()
    x = _images()
    codes = tok.encode(x)
    assert codes.shape == (2, 1, 4, 4)
    assert tok.code_grid((1, 16, 16)) == (1, 4, 4)
    assert tok.decode(codes).shape == x.shape


def test_forward_returns_tokenizer_output_and_trains():
    tok = _tokenizer(3).train()
    x = _images(2, 3)
    out = tok(x)
    assert isinstance(out, TokenizerOutput)
    assert out.reconstruction.shape == x.shape
    assert out.codes.shape == (2, 4, 4) and out.codes.dtype == torch.long
    assert set(out.losses) == {"quantizer", "perplexity", "usage"}
    for value in out.losses.values():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and torch.isfinite(value)
    assert 0 < out.losses["usage"].item() <= 1
    assert 1 <= out.losses["perplexity"].item() <= 16
    assert out.losses["quantizer"].item() > 0
    loss = F.mse_loss(out.reconstruction, x) + out.losses["quantizer"]
    loss.backward()
    # the straight-through estimator carries the reconstruction gradient into the encoder
    assert tok.encoder.conv_in.weight.grad.abs().sum() > 0
    assert tok.last_layer_weight is tok.decoder.conv_out.weight
    assert tok.last_layer_weight.grad.abs().sum() > 0


def test_save_and_load_round_trip_is_bit_exact(tmp_path):
    tok = _tokenizer(3, quantizer={**VQ, "codebook_dim": 2}).train()
    x = _images(2, 3)
    tok(x)  # k-means init + EMA step, so buffers differ from a fresh model's
    tok.eval()
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file()
    assert list(tmp_path.glob("*.safetensors"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantizer_config"] == {**VQ, "codebook_dim": 2}
    assert config["in_channels"] == 3 and list(config["channel_multipliers"]) == [1, 1, 1]

    loaded = ImageTokenizer.from_pretrained(tmp_path)
    assert not loaded.training
    original, restored = tok.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert restored[name].dtype == tensor.dtype, name
        assert torch.equal(restored[name], tensor), name
    assert bool(loaded.quantizer.initialized)
    codes = tok.encode(x)
    assert torch.equal(loaded.encode(x), codes)
    assert torch.equal(loaded.decode(codes), tok.decode(codes))


def test_save_and_load_residual_tokenizer(tmp_path):
    tok = _tokenizer(1, quantizer=RVQ).train()
    tok(_images())
    tok.eval().save_pretrained(tmp_path)
    loaded = ImageTokenizer.from_pretrained(tmp_path)
    x = _images(seed=5)
    assert loaded.num_levels == 2
    assert torch.equal(loaded.encode(x), tok.encode(x))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.zeros(2, 3, 16, 16), "3 channels.*expects 1"),
        (torch.zeros(2, 1, 18, 16), "divisible.*4"),
        (torch.zeros(2, 1, 16, 6), "divisible.*4"),
        (torch.zeros(1, 16, 16), "4 dimensions"),
        (torch.zeros(2, 1, 16, 16, dtype=torch.long), "float"),
    ],
    ids=["channels", "height", "width", "3d", "int"],
)
def test_bad_images_raise_shape_error(images, message):
    tok = _tokenizer(1).eval()
    with pytest.raises(ShapeError, match=message):
        tok.encode(images)
    with pytest.raises(ShapeError, match=message):
        tok(images)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_images_raise_shape_error(bad):
    tok = _tokenizer(1).eval()
    x = _images()
    x[1, 0, 3, 5] = bad
    with pytest.raises(ShapeError, match="NaN or infinite"):
        tok.encode(x)


@pytest.mark.parametrize("config", [VQ, FSQ, RVQ], ids=["vq", "fsq", "rvq"])
def test_decode_rejects_codes_out_of_range(config):
    tok = _tokenizer(1, quantizer=config).eval()
    codes = tok.encode(_images())
    size = tok.codebook_size
    too_big = codes.clone()
    too_big.view(-1)[0] = size
    with pytest.raises(ShapeError, match=rf"\[0, {size}\)"):
        tok.decode(too_big)
    negative = codes.clone()
    negative.view(-1)[-1] = -1
    with pytest.raises(ShapeError, match=rf"\[0, {size}\)"):
        tok.decode(negative)


def test_decode_rejects_wrong_code_rank_and_type():
    tok = _tokenizer(1).eval()
    with pytest.raises(ShapeError, match="3 dimensions"):
        tok.decode(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ShapeError, match="3 dimensions"):
        tok.decode([[0, 1]])


def test_code_grid_rejects_bad_shapes():
    tok = _tokenizer(3, (1, 1, 1, 1))
    assert tok.code_grid((3, 64, 24)) == (8, 3)
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        tok.code_grid((64, 64))
    with pytest.raises(ShapeError, match="1 channels"):
        tok.code_grid((1, 64, 64))
    with pytest.raises(ShapeError, match="divisible"):
        tok.code_grid((3, 64, 20))


def test_constructor_config_errors():
    with pytest.raises(ConfigError):
        _tokenizer(0)
    with pytest.raises(ConfigError):
        _tokenizer(1, ())
    with pytest.raises(ConfigError):
        _tokenizer(1, quantizer={"type": "nope"})
