"""AudioTokenizer: shapes, causality, variable bitrate, save/load, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from vqgen.errors import ConfigError, ShapeError
from vqgen.loading import load_tokenizer
from vqgen.tokenizers import AudioTokenizer
from vqgen.tokenizers.layers import NormActivation1d, PaddedConv1d, StridedConvDecoder1d, StridedConvEncoder1d


def make_audio_tokenizer(
    strides=(2, 4), causal=False, in_channels=1, levels=3, codebook_size=16, seed=0, **kwargs
) -> AudioTokenizer:
    torch.manual_seed(seed)
    return AudioTokenizer(
        in_channels=in_channels,
        sample_rate=8000,
        strides=strides,
        base_channels=4,
        max_channels=16,
        latent_channels=8,
        dilations=(1, 3),
        causal=causal,
        quantizer_config={
            "type": "rvq",
            "num_quantizers": levels,
            "codebook_size": codebook_size,
            "quantizer_dropout": 0.5,
            "kmeans_init": False,
        },
        **kwargs,
    ).eval()


def waves(batch=2, channels=1, samples=96, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, samples, generator=generator) * 2 - 1


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("strides", [(2,), (2, 4), (3, 5), (2, 2, 2)])
def test_shapes(strides, causal):
    tokenizer = make_audio_tokenizer(strides, causal)
    hop = math.prod(strides)
    assert tokenizer.downsample_factor == hop
    x = waves(samples=hop * 6)
    codes = tokenizer.encode(x)
    assert codes.dtype == torch.long and codes.shape == (2, 3, 6)
    assert tokenizer.code_grid((1, hop * 6)) == (3, 6)
    assert tokenizer.decode(codes).shape == x.shape
    out = tokenizer(x)
    assert out.reconstruction.shape == x.shape
    assert torch.equal(out.codes, codes)
    assert set(out.losses) == {"quantizer", "perplexity", "usage"}


def test_length_not_divisible_by_hop_is_padded():
    tokenizer = make_audio_tokenizer((2, 4))
    x = waves(samples=8 * 5 + 3)
    codes = tokenizer.encode(x)
    assert codes.shape == (2, 3, 6) and tokenizer.code_grid((1, 43)) == (3, 6)
    assert tokenizer.decode(codes).shape == (2, 1, 48)
    assert tokenizer(x).reconstruction.shape == x.shape
    padded = torch.nn.functional.pad(x, (0, 5))
    assert torch.equal(tokenizer.encode(padded), codes)


def test_stereo():
    tokenizer = make_audio_tokenizer(in_channels=2)
    x = waves(channels=2, samples=64)
    assert tokenizer.decode(tokenizer.encode(x)).shape == (2, 2, 64)


ARCHITECTURES = [
    pytest.param({}, id="channel-elu"),
    pytest.param({"norm": "weight", "activation": "snake"}, id="weight-snake"),
    pytest.param({"norm": "none", "activation": "elu"}, id="none-elu"),
]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("strides", [(2, 4), (3, 2)])
def test_causal_output_ignores_the_future(strides, architecture):
    tokenizer = make_audio_tokenizer(strides, causal=True, **architecture)
    hop = tokenizer.downsample_factor
    x = waves(batch=1, samples=hop * 10)
    cut = hop * 6  # a frame boundary: frames < 6 see only samples < cut
    changed = x.clone()
    changed[..., cut:] = torch.randn_like(changed[..., cut:])
    with torch.no_grad():
        a, b = tokenizer(x), tokenizer(changed)
    assert torch.equal(a.codes[..., :6], b.codes[..., :6])
    assert torch.allclose(a.reconstruction[..., :cut], b.reconstruction[..., :cut], atol=1e-6)
    # Sanity: the change is visible to the encoder from frame 6 on (the codes may still coincide).
    with torch.no_grad():
        za, zb = tokenizer.encoder(x), tokenizer.encoder(changed)
    assert torch.allclose(za[..., :6], zb[..., :6], atol=1e-6)
    assert not torch.allclose(za[..., 6:], zb[..., 6:])


def test_non_causal_output_sees_the_future():
    tokenizer = make_audio_tokenizer((2, 4), causal=False)
    x = waves(batch=1, samples=80)
    changed = x.clone()
    changed[..., 48:] = 0.0
    with torch.no_grad():
        a, b = tokenizer(x).reconstruction, tokenizer(changed).reconstruction
    assert not torch.allclose(a[..., 40:48], b[..., 40:48])


def test_causal_padded_conv_layer():
    torch.manual_seed(0)
    conv = PaddedConv1d(1, 2, 8, stride=4, causal=True)
    x = torch.randn(1, 1, 32)
    y = conv(x)
    assert y.shape == (1, 2, 8)
    x2 = x.clone()
    x2[..., 20:] = 5.0
    assert torch.equal(conv(x2)[..., :5], y[..., :5])  # output i sees samples < 4 * (i + 1)


def test_encoder_decoder_blocks_shapes():
    enc = StridedConvEncoder1d(1, 4, (2, 5), 6, dilations=(1,))
    dec = StridedConvDecoder1d(1, 4, (2, 5), 6, dilations=(1,))
    z = enc(torch.randn(2, 1, 100))
    assert z.shape == (2, 6, 10)
    assert dec(z).shape == (2, 1, 100)


def test_fewer_levels():
    tokenizer = make_audio_tokenizer()
    x = waves(samples=64)
    full = tokenizer.encode(x)
    for levels in (1, 2):
        codes = tokenizer.encode(x, num_levels=levels)
        assert codes.shape == (2, levels, 8)
        assert torch.equal(codes, full[:, :levels])
        assert tokenizer.decode(codes).shape == x.shape
    assert tokenizer(x, num_levels=1).codes.shape == (2, 1, 8)
    with pytest.raises(ConfigError):
        tokenizer.encode(x, num_levels=4)
    with pytest.raises(ShapeError):
        tokenizer.decode(torch.zeros(2, 4, 8, dtype=torch.long))
    with pytest.raises(ShapeError):
        tokenizer.decode(torch.full((2, 1, 8), 16, dtype=torch.long))


def test_decode_in_bfloat16_follows_the_decoder_dtype():
    """A pipeline cast to bf16 (``--dtype bfloat16``) decodes: the float32 codebook vectors take the decoder's
    dtype, and the audio is close to the float32 decode."""
    tokenizer = make_audio_tokenizer()
    codes = tokenizer.encode(waves(samples=64))
    full = tokenizer.decode(codes)
    half = tokenizer.to(torch.bfloat16).decode(codes)
    assert half.dtype == torch.bfloat16 and half.shape == full.shape
    assert float((half.float() - full).norm() / full.norm()) < 0.05


def test_bitrate_and_frame_rate():
    tokenizer = AudioTokenizer(
        base_channels=2, max_channels=4, latent_channels=4, dilations=(1,), strides=(2, 4, 5, 8)
    )
    assert tokenizer.downsample_factor == 320
    assert tokenizer.frame_rate == 50.0
    assert tokenizer.num_levels == 4 and tokenizer.codebook_size == 256
    assert tokenizer.bitrate() == 50 * 4 * 8
    assert tokenizer.bitrate(1) == 400.0
    with pytest.raises(ConfigError):
        tokenizer.bitrate(5)
    assert tokenizer.code_grid((1, 16000)) == (4, 50)


def test_plain_vq_gets_a_level_axis():
    torch.manual_seed(0)
    tokenizer = AudioTokenizer(
        strides=(2, 2),
        base_channels=4,
        latent_channels=4,
        dilations=(1,),
        quantizer_config={"type": "vq", "codebook_size": 8, "kmeans_init": False},
    ).eval()
    x = waves(samples=32)
    codes = tokenizer.encode(x)
    assert codes.shape == (2, 1, 8) and tokenizer.num_levels == 1
    assert tokenizer.decode(codes).shape == x.shape


def test_architecture_options_change_the_blocks():
    keys = set(make_audio_tokenizer().state_dict())
    # The first codecs' parameter names stay loadable: LayerNorm directly under each block's norm.
    assert "decoder.norm_out.norm.weight" in keys and not any("alpha" in k for k in keys)
    weight_snake = make_audio_tokenizer(norm="weight", activation="snake").train()
    keys = set(weight_snake.state_dict())
    assert "decoder.conv_out.conv.parametrizations.weight.original0" in keys
    assert "decoder.norm_out.activation.alpha" in keys and not any(k.endswith("norm.weight") for k in keys)
    out = weight_snake(waves(samples=64))
    (out.reconstruction.pow(2).mean() + out.losses["quantizer"]).backward()
    assert weight_snake.decoder.norm_out.activation.alpha.grad is not None
    # The channel norm removes each position's amplitude (x and 3x look alike); without it, it is kept.
    x = torch.randn(1, 8, 5)
    channel, plain = NormActivation1d(8, "channel"), NormActivation1d(8, "none", "snake")
    with torch.no_grad():
        assert torch.allclose(channel(x), channel(3 * x), atol=1e-4)
        assert not torch.allclose(plain(x), plain(3 * x), atol=1e-2)


def test_training_mode_backward():
    tokenizer = make_audio_tokenizer().train()
    out = tokenizer(waves(samples=64))
    (out.reconstruction.pow(2).mean() + out.losses["quantizer"]).backward()
    assert tokenizer.encoder.conv_in.weight.grad is not None
    assert tokenizer.last_layer_weight.grad is not None


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("causal", [False, True])
def test_save_load_round_trip_is_bit_exact(tmp_path, causal, architecture):
    tokenizer = make_audio_tokenizer(causal=causal, **architecture).train()
    tokenizer(waves(samples=64))  # update EMA codebooks so buffers differ from the initialisation
    tokenizer.eval()
    tokenizer.save_pretrained(tmp_path / "tok")
    loaded = AudioTokenizer.from_pretrained(tmp_path / "tok").eval()
    generic = load_tokenizer(tmp_path / "tok")
    assert isinstance(generic, AudioTokenizer)
    assert loaded.config.causal == causal and tuple(loaded.config.strides) == (2, 4)
    assert loaded.config.norm == architecture.get("norm", "channel")
    x = waves(samples=72, seed=3)
    codes = tokenizer.encode(x)
    for other in (loaded, generic):
        assert torch.equal(other.encode(x), codes)
        assert torch.equal(other.decode(codes), tokenizer.decode(codes))


def test_bad_input():
    tokenizer = make_audio_tokenizer()
    with pytest.raises(ShapeError, match="channels"):
        tokenizer.encode(waves(channels=2))
    bad = waves()
    bad[0, 0, 5] = float("nan")
    with pytest.raises(ShapeError, match="NaN"):
        tokenizer.encode(bad)
    with pytest.raises(ShapeError, match="dimensions"):
        tokenizer.encode(torch.zeros(2, 64))
    with pytest.raises(ShapeError):
        tokenizer(torch.zeros(2, 64))
    with pytest.raises(ShapeError):
        tokenizer.encode(torch.zeros(2, 1, 64, dtype=torch.long))
    with pytest.raises(ShapeError):
        tokenizer.decode(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ShapeError):
        tokenizer.code_grid((1, 2, 64))


def test_bad_config():
    with pytest.raises(ConfigError, match="norm must be one of channel, weight, none, got 'batch'"):
        AudioTokenizer(norm="batch")
    with pytest.raises(ConfigError, match="activation must be one of elu, snake, got 'relu'"):
        AudioTokenizer(activation="relu")
    with pytest.raises(ConfigError):
        AudioTokenizer(strides=())
    with pytest.raises(ConfigError):
        AudioTokenizer(strides=(2, 0))
    with pytest.raises(ConfigError):
        AudioTokenizer(in_channels=0)
