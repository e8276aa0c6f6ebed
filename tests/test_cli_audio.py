"""The audio command line on tiny models: train-tokenizer -> encode -> train-prior -> generate, reconstruct,
evaluate-tokenizer, data build, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from test_pipeline_audio import make_audio_prior, make_audio_tokenizer

from vqgen.cli import main
from vqgen.data.shards import CodeShardDataset
from vqgen.io import save_audio
from vqgen.pipelines import AudioPipeline, load_pipeline
from vqgen.priors.sampling_config import SamplingConfig
from vqgen.tokenizers.image import ImageTokenizer

RATE = 8000
TINY = [
    "--strides", "2,4", "--base-channels", "4", "--latent-channels", "4", "--num-levels", "2",
    "--codebook-size", "16", "--no-kmeans-init", "--frontend", "waveform",
]  # fmt: skip
COMMON = ["--no-progress", "--log-every", "1", "--batch-size", "4", "--max-steps", "2", "--eval-every", "2"]
SEGMENT = ["--segment-seconds", "0.025"]  # 200 samples at 8 kHz: 25 frames of 8 samples
PRIOR = ["--hidden-size", "32", "--num-layers", "1", "--num-heads", "4"]


def tone(seconds: float, rate: int, freq: float, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.repeat(0.5 * np.sin(2 * np.pi * freq * t)[None], channels, axis=0).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An audio tokenizer trained by the CLI on a folder of WAVs (8 and 16 kHz, mono and stereo), its code
    shards, a delay-layout prior and its pipeline."""
    root = tmp_path_factory.mktemp("cli-audio")
    data = root / "clips"
    for i, (label, freq) in enumerate([("low", 300.0), ("high", 1200.0)] * 3):
        (data / label).mkdir(parents=True, exist_ok=True)
        rate = 16000 if i % 2 else RATE
        save_audio(tone(0.04, rate, freq + 20 * i, channels=1 + i % 2), data / label / f"{i}.wav", rate)
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(data), "--sample-rate", str(RATE)]
    argv += [*SEGMENT, *TINY, *COMMON, "--spectral-weight", "0.1", "--output", str(root / "tok")]
    assert main(argv) == 0
    assert main(["encode", "--tokenizer", str(root / "tok"), "--data", str(data), *SEGMENT]
                + ["--output", str(root / "shards"), "--no-progress"]) == 0  # fmt: skip
    argv = ["train-prior", "--shards", str(root / "shards"), "--tokenizer", str(root / "tok")]
    assert main([*argv, "--layout", "delay", *PRIOR, *COMMON, "--output", str(root / "prior")]) == 0
    return root


