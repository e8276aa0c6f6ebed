"""The pitched-notes codec (``AudioTokenizer(frontend="stft-harmonic")``): its pitch level, its harmonic-plus-noise
decoder, and that it keeps the pitch of a tone by construction (untrained)."""

from __future__ import annotations

import math

import pytest
import torch

from vqgen.errors import ConfigError
from vqgen.evaluation.pitch import cents_between, estimate_f0
from vqgen.loading import load_tokenizer
from vqgen.tokenizers import AudioTokenizer
from vqgen.tokenizers.layers import HarmonicDecoder1d, PitchCoder

RATE, HOP = 16000, 320


def harmonic_tone(frequency: float, samples: int = 16000) -> torch.Tensor:
    """Harmonics 1, 2, 3 at amplitudes 0.3, 0.15, 0.1: ``[1, 1, samples]``."""
    angle = 2 * math.pi * frequency * torch.arange(samples) / RATE
    return sum(0.3 / k * torch.sin(k * angle) for k in (1, 2, 3)).view(1, 1, -1)


def harmonic_tokenizer(levels: int = 2, codebook_size: int = 64, **options) -> AudioTokenizer:
    torch.manual_seed(0)
    return AudioTokenizer(
        sample_rate=RATE,
        strides=(HOP,),
        max_channels=16,
        latent_channels=8,
        dilations=(1,),
        quantizer_config={"type": "rvq", "num_quantizers": levels, "codebook_size": codebook_size},
        frontend="stft-harmonic",
        **options,
    ).eval()


def make_audible(decoder: HarmonicDecoder1d) -> HarmonicDecoder1d:
    """A fixed head: harmonic amplitude 0.4 (``exp_sigmoid(0)``), harmonic k weighted ``exp(-k / 2)`` (a plain
    timbre; equal weights make a pulse train YIN reads a twelfth low)."""
    with torch.no_grad():
        head = decoder.conv_out.conv
        head.weight.zero_()
        head.bias.zero_()
        head.bias[0] = 3.0  # undoes the amplitude's -3 start offset
        head.bias[1:65] = -0.5 * torch.arange(64.0)
    return decoder


def audible(tokenizer: AudioTokenizer) -> AudioTokenizer:
    make_audible(tokenizer.decoder)
    return tokenizer


def test_pitch_codes_round_trip_within_half_a_step():
    coder = PitchCoder(RATE, HOP, codebook_size=1024)
    f0 = torch.tensor([[30.0, 55.0, 261.63, 1760.0, 2000.0]])
    back = coder.decode(coder.f0_to_codes(f0))
    half_step = 1200 * math.log2(2000 / 30) / (1024 - 2) / 2
    assert cents_between(back, f0).abs().max() <= half_step + 1e-3
    codes = coder.f0_to_codes(torch.tensor([[math.nan, 0.0, 10.0, 5000.0]]))
    assert codes.tolist() == [[0, 0, 1, 1023]]  # unvoiced, unvoiced, clamped to fmin and fmax
    assert coder.decode(torch.tensor([[0]])).item() == 0.0
    with pytest.raises(ConfigError, match="at least 3 codes"):
        PitchCoder(RATE, HOP, codebook_size=2)


