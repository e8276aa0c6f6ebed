"""vqgen.data.spoken_digits: the voice split, clip settings, trimming/padding, the build (espeak-ng mocked)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

import vqgen.data.spoken_digits as sd
from vqgen.data.audio import AudioFolderDataset, audio_data_root
from vqgen.errors import ConfigError, DataError

HAVE_ESPEAK = shutil.which("espeak-ng") is not None


def test_split_is_by_variant_so_test_timbres_are_unseen():
    voices = sd.split_voices()
    train, test = set(voices["train"]), set(voices["test"])
    assert not train & test
    assert len(train) + len(test) == len(sd.SPOKEN_DIGITS_ACCENTS) * len(sd.SPOKEN_DIGITS_VARIANTS)

    def variant(voice: str) -> str:
        return voice.partition("+")[2]

    assert {variant(v) for v in test} == set(sd.SPOKEN_DIGITS_TEST_VARIANTS)
    assert not {variant(v) for v in train} & set(sd.SPOKEN_DIGITS_TEST_VARIANTS)
    assert "en-us" in train and "en-us+f3" in test  # "" is the accent's default voice

    small = sd.split_voices(["en-us", "en-gb"], ["", "m1", "f1"], ["f1"])
    assert small == {"train": ["en-us", "en-gb", "en-us+m1", "en-gb+m1"], "test": ["en-us+f1", "en-gb+f1"]}
    with pytest.raises(ConfigError, match="not among"):
        sd.split_voices(["en-us"], ["m1"], ["f9"])
    with pytest.raises(ConfigError, match="empty split"):
        sd.split_voices(["en-us"], ["m1"], ["m1"])


def test_clip_specs_are_deterministic_and_independent_of_other_voices():
    voices = sd.split_voices()
    specs = sd.clip_specs(voices, takes=4, seed=0)
    counts = {split: sum(s.split == split for s in specs) for split in ("train", "test")}
    assert counts == {"train": len(voices["train"]) * 40, "test": len(voices["test"]) * 40}
    assert 2000 <= counts["train"] <= 4000 and 400 <= counts["test"] <= 800
    assert specs == sd.clip_specs(voices, takes=4, seed=0)
    assert len({s.relative_path for s in specs}) == len(specs)  # file names never collide
    # A voice's clips do not depend on which other voices are built.
    alone = sd.clip_specs({"train": ["en-us+m1"], "test": ["en-us+f3"]}, takes=4, seed=0)
    assert set(alone) <= set(specs)
    assert all(25 <= s.pitch <= 75 and 120 <= s.speed <= 190 and 0.3 <= s.peak <= 0.9 for s in specs)
    assert specs[0].relative_path.startswith("train/0/en-gb_p")
    assert sd.clip_specs(voices, takes=4, seed=1) != specs
    with pytest.raises(ConfigError):
        sd.clip_specs(voices, takes=0)


def test_fit_to_length_trims_silence_and_centres_the_word():
    word = np.ones(300, dtype=np.float32) * 0.5
    wave = np.concatenate([np.zeros(1000), word, np.zeros(77)]).astype(np.float32)
    out, cropped = sd.fit_to_length(wave, 1000, 16000)
    assert out.shape == (1000,) and out.dtype == np.float32 and not cropped
    assert np.flatnonzero(out).tolist() == list(range(350, 650))  # (1000 - 300) // 2 zeros on the left
    # Odd spare: the extra zero goes right; peak rescaling.
    out, _ = sd.fit_to_length(word[:299], 1000, 16000, peak=0.8)
    assert np.flatnonzero(out)[0] == 350 and np.flatnonzero(out)[-1] == 648
    assert np.abs(out).max() == pytest.approx(0.8)
    # Quiet samples (below 1% of the peak) at the ends count as silence; inside the word they stay.
    quiet = np.concatenate([[0.001] * 50, [1.0], [0.001] * 10, [1.0], [0.001] * 50]).astype(np.float32)
    out, _ = sd.fit_to_length(quiet, 100, 16000)
    assert np.count_nonzero(out) == 12
    silent, cropped = sd.fit_to_length(np.zeros(500), 100, 16000)
    assert not silent.any() and not cropped


def test_fit_to_length_crops_a_long_word_around_its_centre_with_fades():
    rate = 16000
    word = np.linspace(-1, 1, 1200, dtype=np.float32) ** 2 + 0.1
    out, cropped = sd.fit_to_length(word, 1000, rate)
    assert cropped and out.shape == (1000,)
    fade = round(0.005 * rate)
    np.testing.assert_array_equal(out[fade:-fade], word[100 + fade : 1100 - fade])
    assert out[0] == 0 and abs(out[-1]) < word[1099] / fade * 1.01
    assert np.all(np.abs(out[:fade]) <= np.abs(word[100 : 100 + fade]))


def test_missing_espeak_raises_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(sd.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        sd.build_spoken_digits(tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_root_resolution_and_not_built_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path))
    assert sd.spoken_digits_root(must_exist=False) == tmp_path / "spoken-digits"
    with pytest.raises(DataError, match="vqgen data build spoken-digits"):
        sd.spoken_digits_root()
    with pytest.raises(DataError, match="vqgen data build spoken-digits"):
        audio_data_root("demo:spoken-digits", "test")
    with pytest.raises(DataError, match="unknown demo dataset"):
        audio_data_root("demo:speech")
    monkeypatch.delenv("VQGEN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert sd.spoken_digits_root(must_exist=False) == tmp_path / "cache" / "vqgen" / "spoken-digits"


def fake_synthesize(calls):
    def synthesize(word, voice, pitch, speed):
        calls.append((word, voice, pitch, speed))
        rate = 22050
        t = np.arange(int(rate * (0.3 + 0.02 * len(word)))) / rate
        tone = 0.4 * np.sin(2 * np.pi * (100 + 2 * pitch) * t)
        return np.concatenate([np.zeros(2000), tone, np.zeros(3000)]).astype(np.float32), rate

    return synthesize


def test_build_with_mocked_espeak(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(sd, "espeak_ng_version", lambda: "eSpeak NG text-to-speech: test")
    monkeypatch.setattr(sd, "synthesize", fake_synthesize(calls))
    voices = {"train": ["en-us", "en-gb+m1"], "test": ["en-us+f3"]}
    monkeypatch.setattr(sd, "split_voices", lambda: voices)
    monkeypatch.setattr(sd, "check_voices", lambda voices: None)
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path))

    manifest = sd.build_spoken_digits(None, sample_rate=8000, progress=False, takes=1)
    root = tmp_path / "spoken-digits"
    assert manifest["counts"]["train"]["clips"] == 20 and manifest["counts"]["test"]["clips"] == 10
    assert manifest["voices"] == voices and manifest["cropped_words"] == []
    assert json.loads((root / "manifest.json").read_text())["counts"] == manifest["counts"]
    assert len(calls) == 30 and {c[0] for c in calls} == set(sd.DIGIT_WORDS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary was renamed

    test = AudioFolderDataset(audio_data_root("demo:spoken-digits", "test"), 8000, train=False)
    assert len(test) == 10 and test.label_names == tuple(str(d) for d in range(10))
    assert test.labels == list(range(10))
    info = soundfile.info(str(test.files[0]))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (8000, 8000, 1, "PCM_16")
    spec = next(s for s in sd.clip_specs(voices, takes=1) if s.split == "test" and s.digit == 0)
    assert abs(test[0]["audio"]).max() == pytest.approx(spec.peak, abs=1e-3)
    assert test.files[0].name == f"en-us+f3_p{spec.pitch}_s{spec.speed}_t0.wav"

    # Same parameters: kept as built. force: rebuilt in place.
    calls.clear()
    assert sd.build_spoken_digits(root, sample_rate=8000, progress=False, takes=1) == manifest
    assert not calls
    sd.build_spoken_digits(root, sample_rate=8000, progress=False, takes=1, force=True)
    assert len(calls) == 30


def test_failed_build_leaves_the_previous_one(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(sd, "espeak_ng_version", lambda: "test")
    monkeypatch.setattr(sd, "split_voices", lambda: {"train": ["en-us"], "test": ["en-us+f3"]})
    monkeypatch.setattr(sd, "check_voices", lambda voices: None)
    monkeypatch.setattr(sd, "synthesize", fake_synthesize(calls))
    sd.build_spoken_digits(tmp_path / "d", sample_rate=8000, progress=False, takes=1)
    before = sorted(p.name for p in (tmp_path / "d" / "train" / "3").iterdir())

    def broken(word, voice, pitch, speed):
        if word == "five":
            raise DataError("espeak-ng failed")
        return fake_synthesize([])(word, voice, pitch, speed)

    monkeypatch.setattr(sd, "synthesize", broken)
    with pytest.raises(DataError, match="espeak-ng failed"):
        sd.build_spoken_digits(tmp_path / "d", sample_rate=8000, progress=False, takes=1, force=True)
    assert sorted(p.name for p in (tmp_path / "d" / "train" / "3").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


@pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")
def test_real_espeak_synthesis_of_one_clip():
    spec = sd.ClipSpec("train", 7, "en-us+f3", 0, 50, 160, 0.7)
    wave, cropped = sd._render(spec, 16000, 16000)
    assert wave.shape == (16000,) and not cropped
    assert np.abs(wave).max() == pytest.approx(0.7, abs=1e-6)
    loud = np.flatnonzero(np.abs(wave) > 0.007)
    assert 0.2 < (loud[-1] - loud[0]) / 16000 < 1.0  # a word, not silence or a whole second
    again, _ = sd._render(spec, 16000, 16000)
    np.testing.assert_array_equal(wave, again)  # espeak-ng is deterministic
    assert "eSpeak NG" in sd.espeak_ng_version()
    # espeak-ng falls back to its default voice for unknown names: check_voices catches them first.
    voices = sd.split_voices()
    sd.check_voices([*voices["train"], *voices["test"]])
    with pytest.raises(DataError, match="en-xx-nowhere, en-us[+]q9"):
        sd.check_voices(["en-us+m1", "en-xx-nowhere", "en-us+q9"])