def one_line_error(capsys, argv: list[str], match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and match in err[-1], err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_train_encode_train_prior_chain(trained):
    config = json.loads((trained / "tok" / "config.json").read_text())
    assert config["_class_name"] == "AudioTokenizer" and config["sample_rate"] == RATE
    assert config["strides"] == [2, 4] and config["quantizer_config"]["type"] == "rvq"
    assert config["quantizer_config"]["num_quantizers"] == 2
    assert (trained / "tok" / "samples" / "step-00000002.wav").is_file()  # originals and reconstructions
    shards = CodeShardDataset(trained / "shards")
    assert shards.code_grid == (2, 25) and len(shards) == 6 and shards.num_classes == 2
    pipe = load_pipeline(trained / "prior" / "pipeline")
    assert isinstance(pipe, AudioPipeline) and pipe.prior.config.layout == "delay"
    assert pipe.sample_rate == RATE and pipe.num_classes == 2
    assert soundfile.info(str(trained / "prior" / "samples" / "step-00000002.wav")).samplerate == RATE


def test_train_prior_layout_defaults_to_delay_for_audio_and_takes_flatten(trained):
    argv = ["train-prior", "--shards", str(trained / "shards"), "--tokenizer", str(trained / "tok"), *PRIOR]
    argv += ["--no-progress", "--batch-size", "4", "--max-steps", "1", "--eval-every", "1"]
    assert main([*argv, "--output", str(trained / "prior-default")]) == 0
    assert json.loads((trained / "prior-default" / "config.json").read_text())["layout"] == "delay"
    assert main([*argv, "--layout", "flatten", "--output", str(trained / "prior-flat")]) == 0
    pipe = load_pipeline(trained / "prior-flat" / "pipeline")
    assert pipe.prior.config.layout == "flatten"


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio-pipe") / "pipe"
    AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay", num_classes=3)).save_pretrained(folder)
    return folder


def test_generate_audio_files_and_directories(tiny_pipeline, tmp_path):
    pipe = ["generate", "audio", "--pipeline", str(tiny_pipeline), "--no-progress"]
    assert main([*pipe, "--class-label", "2", "--seed", "1", "--output", str(tmp_path / "one.wav")]) == 0
    data, rate = soundfile.read(str(tmp_path / "one.wav"))
    assert rate == RATE and data.shape == (200,)
    assert main([*pipe, "--seconds", "0.01", "--output", str(tmp_path / "short.flac")]) == 0
    info = soundfile.info(str(tmp_path / "short.flac"))
    assert info.format == "FLAC" and info.frames == 80 and info.samplerate == RATE
    # several samples to one file path: one file each, with an index suffix
    assert (
        main([*pipe, "--num-samples", "3", "--guidance-scale", "2", "--output", str(tmp_path / "s.wav")]) == 0
    )
    assert sorted(p.name for p in tmp_path.glob("s_*.wav")) == ["s_0.wav", "s_1.wav", "s_2.wav"]
    # a directory: one file per sample in --format
    assert main([*pipe, "--num-samples", "2", "--format", "flac", "--output", str(tmp_path / "dir")]) == 0
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["sample_00000.flac", "sample_00001.flac"]
    # the same seed gives the same audio
    assert main([*pipe, "--class-label", "2", "--seed", "1", "--output", str(tmp_path / "again.wav")]) == 0
    np.testing.assert_array_equal(soundfile.read(str(tmp_path / "again.wav"))[0], data)


def test_generate_audio_draws_with_the_pipelines_default_sampling(tmp_path):
    pipe = AudioPipeline(make_audio_tokenizer(), make_audio_prior("delay", num_classes=3))
    pipe.set_default_sampling(SamplingConfig(temperature=0.5, top_k=2))
    pipe.save_pretrained(tmp_path / "pipe")
    command = [
        "generate",
        "audio",
        "--pipeline",
        str(tmp_path / "pipe"),
        "--no-progress",
        "--class-label",
        "1",
    ]

    def drawn(name: str, *flags: str) -> np.ndarray:
        assert main([*command, *flags, "--output", str(tmp_path / name)]) == 0
        return soundfile.read(str(tmp_path / name))[0]

    stored = drawn("stored.wav")
    np.testing.assert_array_equal(stored, drawn("same.wav", "--temperature", "0.5", "--top-k", "2"))
    plain = drawn("plain.wav", "--no-default-sampling")
    np.testing.assert_array_equal(
        plain, drawn("plain-again.wav", "--temperature", "1", "--no-default-sampling")
    )
    assert not np.array_equal(stored, plain)
    rising = drawn("rising.wav", "--guidance-scale", "4", "--guidance-schedule", "rising")
    assert not np.array_equal(rising, drawn("constant.wav", "--guidance-scale", "4"))
    np.testing.assert_array_equal(
        rising, drawn("rising-again.wav", "--guidance-scale", "4", "--guidance-schedule", "rising")
    )
    weighted = drawn("weighted.wav", "--guidance-scale", "4", "--guidance-level-weights", "0.5,2")
    assert not np.array_equal(weighted, drawn("constant-again.wav", "--guidance-scale", "4"))
    np.testing.assert_array_equal(
        weighted, drawn("weighted-again.wav", "--guidance-scale", "4", "--guidance-level-weights", "0.5, 2")
    )


def test_generate_audio_continues_a_prompt(tiny_pipeline, tmp_path, capsys):
    save_audio(tone(0.05, 44100, 440.0, channels=2), tmp_path / "prompt.wav", 44100)  # 0.05 s stereo
    pipe = ["generate", "audio", "--pipeline", str(tiny_pipeline), "--prompt", str(tmp_path / "prompt.wav")]
    one_line_error(capsys, [*pipe, "--output", str(tmp_path / "x.wav")], "longer than the 0.025 s")
    save_audio(tone(0.01, 44100, 440.0, channels=2), tmp_path / "prompt.wav", 44100)
    assert main([*pipe, "--num-samples", "2", "--output", str(tmp_path / "cont")]) == 0
    assert len(list((tmp_path / "cont").glob("*.wav"))) == 2


def test_generate_audio_bad_input(tiny_pipeline, tmp_path, capsys):
    pipe = ["generate", "audio", "--pipeline", str(tiny_pipeline)]
    out = ["--output", str(tmp_path / "x.wav")]
    one_line_error(capsys, [*pipe, "--seconds", "3", *out], "at most 0.025 s")
    one_line_error(capsys, [*pipe, "--output", str(tmp_path / "x.png")], "must be an audio file")
    one_line_error(capsys, [*pipe, "--format", "mp4", "--output", str(tmp_path / "d")], "--format mp4")
    one_line_error(capsys, [*pipe, "--num-frames", "3", *out], "--num-frames works with 'generate video'")
    one_line_error(capsys, [*pipe, "--class-label", "7", *out], "class_labels must lie in [0, 3)")
    save_audio(np.zeros((1, 5), np.float32), tmp_path / "tiny.wav", RATE)
    one_line_error(
        capsys, [*pipe, "--prompt", str(tmp_path / "tiny.wav"), *out], "shorter than one code frame"
    )
    (tmp_path / "empty.wav").write_bytes(b"")
    one_line_error(capsys, [*pipe, "--prompt", str(tmp_path / "empty.wav"), *out], "cannot decode audio")
    one_line_error(capsys, ["generate", "video", "--pipeline", str(tiny_pipeline), "--output",
                            str(tmp_path / "v.mp4")], "cannot generate video")  # fmt: skip
    assert not (tmp_path / "x.wav").exists()


def test_reconstruct_stereo_44k_wav(trained, tmp_path, capsys):
    save_audio(tone(0.1, 44100, 440.0, channels=2), tmp_path / "in.wav", 44100)
    tok = ["reconstruct", "--tokenizer", str(trained / "tok"), "--input", str(tmp_path / "in.wav")]
    assert main([*tok, "--output", str(tmp_path / "out.wav")]) == 0
    assert "SI-SDR" in capsys.readouterr().out
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert info.samplerate == RATE and info.channels == 1 and info.frames == 800
    assert main([*tok, "--levels", "1", "--output", str(tmp_path / "out.flac")]) == 0
    assert "1 of 2 levels" in capsys.readouterr().out
    assert soundfile.info(str(tmp_path / "out.flac")).frames == 800


def test_reconstruct_bad_input(trained, tmp_path, capsys):
    tok = ["reconstruct", "--tokenizer", str(trained / "tok"), "--output", str(tmp_path / "out.wav")]
    save_audio(tone(0.1, RATE, 440.0), tmp_path / "good.wav", RATE)
    (tmp_path / "empty.wav").write_bytes(b"")
    soundfile.write(str(tmp_path / "header.wav"), np.zeros((0, 1)), RATE)  # a valid WAV of zero samples
    (tmp_path / "cut.wav").write_bytes((tmp_path / "good.wav").read_bytes()[:30])  # truncated header
    save_audio(np.zeros((1, 5), np.float32), tmp_path / "tiny.wav", RATE)
    cases = {
        "empty.wav": "cannot decode audio",
        "header.wav": "holds no audio samples",
        "cut.wav": "cannot decode audio",
        "tiny.wav": "shorter than one code frame (8 samples)",
        "missing.wav": "does not exist",
    }
    for name, match in cases.items():
        one_line_error(capsys, [*tok, "--input", str(tmp_path / name)], match)
    good = ["--input", str(tmp_path / "good.wav")]
    one_line_error(capsys, [*tok, *good, "--levels", "3"], "--levels 3: the tokenizer has 2 levels")
    one_line_error(capsys, [*tok[:-1], str(tmp_path / "out.png"), *good], "must be an audio file")
    assert not (tmp_path / "out.wav").exists()


def test_evaluate_audio_tokenizer(trained, tmp_path, capsys):
    out = tmp_path / "eval.json"
    argv = ["evaluate-tokenizer", "--tokenizer", str(trained / "tok"), "--data", str(trained / "clips")]
    assert main([*argv, *SEGMENT, "--output", str(out), "--no-progress"]) == 0
    assert "SI-SDR" in capsys.readouterr().out
    results = json.loads(out.read_text())
    assert [row["levels"] for row in results["levels"]] == [1, 2] and results["items"] == 6
    assert results["levels"][1]["bitrate"] == pytest.approx(2 * results["levels"][0]["bitrate"])
    assert all(
        np.isfinite(row[k]) for row in results["levels"] for k in ("mel_distance", "stft_distance", "si_sdr")
    )


def test_train_tokenizer_audio_fine_tunes_a_saved_codec(trained, tmp_path, capsys):
    """--init-from a saved AudioTokenizer keeps its config and weights (a negligible learning rate leaves the
    codes as they were); --reconstruction-weight 0 trains on the spectral loss alone."""
    from vqgen.loading import load_tokenizer

    data = trained / "clips"
    argv = [
        "train-tokenizer",
        "--modality",
        "audio",
        "--data",
        str(data),
        "--sample-rate",
        str(RATE),
        *SEGMENT,
    ]
    argv += [*COMMON, "--learning-rate", "1e-12", "--spectral-weight", "1", "--reconstruction-weight", "0"]
    argv += ["--base-channels", "8"]  # ignored: the saved codec's config wins
    assert main([*argv, "--init-from", str(trained / "tok"), "--output", str(tmp_path / "tuned")]) == 0
    tuned, start = load_tokenizer(tmp_path / "tuned"), load_tokenizer(trained / "tok")
    assert tuned.config.base_channels == start.config.base_channels == 4
    x = torch.from_numpy(tone(0.025, RATE, 500.0))[None]
    with torch.no_grad():
        torch.testing.assert_close(tuned.encode(x), start.encode(x))
    one_line_error(
        capsys, [*argv, "--init-from", str(trained / "prior"), "--output", str(tmp_path / "x")], "prior"
    )
    image = tmp_path / "image"
    ImageTokenizer(
        in_channels=1, base_channels=4, channel_multipliers=(1,), latent_channels=4
    ).save_pretrained(image)
    message = one_line_error(
        capsys, [*argv, "--init-from", str(image), "--output", str(tmp_path / "y")], "image"
    )
    assert "found ImageTokenizer; --modality audio starts from: AudioTokenizer" in message


def test_train_tokenizer_decoder_only_keeps_the_codes(trained, tmp_path, capsys):
    """--decoder-only moves the decoder alone: every clip keeps its codes; it needs --init-from."""
    from vqgen.loading import load_tokenizer

    argv = [
        "train-tokenizer",
        "--data",
        str(trained / "clips"),
        "--sample-rate",
        str(RATE),
        *SEGMENT,
        *COMMON,
    ]
    argv += ["--learning-rate", "1e-2", "--decoder-only"]
    assert main([*argv, "--init-from", str(trained / "tok"), "--output", str(tmp_path / "tuned")]) == 0
    tuned, start = load_tokenizer(tmp_path / "tuned"), load_tokenizer(trained / "tok")
    x = torch.from_numpy(tone(0.025, RATE, 500.0))[None]
    with torch.no_grad():
        assert torch.equal(tuned.encode(x), start.encode(x))
        assert not torch.equal(tuned.decode(tuned.encode(x)), start.decode(start.encode(x)))
    message = one_line_error(capsys, [*argv, "--output", str(tmp_path / "x")], "--init-from")
    assert "--decoder-only" in message


@pytest.mark.filterwarnings("ignore:skipped 1 unreadable")
def test_train_tokenizer_audio_bad_input(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "bad.wav").write_bytes(b"not audio")
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "clips"), *TINY, *COMMON]
    one_line_error(capsys, [*argv, "--output", str(tmp_path / "tok")], "bad.wav")
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "missing"), *COMMON]
    one_line_error(capsys, [*argv, "--output", str(tmp_path / "tok")], "does not exist")
    save_audio(tone(0.04, RATE, 300.0), tmp_path / "clips" / "good.wav", RATE)
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "clips"), *SEGMENT, *COMMON]
    argv += ["--quantizer", "vq", "--num-levels", "2", "--output", str(tmp_path / "tok")]
    one_line_error(capsys, argv, "--num-levels / --num-quantizers need --quantizer rvq")


