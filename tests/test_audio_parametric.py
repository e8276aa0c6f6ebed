"""The parametric harmonic codec: measured analysis, its synthesis, k-means codebooks, the train-tokenizer route."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vqgen.cli import main
from vqgen.errors import ConfigError
from vqgen.evaluation.audio import si_sdr
from vqgen.io import save_audio
from vqgen.tokenizers.audio import AudioTokenizer
from vqgen.tokenizers.layers.parametric import (
    FEATURES,
    HarmonicAnalysis1d,
    HarmonicSynthesis1d,
    PhaseCoder,
    phase_steps,
)
from vqgen.tokenizers.quantizers import ResidualQuantizer, VectorQuantizer
from vqgen.training.codebooks import fit_codebooks

RATE, HOP = 16000, 320


def harmonic_tone(
    f0: float, amplitudes: list[float], seconds: float = 1.0, phases: list[float] | None = None
) -> torch.Tensor:
    t = torch.arange(int(RATE * seconds), dtype=torch.float64) / RATE
    phases = phases or [0.0] * len(amplitudes)
    wave = sum(
        a * torch.sin(2 * math.pi * (k + 1) * f0 * t + p) for k, (a, p) in enumerate(zip(amplitudes, phases))
    )
    return wave.float().view(1, 1, -1)


def parametric_tokenizer(levels: int = 2, codebook_size: int = 16, phase_levels: int = 0) -> AudioTokenizer:
    quantizer = {
        "type": "rvq",
        "num_quantizers": levels,
        "codebook_size": codebook_size,
        "quantizer_dropout": 0.5,
    }
    return AudioTokenizer(
        sample_rate=RATE,
        strides=(HOP,),
        latent_channels=FEATURES,
        frontend="parametric-harmonic",
        quantizer_config=quantizer,
        phase_levels=phase_levels,
    )


@pytest.mark.parametrize("f0", [220.0, 331.7])  # on and between STFT bins (12.5 Hz apart)
def test_analysis_measures_harmonic_amplitudes(f0):
    """Each harmonic's amplitude within 0.3 dB, off-bin too (the parabolic peak correction: the bare peak bin
    reads 220 Hz 0.9 dB low); harmonics that are not there sit at the floor."""
    analysis = HarmonicAnalysis1d(HOP, RATE)
    audio = harmonic_tone(f0, [0.5, 0.2, 0.05])
    features = analysis(audio, torch.full((1, 50), f0))
    measured = features[0, :4, 10:40].exp().median(dim=1).values
    db = 20 * torch.log10(measured[:3] / torch.tensor([0.5, 0.2, 0.05]))
    assert db.abs().max() < 0.3, db
    assert measured[3] < 1e-3


@pytest.mark.parametrize("level", [0.01, 0.1, 0.3])
def test_noise_resynthesised_at_its_level(level):
    """White noise (no pitch) comes back at its RMS within 5%: NOISE_GAIN is calibrated."""
    analysis, synthesis = HarmonicAnalysis1d(HOP, RATE), HarmonicSynthesis1d(1, HOP, RATE)
    noise = torch.randn(4, 1, RATE, generator=torch.Generator().manual_seed(1)) * level
    f0 = torch.zeros(4, 50)
    out = synthesis(analysis(noise, f0), f0)
    assert abs(float(out.std() / noise.std()) - 1) < 0.05


def test_synthesis_of_the_analysis_keeps_the_tone():
    """Analysis then synthesis: same RMS within 5%, the spectrum's peaks at the tone's harmonics."""
    analysis, synthesis = HarmonicAnalysis1d(HOP, RATE), HarmonicSynthesis1d(1, HOP, RATE)
    audio = harmonic_tone(440.0, [0.4, 0.3])
    f0 = torch.full((1, 50), 440.0)
    out = synthesis(analysis(audio, f0), f0)
    assert abs(float(out.std() / audio.std()) - 1) < 0.05
    spectrum = torch.fft.rfft(out[0, 0]).abs()  # 1 Hz bins
    assert set(spectrum.topk(2).indices.tolist()) == {440, 880}


def test_parametric_tokenizer_codes_decode_and_refuse_a_wrong_width():
    tokenizer = parametric_tokenizer()
    assert not tokenizer.trains_by_gradient and sum(p.numel() for p in tokenizer.parameters()) == 0
    audio = harmonic_tone(261.6, [0.3, 0.1], seconds=0.5)
    assert tuple(tokenizer.latents(audio).shape) == (1, FEATURES, 25)
    codes = tokenizer.encode(audio)
    assert tuple(codes.shape) == (1, 3, 25)  # the pitch level and two learned levels
    assert tuple(tokenizer.decode(codes).shape) == (1, 1, 8000)
    assert tuple(tokenizer.decode(codes[:, :1]).shape) == (1, 1, 8000)  # the pitch alone
    with pytest.raises(ConfigError, match="latent_channels must be 128 for 1 channel"):
        AudioTokenizer(frontend="parametric-harmonic", strides=(HOP,), latent_channels=64)


#: A tone whose harmonics start at unrelated phases: a phase-free decoder cannot line them up.
PHASED = dict(amplitudes=[0.3, 0.2, 0.15, 0.1], phases=[0.3, 2.0, -1.2, 2.8])


@pytest.mark.parametrize("f0", [220.0, 331.7])  # on and between STFT bins
def test_phase_coder_reads_each_harmonics_phase(f0):
    """Every frame's coded phase of each harmonic lies within half a step (18 degrees) of the tone's own at that
    frame centre; the codes are digits of ``steps`` and decode back to the steps."""
    coder = PhaseCoder(HOP, RATE, 1024)
    assert coder.steps == phase_steps(1024) == 10 and phase_steps(64) == 4
    audio = harmonic_tone(f0, **PHASED)
    codes = coder.encode(audio, torch.full((1, 50), f0), levels=2)
    assert tuple(codes.shape) == (1, 2, 50) and int(codes.max()) < 1000
    phases = coder.decode(codes)[0, :4, 5:45]  # [harmonic, frame], away from the clip's edges
    centres = torch.arange(5, 45, dtype=torch.float64) * HOP / RATE
    k = torch.arange(1, 5, dtype=torch.float64)[:, None]
    # sin(x + p) = cos(x + p - pi / 2)
    truth = 2 * math.pi * k * f0 * centres + torch.tensor(PHASED["phases"], dtype=torch.float64)[:, None]
    error = torch.remainder(phases.double() - (truth - math.pi / 2) + math.pi, 2 * math.pi) - math.pi
    assert error.abs().max() < math.pi / 10 + 0.02, error.abs().max()
    assert coder.encode(audio, torch.zeros(1, 50), levels=1).abs().max() == 0  # unvoiced frames code step 0


def test_coded_phases_keep_the_waveform():
    """The measured magnitudes played with the coded phases come back close to the waveform (SI-SDR > 10 dB:
    steps of 36 degrees cost about 15 dB); played at their own free-running phase, far from it (< 0 dB)."""
    analysis, synthesis, coder = (
        HarmonicAnalysis1d(HOP, RATE),
        HarmonicSynthesis1d(1, HOP, RATE),
        PhaseCoder(HOP, RATE, 1024),
    )
    audio = harmonic_tone(261.6, **PHASED)
    f0 = torch.full((1, 50), 261.6)
    features = analysis(audio, f0)
    kept = synthesis(features, f0, coder.decode(coder.encode(audio, f0, levels=2)))
    free = synthesis(features, f0)
    assert float(si_sdr(kept, audio)) > 10 and float(si_sdr(free, audio)) < 0


def test_phase_levels_come_after_the_magnitudes():
    """Codes [pitch, magnitudes, phases]: every prefix encodes as the full code's prefix and decodes (a lower
    bitrate), the bitrate counts the phase levels, and the phase levels bring the waveform closer."""
    audio = harmonic_tone(261.6, **PHASED)
    tokenizer = parametric_tokenizer(levels=1, codebook_size=1024, phase_levels=2).eval()
    assert tokenizer.num_levels == 4 and tokenizer.bitrate() == 50 * 4 * 10
    codes = tokenizer.encode(audio)
    assert tuple(codes.shape) == (1, 4, 50)
    for levels in (1, 2, 3):
        assert torch.equal(codes[:, :levels], tokenizer.encode(audio, num_levels=levels))
        assert tuple(tokenizer.decode(codes[:, :levels]).shape) == (1, 1, RATE)
    kept = float(si_sdr(tokenizer.decode(codes)[..., : audio.shape[-1]], audio))
    free = float(si_sdr(tokenizer.decode(codes[:, :2])[..., : audio.shape[-1]], audio))
    assert kept > free + 5, (kept, free)


def test_phase_levels_refuse_other_frontends_and_stereo():
    with pytest.raises(
        ConfigError, match="phase_levels needs frontend 'parametric-harmonic' and one channel"
    ):
        AudioTokenizer(strides=(2, 4), base_channels=4, max_channels=8, latent_channels=8, phase_levels=1)
    with pytest.raises(
        ConfigError, match="phase_levels needs frontend 'parametric-harmonic' and one channel"
    ):
        AudioTokenizer(
            in_channels=2,
            frontend="parametric-harmonic",
            strides=(HOP,),
            latent_channels=2 * FEATURES,
            phase_levels=1,
        )
    with pytest.raises(ConfigError, match=r"phase_levels must be in \[0, 21\]"):
        parametric_tokenizer(phase_levels=22)
    with pytest.raises(ConfigError, match="a phase level needs a codebook of at least 8 codes"):
        parametric_tokenizer(codebook_size=4, phase_levels=1)


def test_vector_quantizer_fit_kmeans_is_its_first_batch_init():
    """The public fit and the first training batch's k-means give the same codebook (one code path)."""
    data = torch.randn(256, 4, generator=torch.Generator().manual_seed(0))
    fitted = VectorQuantizer(4, 8)
    fitted.fit_kmeans(data, fitted.kmeans_iters, torch.Generator().manual_seed(0))
    assert bool(fitted.initialized)
    trained = VectorQuantizer(4, 8, decay=1 - 1e-9, dead_code_threshold=0).train()  # EMA barely moves
    trained(data.T.reshape(1, 4, 256))
    torch.testing.assert_close(trained.codebook, fitted.codebook, rtol=1e-5, atol=1e-5)
    assert not torch.equal(fitted.codebook, VectorQuantizer(4, 8).codebook)


