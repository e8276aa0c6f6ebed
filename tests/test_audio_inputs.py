"""Unusual audio files in a folder: each is converted correctly or refused in one line naming the file.

Fixtures are short tones soundfile writes into ``tmp_path``: other rates and channel counts, 8- to 32-bit PCM
and float WAV, FLAC, Ogg Vorbis and Ogg Opus, and files with no usable sample.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile
import torch

from vqgen.data.audio import AudioFolderDataset, load_audio_dataset
from vqgen.data.folders import DataWarning
from vqgen.errors import DataError, VqgenError
from vqgen.media.audio import load_audio

RATE = 16000
SECONDS = 0.25


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine ``[S]`` with 10 ms fades, so lossy codecs do not ring at a hard edge."""
    samples = round(seconds * rate)
    wave = amplitude * np.sin(2 * np.pi * freq * np.arange(samples) / rate)
    fade = np.minimum(1.0, np.minimum(np.arange(samples), np.arange(samples)[::-1]) / (0.01 * rate))
    return (wave * fade).astype(np.float32)


def _peak_frequency(wave: torch.Tensor, rate: int = RATE) -> float:
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(wave.shape[-1], dtype=torch.float64)).abs()
    return float(spectrum.argmax()) * rate / wave.shape[-1]


def _one_line(error: BaseException, *names: str) -> None:
    assert isinstance(error, VqgenError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text and "\n" not in text, repr(text)
    for name in names:
        assert name in text, f"{name!r} not in {text!r}"


def _items(dataset: AudioFolderDataset) -> dict[str, torch.Tensor]:
    return {path.name: dataset[i]["audio"] for i, path in enumerate(dataset.files)}


def test_other_rates_channels_depths_and_formats_in_one_folder(tmp_path):
    tone = _tone(RATE)
    stereo = np.stack([_tone(44100), np.zeros_like(_tone(44100))], axis=1)  # the tone left, silence right
    soundfile.write(tmp_path / "cd-stereo.wav", stereo, 44100, subtype="PCM_16")
    soundfile.write(tmp_path / "phone.wav", _tone(8000), 8000, subtype="PCM_16")
    soundfile.write(tmp_path / "deep.wav", tone, RATE, subtype="PCM_24")
    soundfile.write(tmp_path / "float.wav", tone, RATE, subtype="FLOAT")
    soundfile.write(tmp_path / "lossless.flac", tone, RATE, subtype="PCM_24")
    soundfile.write(tmp_path / "vorbis.ogg", tone, RATE, format="OGG", subtype="VORBIS")
    soundfile.write(tmp_path / "voice.opus", _tone(48000), 48000, format="OGG", subtype="OPUS")
    assert soundfile.info(tmp_path / "voice.opus").subtype == "OPUS"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every file is used, none skipped
        dataset = load_audio_dataset(str(tmp_path), "test", RATE, 1, SECONDS)
    items = _items(dataset)
    assert sorted(items) == sorted(p.name for p in tmp_path.iterdir())
    for name, audio in items.items():
        assert audio.shape == (1, round(SECONDS * RATE)), name
        assert abs(_peak_frequency(audio[0]) - 440) <= 1 / SECONDS, name
    # Amplitudes: exact for lossless files at the dataset's rate, close after resampling or a lossy codec.
    centre = slice(round(0.125 * RATE), round(0.375 * RATE))
    for name in ("deep.wav", "float.wav", "lossless.flac"):
        torch.testing.assert_close(items[name][0], torch.from_numpy(tone[centre]), atol=1e-4, rtol=0)
    assert abs(float(items["phone.wav"].abs().max()) - 0.5) < 0.01
    assert abs(float(items["cd-stereo.wav"].abs().max()) - 0.25) < 0.01  # mixed down: the channel mean
    for name in ("vorbis.ogg", "voice.opus"):
        assert abs(float(items[name].abs().max()) - 0.5) < 0.06, name


def test_mono_is_repeated_for_a_stereo_dataset_and_three_channels_are_refused(tmp_path):
    soundfile.write(tmp_path / "mono.flac", _tone(RATE), RATE)
    soundfile.write(tmp_path / "three.wav", np.stack([_tone(RATE)] * 3, axis=1), RATE)
    with pytest.warns(
        DataWarning, match=r"skipped 1 .*three\.wav \(has 3 channels, which cannot be mixed to 2\)"
    ):
        dataset = AudioFolderDataset(tmp_path, RATE, channels=2, segment_seconds=SECONDS, train=False)
    (audio,) = _items(dataset).values()
    assert audio.shape[0] == 2 and torch.equal(audio[0], audio[1]) and audio.abs().max() > 0.45


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_wav_sample_format_reads_at_full_scale(tmp_path, subtype):
    tone = _tone(RATE)
    soundfile.write(tmp_path / "tone.wav", tone, RATE, subtype=subtype)
    audio, rate = load_audio(tmp_path / "tone.wav")
    step = {"PCM_U8": 2**-7, "PCM_16": 2**-15}.get(subtype, 2**-23)  # one quantisation step
    assert rate == RATE and np.abs(audio[0] - tone).max() <= step
    item = AudioFolderDataset(tmp_path, RATE, segment_seconds=0.5, train=False)[0]["audio"]
    assert np.abs(item[0].numpy() - tone).max() <= step


def test_float_wav_past_full_scale_is_clamped(tmp_path):
    soundfile.write(tmp_path / "loud.wav", 3 * _tone(RATE), RATE, subtype="FLOAT")
    item = AudioFolderDataset(tmp_path, RATE, segment_seconds=SECONDS, train=False)[0]["audio"]
    assert float(item.max()) == 1.0 and float(item.min()) == -1.0


@pytest.fixture
def unusable(tmp_path):
    """A good tone beside a 0-byte file, a header-only WAV, and float WAVs of NaN only and infinity only."""
    soundfile.write(tmp_path / "good.wav", _tone(RATE), RATE)
    (tmp_path / "empty.wav").write_bytes(b"")
    soundfile.write(tmp_path / "header-only.wav", np.zeros(0, np.float32), RATE, subtype="PCM_16")
    soundfile.write(tmp_path / "nan.wav", np.full(RATE, np.nan, np.float32), RATE, subtype="FLOAT")
    soundfile.write(tmp_path / "inf.wav", np.full(RATE, np.inf, np.float64), RATE, subtype="DOUBLE")
    return tmp_path


def test_files_without_a_usable_sample_are_skipped_with_one_warning(unusable):
    with pytest.warns(DataWarning) as record:
        dataset = AudioFolderDataset(unusable, RATE, segment_seconds=SECONDS)
    (warning,) = record
    message = str(warning.message)
    assert "\n" not in message and "skipped 4" in message
    assert "empty.wav (is empty (0 bytes))" in message
    assert "header-only.wav (holds no audio (0 frames" in message
    assert "nan.wav (holds no finite sample (all 16000 frames are NaN or infinite))" in message
    assert "inf.wav (holds no finite sample" in message
    assert [p.name for p in dataset.files] == ["good.wav"]


def test_files_without_a_usable_sample_stop_a_strict_run(unusable):
    with pytest.raises(DataError) as error:
        AudioFolderDataset(unusable, RATE, segment_seconds=SECONDS, strict=True)
    _one_line(error.value, "empty.wav", "is empty (0 bytes)", "4 of 5 file(s)")
    (unusable / "good.wav").unlink()
    with pytest.raises(DataError) as error:
        AudioFolderDataset(unusable, RATE, segment_seconds=SECONDS)
    _one_line(error.value, "no usable audio", "all 4 file(s)")
    with pytest.raises(DataError) as error:
        load_audio(unusable / "nan.wav")
    _one_line(error.value, "nan.wav", "NaN or infinite")


def test_a_float_file_with_some_nan_is_kept_and_read_as_silence_there(tmp_path):
    tone = _tone(RATE)
    tone[:100] = np.nan
    soundfile.write(tmp_path / "some-nan.wav", tone, RATE, subtype="FLOAT")
    dataset = AudioFolderDataset(tmp_path, RATE, segment_seconds=0.5, train=False)
    with pytest.warns(DataWarning, match="some-nan.wav"):
        audio = dataset[0]["audio"]
    assert torch.isfinite(audio).all() and (audio[0, :100] == 0).all()


def test_opus_a_libsndfile_cannot_decode_is_refused_naming_what_works(tmp_path, monkeypatch):
    soundfile.write(tmp_path / "voice.opus", _tone(48000), 48000, format="OGG", subtype="OPUS")
    soundfile.write(tmp_path / "good.flac", _tone(RATE), RATE)

    def without_opus(function):  # what a libsndfile before 1.0.29 does with an Ogg/Opus file
        def call(file, *args, **kwargs):
            if str(file).endswith(".opus"):
                raise soundfile.LibsndfileError(1, prefix=f"Error opening {str(file)!r}: ")
            return function(file, *args, **kwargs)

        return call

    monkeypatch.setattr(soundfile, "info", without_opus(soundfile.info))
    monkeypatch.setattr(soundfile, "read", without_opus(soundfile.read))
    with pytest.warns(
        DataWarning, match=r"skipped 1 .*voice\.opus \(cannot be read as audio .*it is Ogg/Opus"
    ):
        assert [p.name for p in AudioFolderDataset(tmp_path, RATE).files] == ["good.flac"]
    with pytest.raises(DataError) as error:
        AudioFolderDataset(tmp_path, RATE, strict=True)
    _one_line(error.value, "voice.opus", "it is Ogg/Opus", "convert it to WAV, FLAC or Ogg Vorbis")
    with pytest.raises(DataError) as error:
        load_audio(tmp_path / "voice.opus")
    _one_line(error.value, "cannot decode audio", "voice.opus", "Ogg/Opus", "WAV, FLAC or Ogg Vorbis")