def test_data_build_spoken_digits_calls_the_builder(tmp_path, monkeypatch, capsys):
    import vqgen.data.spoken_digits as spoken_digits

    calls = []

    def fake_build(output_dir=None, sample_rate=16000, progress=True, **kwargs):
        calls.append((output_dir, sample_rate, progress, kwargs))
        return {"counts": {"train": {"clips": 3520}, "test": {"clips": 640}}}

    monkeypatch.setattr(spoken_digits, "build_spoken_digits", fake_build)
    argv = [
        "data",
        "build",
        "spoken-digits",
        "--output",
        str(tmp_path / "sd"),
        "--no-progress",
        "--workers",
        "2",
    ]
    assert main(argv) == 0
    assert calls == [(str(tmp_path / "sd"), 16000, False, {"workers": 2, "force": False})]
    assert "3520 train, 640 test clips" in capsys.readouterr().out


def test_encode_audio_levels_and_shapes(trained, tmp_path):
    """Codes shards hold [K, T] grids of the tokenizer's levels and frames."""
    shards = CodeShardDataset(trained / "shards")
    item = shards[0]
    assert tuple(item["codes"].shape) == (2, 25) and item["codes"].dtype in (torch.int32, torch.int64)


def test_train_tokenizer_audio_architecture_flags(tmp_path, capsys):
    data = tmp_path / "clips" / "tone"
    data.mkdir(parents=True)
    for i in range(4):
        save_audio(tone(0.04, RATE, 300.0 + 50 * i), data / f"{i}.wav", RATE)
    flags = ["--norm", "weight", "--activation", "snake"]
    flags += ["--codebook-dim", "2", "--input-space-weight", "0.5"]
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "clips"), "--sample-rate"]
    argv += [str(RATE), *SEGMENT, *TINY, *COMMON, *flags]
    assert main([*argv, "--output", str(tmp_path / "tok")]) == 0
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert (config["norm"], config["activation"]) == ("weight", "snake")
    assert config["quantizer_config"]["input_space_weight"] == 0.5
    image = ["train-tokenizer", "--modality", "image", "--data", str(tmp_path / "clips"), "--norm", "weight"]
    image += COMMON
    message = "--norm, --activation, --frontend, --max-channels and --phase-levels shape the audio codec"
    one_line_error(capsys, [*image, "--output", str(tmp_path / "img")], message)