def test_residual_fit_kmeans_refines_level_by_level():
    """Each fitted level leaves less: the residual RMS falls strictly, and quantizing the data with all levels
    is closer than with one."""
    data = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    rvq = ResidualQuantizer(8, 3, 16)
    reported = []
    rms = rvq.fit_kmeans(
        data, 10, torch.Generator().manual_seed(0), on_level=lambda i, r: reported.append((i, r))
    )
    assert rms[0] > rms[1] > rms[2] and reported == list(enumerate(rms))
    rvq.eval()
    errors = [
        float((rvq(data.T.unsqueeze(0), num_levels=k).quantized[0].T - data).pow(2).mean()) for k in (1, 3)
    ]
    assert errors[1] < errors[0]
    with pytest.raises(ConfigError, match="without a projection"):
        ResidualQuantizer(8, 2, 16, codebook_dim=4).fit_kmeans(data)


def test_fit_codebooks_saves_a_loadable_tokenizer(tmp_path):
    notes = [{"audio": harmonic_tone(f, [0.3, 0.2, 0.1], 0.5)[0]} for f in (110.0, 220.0, 330.0, 440.0)]
    tokenizer = parametric_tokenizer(levels=2, codebook_size=8)
    report = fit_codebooks(tokenizer, notes, tmp_path / "codec", seed=0, progress=False)
    assert report["frames"] == 4 * 25 and report["residual_rms"][1] < report["residual_rms"][0]
    assert json.loads((tmp_path / "codec" / "fit.json").read_text())["frames"] == 100
    loaded = AudioTokenizer.from_pretrained(tmp_path / "codec")
    torch.testing.assert_close(
        loaded.encode(notes[1]["audio"][None]), tokenizer.encode(notes[1]["audio"][None])
    )
    # centred on the data's mean: the fitted latents average 0, and the pitch level alone decodes the average
    # timbre (with uncentred zero vectors every harmonic would play at amplitude 1: far above the input)
    latents = torch.cat([tokenizer.latents(n["audio"][None]) for n in notes])
    assert latents.mean(dim=(0, 2)).abs().max() < 1e-4 and tokenizer.encoder.feature_mean.abs().max() > 1
    codes = tokenizer.encode(notes[1]["audio"][None])
    pitch_only = tokenizer.decode(codes[:, :1])
    assert 0 < float(pitch_only.std()) < float(notes[1]["audio"].std())
    gradient = AudioTokenizer(strides=(2, 4), base_channels=4, max_channels=8, latent_channels=8)
    with pytest.raises(ConfigError, match="without gradient weights"):
        fit_codebooks(gradient, notes)


