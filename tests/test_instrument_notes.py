"""vqgen.data.instrument_notes: programs, pitch ranges, the split, MIDI files, FluidSynth's timing, the build
(with a sine renderer; one small real FluidSynth build when it is installed)."""

from __future__ import annotations

import csv
import json
import shutil
import struct

import numpy as np
import pytest
import soundfile
import torch

import vqgen.data.fluidsynth as fluidsynth
import vqgen.data.instrument_notes as notes
import vqgen.data.midi as midi
from vqgen.data.audio import AudioFolderDataset
from vqgen.errors import ConfigError, DataError

HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None
HAVE_SOUNDFONT = any(__import__("pathlib").Path(p).is_file() for p in notes.DEFAULT_SOUNDFONTS)


def test_families_programs_and_pitch_ranges():
    assert len(notes.INSTRUMENT_FAMILIES) == 16 and len(set(notes.INSTRUMENT_FAMILIES)) == 16
    assert len(notes.GM_PROGRAM_NAMES) == 128
    assert notes.GM_PROGRAM_NAMES[0] == "Acoustic Grand Piano" and notes.GM_PROGRAM_NAMES[127] == "Gunshot"
    assert notes.GM_PROGRAM_NAMES[40] == "Violin" and notes.GM_PROGRAM_NAMES[73] == "Flute"
    assert set(notes.FAMILY_PITCH_RANGES) == set(notes.INSTRUMENT_FAMILIES)
    for family, (low, high) in notes.FAMILY_PITCH_RANGES.items():
        assert 24 <= low < high <= 96 and low % 3 == 0 and (high - low) % notes.PITCH_STEP == 0, family
    assert notes.FAMILY_PITCH_RANGES["bass"][0] < notes.FAMILY_PITCH_RANGES["piano"][0]
    assert notes.FAMILY_PITCH_RANGES["pipe"][1] > notes.FAMILY_PITCH_RANGES["piano"][1]
    assert set(notes.UNPITCHED_FAMILIES) <= set(notes.INSTRUMENT_FAMILIES)
    assert [notes.family_folder(i) for i in (0, 15)] == ["00-piano", "15-sound-effects"]
    # Sorted folder names (the dataset's class order) are the GM family order.
    folders = [notes.family_folder(i) for i in range(16)]
    assert sorted(folders) == folders


def test_note_specs_and_the_split_by_program():
    specs = notes.note_specs()
    assert len(specs) == 3808
    assert sum(s.split == "train" for s in specs) == 2856 and sum(s.split == "test" for s in specs) == 952
    assert len({s.relative_path for s in specs}) == len(specs)
    assert specs == notes.note_specs()  # deterministic
    by_split = {split: {s.program for s in specs if s.split == split} for split in ("train", "test")}
    assert not by_split["train"] & by_split["test"] and by_split["train"] | by_split["test"] == set(
        range(128)
    )
    assert by_split["test"] == set(notes.TEST_PROGRAMS)
    for family in range(16):  # every family: 6 programs to train, 2 unseen ones to test
        programs = set(range(8 * family, 8 * family + 8))
        assert len(programs & by_split["test"]) == 2 and len(programs & by_split["train"]) == 6
    for s in specs:
        low, high = notes.FAMILY_PITCH_RANGES[s.family]
        assert low <= s.pitch <= high and (s.pitch - low) % 3 == 0 and s.velocity in notes.NOTE_VELOCITIES
    first = specs[0]
    assert (first.program, first.pitch, first.velocity, first.split) == (0, 36, 75, "train")
    assert (
        first.relative_path == "train/00-piano/000-036-075.wav"
        and first.program_name == "Acoustic Grand Piano"
    )
    spec = notes.NoteSpec("test", 121, 60, 127)
    assert spec.family == "sound-effects" and spec.family_id == 15
    assert spec.relative_path == "test/15-sound-effects/121-060-127.wav"

    small = notes.note_specs([5, 40, 40], velocities=[100])
    assert {s.program for s in small} == {5, 40} and all(s.velocity == 100 for s in small)
    for bad in ([128], [-1], []):
        with pytest.raises(ConfigError, match="0-127"):
            notes.note_specs(bad)
    with pytest.raises(ConfigError, match="velocities"):
        notes.note_specs([0], velocities=[0])