def test_train_tokenizer_infers_audio_from_a_folder_of_wavs(tmp_path, capsys):
    """Without --modality a folder of WAVs trains the audio codec with the audio defaults: the parametric
    pitched-notes codec (pitch level + 11 residual levels, dropout 0.5), its codebooks fitted by k-means; the
    learned harmonic codec trains on spectral losses only."""
    for i, label in enumerate(["low", "high"]):
        (tmp_path / "clips" / label).mkdir(parents=True)
        save_audio(tone(0.04, RATE, 300.0 + 400 * i), tmp_path / "clips" / label / f"{i}.wav", RATE)
    argv = ["train-tokenizer", "--data", str(tmp_path / "clips"), "--sample-rate", str(RATE), *SEGMENT]
    argv += ["--strides", "2,4", "--base-channels", "4", "--latent-channels", "4"]
    argv += ["--no-kmeans-init", "--no-progress", "--batch-size", "2", "--max-steps", "1"]
    assert main([*argv, "--output", str(tmp_path / "tok")]) == 0
    assert "modality: audio (inferred from --data; pass --modality to choose)" in capsys.readouterr().out
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["_class_name"] == "AudioTokenizer" and config["sample_rate"] == RATE
    quantizer = config["quantizer_config"]
    assert (quantizer["type"], quantizer["num_quantizers"], quantizer["quantizer_dropout"]) == (
        "rvq",
        11,
        0.5,
    )
    assert quantizer["codebook_size"] == 1024  # the audio default, not the image one (256)
    assert (config["frontend"], config["latent_channels"]) == ("parametric-harmonic", 128)
    assert (
        json.loads((tmp_path / "tok" / "fit.json").read_text())["frames"] == 2 * 25
    )  # 2 clips of 200 samples, hop 8
    assert main([*argv, "--frontend", "stft-harmonic", "--output", str(tmp_path / "learned")]) == 0
    config = json.loads((tmp_path / "learned" / "config.json").read_text())
    assert (config["frontend"], config["max_channels"]) == ("stft-harmonic", 256)
    loss = json.loads((tmp_path / "learned" / "training_config.json").read_text())["loss"]
    assert (loss["spectral_weight"], loss["reconstruction_weight"]) == (1.0, 0.0)
    (tmp_path / "empty").mkdir()
    argv = ["train-tokenizer", "--data", str(tmp_path / "empty"), "--output", str(tmp_path / "x")]
    line = one_line_error(capsys, argv, "holds no image, video or audio files")
    assert str(tmp_path / "empty") in line and "pass --modality image|video|audio" in line


def test_train_tokenizer_audio_stft_frontend(tmp_path, capsys):
    """--frontend stft is saved in the config and builds the STFT codec; it refuses --causal in one line."""
    from vqgen.loading import load_tokenizer

    data = tmp_path / "clips" / "tone"
    data.mkdir(parents=True)
    for i in range(4):
        save_audio(tone(0.04, RATE, 300.0 + 50 * i), data / f"{i}.wav", RATE)
    argv = ["train-tokenizer", "--modality", "audio", "--data", str(tmp_path / "clips"), "--sample-rate"]
    argv += [str(RATE), *SEGMENT, *TINY, *COMMON, "--frontend", "stft", "--max-channels", "24"]
    assert main([*argv, "--output", str(tmp_path / "tok")]) == 0
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert (config["frontend"], config["max_channels"]) == ("stft", 24)
    tokenizer = load_tokenizer(tmp_path / "tok")
    assert type(tokenizer.decoder).__name__ == "STFTDecoder1d"
    assert tuple(tokenizer.encode(torch.zeros(1, 1, 200)).shape) == (1, 2, 25)
    causal = [*argv, "--causal", "--output", str(tmp_path / "causal")]
    one_line_error(capsys, causal, "causal=True needs frontend='waveform'")
