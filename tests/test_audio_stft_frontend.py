"""AudioTokenizer with ``frontend="stft"``: frame alignment, shapes, save/load, old configs, and a short fit
that must keep the pitch of a tone pair."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vqgen.errors import ConfigError
from vqgen.loading import load_tokenizer
from vqgen.tokenizers import AudioTokenizer
from vqgen.tokenizers.layers import STFTDecoder1d, STFTEncoder1d, stft_sizes
from vqgen.tokenizers.losses.spectral import MultiResolutionSTFTLoss

QUANTIZER = {
    "type": "rvq",
    "num_quantizers": 3,
    "codebook_size": 16,
    "quantizer_dropout": 0.5,
    "kmeans_init": False,
}


def make_stft_tokenizer(in_channels=1, strides=(2, 4), seed=0, **kwargs) -> AudioTokenizer:
    torch.manual_seed(seed)
    options = dict(
        in_channels=in_channels,
        sample_rate=8000,
        strides=strides,
        max_channels=16,
        latent_channels=8,
        dilations=(1, 3),
        quantizer_config=QUANTIZER,
        frontend="stft",
    )
    options.update(kwargs)
    return AudioTokenizer(**options).eval()


@pytest.mark.parametrize("frontend", ["stft", "stft-advance", "stft-magnitude"])
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("samples", [8, 9, 95, 96, 101])
def test_shapes_for_any_length(in_channels, samples, frontend):
    tokenizer = make_stft_tokenizer(in_channels, frontend=frontend)
    audio = torch.rand(2, in_channels, samples) * 2 - 1
    frames = math.ceil(samples / 8)
    codes = tokenizer.encode(audio)
    assert codes.shape == (2, 3, frames) and codes.dtype == torch.long
    assert tokenizer.code_frames(samples) == frames
    assert tokenizer.decode(codes).shape == (2, in_channels, frames * 8)
    assert tokenizer.media_shape(tuple(codes.shape[1:])) == (in_channels, frames * 8)
    out = tokenizer(audio)
    assert out.reconstruction.shape == audio.shape and torch.isfinite(out.reconstruction).all()
    assert tokenizer.decode(codes[:, :1]).shape == (2, in_channels, frames * 8)  # fewer levels


def test_no_transposed_or_strided_convolutions():
    tokenizer = make_stft_tokenizer()
    assert isinstance(tokenizer.encoder, STFTEncoder1d) and isinstance(tokenizer.decoder, STFTDecoder1d)
    convs = [m for m in tokenizer.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    assert convs and all(isinstance(m, torch.nn.Conv1d) and m.stride == (1,) for m in convs)
    assert tokenizer.downsample_factor == 8 and tokenizer.frame_rate == 1000
    assert (tokenizer.encoder.n_fft, tokenizer.encoder.hop) == (32, 8) and stft_sizes(320) == (1280, 641)


def test_frames_align_with_the_inverse_stft():
    """The encoder keeps the first S / hop of the S / hop + 1 centred frames, and the decoder's inverse STFT of
    exactly those frames gives back the S samples (up to float error)."""
    encoder = STFTEncoder1d(2, hop=8, latent_channels=4, width=8)
    audio = torch.rand(3, 2, 80) * 2 - 1
    features = encoder.features(audio)
    bins = stft_sizes(8)[1]
    assert features.shape == (3, 2 * 3 * bins, 10)
    log_magnitude, cosine, sine = features.reshape(3 * 2, 3, bins, 10).unbind(1)
    spectrum = torch.polar(log_magnitude.exp() - 1e-5, torch.atan2(sine, cosine))
    window = torch.hann_window(32)
    back = torch.istft(spectrum, 32, hop_length=8, window=window, center=True, normalized=True, length=80)
    torch.testing.assert_close(back.reshape(3, 2, 80), audio, atol=1e-4, rtol=0)
    short = torch.rand(1, 2, 8) * 2 - 1  # one frame: shorter than half a window, zero-padded
    assert encoder.features(short).shape == (1, 2 * 3 * bins, 1)


def test_decoder_phase_pair_sets_magnitude_and_phase():
    decoder = STFTDecoder1d(1, hop=8, latent_channels=4, width=8)
    with torch.no_grad():
        spectrum = decoder.spectrum(torch.randn(2, 4, 5))
    assert spectrum.shape == (2, stft_sizes(8)[1], 5) and spectrum.dtype == torch.complex64
    assert float(spectrum.abs().max()) <= 100.0 + 1e-3


def test_gradients_reach_every_part():
    tokenizer = make_stft_tokenizer(2, activation="snake", norm="weight").train()
    audio = torch.rand(2, 2, 61) * 2 - 1
    out = tokenizer(audio)
    ((out.reconstruction - audio).abs().mean() + out.losses["quantizer"]).backward()
    for name, parameter in [*tokenizer.encoder.named_parameters(), *tokenizer.decoder.named_parameters()]:
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name


def test_save_load_round_trip(tmp_path):
    tokenizer = make_stft_tokenizer(2)
    tokenizer.save_pretrained(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "config.json").read_text())["frontend"] == "stft"
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded.decoder, STFTDecoder1d)
    audio = torch.rand(1, 2, 77) * 2 - 1
    codes = tokenizer.encode(audio)
    assert torch.equal(loaded.encode(audio), codes)
    assert torch.equal(loaded.decode(codes), tokenizer.decode(codes))


def test_config_without_frontend_loads_as_the_waveform_codec(tmp_path):
    torch.manual_seed(0)
    tokenizer = AudioTokenizer(strides=(2, 4), base_channels=4, max_channels=16, latent_channels=8).eval()
    tokenizer.save_pretrained(tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    config = json.loads(path.read_text())
    assert config.pop("frontend") == "waveform"
    path.write_text(json.dumps(config))
    loaded = load_tokenizer(tmp_path / "old")
    assert loaded.config.frontend == "waveform" and type(loaded.decoder).__name__ == "StridedConvDecoder1d"
    audio = torch.rand(1, 1, 64) * 2 - 1
    assert torch.equal(loaded(audio).reconstruction, tokenizer(audio).reconstruction)
    torch.manual_seed(0)  # the default builds the same weights in the same order as before the option
    rebuilt = AudioTokenizer(strides=(2, 4), base_channels=4, max_channels=16, latent_channels=8)
    state = rebuilt.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in tokenizer.state_dict().items())


def test_bad_frontend_is_refused_in_one_line():
    with pytest.raises(
        ConfigError,
        match=r"^frontend must be one of waveform, stft, stft-advance, stft-magnitude, stft-harmonic, parametric-harmonic, got 'mel'$",
    ):
        AudioTokenizer(frontend="mel")
    with pytest.raises(ConfigError, match="causal=True needs frontend='waveform'"):
        AudioTokenizer(frontend="stft", causal=True)


def tone_tokenizer(frontend: str) -> AudioTokenizer:
    """The codec the tone fits train: 16 kHz, hop 160 (100 frames/s), width 64, 2 levels of 64 codes."""
    torch.manual_seed(0)
    return AudioTokenizer(
        sample_rate=16000,
        strides=(4, 5, 8),
        max_channels=64,
        latent_channels=16,
        dilations=(1, 3),
        quantizer_config={"type": "rvq", "num_quantizers": 2, "codebook_size": 64, "quantizer_dropout": 0.0},
        frontend=frontend,
    )


def test_short_fit_keeps_the_pitch_of_a_tone_pair():
    """300 steps on one 0.25 s clip of 440 Hz + 660 Hz at 16 kHz: the reconstruction's strongest FFT bin must
    be 440 Hz. A decoder whose frames repeat unchanged (phase not carried by the codes) peaks at a multiple of
    the 100 Hz frame rate instead (400 Hz); the strided waveform codec, trained the same way, peaks near 0 Hz."""
    rate, samples = 16000, 4000
    tokenizer = tone_tokenizer("stft")
    time = torch.arange(samples) / rate
    clip = (0.5 * torch.sin(2 * math.pi * 440 * time) + 0.25 * torch.sin(2 * math.pi * 660 * time)).view(
        1, 1, -1
    )
    spectral = MultiResolutionSTFTLoss(fft_sizes=(256, 512, 1024))
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=3e-3)
    for _ in range(300):
        out = tokenizer(clip)
        loss = (
            (out.reconstruction - clip).abs().mean()
            + spectral(out.reconstruction, clip)
            + out.losses["quantizer"]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        reconstruction = tokenizer.eval()(clip).reconstruction[0, 0]
    spectrum = torch.fft.rfft(reconstruction * torch.hann_window(samples)).abs()
    peak = float(torch.fft.rfftfreq(samples, 1 / rate)[spectrum.argmax()])
    assert abs(peak - 440) <= 4, f"dominant frequency {peak} Hz"


def test_last_layer_weight_is_the_spectrum_head():
    tokenizer = make_stft_tokenizer(2)
    assert tokenizer.last_layer_weight.shape == (3 * stft_sizes(8)[1] * 2, 16, 1)


def test_phase_advance_decoder_accumulates_each_bins_centre_frequency():
    """With every deviation 0 (tanh(0)), bin k advances 2 pi k hop / n_fft per hop from phase 0."""
    decoder = STFTDecoder1d(1, 8, 4, width=8, dilations=(1,), phase="advance")
    n_fft, bins = stft_sizes(8)
    with torch.no_grad():  # the network then outputs 0: log magnitude 0, deviation 0
        for parameter in decoder.conv_out.parameters():
            parameter.zero_()
    spectrum = decoder.spectrum(torch.zeros(1, 4, 5))
    expected = 2 * math.pi * torch.arange(bins)[:, None] * 8 / n_fft * torch.arange(5)
    torch.testing.assert_close(spectrum.abs(), torch.ones(1, bins, 5))
    torch.testing.assert_close(spectrum, torch.polar(torch.ones(1, bins, 5), expected), atol=1e-5, rtol=0)


def test_phase_advance_keeps_the_pitch_of_tones_in_any_phase():
    """Batches of eight 440 Hz (+ 660 Hz) tones in random phases, spectral loss only, 200 steps: a tone at a
    phase never seen must come back peaking at 440 Hz (a decoder whose accumulated phase were wrong would put
    the energy elsewhere, e.g. at a multiple of the 100 Hz frame rate)."""
    rate, samples = 16000, 4000
    tokenizer = tone_tokenizer("stft-advance")
    time = torch.arange(samples) / rate

    def tones(phases: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * 440 * time + phases[:, None]
        return (0.5 * torch.sin(angle) + 0.25 * torch.sin(1.5 * angle)).unsqueeze(1)

    spectral = MultiResolutionSTFTLoss(fft_sizes=(512, 1024, 2048))
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / 200)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = tones(torch.rand(8, generator=generator) * 2 * math.pi)
        out = tokenizer(batch)
        loss = spectral(out.reconstruction, batch) + out.losses["quantizer"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        reconstruction = tokenizer.eval()(tones(torch.tensor([1.234]))).reconstruction[0, 0]
    spectrum = torch.fft.rfft(reconstruction * torch.hann_window(samples)).abs()
    peak = float(torch.fft.rfftfreq(samples, 1 / rate)[spectrum.argmax()])
    assert abs(peak - 440) <= 4, f"dominant frequency {peak} Hz"


def harmonic_tone(frequency: float, samples: int = 8000, rate: int = 16000) -> torch.Tensor:
    """Harmonics 1, 2, 3 of ``frequency`` at amplitudes 0.4, 0.2, 0.1: ``[1, 1, samples]``."""
    angle = 2 * math.pi * frequency * torch.arange(samples) / rate
    return sum(0.4 / k * torch.sin(k * angle) for k in (1, 2, 3)).view(1, 1, -1)


def magnitude_decoder(hop: int = 160) -> STFTDecoder1d:
    return STFTDecoder1d(1, hop, 4, width=8, dilations=(1,), phase="griffin-lim")


def test_magnitude_decoder_takes_the_reference_phase_in_training():
    """With a reference, the spectrum is the predicted magnitude times the reference's unit phasors, framed as
    the encoder frames the reference (frame t centred on sample t * hop)."""
    decoder = magnitude_decoder(hop=8)
    z, reference = torch.randn(2, 4, 6), torch.randn(2, 1, 48)
    spectrum = decoder.spectrum(z, reference)
    torch.testing.assert_close(spectrum.abs(), decoder.magnitude(z))
    window = torch.hann_window(32)
    expected = torch.stft(
        reference[:, 0],
        32,
        8,
        window=window,
        center=True,
        pad_mode="constant",
        normalized=True,
        return_complex=True,
    )[..., :6]
    loud = expected.abs() > 1e-3
    torch.testing.assert_close(spectrum[loud] / spectrum[loud].abs(), expected[loud] / expected[loud].abs())
    with pytest.raises(ValueError, match="griffin-lim"):
        decoder.spectrum(z)


@pytest.mark.parametrize("frequency", [110.0, 440.0])
def test_griffin_lim_decoding_keeps_the_pitch_of_true_magnitudes(monkeypatch, frequency):
    """Decoding without a reference rebuilds the phase with Griffin-Lim. Fed a tone's own magnitudes (frames as
    the encoder takes them), the output must be the tone's pitch (YIN, within 20 cents) at its loudness, and
    the same on a second call (deterministic start)."""
    from vqgen.evaluation.pitch import cents_between, estimate_f0

    hop, clip = 320, harmonic_tone(frequency)  # the notes codec's hop: 12.5 Hz bins
    decoder = magnitude_decoder(hop)
    frames = clip.shape[-1] // hop
    true = decoder.reference_phase(clip, frames)  # unit phasors; the magnitudes come from the encoder's STFT
    encoder = STFTEncoder1d(1, hop, 4, width=8, dilations=(1,))
    magnitude = encoder.features(clip)[:, : true.shape[1]].exp()
    monkeypatch.setattr(decoder, "magnitude", lambda z: magnitude)
    audio = decoder(torch.zeros(1, 4, frames))
    assert audio.shape == clip.shape
    assert abs(float(cents_between(estimate_f0(clip, 16000, stop_seconds=0.4), frequency))) <= 5
    cents = float(cents_between(estimate_f0(audio, 16000, stop_seconds=0.4), frequency))
    assert abs(cents) <= 20, f"f0 {cents:+.1f} cents off {frequency} Hz"
    core = slice(2 * hop, -2 * hop)
    ratio = audio[..., core].pow(2).mean().sqrt() / clip[..., core].pow(2).mean().sqrt()
    assert 0.8 <= float(ratio) <= 1.2, f"rms ratio {float(ratio):.2f}"
    torch.testing.assert_close(decoder(torch.zeros(1, 4, frames)), audio)


def test_magnitude_frontend_forward_uses_the_input_phase_and_decode_griffin_lim():
    """forward (training) reconstructs with the input's phase; decode(encode(x)) has no input and differs."""
    tokenizer = make_stft_tokenizer(frontend="stft-magnitude")
    audio = torch.rand(2, 1, 96) * 2 - 1
    with torch.no_grad():
        out = tokenizer(audio)
        codes = tokenizer.encode(audio)
        vectors = tokenizer.quantizer.codes_to_vectors(codes)
        expected = tokenizer.decoder(vectors, reference=audio)
        decoded = tokenizer.decode(codes)
    torch.testing.assert_close(out.reconstruction, expected)
    assert decoded.shape == audio.shape and not torch.allclose(decoded, expected)