def parse_midi(data: bytes):
    """(division, [(tick, status, data bytes)]) of a format-0 file, as a check independent of the writer."""
    assert data[:4] == b"MThd"
    length, fmt, tracks, division = struct.unpack(">IHHH", data[4:14])
    assert (length, fmt, tracks) == (6, 0, 1) and data[14:18] == b"MTrk"
    (size,) = struct.unpack(">I", data[18:22])
    track, i, tick, events = data[22:], 0, 0, []
    assert len(track) == size
    while i < len(track):
        delta = 0
        while True:
            delta = (delta << 7) | (track[i] & 0x7F)
            i += 1
            if not track[i - 1] & 0x80:
                break
        tick += delta
        status = track[i]
        if status == 0xFF:
            kind, n = track[i + 1], track[i + 2]
            events.append((tick, (0xFF, kind), bytes(track[i + 3 : i + 3 + n])))
            i += 3 + n
        else:
            n = 1 if status & 0xF0 == 0xC0 else 2
            events.append((tick, status, bytes(track[i + 1 : i + 1 + n])))
            i += 1 + n
    return division, events


def test_midi_file_plays_the_notes_at_millisecond_ticks():
    data = notes.midi_file(33, [(100, 850, 1105, 40, 75), (1205, 1955, 2210, 43, 127)], end_ms=2400)
    division, events = parse_midi(data)
    assert division == 1000
    assert events[0] == (0, (0xFF, 0x51), (1_000_000).to_bytes(3, "big"))  # 1 ms per tick
    assert events[1] == (0, 0xC0, bytes([33]))
    assert events[2:] == [
        (100, 0x90, bytes([40, 75])),
        (850, 0x80, bytes([40, 0])),
        (1105, 0xB0, bytes([120, 0])),  # All Sound Off cuts the release
        (1205, 0x90, bytes([43, 127])),
        (1955, 0x80, bytes([43, 0])),
        (2210, 0xB0, bytes([120, 0])),
        (2400, (0xFF, 0x2F), b""),
    ]
    assert midi._vlq(0x0FFFFFFF) == b"\xff\xff\xff\x7f" and midi._vlq(128) == b"\x81\x00"
    with pytest.raises(ConfigError):
        notes.midi_file(128, [])
    with pytest.raises(ConfigError, match="bad note"):
        notes.midi_file(0, [(100, 50, 200, 60, 100)])


def test_onset_sample_matches_fluidsynth_timing():
    # Measured with FluidSynth 2.3.1 (period size 64): the first sample of a note-on at these ms.
    measured = {
        8000: {0: 64, 1100: 8896, 5555: 44544},
        16000: {0: 64, 1100: 17664, 2213: 35520, 3301: 52928},
        22050: {1100: 24320, 4417: 97472},
        44100: {3301: 145664, 5555: 245056},
    }
    for rate, table in measured.items():
        for ms, sample in table.items():
            assert fluidsynth._onset_sample(ms, rate) == sample, (rate, ms)


