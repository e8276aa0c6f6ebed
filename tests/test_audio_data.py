"""AudioFolderDataset and the audio section of vqgen.io: reading, mixing, resampling, crops, bad files."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import soundfile
import torch

from vqgen.data.audio import AudioFolderDataset
from vqgen.data.images import DataWarning
from vqgen.errors import ConfigError, DataError, ShapeError
from vqgen.media.audio import load_audio, mix_channels, save_audio


def tone(freq: float, seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """``[frames, channels]`` sine (channel c at amplitude ``amplitude / (c + 1)``), as soundfile writes it."""
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * freq * t)
    return np.stack([wave / (c + 1) for c in range(channels)], axis=1).astype(np.float32)


def write(path, freq=440.0, seconds=0.5, rate=8000, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), tone(freq, seconds, rate, channels), rate)
    return path


def test_resampling_to_16k_and_lengths(tmp_path):
    write(tmp_path / "a.wav", rate=8000, seconds=0.5)
    write(tmp_path / "b.flac", rate=22050, seconds=0.5)
    data = AudioFolderDataset(tmp_path, sample_rate=16000, channels=1, segment_seconds=0.25, train=False)
    assert len(data) == 2 and data.segment_samples == 4000
    assert [data.resampled_length(i) for i in range(2)] == [8000, 8000]
    for i in range(2):
        item = data[i]
        assert item["audio"].dtype == torch.float32 and item["audio"].shape == (1, 4000)
        assert item["label"] == -1 and item["index"] == i
        assert item["audio"].abs().max() <= 1.0
    # The centre crop of a resampled 440 Hz tone: compare with the tone generated at 16 kHz directly.
    expected = tone(440.0, 0.5, 16000)[2000:6000, 0]
    assert np.abs(data[0]["audio"][0].numpy() - expected).max() < 0.02
    assert np.abs(data[1]["audio"][0].numpy() - expected).max() < 0.02


def test_mono_mixing_and_stereo_duplication(tmp_path):
    write(tmp_path / "stereo.wav", rate=16000, channels=2, seconds=0.1)
    mono = AudioFolderDataset(tmp_path, 16000, channels=1, segment_seconds=0.1)[0]["audio"]
    stereo = AudioFolderDataset(tmp_path, 16000, channels=2, segment_seconds=0.1)[0]["audio"]
    assert mono.shape == (1, 1600) and stereo.shape == (2, 1600)
    torch.testing.assert_close(mono[0], stereo.mean(0), atol=1e-4, rtol=0)
    torch.testing.assert_close(stereo[1], stereo[0] / 2, atol=1e-4, rtol=0)

    other = tmp_path / "mono"
    write(other / "m.wav", rate=16000, channels=1, seconds=0.1)
    dup = AudioFolderDataset(other, 16000, channels=2, segment_seconds=0.1)[0]["audio"]
    assert torch.equal(dup[0], dup[1])


def test_crops_and_padding(tmp_path):
    write(tmp_path / "long.wav", rate=16000, seconds=1.0)
    write(tmp_path / "short.wav", rate=16000, seconds=0.05)
    train = AudioFolderDataset(tmp_path, 16000, 1, segment_seconds=0.2, train=True, seed=1)
    evaluation = AudioFolderDataset(tmp_path, 16000, 1, segment_seconds=0.2, train=False)
    long_index = train.files.index(tmp_path / "long.wav")
    short_index = 1 - long_index
    full = torch.from_numpy(tone(440.0, 1.0, 16000)[:, 0])
    offset = train.crop_offset(long_index)
    assert 0 <= offset <= 16000 - 3200
    torch.testing.assert_close(train[long_index]["audio"][0], full[offset : offset + 3200], atol=1e-4, rtol=0)
    # Deterministic: the same item twice, and a fresh dataset, give the same crop.
    assert torch.equal(train[long_index]["audio"], train[long_index]["audio"])
    again = AudioFolderDataset(tmp_path, 16000, 1, segment_seconds=0.2, train=True, seed=1)
    assert again.crop_offset(long_index) == offset
    offsets = {
        AudioFolderDataset(tmp_path, 16000, 1, segment_seconds=0.2, seed=s).crop_offset(long_index)
        for s in range(6)
    }
    assert len(offsets) > 1  # the seed moves the crop
    assert evaluation.crop_offset(long_index) == (16000 - 3200) // 2
    short = evaluation[short_index]["audio"]
    assert short.shape == (1, 3200)
    assert torch.all(short[0, 800:] == 0) and short[0, :800].abs().max() > 0.1


@pytest.mark.parametrize("rate", [8000, 22050])
def test_random_crop_of_a_resampled_file_matches_resampling_the_whole_file(tmp_path, rate):
    import torchaudio

    write(tmp_path / "x.wav", freq=700.0, seconds=1.0, rate=rate)
    whole = torchaudio.functional.resample(torch.from_numpy(tone(700.0, 1.0, rate).T.copy()), rate, 16000)
    for seed in range(3):
        data = AudioFolderDataset(tmp_path, 16000, 1, segment_seconds=0.1, train=True, seed=seed)
        offset = data.crop_offset(0)
        torch.testing.assert_close(data[0]["audio"], whole[:, offset : offset + 1600], atol=2e-3, rtol=0)


def test_labels_from_subfolders(tmp_path):
    for name in ("dog", "cat"):
        for i in range(2):
            write(tmp_path / name / f"{i}.wav", freq=300 + 100 * i)
    write(tmp_path / "loose.ogg")
    data = AudioFolderDataset(tmp_path, 8000, 1, segment_seconds=0.1)
    assert data.label_names == ("cat", "dog") and data.num_classes == 2
    labels = {f.relative_to(tmp_path).as_posix(): label for f, label in zip(data.files, data.labels)}
    assert labels == {"cat/0.wav": 0, "cat/1.wav": 0, "dog/0.wav": 1, "dog/1.wav": 1, "loose.ogg": -1}
    assert [data[i]["label"] for i in range(len(data))] == data.labels


def test_bad_files_are_skipped_with_a_warning_or_refused_when_strict(tmp_path):
    write(tmp_path / "good.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file" * 3)
    (tmp_path / "empty.flac").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(DataWarning) as caught:
        data = AudioFolderDataset(tmp_path, 8000, 1, segment_seconds=0.1)
    message = str(caught[0].message)
    assert "skipped 2" in message and "corrupt.wav" in message and "empty.flac" in message
    assert len(data) == 1 and data.files[0].name == "good.wav"
    assert {p.name for p, _ in data.skipped} == {"corrupt.wav", "empty.flac"}
    with pytest.raises(DataError, match="strict"):
        AudioFolderDataset(tmp_path, 8000, 1, segment_seconds=0.1, strict=True)


def test_empty_or_missing_folder_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="no audio files") as error:
        AudioFolderDataset(tmp_path, 16000, 1, 1.0)
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="does not exist"):
        AudioFolderDataset(tmp_path / "missing", 16000, 1, 1.0)
    (tmp_path / "only.wav").write_bytes(b"junk")
    with pytest.raises(DataError, match="no usable audio"):
        AudioFolderDataset(tmp_path, 16000, 1, 1.0)
    with pytest.raises(ConfigError):
        AudioFolderDataset(tmp_path, 16000, 1, 0.0)
    with pytest.raises(ConfigError):
        AudioFolderDataset(tmp_path, 0, 1, 1.0)


def test_three_channels_cannot_become_two(tmp_path):
    write(tmp_path / "good.wav", channels=2)
    write(tmp_path / "three.wav", channels=3)
    with pytest.warns(DataWarning, match="three.wav"):
        data = AudioFolderDataset(tmp_path, 8000, 2, 0.1)
    assert len(data) == 1


def test_io_save_load_audio_round_trip(tmp_path):
    wave = tone(440.0, 0.1, 8000, channels=2).T  # [C, S]
    path = save_audio(wave, tmp_path / "out" / "x.wav", 8000)
    loaded, rate = load_audio(path)
    assert rate == 8000 and loaded.shape == wave.shape and loaded.dtype == np.float32
    assert np.abs(loaded - wave).max() < 1e-4  # 16-bit PCM
    save_audio(torch.from_numpy(wave[0]), tmp_path / "x.flac", 8000)
    mono, _ = load_audio(tmp_path / "x.flac", channels=2)
    assert mono.shape == (2, 800)
    resampled, rate = load_audio(path, sample_rate=16000, channels=1)
    assert rate == 16000 and resampled.shape == (1, 1600)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary left behind
    with pytest.raises(ConfigError):
        save_audio(wave, tmp_path / "x.mp3", 8000)
    with pytest.raises(ShapeError):
        save_audio(np.zeros((2, 3, 4)), tmp_path / "y.wav", 8000)
    with pytest.raises(DataError):
        load_audio(tmp_path / "nothing.wav")
    (tmp_path / "bad.wav").write_bytes(b"bad")
    with pytest.raises(DataError):
        load_audio(tmp_path / "bad.wav")
    with pytest.raises(ShapeError):
        mix_channels(np.zeros((3, 4), dtype=np.float32), 2)


def test_train_tokenizer_end_to_end(tmp_path):
    from vqgen.loading import load_tokenizer
    from vqgen.tokenizers import AudioTokenizer
    from vqgen.training.common import TrainingOptions
    from vqgen.training.tokenizer import TokenizerLossOptions, train_tokenizer

    root = tmp_path / "data"
    for i in range(6):
        write(root / ("low" if i % 2 else "high") / f"{i}.wav", freq=200 + 150 * i, seconds=0.1, rate=8000)
    dataset = AudioFolderDataset(root, sample_rate=8000, channels=1, segment_seconds=0.032)
    torch.manual_seed(0)
    tokenizer = AudioTokenizer(
        sample_rate=8000,
        strides=(2, 4),
        base_channels=4,
        max_channels=8,
        latent_channels=8,
        dilations=(1,),
        quantizer_config={"type": "rvq", "num_quantizers": 2, "codebook_size": 8, "quantizer_dropout": 0.5},
    )
    output = tmp_path / "run"
    options = TrainingOptions(
        output=str(output),
        max_steps=4,
        batch_size=4,
        progress=False,
        eval_every=2,
        checkpoint_every=4,
        log_every=2,
    )
    trained = train_tokenizer(tokenizer, dataset, options, TokenizerLossOptions(spectral_weight=1.0))
    reloaded = AudioTokenizer.from_pretrained(str(output)).eval()
    assert isinstance(load_tokenizer(output), AudioTokenizer)
    x = dataset[0]["audio"][None]
    trained.eval()
    assert reloaded.encode(x).shape == (1, 2, math.ceil(256 / 8))
    assert torch.equal(reloaded.encode(x), trained.encode(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isfinite(reloaded.decode(reloaded.encode(x))).all()