def test_decoder_synthesises_the_given_pitch_without_aliasing():
    """Whatever the network says, the harmonics sit on f0: the output's f0 is the given one; at f0 = 3 kHz only
    harmonics 1 and 2 sound (the 3rd, 9 kHz, would alias to 7 kHz); unvoiced frames give noise only, the same
    on every call."""
    decoder = make_audible(HarmonicDecoder1d(1, HOP, 8, RATE, width=16, dilations=(1,)))
    z = torch.zeros(1, 8, 50)
    audio = decoder(z, torch.full((1, 50), 220.0))
    assert abs(float(cents_between(estimate_f0(audio, RATE), 220.0))) < 5
    high = decoder(z, torch.full((1, 50), 3000.0))[0, 0]
    spectrum = torch.fft.rfft(high * torch.hann_window(high.shape[-1])).abs()
    frequencies = torch.fft.rfftfreq(high.shape[-1], 1 / RATE)
    near = lambda f: spectrum[(frequencies - f).abs() < 50].max()  # noqa: E731
    assert near(3000) > 100 * near(7000) and near(6000) > 100 * near(7000)
    unvoiced = decoder(z, torch.zeros(1, 50))
    torch.testing.assert_close(unvoiced, decoder(z, torch.zeros(1, 50)))
    assert unvoiced.abs().max() < 1e-2  # the noise starts 5 below the harmonics' offset: near silence


@pytest.mark.parametrize("frequency", [65.41, 261.63, 880.0])
def test_untrained_codec_keeps_the_pitch_of_a_tone(frequency):
    """Level 0 holds the tracked pitch, so decode(encode(x)) keeps it before any training, at every level count
    (a 64-code pitch level has 117-cent steps: the codebook sets the resolution)."""
    tokenizer = audible(harmonic_tokenizer(levels=2, codebook_size=1024))  # pitch steps of 7 cents
    tone = harmonic_tone(frequency)
    codes = tokenizer.encode(tone)
    assert codes.shape == (1, 3, 50) and tokenizer.num_levels == 3
    for levels in (1, 3):
        out = tokenizer.decode(codes[:, :levels])
        assert out.shape == tone.shape
        cents = float(cents_between(estimate_f0(out, RATE), frequency))
        assert abs(cents) < 10, f"{levels} levels: {cents:+.1f} cents"


@pytest.mark.parametrize("samples", [320, 333, 8000])
def test_shapes_levels_and_training_forward(samples):
    tokenizer = harmonic_tokenizer(levels=2)
    audio = harmonic_tone(220.0, samples).repeat(2, 1, 1)
    frames = math.ceil(samples / HOP)
    codes = tokenizer.encode(audio)
    assert codes.shape == (2, 3, frames) and tokenizer.encode(audio, num_levels=1).shape == (2, 1, frames)
    assert tokenizer.decode(codes).shape == (2, 1, frames * HOP)
    assert tokenizer.bitrate() == pytest.approx(50 * 3 * 6)
    tokenizer.train()
    out = tokenizer(audio)
    assert out.reconstruction.shape == audio.shape and out.codes.shape == (2, 3, frames)
    (out.reconstruction.square().mean() + out.losses["quantizer"]).backward()
    assert tokenizer.decoder.conv_out.conv.weight.grad.abs().sum() > 0
    assert tokenizer.encoder.conv_in.weight.grad.abs().sum() > 0


def test_save_load_keeps_the_pitch_range(tmp_path):
    tokenizer = harmonic_tokenizer(pitch_range=(40.0, 1000.0))
    tokenizer.save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert tuple(loaded.config.pitch_range) == (40.0, 1000.0) and loaded.pitch.fmax == 1000.0
    tone = harmonic_tone(220.0)
    torch.testing.assert_close(
        loaded.eval().decode(loaded.encode(tone)), tokenizer.eval().decode(tokenizer.encode(tone))
    )


def test_bad_pitch_range_is_one_line():
    with pytest.raises(ConfigError, match=r"^pitch_range must be 0 < fmin < fmax <= sample_rate / 2"):
        AudioTokenizer(frontend="stft-harmonic", strides=(HOP,), pitch_range=(100.0, 50.0))


def test_the_command_line_offers_every_frontend():
    from vqgen.media import get_medium
    from vqgen.tokenizers.audio import AUDIO_FRONTENDS

    flags = get_medium("audio").flags["train-tokenizer"]
    (frontend,) = [flag for flag in flags if flag.name == "--frontend"]
    assert tuple(frontend.settings["choices"]) == AUDIO_FRONTENDS