def test_normalise_note_scales_fades_and_drops_silence():
    rate = 8000
    t = np.arange(rate) / rate
    tone = 0.01 * np.sin(2 * np.pi * 220 * t)
    clip, gain_db = notes.normalise_note(tone, rate)
    assert clip.dtype == np.float32 and clip.shape == (rate,)
    assert np.sqrt(np.mean(clip.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.02)  # -20 dBFS RMS
    assert gain_db == pytest.approx(20 * np.log10(0.1 / (0.01 / np.sqrt(2))), abs=0.2)
    assert clip[-1] == 0 and np.abs(clip[-40:]).max() < np.abs(clip[:-80]).max()  # 10 ms fade-out
    click = np.zeros(rate)
    click[100] = 0.5
    click[101:200] = 0.001
    clip, gain_db = notes.normalise_note(click, rate)  # peaky: the 0.9 peak limit wins over the RMS target
    assert np.abs(clip).max() == pytest.approx(0.9, rel=1e-5) and gain_db == pytest.approx(20 * np.log10(1.8))
    assert notes.normalise_note(np.full(rate, 0.0005), rate) == (None, -np.inf)  # below -60 dBFS
    assert notes.normalise_note(np.zeros(rate), rate)[0] is None


class CountingRenderer(notes.SineRenderer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple] = []

    def __call__(self, program, pitches, sample_rate, seconds):
        self.calls.append((program, tuple(pitches), sample_rate, seconds))
        return super().__call__(program, pitches, sample_rate, seconds)


def test_build_with_a_sine_renderer(monkeypatch, tmp_path):
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path))
    renderer = CountingRenderer(silent=[(121, 48)])
    manifest = notes.build_instrument_notes(
        None, sample_rate=8000, seconds=0.5, progress=False, programs=[0, 1, 120, 121], renderer=renderer
    )
    root = tmp_path / "instrument-notes"
    assert notes.instrument_notes_root() == root
    assert [c[0] for c in renderer.calls] == [0, 1, 120, 121] and renderer.calls[0][2:] == (8000, 0.5)
    assert renderer.calls[0][1][:3] == ((36, 75), (36, 127), (39, 75))  # one call per program, every note
    piano, effects = 17 * 2, 9 * 2
    assert manifest["counts"]["train"]["notes"] == piano + effects
    assert manifest["counts"]["test"]["notes"] == piano + effects - 2  # (121, 48) rendered silent twice
    assert manifest["counts"]["test"]["programs"] == [1, 121]
    assert manifest["counts"]["train"]["per_family"]["sound-effects"] == effects
    assert manifest["silent_renders"] == {
        "count": 2,
        "notes": ["test/15-sound-effects/121-048-075.wav", "test/15-sound-effects/121-048-127.wav"],
    }
    assert manifest["renderer"] == renderer.describe() and manifest["parameters"]["sample_rate"] == 8000
    assert manifest["families"][3] == "03-guitar"
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the temporary was renamed

    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(notes.METADATA_COLUMNS) and len(rows) == 2 * (piano + effects) - 2
    assert rows[0] == {
        "file": "train/00-piano/000-036-075.wav",
        "family": "piano",
        "family_id": "0",
        "program": "0",
        "program_name": "Acoustic Grand Piano",
        "pitch": "36",
        "velocity": "75",
        "split": "train",
        "gain_db": rows[0]["gain_db"],
    }
    loaded = notes.load_instrument_notes_metadata(split="test")
    assert len(loaded) == piano + effects - 2 and all(r["split"] == "test" for r in loaded)
    row = next(r for r in loaded if r["program"] == 1 and r["pitch"] == 69 and r["velocity"] == 127)
    audio, rate = soundfile.read(str(root / row["file"]), dtype="float64")
    info = soundfile.info(str(root / row["file"]))
    assert (info.samplerate, info.frames, info.channels, info.subtype) == (8000, 4000, 1, "PCM_16")
    raw = renderer(1, [(69, 127)], 8000, 0.5)[0]
    expected, gain_db = notes.normalise_note(raw, 8000)
    np.testing.assert_allclose(audio, expected, atol=1 / 32768 + 1e-6)
    assert row["gain_db"] == pytest.approx(gain_db, abs=0.01)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * rate / audio.size == pytest.approx(440, abs=2)  # the sine of A4

    data = AudioFolderDataset(root / "test", 8000, segment_seconds=0.5, train=False)
    assert data.label_names == ("00-piano", "15-sound-effects") and len(data) == len(loaded)

    # Same settings: kept as built, nothing rendered. Other settings: refused without force.
    renderer.calls.clear()
    again = notes.build_instrument_notes(
        root, sample_rate=8000, seconds=0.5, progress=False, programs=[0, 1, 120, 121], renderer=renderer
    )
    assert again == manifest and not renderer.calls
    with pytest.raises(DataError, match="already exists .*force=True") as error:
        notes.build_instrument_notes(
            root, sample_rate=8000, seconds=0.4, progress=False, programs=[0], renderer=renderer
        )
    assert "\n" not in str(error.value) and not renderer.calls
    rebuilt = notes.build_instrument_notes(
        root, sample_rate=8000, seconds=0.4, progress=False, programs=[0], renderer=renderer, force=True
    )
    assert rebuilt["counts"]["train"]["notes"] == piano and rebuilt["counts"]["test"]["notes"] == 0
    assert not list((root / "test").rglob("*.wav")) and len(renderer.calls) == 1