def test_train_tokenizer_fits_a_parametric_codec(tmp_path, capsys):
    """`vqgen train-tokenizer --frontend parametric-harmonic` fits by k-means, prints it, saves the codec."""
    data = tmp_path / "notes" / "tone"
    data.mkdir(parents=True)
    t = np.arange(RATE // 4) / RATE
    for i, f in enumerate((196.0, 262.0, 392.0)):
        save_audio((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)[None], data / f"{i}.wav", RATE)
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "notes"), "--output"]
    argv += [str(tmp_path / "codec"), "--frontend", "parametric-harmonic", "--strides", str(HOP)]
    argv += ["--num-levels", "2", "--codebook-size", "8", "--segment-seconds", "0.25", "--no-progress"]
    fit_argv = list(argv)
    assert main([*argv, "--phase-levels", "1"]) == 0
    out = capsys.readouterr().out
    assert "fitted 2 codebooks by k-means on 39 frames" in out
    config = json.loads((tmp_path / "codec" / "config.json").read_text())
    assert (config["frontend"], config["latent_channels"]) == ("parametric-harmonic", FEATURES)
    assert config["phase_levels"] == 1
    # a tokenizer with no parameter encodes shards (its device is its buffers')
    argv = ["encode", "--tokenizer", str(tmp_path / "codec"), "--data", str(tmp_path / "notes")]
    assert (
        main([*argv, "--segment-seconds", "0.25", "--output", str(tmp_path / "shards"), "--no-progress"]) == 0
    )
    assert "wrote 3 code grids of 4x13" in capsys.readouterr().out  # pitch, 2 magnitude levels, 1 phase level
    # a plain VQ cannot be fitted level by level: one line, nothing written
    vq = [*fit_argv[:6], str(tmp_path / "vq"), *fit_argv[7:11], "--quantizer", "vq", "--no-progress"]
    assert main(vq) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: fit_codebooks needs a residual quantizer (quantizer type 'rvq')", err
    assert not (tmp_path / "vq").exists()
    # phase levels on a codec that does not measure harmonics: one line, nothing written
    wave = [
        *fit_argv[:6],
        str(tmp_path / "wave"),
        "--frontend",
        "waveform",
        "--phase-levels",
        "1",
        "--max-steps",
        "1",
    ]
    assert main([*wave, *fit_argv[9:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: phase_levels needs frontend 'parametric-harmonic'"), err
    assert not (tmp_path / "wave").exists()