def test_family_folders_are_the_dataset_labels_when_every_family_is_built(monkeypatch, tmp_path):
    # One train and one test program of every family, one pitch each (to stay fast).
    monkeypatch.setattr(notes, "FAMILY_PITCH_RANGES", {f: (60, 60) for f in notes.INSTRUMENT_FAMILIES})
    programs = [8 * f + k for f in range(16) for k in (0, 1)]
    manifest = notes.build_instrument_notes(
        tmp_path / "all",
        8000,
        0.1,
        progress=False,
        programs=programs,
        renderer=notes.SineRenderer(),
        workers=2,
    )
    assert manifest["counts"]["train"]["notes"] == 32 and manifest["counts"]["test"]["notes"] == 32
    assert manifest["parameters"]["pitch_ranges"]["bass"] == [60, 60]
    for split in ("train", "test"):
        assert all(n == 2 for n in manifest["counts"][split]["per_family"].values())
        data = AudioFolderDataset(tmp_path / "all" / split, 8000, segment_seconds=0.1, train=False)
        assert data.label_names == tuple(manifest["families"])
        rows = notes.load_instrument_notes_metadata(tmp_path / "all", split)
        by_file = {str(tmp_path / "all" / r["file"]): r["family_id"] for r in rows}
        assert [by_file[str(f)] for f in data.files] == data.labels  # folder labels are the family ids


def test_failed_build_leaves_the_previous_one_and_bad_renders_are_refused(tmp_path):
    target = tmp_path / "notes"
    notes.build_instrument_notes(
        target, 8000, 0.25, progress=False, programs=[40], renderer=notes.SineRenderer()
    )
    before = sorted(p.name for p in (target / "train" / "05-strings").iterdir())

    class Broken(notes.SineRenderer):
        def __call__(self, program, pitches, sample_rate, seconds):
            if program == 41:
                raise DataError("fluidsynth failed for program 41")
            return super().__call__(program, pitches, sample_rate, seconds)

    with pytest.raises(DataError, match="program 41"):
        notes.build_instrument_notes(
            target, 8000, 0.25, progress=False, programs=[40, 41], renderer=Broken(), force=True, workers=2
        )
    assert sorted(p.name for p in (target / "train" / "05-strings").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]

    class Short(notes.SineRenderer):
        def __call__(self, program, pitches, sample_rate, seconds):
            return super().__call__(program, pitches, sample_rate, seconds)[:, :-1]

    with pytest.raises(DataError, match="expected finite"):
        notes.build_instrument_notes(
            tmp_path / "x", 8000, 0.25, progress=False, programs=[0], renderer=Short()
        )
    assert not (tmp_path / "x").exists()


def test_arguments_and_existing_folders(tmp_path):
    sine = notes.SineRenderer()
    for kwargs, match in [
        ({"sample_rate": 4000}, "sample_rate"),
        ({"seconds": 0.01}, "seconds"),
        ({"workers": 0}, "workers"),
        ({"soundfont": "x.sf2"}, "either a renderer or a soundfont"),
    ]:
        with pytest.raises(ConfigError, match=match):
            notes.build_instrument_notes(
                tmp_path / "o", progress=False, programs=[0], renderer=sine, **kwargs
            )
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="not an instrument-notes build"):
        notes.build_instrument_notes(
            tmp_path / "taken", 8000, 0.25, progress=False, programs=[0], renderer=sine
        )
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"
    (tmp_path / "empty").mkdir()
    notes.build_instrument_notes(tmp_path / "empty", 8000, 0.25, progress=False, programs=[0], renderer=sine)
    assert (tmp_path / "empty" / "manifest.json").is_file()


def test_missing_fluidsynth_or_soundfont_is_one_line_before_anything_is_written(monkeypatch, tmp_path):
    monkeypatch.setattr(fluidsynth.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install fluidsynth fluid-soundfont-gm") as error:
        notes.build_instrument_notes(tmp_path / "out", progress=False)
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()
    monkeypatch.setattr(fluidsynth.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    with pytest.raises(DataError, match="'.*nowhere.sf2' does not exist .*apt-get install"):
        notes.build_instrument_notes(tmp_path / "out", progress=False, soundfont=tmp_path / "nowhere.sf2")
    monkeypatch.setattr(fluidsynth, "DEFAULT_SOUNDFONTS", (str(tmp_path / "none.sf2"),))
    with pytest.raises(DataError, match="no FluidR3 GM sound font found"):
        notes.find_soundfont()
    assert not (tmp_path / "out").exists()


def test_root_resolution_and_not_built_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path))
    assert notes.instrument_notes_root(must_exist=False) == tmp_path / "instrument-notes"
    with pytest.raises(
        DataError, match="demo:instrument-notes has not been built .*vqgen data build instrument-notes"
    ):
        notes.instrument_notes_root()
    with pytest.raises(DataError, match="metadata.csv"):
        notes.load_instrument_notes_metadata(tmp_path)
    with pytest.raises(ConfigError):
        notes.load_instrument_notes_metadata(tmp_path, split="valid")
    monkeypatch.delenv("VQGEN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert notes.instrument_notes_root(must_exist=False) == tmp_path / "cache" / "vqgen" / "instrument-notes"


@pytest.mark.skipif(
    not (HAVE_FLUIDSYNTH and HAVE_SOUNDFONT), reason="fluidsynth or FluidR3 GM is not installed"
)
def test_real_fluidsynth_render_and_build(tmp_path):
    from vqgen.evaluation.pitch import cents_between, estimate_f0, midi_to_hz

    renderer = notes.FluidSynthRenderer()
    waves = renderer(0, [(60, 100), (72, 75)], 16000, 0.3)
    assert waves.shape == (2, 4800) and waves.dtype == np.float32
    for wave in waves:
        assert 0 < np.flatnonzero(wave)[0] <= 2  # the cut lands on the onset (the attack starts from 0)
        assert np.abs(wave).max() > 0.01
    np.testing.assert_array_equal(waves, renderer(0, [(60, 100), (72, 75)], 16000, 0.3))  # deterministic
    onset = fluidsynth._onset_sample
    for shift, when in ((fluidsynth._BLOCK, "earlier"), (-fluidsynth._BLOCK, "later")):
        with pytest.MonkeyPatch.context() as patch:  # a FluidSynth whose timing differs is caught
            patch.setattr(fluidsynth, "_onset_sample", lambda ms, rate, shift=shift: onset(ms, rate) + shift)
            with pytest.raises(DataError, match=f"program 0 {when} than expected"):
                renderer(0, [(60, 100)], 16000, 0.3)
    assert renderer(0, [], 16000, 0.3).shape == (0, 4800)
    described = renderer.describe()
    assert (
        described["fluidsynth_version"].startswith("FluidSynth")
        and len(described["soundfont"]["sha256_prefix"]) == 16
    )

    manifest = notes.build_instrument_notes(
        tmp_path / "real", progress=False, programs=[56], workers=2
    )  # trumpet
    assert manifest["counts"]["train"]["notes"] == 32 and manifest["silent_renders"]["count"] == 0
    rows = notes.load_instrument_notes_metadata(tmp_path / "real")
    audio = torch.stack(
        [
            torch.from_numpy(soundfile.read(str(tmp_path / "real" / r["file"]), dtype="float32")[0])
            for r in rows
        ]
    )
    cents = cents_between(
        midi_to_hz(torch.tensor([r["pitch"] for r in rows])), estimate_f0(audio, 16000).double()
    )
    assert (cents.abs() <= 50).float().mean() >= 0.9  # measured: all 32
